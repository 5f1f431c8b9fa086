"""Timing a user's own model, whole and layer by layer, against the same model in torch:
``gradflow.bench.model(...)`` and ``gradflow bench --model module:callable``.

    report = gradflow.bench.model("mynets:resnet", (64, 3, 32, 32), loss="cross_entropy",
                                  torch_factory="mynets_torch:resnet")
    print(report)  # the table; report.to_dict() for every figure

What is measured (each region on both sides in alternating rounds, timing.time_rounds; CPU
time on the CPU with one BLAS thread, wall time with more (CPU time would add up every
thread's), device time on a GPU; wall time beside it in to_dict). On the CPU the process's
heap is held steady first (backend.heap.steady_heap, as every `gradflow bench` suite does), so
neither side faults pages in after its warm-up:

- the whole model: ``forward`` (the model on the input, then the loss), ``backward`` (the
  loss's backward alone, re-run on a graph built once with ``retain_graph=True``, the
  parameters' grads cleared before each call outside the timed region) and ``step`` (forward
  and backward together on a fresh graph each call, what a training step spends on them);
- each layer: a module without children, or one with parameters of its own
  (``parameters(recurse=False)``, e.g. a MultiheadAttention holding its in-projection; its
  row includes its children's work). Each distinct call of it in one forward of the whole
  model (its input shapes and which inputs require grad, recorded by forward hooks) is a row,
  timed on its own on that call's input and counted as often as the model makes that call:
  ``forward`` is the layer's call building its graph, ``backward`` the backward of its first
  output for a gradient of ones, re-run with ``retain_graph=True``, computing the grads of its
  parameters and of those inputs that required grad in the model (the output of an earlier
  layer does; the model's input does not). An in-place layer (``inplace=True``, e.g. a
  torchvision ReLU) runs on a fresh non-leaf clone of its input each call, made outside the
  timed region, its backward on a graph built before each call.
- ``outside any layer``: the whole model's time less the layers' (each outermost layer times
  its calls): the work done outside layers (a residual add, a functional call in a parent's
  forward, the loss) and what timing a layer alone changes (its caches are warm alone);
- the fixed cost of one ``backward()`` call on a one-op graph, each side: every per-layer
  backward row includes it once (the whole model's backward once in all).

With a torch model the gradflow model's state_dict is copied into it when both have the same
names and shapes (so both compute the same thing), and the layers are matched by name and
input. A problem with the user's code (importing it, calling the factory, the first forward
of either model, a model without trainable parameters, an input too large) raises
ModelError, naming the phase; gradflow's own errors keep their traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradflow.bench.timing import BenchResult, Side, format_seconds, repeat_for, time_rounds

LOSSES = ("sum", "cross_entropy")
DTYPES = ("float32", "float64")
INPUT_DTYPES = ("float32", "float64", "int64")  # float: the model's dtype; int64: indices
TARGET_SECONDS = {"model": 0.2, "layer": 0.05}  # time per side of a region without `repeat`
NO_ARGUMENTS = ("the factory is called with no arguments; wrap it in functools.partial or a "
                "def")  # fmt: skip


class ModelError(ValueError):
    """A problem with what the user gave (a spec, a shape, their model's code): `gradflow bench
    --model` prints it as one line and exits with status 2."""


class ModelTypeError(ModelError, TypeError):
    """A ModelError about the type of what was given (not a module, not a tensor)."""


def _user_code(what: str, exc: BaseException) -> ModelError:
    return ModelError(f"{what}: {type(exc).__name__}: {exc}")


# ---- building the models ---------------------------------------------------------------------
def load_callable(spec: str) -> Callable[[], Any]:
    """The callable named by ``"module:callable"``: `module` a dotted module path (searched
    from the current directory first, as ``python -m`` would) or a path to a .py file (its
    folder searched first while it is imported, for sibling imports); `callable` a name in it
    (dotted for an attribute of an attribute). sys.path is restored afterwards."""
    module_name, colon, attribute = spec.rpartition(":")
    if not colon or not module_name.strip() or not attribute.strip():
        raise ModelError(f"model spec {spec!r}: expected module:callable, e.g. "
                         "mynets:build or path/to/nets.py:Net")  # fmt: skip
    is_file = module_name.endswith(".py") or os.sep in module_name
    if is_file and not os.path.isfile(module_name):
        raise ModelError(f"model spec {spec!r}: no file {module_name!r}")
    folder = os.path.dirname(os.path.abspath(module_name)) if is_file else os.getcwd()
    saved = list(sys.path)
    sys.path.insert(0, folder)
    try:
        module = _import_file(module_name) if is_file else importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if not is_file and exc.name and module_name.startswith(exc.name):
            raise ModelError(f"model spec {spec!r}: no module named {exc.name!r}") from None
        raise _user_code(f"model spec {spec!r}: importing {module_name}", exc) from exc
    except Exception as exc:  # the user's module: a SyntaxError, an error at import time
        raise _user_code(f"model spec {spec!r}: importing {module_name}", exc) from exc
    finally:
        sys.path[:] = saved
    target: Any = module
    for name in attribute.split("."):
        if not hasattr(target, name):
            raise ModelError(f"model spec {spec!r}: {module_name} has no attribute "
                             f"{attribute!r}")  # fmt: skip
        target = getattr(target, name)
    if not callable(target):
        raise ModelError(f"model spec {spec!r}: {attribute} is a {type(target).__name__}, "
                         "not a callable that builds a model")  # fmt: skip
    return target


def _import_file(path: str) -> Any:
    name = "gradflow_bench_user_" + os.path.splitext(os.path.basename(path))[0]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def parse_shape(text: str | Sequence[int]) -> tuple[int, ...]:
    """``"64,3,32,32"`` (or a sequence of ints) as a tuple of positive ints."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        shape = tuple(int(str(p).strip()) for p in parts)
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape) or (isinstance(text, str) and not text.strip()):
        raise ModelError(f"input shape {text!r}: expected positive integers separated by "
                         "commas, e.g. 64,3,32,32")  # fmt: skip
    return shape


def _build(model: Any, lib_name: str, what: str) -> Any:
    """The module `model` is, or builds (a "module:callable" spec or a callable)."""
    if isinstance(model, str):
        model = load_callable(model)
    module_class = _module_class(lib_name)
    if not isinstance(model, module_class):
        if not callable(model):
            kind = type(model).__name__
            raise ModelTypeError(f"{what}: expected a {lib_name}.nn.Module, a callable "
                                 f"returning one or a 'module:callable' spec, "
                                 f"got {kind}")  # fmt: skip
        name = getattr(model, "__name__", None) or repr(model)
        try:
            inspect.signature(model).bind()
        except TypeError as exc:
            raise ModelTypeError(f"{what}: {name} needs arguments ({exc}): "
                                 f"{NO_ARGUMENTS}") from None  # fmt: skip
        except ValueError:  # no signature to read (a builtin): call it and see
            pass
        try:
            built = model()
        except Exception as exc:  # the user's factory
            raise _user_code(f"{what}: calling {name}()", exc) from exc
        if not isinstance(built, module_class):
            raise ModelTypeError(f"{what}: {name!r} returned an object of type "
                                 f"{type(built).__name__}, not a {lib_name}.nn.Module")  # fmt: skip
        model = built
    return model


def _module_class(lib_name: str) -> type:
    if lib_name == "torch":
        import torch

        return torch.nn.Module
    from gradflow.nn import Module

    return Module


# ---- one framework's model, input and loss ---------------------------------------------------
@dataclass
class _Side:
    """One framework's model on the device with the input, targets and layers."""

    lib: Any
    name: str  # "gradflow" or "torch"
    device: str
    model: Any
    x: Any
    loss_name: str
    targets: Any = None
    # (layer name, input signature) -> [module, args, kwargs, calls], in the order first called
    layers: dict = field(default_factory=dict)

    def loss(self, out: Any) -> Any:
        out = _first_tensor(self.lib, out)
        if self.loss_name == "sum":
            return out.sum()
        logits = out.reshape(-1, out.shape[-1])
        return self.lib.nn.functional.cross_entropy(logits, self.targets)

    def forward(self) -> Any:
        return self.loss(self.model(self.x))

    def clear_grads(self) -> None:
        for p in self.model.parameters():
            p.grad = None

    def step(self) -> None:
        self.clear_grads()
        self.forward().backward()

    def record_layers(self) -> None:
        """One forward with a hook on every layer (see _is_layer): each distinct call's
        arguments, and how many times the model makes it."""
        handles = []
        for name, module in self.model.named_modules():
            if _is_layer(module, root=not name):
                handles.append(module.register_forward_hook(self._recorder(name or "(model)"),
                                                            with_kwargs=True))  # fmt: skip
        try:
            self.forward()
        finally:
            for handle in handles:
                handle.remove()

    def _recorder(self, name: str) -> Callable:
        def hook(module: Any, args: tuple, kwargs: dict, output: Any) -> None:
            key = (name, _signature(self.lib, (args, list(kwargs.values()))))
            if key in self.layers:
                self.layers[key][3] += 1
            else:  # detached now: the recorded forward's graph is not kept alive
                kwargs = {k: _detached(self.lib, v) for k, v in kwargs.items()}
                self.layers[key] = [module, _detached(self.lib, args), kwargs, 1]

        return hook


def _is_layer(module: Any, root: bool = False) -> bool:
    """A module without children, or (but the model itself) one with parameters of its own."""
    if next(iter(module.children()), None) is None:
        return True
    return not root and next(iter(module.parameters(recurse=False)), None) is not None


def _signature(lib: Any, value: Any) -> tuple:
    """The shapes of the tensors in `value` and whether each requires grad."""
    if isinstance(value, lib.Tensor):
        return ((tuple(value.shape), bool(value.requires_grad)),)
    if isinstance(value, (tuple, list)):
        return tuple(item for v in value for item in _signature(lib, v))
    return ()


def _first_tensor(lib: Any, out: Any) -> Any:
    """`out`, or the first tensor in a tuple / list output (an RNN's output, not its state)."""
    while isinstance(out, (tuple, list)) and out:
        out = out[0]
    if not isinstance(out, lib.Tensor):
        raise ModelTypeError(
            f"the model returned an object of type {type(out).__name__}, not a tensor"
        )
    return out


def _detached(lib: Any, value: Any) -> Any:
    """A recorded argument as a new leaf (requiring grad where the original did)."""
    if isinstance(value, lib.Tensor):
        leaf = value.detach()
        if value.requires_grad:
            leaf.requires_grad_(True)
        return leaf
    if isinstance(value, (tuple, list)):
        return type(value)(_detached(lib, v) for v in value)
    return value


def _cloned(lib: Any, value: Any) -> Any:
    """Every tensor in `value` cloned (a leaf that requires grad gives a non-leaf)."""
    if isinstance(value, lib.Tensor):
        return value.clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_cloned(lib, v) for v in value)
    return value


def _leaves(lib: Any, value: Any) -> list:
    if isinstance(value, lib.Tensor):
        return [value] if value.requires_grad else []
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _leaves(lib, v)]
    return []


def _layer_steps(side: _Side, key: tuple) -> tuple[tuple, tuple | None]:
    """((forward, its before), (backward, its before) or None) of one recorded layer call.
    An in-place layer runs on a fresh clone of its input, made in `before`; its backward on a
    graph built in `before` (no retain_graph: the clone's graph is used once)."""
    module, args, kwargs, _ = side.layers[key]
    leaves = _leaves(side.lib, (args, list(kwargs.values())))
    parameters = list(module.parameters())
    inplace = getattr(module, "inplace", False) is True
    state: dict[str, Any] = {}

    def clear() -> None:
        for t in leaves + parameters:
            t.grad = None

    if inplace:

        def fresh() -> None:
            state["args"] = _cloned(side.lib, args)

        def forward() -> Any:
            return module(*state["args"], **kwargs)

        fresh()
    else:
        fresh = None  # type: ignore[assignment]

        def forward() -> Any:
            return module(*args, **kwargs)

    out = _first_tensor(side.lib, forward())
    if not out.requires_grad:
        return (forward, fresh), None
    grad = side.lib.ones_like(out)
    if inplace:

        def build() -> None:
            clear()
            fresh()
            state["out"] = _first_tensor(side.lib, forward())

        def backward() -> None:
            state["out"].backward(grad)

        return (forward, fresh), (backward, build)

    def backward_retained() -> None:
        out.backward(grad, retain_graph=True)

    return (forward, None), (backward_retained, clear)


# ---- the report ------------------------------------------------------------------------------
@dataclass
class Region:
    """One timed region (a phase of the whole model or of a layer call) on each side."""

    name: str  # "model" or the layer's name in named_modules
    kind: str  # the module's class name
    phase: str  # "forward", "backward" or "step"
    shape: str  # the input's shape
    gradflow: BenchResult
    torch: BenchResult | None = None
    calls: int = 1  # how many times the model made this call in one forward
    input_grad: bool = False  # whether a tensor input of the call requires grad
    wall: bool = False  # compare wall time (more than one BLAS thread) rather than CPU time

    @staticmethod
    def seconds(result: BenchResult | None, wall: bool = False) -> float | None:
        """CPU time on the CPU (wall time with `wall`), device time on a GPU."""
        if result is None:
            return None
        return result.cpu_median if result.cpu_median is not None and not wall else result.median

    @property
    def ratio_to_torch(self) -> float | None:
        """gradflow's time over torch's (CPU time on the CPU; below 1: gradflow is faster)."""
        ours, theirs = self.seconds(self.gradflow, self.wall), self.seconds(self.torch, self.wall)
        return None if theirs is None or theirs <= 0 else ours / theirs

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "phase": self.phase,
            "shape": self.shape,
            "calls": self.calls,
            "input_requires_grad": self.input_grad,
            "gradflow": self.gradflow.to_dict(),
            "torch": None if self.torch is None else self.torch.to_dict(),
            "ratio_to_torch": self.ratio_to_torch,
        }


@dataclass
class ModelReport:
    """What ``gradflow.bench.model`` measured: the whole model's forward, backward and step,
    every layer call's forward and backward, and the fixed cost of a backward() call, on
    gradflow and (with a torch model) torch."""

    model: str
    input_shape: tuple[int, ...]
    loss: str
    device: str
    dtype: str
    whole: list[Region]
    layers: list[Region]
    notes: list[str] = field(default_factory=list)
    empty_backward: Region | None = None  # backward() on a one-op graph
    heap: str = "default"  # "steady" when backend.heap.steady_heap held the heap
    wall: bool = False  # wall time compared (more than one BLAS thread), not CPU time

    @property
    def compared(self) -> bool:
        return any(r.torch is not None for r in self.whole)

    def _seconds(self, result: BenchResult | None) -> float | None:
        return Region.seconds(result, self.wall)

    def table(self) -> str:
        """The regions as an aligned table: layer, type, input shape, then per phase gradflow's
        time, torch's and their ratio."""
        clock = "device time" if self.device != "cpu" else "wall time" if self.wall else "CPU time"
        head = ["layer", "type", "input", "forward", "backward"]
        if self.compared:
            head = ["layer", "type", "input", "forward", "torch fwd", "ratio", "backward",
                    "torch bwd", "ratio"]  # fmt: skip
        lines = [tuple(head)]
        step = self._whole("step")
        forward, backward = self._whole("forward"), self._whole("backward")
        lines.append(self._line(f"whole model ({self.loss} loss)", "", "", forward, backward))
        by_call: dict[tuple, dict[str, Region]] = {}
        for region in self.layers:
            key = (region.name, region.shape, region.input_grad)
            by_call.setdefault(key, {})[region.phase] = region
        nested = self._nested()
        for phases in by_call.values():
            first = phases["forward"]
            name = ("  " if first.name in nested else "") + first.name
            name += f" (x{first.calls})" if first.calls > 1 else ""
            shape = first.shape + (" grad" if first.input_grad else "")
            lines.append(self._line(name, first.kind, shape, first, phases.get("backward")))
        if self.layers:
            sums = (self.layer_sum("forward"), self.layer_sum("backward"))
            outside = tuple(self._outside(self._whole(phase), total)
                            for phase, total in zip(("forward", "backward"), sums))  # fmt: skip
            lines.append(self._line("outside any layer", "", "", *outside))
            lines.append(self._line("sum of layers (x calls)", "", "", *sums))
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        text = ["  ".join(c.rjust(w) if i >= 3 else c.ljust(w)
                          for i, (c, w) in enumerate(zip(line, widths))).rstrip()
                for line in lines]  # fmt: skip
        rule = "  ".join("-" * w for w in widths)
        text.insert(1, rule)
        text.insert(3, rule)
        if self.layers:
            text.insert(len(text) - 2, rule)
        heap = "; heap held steady (no page faults after warm-up)" if self.heap == "steady" else ""
        title = (f"gradflow bench --model {self.model}: input {self.input_shape} {self.dtype} "
                 f"on {self.device}, medians of {clock}{heap}; forward + backward step "
                 f"{_fmt(self._seconds(step.gradflow))}")  # fmt: skip
        if step.torch is not None:
            title += f" (torch {_fmt(self._seconds(step.torch))}, {step.ratio_to_torch:.2f}x)"
        footer = [
            "layers: each distinct call of a layer (a module without children, or with "
            "parameters of its own) timed alone on the input it got in the model, "
            "'grad' where that input requires grad; backward: its first output's, for a "
            "gradient of ones; indented: inside the layer above (not summed again)"
        ]
        if self.empty_backward is not None:
            ours = _fmt(self._seconds(self.empty_backward.gradflow))
            theirs = self._seconds(self.empty_backward.torch)
            cost = ours + ("" if theirs is None else f", torch {_fmt(theirs)}")
            footer.append(f"fixed cost of one backward() call (a one-op graph): gradflow "
                          f"{cost}; every layer's backward row includes it once (so the "
                          "outside row's backward may be below 0)")  # fmt: skip
        if self.wall:
            footer.append("wall time: NumPy's BLAS ran more than one thread (CPU time would "
                          "add up every thread's); torch runs one")  # fmt: skip
        return "\n".join([title, *text, *footer, *self.notes])

    def _whole(self, phase: str) -> Region:
        return next(r for r in self.whole if r.phase == phase)

    def _nested(self) -> set[str]:
        """The layers inside another layer (their time is in that layer's row too)."""
        names = {r.name for r in self.layers}
        return {n for n in names if any(n.startswith(m + ".") for m in names if m != "(model)")}

    def _outside(self, whole: Region, total: tuple) -> tuple[float | None, float | None]:
        ours, theirs = self._seconds(whole.gradflow), self._seconds(whole.torch)
        return (None if total[0] is None else ours - total[0],
                None if total[1] is None or theirs is None else theirs - total[1])  # fmt: skip

    def layer_sum(self, phase: str) -> tuple[float | None, float | None]:
        """The outermost layers' `phase` times summed, each times its calls in one forward:
        gradflow's, and torch's where every such layer has one (None where none was timed)."""
        nested = self._nested()
        regions = [r for r in self.layers if r.phase == phase and r.name not in nested]
        if not regions:
            return None, None
        ours = sum(self._seconds(r.gradflow) * r.calls for r in regions)
        if any(r.torch is None for r in regions):
            return ours, None
        return ours, sum(self._seconds(r.torch) * r.calls for r in regions)

    def _line(self, name: str, kind: str, shape: str, *phases: Any) -> tuple:
        """A table line; each phase a Region, a (gradflow, torch) pair of seconds, or None."""
        cells = [name, kind, shape]
        for phase in phases:
            if isinstance(phase, Region):
                phase = self._seconds(phase.gradflow), self._seconds(phase.torch)
            ours, theirs = phase or (None, None)
            cells.append(_fmt(ours))
            if self.compared:
                ratio = ours / theirs if ours is not None and theirs and ours > 0 < theirs else None
                cells += [_fmt(theirs), "-" if ratio is None else f"{ratio:.2f}x"]
        return tuple(cells)

    def __str__(self) -> str:
        return self.table()

    def to_dict(self) -> dict:
        """Every figure, JSON-ready (the raw wall and CPU times of each region included)."""
        empty = self.empty_backward
        return {
            "model": self.model,
            "input_shape": list(self.input_shape),
            "loss": self.loss,
            "device": self.device,
            "dtype": self.dtype,
            "heap": self.heap,
            "clock": "wall" if self.wall else "cpu" if self.device == "cpu" else "device",
            "whole": [r.to_dict() for r in self.whole],
            "layers": [r.to_dict() for r in self.layers],
            "outside_layers": {
                phase: dict(zip(("gradflow", "torch"),
                                self._outside(self._whole(phase), self.layer_sum(phase))))
                for phase in ("forward", "backward")
            } if self.layers else None,
            "empty_backward": None if empty is None else empty.to_dict(),
            "notes": self.notes,
        }  # fmt: skip


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return format_seconds(seconds) if seconds >= 0 else "-" + format_seconds(-seconds)


# ---- the measurement -------------------------------------------------------------------------
def model(
    model_or_factory: Any,
    input_shape: str | Sequence[int],
    *,
    loss: str = "sum",
    torch_factory: Any = None,
    dtype: str = "float32",
    device: str = "cpu",
    repeat: int | None = None,
    layers: bool = True,
    threads: int = 1,
    progress: bool = False,
    input_dtype: str | None = None,
    input_high: int | None = None,
) -> ModelReport:
    """Time forward and backward of a gradflow model, whole and per layer (see the module
    docstring for what each figure measures), and of the same model in torch when
    `torch_factory` is given.

    `model_or_factory` and `torch_factory`: an nn.Module, a callable returning one (called with no
    arguments, after ``gradflow.manual_seed(0)`` / ``torch.manual_seed(0)``) or a
    ``"module:callable"`` spec. `input_shape`: the input's shape (a float input drawn from a
    seeded normal distribution, the same on both sides). `input_dtype`: None (the model's
    `dtype`) or "int64", with `input_high`: integers drawn uniformly from [0, input_high), e.g.
    the token ids of a model starting with an Embedding of input_high rows. `loss`: "sum"
    (``out.sum()``) or "cross_entropy" (random class indices over the output's last
    dimension). `repeat`: calls
    per region (default: as many as fit 0.2 s per side for the model, 0.05 s for a layer,
    5-50). `threads`: NumPy's BLAS threads on the CPU (torch runs with one, see
    gradflow.bench.machine; 0: the BLAS default; other than 1, wall time is compared).
    `progress`: a progress bar over the layers on stderr. On the CPU the process's heap is
    held steady (backend.heap.steady_heap; it stays so); torch's thread count is restored.
    Problems with what was given raise ModelError (a ValueError).
    """
    from gradflow.backend import Device
    from gradflow.backend.heap import steady_heap
    from gradflow.backend.threads import blas_threads

    shape = parse_shape(input_shape)
    if loss not in LOSSES:
        raise ModelError(f"loss {loss!r}: expected one of {', '.join(LOSSES)}")
    if dtype not in DTYPES:
        raise ModelError(f"dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    x = _input(shape, dtype, input_dtype, input_high)
    dev = Device(device)
    device = str(dev)
    given = model_or_factory
    label = given if isinstance(given, str) else _label(given)
    # glibc keeps freed arrays mapped, so neither side's steps fault pages in (backend/heap.py)
    heap = "steady" if dev.type == "cpu" and steady_heap() else "default"
    wall = dev.type == "cpu" and threads != 1
    torch_threads = _torch_threads() if torch_factory is not None else None
    try:
        with blas_threads(threads if dev.type == "cpu" else 0):
            sides, notes = _sides(given, torch_factory, x, loss, dtype, device)
            whole = _time_whole(sides, shape, repeat)
            regions, empty = [], None
            if layers:
                regions = _time_layers(sides, repeat, notes, progress)
                empty = _time_empty_backward(sides, dtype, repeat)
    finally:
        if torch_threads is not None:
            sys.modules["torch"].set_num_threads(torch_threads)
    for region in [*whole, *regions, *([empty] if empty else [])]:
        region.wall = wall
    return ModelReport(label, shape, loss, device, dtype, whole, regions, notes, empty, heap,
                       wall)  # fmt: skip


def _torch_threads() -> int | None:
    """torch's intra-op thread count before this run (None without torch)."""
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()


def _input(shape: tuple, dtype: str, input_dtype: str | None, high: int | None) -> np.ndarray:
    """The seeded input: normal floats of `dtype`, or int64 in [0, high) (see model)."""
    if input_dtype not in (None, dtype, *INPUT_DTYPES):
        raise ModelError(f"input dtype {input_dtype!r}: expected one of "
                         f"{', '.join(INPUT_DTYPES)} (default: the model's dtype)")  # fmt: skip
    integer = input_dtype == "int64"
    if integer != (high is not None):
        raise ModelError("an int64 input needs input_high (--input-high N: integers in [0, N))"
                         if integer else "input_high goes with an int64 input "
                         "(--input-dtype int64)")  # fmt: skip
    if integer and (not isinstance(high, int) or high < 1):
        raise ModelError(f"input_high must be an int of at least 1, got {high!r}")
    _check_size(shape, "int64" if integer else dtype)
    rng = np.random.default_rng(0)
    if integer:
        return rng.integers(0, high, shape, dtype=np.int64)
    return rng.standard_normal(shape, dtype=np.dtype(dtype).type)


def _check_size(shape: tuple, dtype: str) -> None:
    """Refuse an input larger than a quarter of the machine's memory before drawing it."""
    size = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX
        memory = 0
    if memory and size > memory // 4:
        raise ModelError(f"input shape {shape}: {size / 2**30:.3g} GiB of {dtype}, more than a "
                         f"quarter of this machine's {memory / 2**30:.3g} GiB")  # fmt: skip


def _label(model: Any) -> str:
    return getattr(model, "__name__", None) or type(model).__name__


def _sides(model: Any, torch_factory: Any, x: np.ndarray, loss: str, dtype: str,
           device: str) -> tuple[list[_Side], list[str]]:  # fmt: skip
    import gradflow

    shape = tuple(x.shape)
    gradflow.manual_seed(0)
    ours = _build(model, "gradflow", "model").to(device).to(getattr(gradflow, dtype))
    sides = [_Side(gradflow, "gradflow", device, ours, gradflow.tensor(x, device=device), loss)]
    notes: list[str] = []
    if torch_factory is not None:
        from gradflow.bench.machine import torch_or_none
        from gradflow.bench.op_cases import copy_state

        torch = torch_or_none()
        if torch is None:
            raise ModelError("torch_factory given but torch is not importable")
        torch.manual_seed(0)
        theirs = _build(torch_factory, "torch", "torch_factory")
        theirs = theirs.to(device=device, dtype=getattr(torch, dtype))
        problem = copy_state(ours, theirs, torch)
        notes.append("note: gradflow's weights copied into torch's model (same state_dict names)"
                     if problem is None else
                     f"note: weights not copied to torch's model ({problem})")  # fmt: skip
        sides.append(_Side(torch, "torch", device, theirs, torch.tensor(x, device=device), loss))
    outputs = [_first_forward(side, shape) for side in sides]
    for side in sides:
        if not any(p.requires_grad for p in side.model.parameters()):
            raise ModelError(f"the {side.name} model has no parameter that requires grad: "
                             "backward() would compute nothing (a frozen model, or one "
                             "without weights)")  # fmt: skip
    out = outputs[0]
    if len(outputs) > 1 and tuple(outputs[1].shape) != tuple(out.shape):
        raise ModelError(f"the torch model's output has shape {tuple(outputs[1].shape)}, "
                         f"gradflow's {tuple(out.shape)}: not the same model")  # fmt: skip
    if loss == "cross_entropy":
        if len(out.shape) < 2:
            raise ModelError(f"cross_entropy needs an output of shape (..., classes), the "
                             f"model returned {tuple(out.shape)}")  # fmt: skip
        count = int(np.prod(out.shape[:-1]))
        targets = np.random.default_rng(1).integers(0, out.shape[-1], count)
        for side in sides:
            side.targets = side.lib.tensor(targets, device=device)
    for side in sides:  # the loss on the output once, before anything is timed
        try:
            side.forward()
        except Exception as exc:
            raise _user_code(f"the {side.name} model's forward with the {loss} loss", exc) from exc
    return sides, notes


def _first_forward(side: _Side, shape: tuple) -> Any:
    """The side's model on the input once (user code: its errors become ModelError)."""
    try:
        out = side.model(side.x)
    except Exception as exc:
        raise _user_code(f"the {side.name} model's forward on input {shape}", exc) from exc
    return _first_tensor(side.lib, out)


def _timed(name: str, steps: list[tuple[Callable, Callable | None]], sides: list[_Side],
           kind: str, fixed: int | None) -> list[BenchResult]:  # fmt: skip
    """Each side's step timed in alternating rounds: one BenchResult per side."""
    timed = [Side(fn, side.device, side.name, before)
             for (fn, before), side in zip(steps, sides)]  # fmt: skip
    ours = timed[0]  # both sides get as many calls as fit gradflow's time
    repeat = repeat_for(ours.fn, TARGET_SECONDS[kind], fixed, ours.device, ours.before,
                        ours.framework)  # fmt: skip
    records = time_rounds(timed, repeat, warmup=1 if fixed is not None else 2)
    return [BenchResult(name if s.framework == "gradflow" else f"torch {name}", s.device,
                        walls, cpu_times=cpus)
            for s, (walls, cpus) in zip(timed, records)]  # fmt: skip


def _time_whole(sides: list[_Side], shape: tuple, fixed: int | None) -> list[Region]:
    """The whole model's forward, backward and step on each side."""
    graphs = [side.forward() for side in sides]
    phases = {
        "forward": [(side.forward, None) for side in sides],
        "backward": [
            (lambda g=g: g.backward(retain_graph=True), side.clear_grads)
            for g, side in zip(graphs, sides)
        ],
        "step": [(side.step, None) for side in sides],
    }
    kind = type(sides[0].model).__name__
    regions = []
    for phase, steps in phases.items():
        results = _timed(f"model {phase}", steps, sides, "model", fixed)
        regions.append(Region("model", kind, phase, str(shape), *_pad(results)))
    for side in sides:
        side.clear_grads()
    return regions


def _time_empty_backward(sides: list[_Side], dtype: str, fixed: int | None) -> Region:
    """backward() of a one-op graph (a sum of one element) on each side: the fixed cost every
    per-layer backward row pays once."""
    steps = []
    for side in sides:
        leaf = side.lib.tensor(np.ones(1, dtype=dtype), device=side.device, requires_grad=True)
        out = leaf.sum()

        def clear(leaf: Any = leaf) -> None:
            leaf.grad = None

        steps.append((lambda out=out: out.backward(retain_graph=True), clear))
    results = _timed("empty backward", steps, sides, "layer", fixed)
    return Region("backward()", "-", "backward", "1", *_pad(results))


def _time_layers(sides: list[_Side], fixed: int | None, notes: list[str],
                 progress: bool = False) -> list[Region]:  # fmt: skip
    """Each recorded layer call of gradflow's model, forward and backward, with torch's call
    of the same layer name and input signature when there is one."""
    for side in sides:
        side.record_layers()
    ours = sides[0]
    theirs = sides[1] if len(sides) > 1 else None
    missing = [n for n, _ in ours.layers if theirs is not None and
               not any(m == n for m, _ in theirs.layers)]  # fmt: skip
    if missing:
        more = ", ..." if len(missing) > 4 else ""
        notes.append(f"note: no torch layer named {', '.join(missing[:4])}{more}: "
                     "gradflow's alone in its rows")  # fmt: skip
    from tqdm.auto import tqdm

    regions = []
    bar = tqdm(list(ours.layers.items()), desc="gradflow bench --model", unit="layer",
               leave=False, file=sys.stderr, disable=not progress)  # fmt: skip
    for key, (module, args, _, calls) in bar:
        name, signature = key
        both = [ours] + ([theirs] if theirs is not None and key in theirs.layers else [])
        steps = []
        for side in both:
            try:
                steps.append(_layer_steps(side, key))
            except RuntimeError as exc:  # a layer that needs its model around it
                notes.append(f"note: {side.name}'s layer {name} cannot run alone: {exc}")
                break
        both = both[: len(steps)]
        if not steps:
            continue
        shape = _shape_of(ours.lib, args)
        kind = type(module).__name__
        grad = any(needs for _, needs in signature)
        results = _timed(f"{name} forward", [s[0] for s in steps], both, "layer", fixed)
        regions.append(Region(name, kind, "forward", shape, *_pad(results), calls=calls,
                              input_grad=grad))  # fmt: skip
        if all(s[1] is not None for s in steps):
            results = _timed(f"{name} backward", [s[1] for s in steps], both, "layer", fixed)
            regions.append(Region(name, kind, "backward", shape, *_pad(results), calls=calls,
                                  input_grad=grad))  # fmt: skip
    for side in sides:
        side.clear_grads()
    return regions


def _pad(results: list[BenchResult]) -> tuple[BenchResult, BenchResult | None]:
    return results[0], (results[1] if len(results) > 1 else None)


def _shape_of(lib: Any, args: tuple) -> str:
    tensors = [a for a in args if isinstance(a, lib.Tensor)]
    return "x".join(str(d) for d in tensors[0].shape) if tensors else "-"


__all__ = ["LOSSES", "ModelError", "ModelReport", "Region", "load_callable", "model",
           "parse_shape"]  # fmt: skip

"""Timing a user's own model, whole and layer by layer, against the same model in torch:
``gradflow.bench.model(...)`` and ``gradflow bench --model module:callable``.

    report = gradflow.bench.model("mynets:resnet", (64, 3, 32, 32), loss="cross_entropy",
                                  torch_factory="mynets_torch:resnet")
    print(report)  # the table; report.to_dict() for every figure

What is measured (each region on both sides in alternating rounds, timing.time_rounds; CPU
time on the CPU, device time on a GPU, wall time beside it in to_dict):

- the whole model: ``forward`` (the model on the input, then the loss), ``backward`` (the
  loss's backward alone, re-run on a graph built once with ``retain_graph=True``, the
  parameters' grads cleared before each call outside the timed region) and ``step`` (forward
  and backward together on a fresh graph each call, what a training step spends on them);
- each leaf module (a module without children), timed on its own on the input it received in
  one forward of the whole model (recorded by forward hooks; a module called several times is
  timed on its first call): ``forward`` is the layer's call building its graph, ``backward``
  the backward of its first output for a gradient of ones, re-run with ``retain_graph=True``,
  computing the grads of its parameters and, where that input required grad in the model
  (every layer but the first), of its input. A layer is timed in isolation: its caches are
  warm, and work done outside leaf modules (a residual add, a functional call in a parent's
  forward) is in no layer; the whole-model rows count it, so the layers need not sum to them.

With a torch model the gradflow model's state_dict is copied into it when both have the same
names and shapes (so both compute the same thing), and the layers are matched by name.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradflow.bench.timing import BenchResult, Side, format_seconds, time_calls, time_rounds

LOSSES = ("sum", "cross_entropy")
DTYPES = ("float32", "float64")
TARGET_SECONDS = {"model": 0.2, "layer": 0.05}  # time per side of a region without `repeat`
MIN_REPEAT, MAX_REPEAT = 5, 50


# ---- building the models ---------------------------------------------------------------------
def load_callable(spec: str) -> Callable[[], Any]:
    """The callable named by ``"module:callable"``: `module` a dotted module path (searched
    from the current directory first, as ``python -m`` would) or a path to a .py file;
    `callable` a name in it (dotted for an attribute of an attribute)."""
    module_name, colon, attribute = spec.rpartition(":")
    if not colon or not module_name.strip() or not attribute.strip():
        raise ValueError(f"model spec {spec!r}: expected module:callable, e.g. "
                             "mynets:build or path/to/nets.py:Net")  # fmt: skip
    if module_name.endswith(".py") or os.sep in module_name:
        module = _import_file(module_name, spec)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise ValueError(f"model spec {spec!r}: no module named {exc.name!r}") from None
    target: Any = module
    for name in attribute.split("."):
        if not hasattr(target, name):
            raise ValueError(f"model spec {spec!r}: {module_name} has no attribute "
                                 f"{attribute!r}")  # fmt: skip
        target = getattr(target, name)
    if not callable(target):
        raise ValueError(f"model spec {spec!r}: {attribute} is a {type(target).__name__}, "
                             "not a callable that builds a model")  # fmt: skip
    return target


def _import_file(path: str, spec: str) -> Any:
    if not os.path.isfile(path):
        raise ValueError(f"model spec {spec!r}: no file {path!r}")
    name = "gradflow_bench_user_" + os.path.splitext(os.path.basename(path))[0]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return module


def parse_shape(text: str | Sequence[int]) -> tuple[int, ...]:
    """``"64,3,32,32"`` (or a sequence of ints) as a tuple of positive ints."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        shape = tuple(int(str(p).strip()) for p in parts)
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape) or (isinstance(text, str) and not text.strip()):
        raise ValueError(f"input shape {text!r}: expected positive integers separated by "
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
            raise TypeError(f"{what}: expected a {lib_name}.nn.Module, a callable returning "
                            f"one or a 'module:callable' spec, got {kind}")  # fmt: skip
        built = model()
        if not isinstance(built, module_class):
            raise TypeError(f"{what}: {getattr(model, '__name__', model)!r} returned a "
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
    """One framework's model on the device with the input, targets and leaf modules."""

    lib: Any
    name: str  # "gradflow" or "torch"
    device: str
    model: Any
    x: Any
    loss_name: str
    targets: Any = None
    layers: dict = field(default_factory=dict)  # leaf name -> (module, args, kwargs, calls)

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
        """One forward with a hook on every leaf module: its first call's arguments."""
        handles = []
        for name, module in self.model.named_modules():
            if next(iter(module.children()), None) is None:
                handles.append(module.register_forward_hook(self._recorder(name or "(model)"),
                                                            with_kwargs=True))  # fmt: skip
        try:
            self.forward()
        finally:
            for handle in handles:
                handle.remove()

    def _recorder(self, name: str) -> Callable:
        def hook(module: Any, args: tuple, kwargs: dict, output: Any) -> None:
            if name in self.layers:
                self.layers[name][3] += 1
            else:  # detached now: the recorded forward's graph is not kept alive
                kwargs = {k: _detached(self.lib, v) for k, v in kwargs.items()}
                self.layers[name] = [module, _detached(self.lib, args), kwargs, 1]

        return hook


def _first_tensor(lib: Any, out: Any) -> Any:
    """`out`, or the first tensor in a tuple / list output (an RNN's output, not its state)."""
    while isinstance(out, (tuple, list)) and out:
        out = out[0]
    if not isinstance(out, lib.Tensor):
        raise TypeError(f"the model returned a {type(out).__name__}, not a tensor")
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


def _leaves(lib: Any, value: Any) -> list:
    if isinstance(value, lib.Tensor):
        return [value] if value.requires_grad else []
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _leaves(lib, v)]
    return []


def _layer_steps(side: _Side, name: str) -> tuple[Callable, Callable | None, Callable | None]:
    """(forward, backward or None, the backward's `before`) of one recorded leaf module."""
    module, args, kwargs, _ = side.layers[name]
    leaves = _leaves(side.lib, (args, list(kwargs.values())))

    def forward() -> Any:
        return module(*args, **kwargs)

    out = _first_tensor(side.lib, forward())
    if not out.requires_grad:
        return forward, None, None
    grad = side.lib.ones_like(out)
    parameters = list(module.parameters())

    def before() -> None:
        for t in leaves + parameters:
            t.grad = None

    def backward() -> None:
        out.backward(grad, retain_graph=True)

    return forward, backward, before


# ---- the report ------------------------------------------------------------------------------
@dataclass
class Region:
    """One timed region (a phase of the whole model or of a layer) on each side."""

    name: str  # "model" or the layer's name in named_modules
    kind: str  # the module's class name
    phase: str  # "forward", "backward" or "step"
    shape: str  # the input's shape
    gradflow: BenchResult
    torch: BenchResult | None = None
    calls: int = 1  # how many times the layer ran in one forward of the model

    @staticmethod
    def seconds(result: BenchResult | None) -> float | None:
        """CPU time on the CPU, device time on a GPU."""
        if result is None:
            return None
        return result.cpu_median if result.cpu_median is not None else result.median

    @property
    def ratio_to_torch(self) -> float | None:
        """gradflow's time over torch's (CPU time on the CPU; below 1: gradflow is faster)."""
        ours, theirs = self.seconds(self.gradflow), self.seconds(self.torch)
        return None if theirs is None or theirs <= 0 else ours / theirs

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "phase": self.phase,
            "shape": self.shape,
            "calls": self.calls,
            "gradflow": self.gradflow.to_dict(),
            "torch": None if self.torch is None else self.torch.to_dict(),
            "ratio_to_torch": self.ratio_to_torch,
        }


@dataclass
class ModelReport:
    """What ``gradflow.bench.model`` measured: the whole model's forward, backward and step,
    every leaf layer's forward and backward, on gradflow and (with a torch model) torch."""

    model: str
    input_shape: tuple[int, ...]
    loss: str
    device: str
    dtype: str
    whole: list[Region]
    layers: list[Region]
    notes: list[str] = field(default_factory=list)

    @property
    def compared(self) -> bool:
        return any(r.torch is not None for r in self.whole)

    def table(self) -> str:
        """The regions as an aligned table: layer, type, input shape, then per phase gradflow's
        time, torch's and their ratio."""
        clock = "CPU time" if self.device == "cpu" else "device time"
        head = ["layer", "type", "input", "forward", "backward"]
        if self.compared:
            head = ["layer", "type", "input", "forward", "torch fwd", "ratio", "backward",
                    "torch bwd", "ratio"]  # fmt: skip
        lines = [tuple(head)]
        step = next(r for r in self.whole if r.phase == "step")
        forward = next(r for r in self.whole if r.phase == "forward")
        backward = next(r for r in self.whole if r.phase == "backward")
        lines.append(self._line(f"whole model ({self.loss} loss)", "", "", forward, backward))
        by_name: dict[str, dict[str, Region]] = {}
        for region in self.layers:
            by_name.setdefault(region.name, {})[region.phase] = region
        for phases in by_name.values():
            first = phases["forward"]
            name = first.name + (f" (x{first.calls})" if first.calls > 1 else "")
            lines.append(self._line(name, first.kind, first.shape, first, phases.get("backward")))
        if self.layers:
            sums = (self.layer_sum("forward"), self.layer_sum("backward"))
            lines.append(self._line("sum of layers (x calls)", "", "", *sums))
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        text = ["  ".join(c.rjust(w) if i >= 3 else c.ljust(w)
                          for i, (c, w) in enumerate(zip(line, widths))).rstrip()
                for line in lines]  # fmt: skip
        text.insert(1, "  ".join("-" * w for w in widths))
        text.insert(3, "  ".join("-" * w for w in widths))
        if self.layers:
            text.insert(len(text) - 1, "  ".join("-" * w for w in widths))
        title = (f"gradflow bench --model {self.model}: input {self.input_shape} {self.dtype} "
                 f"on {self.device}, medians of {clock}; forward + backward step "
                 f"{_fmt(Region.seconds(step.gradflow))}")  # fmt: skip
        if step.torch is not None:
            title += f" (torch {_fmt(Region.seconds(step.torch))}, {step.ratio_to_torch:.2f}x)"
        footer = ["layers: each leaf module timed alone on the input it got in the model "
                  "(backward: its first output's, for a gradient of ones)"]  # fmt: skip
        return "\n".join([title, *text, *footer, *self.notes])

    def layer_sum(self, phase: str) -> tuple[float | None, float | None]:
        """The layers' `phase` times summed, each times its calls in one forward: gradflow's,
        and torch's where every such layer has one (None where none was timed)."""
        regions = [r for r in self.layers if r.phase == phase]
        if not regions:
            return None, None
        ours = sum(Region.seconds(r.gradflow) * r.calls for r in regions)
        if any(r.torch is None for r in regions):
            return ours, None
        return ours, sum(Region.seconds(r.torch) * r.calls for r in regions)

    def _line(self, name: str, kind: str, shape: str, *phases: Any) -> tuple:
        """A table line; each phase a Region, a (gradflow, torch) pair of seconds, or None."""
        cells = [name, kind, shape]
        for phase in phases:
            if isinstance(phase, Region):
                phase = Region.seconds(phase.gradflow), Region.seconds(phase.torch)
            ours, theirs = phase or (None, None)
            cells.append(_fmt(ours))
            if self.compared:
                ratio = ours / theirs if ours is not None and theirs else None
                cells += [_fmt(theirs), "-" if ratio is None else f"{ratio:.2f}x"]
        return tuple(cells)

    def __str__(self) -> str:
        return self.table()

    def to_dict(self) -> dict:
        """Every figure, JSON-ready (the raw wall and CPU times of each region included)."""
        return {
            "model": self.model,
            "input_shape": list(self.input_shape),
            "loss": self.loss,
            "device": self.device,
            "dtype": self.dtype,
            "whole": [r.to_dict() for r in self.whole],
            "layers": [r.to_dict() for r in self.layers],
            "notes": self.notes,
        }


def _fmt(seconds: float | None) -> str:
    return "-" if seconds is None else format_seconds(seconds)


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
) -> ModelReport:
    """Time forward and backward of a gradflow model, whole and per leaf layer (see the module
    docstring for what each figure measures), and of the same model in torch when
    `torch_factory` is given.

    `model_or_factory` and `torch_factory`: an nn.Module, a callable returning one (called with no
    arguments, after ``gradflow.manual_seed(0)`` / ``torch.manual_seed(0)``) or a
    ``"module:callable"`` spec. `input_shape`: the input's shape (a float input drawn from a
    seeded normal distribution, the same on both sides). `loss`: "sum" (``out.sum()``) or
    "cross_entropy" (random class indices over the output's last dimension). `repeat`: calls
    per region (default: as many as fit 0.2 s per side for the model, 0.05 s for a layer,
    5-50). `threads`: NumPy's BLAS threads on the CPU (torch runs with one, see
    gradflow.bench.machine; 0: the BLAS default). `progress`: a progress bar over the layers
    on stderr.
    """
    from gradflow.backend import Device
    from gradflow.backend.threads import blas_threads

    shape = parse_shape(input_shape)
    if loss not in LOSSES:
        raise ValueError(f"loss {loss!r}: expected one of {', '.join(LOSSES)}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    dev = Device(device)
    device = str(dev)
    given = model_or_factory
    label = given if isinstance(given, str) else _label(given)
    with blas_threads(threads if dev.type == "cpu" else 0):
        sides, notes = _sides(given, torch_factory, shape, loss, dtype, device)
        whole = _time_whole(sides, shape, repeat)
        regions = _time_layers(sides, repeat, notes, progress) if layers else []
    return ModelReport(label, shape, loss, device, dtype, whole, regions, notes)


def _label(model: Any) -> str:
    return getattr(model, "__name__", None) or type(model).__name__


def _sides(model: Any, torch_factory: Any, shape: tuple, loss: str, dtype: str,
           device: str) -> tuple[list[_Side], list[str]]:  # fmt: skip
    import gradflow

    gradflow.manual_seed(0)
    ours = _build(model, "gradflow", "model").to(device).to(getattr(gradflow, dtype))
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    sides = [_Side(gradflow, "gradflow", device, ours, gradflow.tensor(x, device=device), loss)]
    notes: list[str] = []
    if torch_factory is not None:
        from gradflow.bench.machine import torch_or_none

        torch = torch_or_none()
        if torch is None:
            raise ModuleNotFoundError("torch_factory given but torch is not importable")
        torch.manual_seed(0)
        theirs = _build(torch_factory, "torch", "torch_factory")
        theirs = theirs.to(device=device, dtype=getattr(torch, dtype))
        notes.append(_copy_state(ours, theirs, torch))
        sides.append(_Side(torch, "torch", device, theirs, torch.tensor(x, device=device), loss))
    out = _first_tensor(gradflow, ours(sides[0].x))
    if loss == "cross_entropy":
        if len(out.shape) < 2:
            raise ValueError(f"cross_entropy needs an output of shape (..., classes), the "
                                 f"model returned {tuple(out.shape)}")  # fmt: skip
        count = int(np.prod(out.shape[:-1]))
        targets = np.random.default_rng(1).integers(0, out.shape[-1], count)
        for side in sides:
            side.targets = side.lib.tensor(targets, device=device)
    return sides, notes


def _copy_state(ours: Any, theirs: Any, torch: Any) -> str:
    """Copy gradflow's state_dict into torch's model when the names and shapes match; a note
    on what was done."""
    mine, target = ours.state_dict(), theirs.state_dict()
    if set(mine) != set(target):
        differ = sorted(set(mine) ^ set(target))
        shown = ", ".join(differ[:4]) + (", ..." if len(differ) > 4 else "")
        return f"note: weights not copied to torch's model (state_dict names differ: {shown})"
    bad = [k for k in mine if tuple(mine[k].shape) != tuple(target[k].shape)]
    if bad:
        return f"note: weights not copied to torch's model (shapes differ: {', '.join(bad[:4])})"
    with torch.no_grad():
        for k, v in mine.items():
            target[k].copy_(torch.as_tensor(np.asarray(v.numpy())))
    return "note: gradflow's weights copied into torch's model (same state_dict names)"


def _repeat(fn: Callable, before: Callable | None, device: str, framework: str, kind: str,
            fixed: int | None) -> int:  # fmt: skip
    """`fixed`, or as many calls as fit TARGET_SECONDS[kind] (one untimed call first)."""
    if fixed is not None:
        return fixed
    times = time_calls(fn, device, 1, 1, before, framework)
    return max(MIN_REPEAT, min(MAX_REPEAT, int(TARGET_SECONDS[kind] / max(times[0], 1e-9))))


def _timed(name: str, steps: list[tuple[Callable, Callable | None]], sides: list[_Side],
           kind: str, fixed: int | None) -> list[BenchResult]:  # fmt: skip
    """Each side's step timed in alternating rounds: one BenchResult per side."""
    timed = [Side(fn, side.device, side.name, before)
             for (fn, before), side in zip(steps, sides)]  # fmt: skip
    ours = timed[0]  # both sides get as many calls as fit gradflow's time
    repeat = _repeat(ours.fn, ours.before, ours.device, ours.framework, kind, fixed)
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


def _time_layers(sides: list[_Side], fixed: int | None, notes: list[str],
                 progress: bool = False) -> list[Region]:  # fmt: skip
    """Each leaf layer of gradflow's model, forward and backward, with torch's layer of the
    same name when there is one."""
    for side in sides:
        side.record_layers()
    ours = sides[0]
    theirs = sides[1] if len(sides) > 1 else None
    missing = [n for n in ours.layers if theirs is not None and n not in theirs.layers]
    if missing:
        more = ", ..." if len(missing) > 4 else ""
        notes.append(f"note: no torch layer named {', '.join(missing[:4])}{more}: "
                     "gradflow's alone in its rows")  # fmt: skip
    from tqdm.auto import tqdm

    regions = []
    bar = tqdm(list(ours.layers.items()), desc="gradflow bench --model", unit="layer",
               leave=False, file=sys.stderr, disable=not progress)  # fmt: skip
    for name, (module, args, _, calls) in bar:
        both = [ours] + ([theirs] if theirs is not None and name in theirs.layers else [])
        steps = []
        for side in both:
            try:
                steps.append(_layer_steps(side, name))
            except RuntimeError as exc:  # e.g. torch's in-place ReLU on a leaf that needs grad
                notes.append(f"note: {side.name}'s layer {name} cannot run alone: {exc}")
                break
        both = both[: len(steps)]
        if not steps:
            continue
        shape = _shape_of(ours.lib, args)
        kind = type(module).__name__
        results = _timed(f"{name} forward", [(s[0], None) for s in steps], both, "layer", fixed)
        regions.append(Region(name, kind, "forward", shape, *_pad(results), calls=calls))
        if all(s[1] is not None for s in steps):
            results = _timed(f"{name} backward", [(s[1], s[2]) for s in steps], both, "layer",
                             fixed)  # fmt: skip
            regions.append(Region(name, kind, "backward", shape, *_pad(results), calls=calls))
    for side in sides:
        side.clear_grads()
    return regions


def _pad(results: list[BenchResult]) -> tuple[BenchResult, BenchResult | None]:
    return results[0], (results[1] if len(results) > 1 else None)


def _shape_of(lib: Any, args: tuple) -> str:
    tensors = [a for a in args if isinstance(a, lib.Tensor)]
    return "x".join(str(d) for d in tensors[0].shape) if tensors else "-"


__all__ = ["LOSSES", "ModelReport", "Region", "load_callable", "model", "parse_shape"]

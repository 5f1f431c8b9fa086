"""The op cases of issue 17, each written once as PyTorch code and run on gradflow and torch.

A case is forward + backward of one op or one layer, float32, at the size the issue names
(pointwise ops at 2^20 elements). The backward starts from a fixed dense random gradient of the
output's shape, the same on both sides (a loss's scalar output from 1), as a training step
hands each op a dense gradient: the issue's ``.sum().backward()`` (``backward="sum"``) hands a
broadcast of ones instead, which both frameworks can take shortcuts on that training never
sees (a normalization's gradient of a sum is 0).

``CASES`` lists them; ``time_case`` times one on both sides, interleaved call by call, in CPU
time (``time.process_time``: other jobs on a shared machine distort it less than wall time),
and returns the medians (``measure_case`` adds the page faults per step); ``check_case``
compares the two sides' outputs and gradients; ``prepare`` builds a case's sides (gradflow's,
then torch's) for a timer of its own, each with ``step()``. ``benchmarks/op_sweep_cpu.py``
prints and records the cases, and `gradflow bench` builds its "ops" suite from them.

Each case has a name, a family, the shape as text, ``make(rng, scale)`` (the NumPy inputs:
floats become tensors that require grad, integers index tensors) and ``fn(lib, *args)`` with
``lib`` gradflow or torch. A layer case also has ``build(lib)``, the module factory: gradflow's
module is built after ``gradflow.manual_seed(0)``, torch's is given the same weights, and the
module comes first in ``args``; a training-step case also has ``optimizer(lib, parameters)``,
stepped after each backward, and data inputs (``input_grads`` False). ``scale`` shrinks every
dimension (1.0: the issue's sizes; ``SMOKE_SCALE``: tiny shapes for tests) keeping the
multiples a case needs (groups, heads).

The caller limits threads (``torch.set_num_threads(1)`` and threadpoolctl's
``threadpool_limits(1)`` for NumPy's BLAS, as the script does); torch is never imported here.

>>> case = CASES_BY_NAME["relu"]
>>> (case.family, case.shape)
('pointwise', '2^20')
>>> seconds, torch_seconds = time_case(case, None, repeat=1, scale=SMOKE_SCALE)
>>> seconds >= 0 and torch_seconds is None
True
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy

import gradflow

SMOKE_SCALE = 1 / 32


@dataclass(frozen=True)
class OpCase:
    """One case: ``fn(lib, *args)`` on ``make(rng, scale)``'s inputs (after ``build(lib)``'s
    module when there is one); its output's backward (from a dense gradient, see the module
    docstring) is part of the step."""

    name: str
    family: str
    shape: str
    make: Callable[[numpy.random.Generator, float], list[numpy.ndarray]]
    fn: Callable[..., Any]
    build: Callable[[Any], Any] | None = None
    optimizer: Callable[[Any, Any], Any] | None = None  # (lib, parameters): stepped after backward
    input_grads: bool = True  # False: the float inputs are data, not leaves that require grad
    argmax: bool = False  # a max routes the gradient: a near-tie may pick another element


def size(full: int, scale: float, multiple: int = 1) -> int:
    """``full`` scaled, rounded to a multiple of ``multiple`` and at least that multiple."""
    return max(multiple, round(full * scale / multiple) * multiple)


def _normal(rng: numpy.random.Generator, *shape: int) -> numpy.ndarray:
    return rng.standard_normal(shape).astype(numpy.float32)


def _square(rng: numpy.random.Generator, scale: float) -> list[numpy.ndarray]:
    side = size(1024, scale)
    return [_normal(rng, side, side)]


def _images(rng: numpy.random.Generator, scale: float) -> list[numpy.ndarray]:
    """(32, 64, 32, 16) activations, channels a multiple of 8 (group_norm's groups)."""
    shape = (size(32, scale), size(64, scale, 8), size(32, scale, 2), size(16, scale, 2))
    return [_normal(rng, *shape)]


def _pointwise(name: str, fn: Callable[..., Any]) -> OpCase:
    def make(rng: numpy.random.Generator, scale: float) -> list[numpy.ndarray]:
        return [_normal(rng, size(1024, scale) ** 2)]

    return OpCase(name, "pointwise", "2^20", make, fn)


def _conv(name: str, in_shape: tuple, weight_shape: tuple, detail: str, fn: Callable[..., Any],
          groups: int = 1, transposed: bool = False) -> OpCase:  # fmt: skip
    """A convolution case: input, weight (times 0.05) and bias as tensors that require grad.
    ``groups`` 0 means depthwise (as many groups as input channels, which ``fn`` reads from
    the input); channel counts stay multiples of 4 at small scales."""
    shape = f"{tuple(in_shape)} w{tuple(weight_shape)} {detail}"

    def make(rng: numpy.random.Generator, scale: float) -> list[numpy.ndarray]:
        x_shape = [size(in_shape[0], scale), size(in_shape[1], scale, 4)]
        x_shape += [size(d, scale) for d in in_shape[2:]]
        channels, kernel = x_shape[1], weight_shape[2:]
        if transposed:  # (in, out, k...)
            out = size(weight_shape[1], scale, 4)
            w_shape = (channels, out, *kernel)
        else:  # (out, in / groups, k...)
            count = groups or channels
            out = channels if groups == 0 else size(weight_shape[0], scale, 4)
            w_shape = (out, channels // count, *kernel)
        return [_normal(rng, *x_shape), _normal(rng, *w_shape) * 0.05, _normal(rng, out)]

    return OpCase(name, "conv", shape, make, fn)


def _layer_input(*dims: int, multiples: tuple = ()) -> Callable:
    def make(rng: numpy.random.Generator, scale: float) -> list[numpy.ndarray]:
        ms = multiples or (1,) * len(dims)
        return [_normal(rng, *(size(d, scale, m) for d, m in zip(dims, ms, strict=True)))]

    return make


def _cells(lib: Any, cell: Any, x: Any) -> Any:
    """An LSTMCell loop over x's time axis (dimension 1); the last hidden state."""
    state = None
    for step in range(x.shape[1]):
        state = cell(x[:, step], state)
    return state[0]


def _indexing_cases() -> list[OpCase]:
    def gather(rng: numpy.random.Generator, scale: float) -> list[numpy.ndarray]:
        side = size(1024, scale)
        return [_normal(rng, side, side), rng.integers(0, side, (side, max(1, side // 4)))]

    def rows(rng: numpy.random.Generator, scale: float) -> list[numpy.ndarray]:
        count = size(65536, scale)
        return [_normal(rng, count, 16), rng.integers(0, count, count)]

    def two(rng: numpy.random.Generator, scale: float) -> list[numpy.ndarray]:
        side = size(1024, scale)
        count = side * side // 4
        return [
            _normal(rng, side, side),
            rng.integers(0, side, count),
            rng.integers(0, side, count),
        ]

    def embedding(rng: numpy.random.Generator, scale: float) -> list[numpy.ndarray]:
        vocab = size(52428, scale)
        return [
            rng.integers(0, vocab, (size(32, scale), size(128, scale))),
            _normal(rng, vocab, 64),
        ]

    return [
        OpCase("gather", "indexing", "(1024, 1024) dim 1, idx (1024, 256)", gather,
               lambda lib, x, i: x.gather(1, i)),
        OpCase("index_select", "indexing", "(65536, 16) dim 0, 65536 idx", rows,
               lambda lib, x, i: x.index_select(0, i)),
        OpCase("getitem_int", "indexing", "x[idx] (65536, 16), 65536 idx", rows,
               lambda lib, x, i: x[i]),
        OpCase("getitem_two", "indexing", "x[i, j] (1024, 1024), 2^18 pairs", two,
               lambda lib, x, i, j: x[i, j]),
        OpCase("embedding", "indexing", "idx (32, 128), weight (52428, 64)", embedding,
               lambda lib, i, w: lib.nn.functional.embedding(i, w)),
    ]  # fmt: skip


def _reduction_cases() -> list[OpCase]:
    def positive(rng: numpy.random.Generator, scale: float) -> list[numpy.ndarray]:
        side = size(1024, scale)
        return [rng.random((side, side)).astype(numpy.float32) + 0.5]

    shape = "(1024, 1024) dim 1"
    return [
        OpCase("sum", "reduction", shape, _square, lambda lib, x: x.sum(1)),
        OpCase("mean", "reduction", shape, _square, lambda lib, x: x.mean(1)),
        OpCase("max", "reduction", shape, _square, lambda lib, x: x.max(1).values, argmax=True),
        OpCase("amax", "reduction", shape, _square, lambda lib, x: lib.amax(x, 1), argmax=True),
        OpCase("var", "reduction", shape, _square, lambda lib, x: x.var(1)),
        OpCase("prod", "reduction", shape, positive, lambda lib, x: x.prod(1)),
        OpCase("cumsum", "reduction", shape, _square, lambda lib, x: x.cumsum(1)),
    ]


def _normalization_cases() -> list[OpCase]:
    def affine(rng: numpy.random.Generator, scale: float) -> list[numpy.ndarray]:
        (x,) = _images(rng, scale)
        channels = x.shape[1]
        return [x, _normal(rng, channels) + 1, _normal(rng, channels)]

    def logits(rng: numpy.random.Generator, scale: float) -> list[numpy.ndarray]:
        rows, classes = size(1024, scale), size(1000, scale)
        return [_normal(rng, rows, classes), rng.integers(0, classes, rows)]

    def pair(rng: numpy.random.Generator, scale: float) -> list[numpy.ndarray]:
        side = size(1024, scale)
        return [_normal(rng, side, side), _normal(rng, side, side)]

    images = "(32, 64, 32, 16)"
    return [
        OpCase("layer_norm", "normalization", "(1024, 1024) over 1024", _square,
               lambda lib, x: lib.nn.functional.layer_norm(x, (x.shape[1],))),
        OpCase("softmax", "normalization", "(1024, 1024) dim 1, times x", _square,
               lambda lib, x: lib.softmax(x, 1) * x),
        OpCase("log_softmax", "normalization", "(1024, 1024) dim 1, times x", _square,
               lambda lib, x: lib.log_softmax(x, 1) * x),
        OpCase("group_norm", "normalization", f"{images}, 8 groups", affine,
               lambda lib, x, w, b: lib.nn.functional.group_norm(x, 8, w, b)),
        OpCase("batch_norm", "normalization", f"{images}, training", affine,
               lambda lib, x, w, b: lib.nn.functional.batch_norm(x, None, None, w, b,
                                                                 training=True)),
        OpCase("cross_entropy", "loss", "logits (1024, 1000), int targets", logits,
               lambda lib, x, t: lib.nn.functional.cross_entropy(x, t)),
        OpCase("mse_loss", "loss", "(1024, 1024) both sides", pair,
               lambda lib, x, y: lib.nn.functional.mse_loss(x, y)),
    ]  # fmt: skip


def _matmul_cases() -> list[OpCase]:
    def square_pair(rng: numpy.random.Generator, scale: float) -> list[numpy.ndarray]:
        side = size(512, scale)
        return [_normal(rng, side, side), _normal(rng, side, side)]

    def batches(rng: numpy.random.Generator, scale: float) -> list[numpy.ndarray]:
        count, side = size(32, scale), size(128, scale)
        return [_normal(rng, count, side, side), _normal(rng, count, side, side)]

    def linear(rng: numpy.random.Generator, scale: float) -> list[numpy.ndarray]:
        rows, features = size(1024, scale), size(512, scale)
        return [_normal(rng, rows, features), _normal(rng, features, features) * 0.05,
                _normal(rng, features)]  # fmt: skip

    return [
        OpCase("matmul", "matmul", "(512, 512) @ (512, 512)", square_pair,
               lambda lib, a, b: a @ b),
        OpCase("bmm", "matmul", "(32, 128, 128) @ (32, 128, 128)", batches,
               lambda lib, a, b: lib.bmm(a, b)),
        OpCase("linear", "matmul", "(1024, 512) -> 512", linear,
               lambda lib, x, w, b: lib.nn.functional.linear(x, w, b)),
    ]  # fmt: skip


def _conv_and_pool_cases() -> list[OpCase]:
    def conv(**kw: Any) -> Callable[..., Any]:
        return lambda lib, x, w, b: lib.nn.functional.conv2d(x, w, b, padding=1, **kw)

    def depthwise(lib: Any, x: Any, w: Any, b: Any) -> Any:
        return lib.nn.functional.conv2d(x, w, b, padding=1, groups=x.shape[1])

    def transposed(lib: Any, x: Any, w: Any, b: Any) -> Any:
        return lib.nn.functional.conv_transpose2d(x, w, b, stride=2, padding=1)

    images = (16, 64, 32, 32)
    return [
        OpCase("max_pool2d", "pooling", "(32, 64, 32, 16) 2x2", _images,
               lambda lib, x: lib.nn.functional.max_pool2d(x, 2), argmax=True),
        OpCase("avg_pool2d", "pooling", "(32, 64, 32, 16) 2x2", _images,
               lambda lib, x: lib.nn.functional.avg_pool2d(x, 2)),
        _conv("conv2d", images, (64, 64, 3, 3), "pad 1", conv()),
        _conv("conv2d_depthwise", images, (64, 1, 3, 3), "groups 64, pad 1", depthwise,
              groups=0),
        _conv("conv2d_groups4", images, (64, 16, 3, 3), "groups 4, pad 1", conv(groups=4),
              groups=4),
        _conv("conv1d", (16, 64, 1024), (64, 64, 5), "pad 2",
              lambda lib, x, w, b: lib.nn.functional.conv1d(x, w, b, padding=2)),
        _conv("conv_transpose2d", (16, 64, 16, 16), (64, 32, 4, 4), "stride 2, pad 1",
              transposed, transposed=True),
    ]  # fmt: skip


def _layer_cases() -> list[OpCase]:
    def cnn_block(lib: Any) -> Any:
        nn = lib.nn
        return nn.Sequential(nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64),
                             nn.ReLU(), nn.MaxPool2d(2))  # fmt: skip

    def mlp_block(lib: Any) -> Any:
        nn = lib.nn
        return nn.Sequential(nn.Linear(512, 2048), nn.GELU(), nn.Linear(2048, 512))

    def transformer(lib: Any) -> Any:
        return lib.nn.TransformerEncoderLayer(256, 8, 1024, 0.0, batch_first=True)

    def module(lib: Any, m: Any, x: Any) -> Any:
        return m(x)

    def first(lib: Any, m: Any, x: Any) -> Any:
        return m(x)[0]

    # CNN and MLP blocks run on the full input size: their layers have fixed widths
    sequence = _layer_input(32, 32, 128, multiples=(1, 1, 128))
    return [
        OpCase("cnn_block", "layer", "conv 32->64 3x3 no bias + BatchNorm2d + ReLU + MaxPool2d, "
               "(16, 32, 32, 32)", _layer_input(16, 32, 32, 32, multiples=(1, 32, 2, 2)),
               module, cnn_block, argmax=True),
        OpCase("mlp_block", "layer", "Linear 512->2048, GELU, Linear 2048->512 on (256, 512)",
               _layer_input(256, 512, multiples=(1, 512)), module, mlp_block),
        OpCase("transformer_layer", "layer",
               "TransformerEncoderLayer(256, 8, 1024), (16, 128, 256)",
               _layer_input(16, 128, 256, multiples=(1, 1, 256)), module, transformer),
        OpCase("lstm", "rnn", "LSTM(128, 256), (32, 32, 128)", sequence, first,
               lambda lib: lib.nn.LSTM(128, 256, batch_first=True)),
        OpCase("lstm_cell_loop", "rnn", "LSTMCell(128, 256), 32 steps, batch 32", sequence,
               _cells, lambda lib: lib.nn.LSTMCell(128, 256)),
        OpCase("gru", "rnn", "GRU(128, 256), (32, 32, 128)", sequence, first,
               lambda lib: lib.nn.GRU(128, 256, batch_first=True)),
        OpCase("rnn", "rnn", "RNN(128, 256) tanh, (32, 32, 128)", sequence, first,
               lambda lib: lib.nn.RNN(128, 256, batch_first=True)),
    ]  # fmt: skip


def _train_cases() -> list[OpCase]:
    """One training step of each `gradflow train` model at the digits' shape (batch 64 of
    1x8x8, 10 classes): forward, cross-entropy, backward, Adam. Dropout is off, so both sides
    compute the same thing; torch's model is gradflow.bench.frameworks' twin."""

    def model(name: str) -> Callable[[Any], Any]:
        def build(lib: Any) -> Any:
            from gradflow import models
            from gradflow.bench.frameworks import torch_twin

            built = models.MODELS[name]()
            for layer in built.modules():
                kind = type(layer).__name__
                if kind == "Dropout":
                    layer.p = 0.0
                elif kind == "MultiheadAttention":
                    layer.dropout = 0.0
            return built if lib is gradflow else torch_twin(built)

        return build

    def batch(rng: numpy.random.Generator, scale: float) -> list[numpy.ndarray]:
        count = size(64, scale)
        return [rng.random((count, 1, 8, 8), dtype=numpy.float32), rng.integers(0, 10, count)]

    def step(lib: Any, net: Any, images: Any, labels: Any) -> Any:
        return lib.nn.functional.cross_entropy(net(images), labels)

    def adam(lib: Any, parameters: Any) -> Any:
        return lib.optim.Adam(parameters, lr=1e-3)

    return [
        OpCase(f"train_{name}", "train", "batch 64 of 1x8x8, cross_entropy, Adam", batch,
               step, model(name), adam, input_grads=False)
        for name in ("mlp", "cnn", "lstm", "gru", "transformer")
    ]  # fmt: skip


def _all_cases() -> list[OpCase]:
    functional = [
        ("gelu", lambda lib, x: lib.nn.functional.gelu(x)),
        ("leaky_relu", lambda lib, x: lib.nn.functional.leaky_relu(x, 0.1)),
        ("elu", lambda lib, x: lib.nn.functional.elu(x)),
        ("softplus", lambda lib, x: lib.nn.functional.softplus(x)),
        ("silu", lambda lib, x: lib.nn.functional.silu(x)),
        ("sigmoid", lambda lib, x: lib.sigmoid(x)),
        ("relu", lambda lib, x: lib.relu(x)),
        ("abs", lambda lib, x: lib.abs(x)),
        ("pow_scalar", lambda lib, x: x**3),
        ("where", lambda lib, x: lib.where(x > 0, x, x * 2)),
    ]
    return [
        *(_pointwise(name, fn) for name, fn in functional),
        *_reduction_cases(),
        *_normalization_cases(),
        *_indexing_cases(),
        *_matmul_cases(),
        *_conv_and_pool_cases(),
        *_layer_cases(),
        *_train_cases(),
    ]


CASES: tuple[OpCase, ...] = tuple(_all_cases())
CASES_BY_NAME: dict[str, OpCase] = {case.name: case for case in CASES}


@dataclass
class Side:
    """One framework's prepared case: the arguments of ``fn`` and what holds gradients."""

    lib: Any
    args: list
    inputs: list
    module: Any = None
    optimizer: Any = None
    grad: Any = None  # the output gradient backward starts from; None: .sum().backward()

    def fn_output(self, fn: Callable[..., Any]) -> Any:
        """``fn``'s output, the gradients of the last step cleared."""
        for tensor in self.inputs:
            tensor.grad = None
        if self.module is not None:
            self.module.zero_grad(set_to_none=True)
        return fn(self.lib, *self.args)

    def step(self, fn: Callable[..., Any]) -> None:
        """One timed step: forward, backward (from ``grad``; a scalar output from 1, and
        ``.sum()`` when ``grad`` is None), the optimizer's step if any."""
        out = self.fn_output(fn)
        if self.grad is not None:
            out.backward(self.grad)
        elif out.ndim == 0:
            out.backward()
        else:
            out.sum().backward()
        if self.optimizer is not None:
            self.optimizer.step()


BACKWARDS = ("dense", "sum")  # where a step's backward starts: see the module docstring


def prepare(case: OpCase, torch: Any, scale: float = 1.0, dtype: str = "float32",
            backward: str = "dense") -> list[Side]:  # fmt: skip
    """gradflow's side, then torch's when torch is given: the same inputs, the same weights,
    the same output gradient (``backward`` "dense", made here from one untimed forward; "sum":
    none, the step sums); `dtype` "float64" casts the float inputs and the module
    (check_case's argmax cases)."""
    if backward not in BACKWARDS:
        raise ValueError(f"backward must be one of {BACKWARDS}, got {backward!r}")
    arrays = case.make(numpy.random.default_rng(0), scale)
    arrays = [a.astype(dtype) if a.dtype.kind == "f" else a for a in arrays]
    sides = []
    for lib in (gradflow, torch) if torch is not None else (gradflow,):
        grads = case.input_grads
        inputs = [lib.tensor(a, requires_grad=grads and a.dtype.kind == "f") for a in arrays]
        module = optimizer = None
        if case.build is not None:
            lib.manual_seed(0)
            module = case.build(lib)
            if lib is not gradflow and (problem := copy_state(sides[0].module, module, torch)):
                raise ValueError(f"{case.name}: {problem}")
            module = module.to(getattr(lib, dtype))
            if case.optimizer is not None:
                optimizer = case.optimizer(lib, module.parameters())
        args = [module, *inputs] if module is not None else inputs
        sides.append(Side(lib, args, inputs, module, optimizer))
    if backward == "dense":
        with gradflow.no_grad():
            out = case.fn(gradflow, *sides[0].args)
        if out.ndim:
            values = numpy.random.default_rng(1).standard_normal(tuple(out.shape))
            values = values.astype(out.numpy().dtype)
            for side in sides:
                side.grad = side.lib.tensor(values)
    return sides


def copy_state(source: Any, target: Any, torch: Any) -> str | None:
    """Copy the gradflow module's parameters and buffers into the torch module, name by name;
    None when done, else why not (the names or shapes differ), leaving the target as it was.
    Used here and by gradflow.bench.model."""
    theirs = target.state_dict()
    ours = source.state_dict()
    if set(ours) != set(theirs):
        differ = sorted(set(ours) ^ set(theirs))
        return "state_dict names differ: " + ", ".join(differ[:4]) + (
            ", ..." if len(differ) > 4 else "")  # fmt: skip
    bad = [k for k in ours if tuple(ours[k].shape) != tuple(theirs[k].shape)]
    if bad:
        return f"shapes differ: {', '.join(bad[:4])}"
    with torch.no_grad():
        for name, value in ours.items():
            theirs[name].copy_(torch.from_numpy(numpy.array(value.numpy())))
    return None


@dataclass(frozen=True)
class CaseTiming:
    """A case's CPU-time medians (seconds) and page faults per step (medians), gradflow's and
    torch's (None without torch). Faults are CPU time too: a side whose heap hands freshly
    mapped pages to every step pays for them in ``seconds``."""

    seconds: float
    torch_seconds: float | None
    faults: float
    torch_faults: float | None


def measure_case(case: OpCase, torch: Any, repeat: int, scale: float = 1.0,
                 backward: str = "dense") -> CaseTiming:  # fmt: skip
    """``repeat`` steps of each side after one warm-up step each, the two sides alternating
    call by call (timing.time_interleaved, the method `gradflow bench --suite ops` uses too):
    CPU time (``time.process_time``) and minor page faults of each step, medians."""
    from gradflow.bench.timing import Side as Timed
    from gradflow.bench.timing import time_interleaved

    sides = prepare(case, torch, scale, backward=backward)
    timed = [Timed(lambda side=side: side.step(case.fn)) for side in sides]
    records = time_interleaved(timed, repeat)
    seconds = [statistics.median(cpus) for _, cpus, _ in records]
    per_step = [statistics.median(faults) for _, _, faults in records]
    if torch is None:
        return CaseTiming(seconds[0], None, per_step[0], None)
    return CaseTiming(seconds[0], seconds[1], per_step[0], per_step[1])


def time_case(case: OpCase, torch: Any, repeat: int, scale: float = 1.0,
              backward: str = "dense") -> tuple[float, Any]:  # fmt: skip
    """CPU-time medians (seconds) of ``repeat`` steps, gradflow's and torch's (None without
    torch), after one warm-up step each; the two sides alternate call by call."""
    timing = measure_case(case, torch, repeat, scale, backward)
    return timing.seconds, timing.torch_seconds


def peak_memory_case(case: OpCase, torch: Any, scale: float = 1.0,
                     backward: str = "dense") -> tuple[int, int | None]:  # fmt: skip
    """Bytes allocated at the peak of one step above what was live before it, gradflow's
    (tracemalloc, ``gradflow.bench.timing.peak_memory``) and torch's (its profiler,
    ``gradflow.bench.frameworks.torch_peak_memory``; None without torch). Each side is fresh:
    its first step, holding no gradients yet, so no block from before is freed inside it (the
    profiler could not size it). Slow; never a timed step."""
    from gradflow.bench.frameworks import torch_peak_memory
    from gradflow.bench.timing import peak_memory

    sides = prepare(case, torch, scale, backward=backward)
    ours = peak_memory(lambda: sides[0].step(case.fn))
    if torch is None:
        return ours, None
    return ours, torch_peak_memory(lambda: sides[1].step(case.fn))


def _relative_error(ours: Any, theirs: Any, floor: float = 1e-12) -> float:
    """max |ours - theirs| over max |theirs| or ``floor``, whichever is larger (1 when the
    shapes differ)."""
    a = numpy.asarray(ours, dtype=numpy.float64)
    b = numpy.asarray(theirs, dtype=numpy.float64)
    if a.shape != b.shape:
        return 1.0
    if a.size == 0:
        return 0.0
    return float(numpy.max(numpy.abs(a - b)) / max(float(numpy.max(numpy.abs(b))), floor))


def check_case(case: OpCase, torch: Any, scale: float = 1.0) -> dict[str, float]:
    """The relative error of gradflow's forward output and of every gradient (inputs
    ``input0``..., the module's parameters by name) against torch's: max |difference| over
    max |torch's|, or over 1% of the case's largest gradient where a gradient is smaller than
    that (a conv bias before batch norm has a zero gradient, up to rounding on both sides).

    The backward starts from one random output gradient, the same on both sides, rather than
    the timed step's ``.sum()``: a sum's gradient through a normalization is zero, and both
    sides would agree on rounding noise only.

    In a case whose gradient is routed by a max (``argmax``: max_pool2d, max, amax,
    cnn_block), two float32 values of a window a rounding apart (e.g. 1.1737912 twice on
    gradflow, 1.1737909 and 1.1737914 on torch) send the gradient to different elements, and
    every gradient upstream differs: by up to 4e-2 of the largest in cnn_block's input
    gradient at full scale, 9e-3 in its conv weight's (a sum over every position). So such a
    case's output is compared in float32 and its gradients in a float64 run of the same
    inputs and weights on both sides, where values a float32 rounding apart stay apart; the
    tolerance stays the same, and every other case is compared in float32 alone.
    """
    ours, theirs = prepare(case, torch, scale, backward="sum")  # its own gradient, below
    outputs = [side.fn_output(case.fn) for side in (ours, theirs)]
    output_error = _relative_error(*(out.detach().numpy() for out in outputs))
    dtype = numpy.float32
    if case.argmax:  # the gradients of a float64 run: no near-tie at float32's rounding
        dtype = numpy.float64
        ours, theirs = prepare(case, torch, scale, "float64", backward="sum")
        outputs = [side.fn_output(case.fn) for side in (ours, theirs)]
    gradient = numpy.random.default_rng(1).standard_normal(tuple(outputs[1].shape))
    for side, out in zip((ours, theirs), outputs, strict=True):
        out.backward(side.lib.tensor(gradient.astype(dtype)))
    pairs = {f"input{i}": (a.grad, b.grad) for i, (a, b) in enumerate(zip(ours.inputs,
             theirs.inputs, strict=True)) if a.requires_grad}  # fmt: skip
    if ours.module is not None:
        their_parameters = dict(theirs.module.named_parameters())
        for name, parameter in ours.module.named_parameters():
            pairs[name] = (parameter.grad, their_parameters[name].grad)
    if any((a is None) != (b is None) for a, b in pairs.values()):
        missing = [name for name, (a, b) in pairs.items() if (a is None) != (b is None)]
        raise AssertionError(f"{case.name}: a gradient on one side only: {missing}")
    pairs = {name: (a.numpy(), b.numpy()) for name, (a, b) in pairs.items() if a is not None}
    largest = max((float(numpy.max(numpy.abs(b), initial=0)) for _, b in pairs.values()),
                  default=0.0)  # fmt: skip
    errors = {"output": output_error}
    for name, (a, b) in pairs.items():
        errors[name] = _relative_error(a, b, max(0.01 * largest, 1e-12))
    return errors

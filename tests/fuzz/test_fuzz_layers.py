"""Fuzz the layers' shape handling: random constructor arguments and input shapes (wrong ranks,
wrong feature sizes, zero-size and size-1 dims, batched and unbatched), dtypes and layouts.
Each call gives the documented output shape and the input's dtype (values checked against
torch where it is importable), or a ValueError/TypeError/IndexError/RuntimeError that names
the layer or its op; a float64 subset is gradchecked with respect to input and parameters.

GRADFLOW_FUZZ_EXAMPLES sets the examples per test (default 30, derandomized):
    GRADFLOW_FUZZ_EXAMPLES=500 python -m pytest tests/fuzz -q
"""

from __future__ import annotations

import math

import numpy
import pytest
from fuzz_support import FUZZ, LAYOUTS, as_numpy, check_error, outcome, with_layout
from hypothesis import given
from hypothesis import strategies as st

import gradflow as gf
from gradflow import nn
from gradflow.testing import gradcheck

try:
    import torch
except ImportError:  # the torch comparisons are skipped; shapes and errors are still checked
    torch = None

FLOAT_DTYPES = (numpy.dtype("float32"), numpy.dtype("float64"))


class Case:
    """One layer call: the layer, its input, the expected output shapes (None: the call must
    fail), whether a named refusal is also fine, and the names an error may use."""

    def __init__(self, layer, x_np, expected, names, may_refuse=False, call=None, twin=None):
        self.layer, self.x_np, self.expected = layer, x_np, expected
        self.names, self.may_refuse = names, may_refuse
        self.call = call or (lambda layer, x: layer(x))
        self.twin = twin  # builds the torch module, or None

    def __repr__(self) -> str:
        mode = "train" if getattr(self.layer, "training", True) else "eval"
        return (
            f"Case({self.layer!r} [{mode}], input {self.x_np.dtype}{self.x_np.shape} "
            f"strides {self.x_np.strides}, expected {self.expected})"
        )


def _input(draw, shape, dtype):
    """Standard normal values of `shape` in a drawn layout."""
    rng = numpy.random.default_rng(draw(st.integers(0, 2**16)))
    values = rng.standard_normal(shape).astype(dtype)
    return with_layout(values, draw(st.sampled_from(LAYOUTS)))


def _run(case: Case) -> None:
    """The call either fails with a named error or gives outputs of the expected shapes and
    dtype (and torch's values where a twin is given)."""
    x = gf.from_numpy(case.x_np)
    before = case.x_np.copy()
    out, error = outcome(case.names, lambda: case.call(case.layer, x))
    numpy.testing.assert_array_equal(case.x_np, before, err_msg="the layer wrote into its input")
    if case.expected is None:
        assert error is not None, f"{case.names[0]}: expected an error, got {_shapes_of(out)}"
        return
    if error is not None:
        assert case.may_refuse, f"{case.names[0]} raised {type(error).__name__}: {error}"
        return
    outs = _flat(out)
    assert [tuple(o.shape) for o in outs] == [tuple(s) for s in case.expected], (
        f"{case.names[0]}: output shapes {_shapes_of(out)}, expected {case.expected}"
    )
    dtype = case.x_np.dtype if case.x_np.dtype.kind == "f" else numpy.dtype("float32")
    for o in outs:
        assert o.dtype == dtype, f"{case.names[0]}: output dtype {o.dtype}, expected {dtype}"
        assert numpy.isfinite(as_numpy(o)).all(), f"{case.names[0]}: non-finite output"
    if torch is not None and case.twin is not None:
        _compare_with_torch(case, outs)


def _flat(out) -> list:
    if isinstance(out, tuple | list):
        return [t for o in out for t in _flat(o)]
    return [out]


def _shapes_of(out):
    return [tuple(o.shape) for o in _flat(out)] if out is not None else None


def _compare_with_torch(case: Case, outs: list) -> None:
    theirs = case.twin()
    if hasattr(case.layer, "state_dict"):
        state = {
            k: torch.from_numpy(numpy.array(as_numpy(v)))
            for k, v in case.layer.state_dict().items()
        }
        theirs.load_state_dict(state)
    theirs.train(case.layer.training)
    x = torch.from_numpy(numpy.array(case.x_np))
    try:
        expected = _flat_torch(case.call(theirs, x))
    except (RuntimeError, ValueError):
        return  # PyTorch refuses what gradflow computes (an empty batch, one value per group)
    tol = 1e-4 if case.x_np.dtype == numpy.float32 else 1e-9
    for ours, ref in zip(outs, expected):
        numpy.testing.assert_allclose(as_numpy(ours), ref.detach().numpy(), rtol=tol, atol=tol)


def _flat_torch(out) -> list:
    if isinstance(out, tuple | list):
        return [t for o in out for t in _flat_torch(o)]
    return [out]


def _gradcheck_layer(layer, x_shape, rng, call=None, view=None) -> None:
    """gradcheck of a float64 layer with respect to its input (through a transposed or
    reversed view when asked) and every parameter."""
    call = call or (lambda layer, x: layer(x))
    x = gf.tensor(rng.standard_normal(x_shape), dtype=gf.float64, requires_grad=True)
    params = [p for p in layer.parameters() if p.requires_grad]

    def fn(x, *params):
        return call(layer, x.flip(-1) if view == "reversed" else x)  # negative strides

    assert gradcheck(fn, [x, *params], full_jacobian=False)


def _out_size(size, k, s, p, d, ceil=False):
    span = size + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil else 0)) // s + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out


def _rank_shape(draw, ranks, sizes):
    """A shape of a rank drawn from `ranks` (the expected ones, and wrong ones) with dims from
    `sizes` (a list of strategies, used right-aligned)."""
    rank = draw(st.sampled_from(ranks))
    small = st.integers(0, 4)
    dims = [draw(sizes[i]) if i < len(sizes) else draw(small) for i in range(rank)]
    return tuple(dims)


# ---- Linear ---------------------------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_linear(data):
    in_f, out_f = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    dtype = data.draw(st.sampled_from(FLOAT_DTYPES))
    layer = nn.Linear(in_f, out_f, bias=data.draw(st.booleans()), dtype=dtype)
    rank = data.draw(st.integers(0, 4))
    shape = tuple(data.draw(st.integers(0, 3)) for _ in range(rank))
    if rank and data.draw(st.integers(0, 3)):
        shape = (*shape[:-1], in_f)
    x_dtype = data.draw(st.sampled_from((*FLOAT_DTYPES, dtype, dtype)))
    x_np = _input(data.draw, shape, x_dtype)
    ok = rank >= 1 and shape[-1] == in_f and x_dtype == dtype
    _run(
        Case(
            layer,
            x_np,
            [(*shape[:-1], out_f)] if ok else None,
            ("Linear",),
            twin=lambda: torch.nn.Linear(
                in_f, out_f, bias=layer.bias is not None, dtype=getattr(torch, str(dtype))
            ),
        )
    )
    if ok and math.prod(shape) and data.draw(st.booleans()):
        layer64 = nn.Linear(in_f, out_f, dtype=gf.float64)
        _gradcheck_layer(layer64, shape, numpy.random.default_rng(0))


# ---- convolutions ---------------------------------------------------------------------------
@st.composite
def _conv_case(draw, kind):
    dims = 1 if kind == "Conv1d" else 2
    groups = draw(st.sampled_from((1, 1, 2)))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    k = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    s = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    d = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    padding = draw(st.sampled_from(("int", "int", "same", "valid")))
    if kind == "ConvTranspose2d":
        padding = "int"
    if padding == "same":
        s = (1,) * dims
    p = tuple(draw(st.integers(0, 2)) for _ in range(dims)) if padding == "int" else padding
    kwargs = dict(stride=s, padding=p, dilation=d, groups=groups, bias=draw(st.booleans()))
    if kind == "ConvTranspose2d":
        op = tuple(draw(st.integers(0, 1)) for _ in range(dims))
        kwargs["output_padding"] = op
    cls = getattr(nn, kind)
    layer = cls(c_in, c_out, k, dtype=dtype, **kwargs)
    batch = st.integers(0, 2)
    channels = st.sampled_from((c_in, c_in, c_in, c_in + 1))
    space = st.integers(0, 6)
    rank = draw(st.sampled_from((dims + 2, dims + 2, dims + 1, dims, dims + 3)))
    lead = [batch, channels] if rank >= dims + 2 else [channels]
    shape = tuple(draw(x) for x in lead) + tuple(draw(space) for _ in range(rank - len(lead)))
    x_np = _input(draw, shape, dtype)
    expected, may_refuse = None, False
    if rank in (dims + 1, dims + 2) and shape[-dims - 1] == c_in:
        spatial = shape[-dims:]
        if kind == "ConvTranspose2d":
            out = tuple(
                (h - 1) * si - 2 * pi + di * (ki - 1) + oi + 1
                for h, si, pi, di, ki, oi in zip(spatial, s, p, d, k, op)
            )
            bad_op = any(oi >= si and oi >= di for oi, si, di in zip(op, s, d))
        else:
            pads = (0,) * dims if p == "valid" else p
            out = spatial if p == "same" else tuple(map(_out_size, spatial, k, s, pads, d))
            bad_op = False
        if min(out) >= 1 and not bad_op:
            expected = [(*shape[: -dims - 1], c_out, *out)]
            may_refuse = 0 in spatial  # PyTorch refuses an empty spatial dim too

    def twin():
        return getattr(torch.nn, kind)(c_in, c_out, k, dtype=getattr(torch, str(dtype)), **kwargs)

    op_name = {"Conv1d": "conv1d", "Conv2d": "conv2d", "ConvTranspose2d": "conv_transpose2d"}
    return Case(layer, x_np, expected, (kind, op_name[kind]), may_refuse, twin=twin)


@FUZZ
@given(case=st.sampled_from(("Conv1d", "Conv2d", "ConvTranspose2d")).flatmap(_conv_case))
def test_convolutions(case):
    _run(case)


@FUZZ
@given(kind=st.sampled_from(("Conv1d", "Conv2d", "ConvTranspose2d")), seed=st.integers(0, 99))
def test_convolution_gradients(kind, seed):
    rng = numpy.random.default_rng(seed)
    dims = 1 if kind == "Conv1d" else 2
    groups = int(rng.integers(1, 3))
    extra = {"output_padding": 1} if kind == "ConvTranspose2d" else {}
    layer = getattr(nn, kind)(
        2 * groups, groups, 2, stride=2, padding=1, groups=groups, dtype=gf.float64, **extra
    )
    shape = (int(rng.integers(1, 3)), 2 * groups) + (3,) * dims
    _gradcheck_layer(layer, shape, rng, view="reversed")


# ---- pooling --------------------------------------------------------------------------------
@st.composite
def _pool_case(draw, kind):
    k = tuple(draw(st.integers(1, 3)) for _ in range(2))
    s = tuple(draw(st.integers(1, 3)) for _ in range(2))
    p = tuple(draw(st.integers(0, 2)) for _ in range(2))
    d = tuple(draw(st.integers(1, 2)) for _ in range(2))
    ceil = draw(st.booleans())
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    rank = draw(st.sampled_from((4, 4, 3, 2, 5)))
    shape = tuple(draw(st.integers(0, 2 if i < rank - 2 else 6)) for i in range(rank))
    x_np = _input(draw, shape, dtype)
    expected, may_refuse = None, False
    if kind == "AdaptiveAvgPool2d":
        size = tuple(draw(st.one_of(st.none(), st.integers(1, 3))) for _ in range(2))
        layer = nn.AdaptiveAvgPool2d(size)
        if rank in (3, 4) and min(shape[-2:]) > 0:
            out = tuple(h if o is None else o for o, h in zip(size, shape[-2:]))
            expected = [(*shape[:-2], *out)]
            may_refuse = shape[-3] == 0  # PyTorch refuses zero channels
        twin = lambda: torch.nn.AdaptiveAvgPool2d(size)  # noqa: E731
        return Case(layer, x_np, expected, (kind, "adaptive_avg_pool2d"), may_refuse, twin=twin)
    if kind == "MaxPool2d":
        layer = nn.MaxPool2d(k, s, p, d, ceil_mode=ceil)
        twin = lambda: torch.nn.MaxPool2d(k, s, p, d, ceil_mode=ceil)  # noqa: E731
    else:
        d = (1, 1)
        layer = nn.AvgPool2d(k, s, p, ceil_mode=ceil)
        twin = lambda: torch.nn.AvgPool2d(k, s, p, ceil_mode=ceil)  # noqa: E731
    if rank in (3, 4) and all(pi <= ki // 2 for pi, ki in zip(p, k)):
        out = tuple(map(_out_size, shape[-2:], k, s, p, d, (ceil, ceil)))
        if min(out) >= 1:
            expected = [(*shape[:-2], *out)]
            may_refuse = 0 in shape[-3:]  # PyTorch refuses empty channels or planes
    op = "max_pool2d" if kind == "MaxPool2d" else "avg_pool2d"
    return Case(layer, x_np, expected, (kind, op), may_refuse, twin=twin)


@FUZZ
@given(case=st.sampled_from(("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d")).flatmap(_pool_case))
def test_pooling(case):
    _run(case)


@FUZZ
@given(
    kind=st.sampled_from(("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d")), seed=st.integers(0, 99)
)
def test_pooling_gradients(kind, seed):
    rng = numpy.random.default_rng(seed)
    layer = {
        "MaxPool2d": lambda: nn.MaxPool2d(2, 1, 1, ceil_mode=True),
        "AvgPool2d": lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True),
        "AdaptiveAvgPool2d": lambda: nn.AdaptiveAvgPool2d((2, 3)),
    }[kind]()
    _gradcheck_layer(layer, (int(rng.integers(1, 3)), 2, 4, 5), rng, view="reversed")


# ---- normalization --------------------------------------------------------------------------
@st.composite
def _norm_case(draw, kind):
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    c = draw(st.integers(1, 4))
    training = draw(st.booleans())
    if kind in ("BatchNorm1d", "BatchNorm2d"):
        layer = getattr(nn, kind)(c, dtype=dtype, track_running_stats=draw(st.booleans()))
        ranks = (2, 3, 3, 1, 4) if kind == "BatchNorm1d" else (4, 4, 3, 5)
        shape = _rank_shape(draw, ranks, [st.integers(0, 3), st.sampled_from((c, c, c + 1))])
        good_rank = len(shape) in ((2, 3) if kind == "BatchNorm1d" else (4,))
        ok = good_rank and shape[1] == c
        per_channel = math.prod(shape) // c if ok else 0
        if training or not layer.track_running_stats:
            ok = ok and per_channel > 1  # batch statistics need two values per channel
        twin = lambda: getattr(torch.nn, kind)(  # noqa: E731
            c, dtype=getattr(torch, str(dtype)), track_running_stats=layer.track_running_stats
        )
        names = (kind, "batch_norm")
    elif kind == "LayerNorm":
        normalized = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(1, 2))))
        layer = nn.LayerNorm(normalized, dtype=dtype)
        rank = draw(st.integers(0, 4))
        shape = tuple(draw(st.integers(0, 3)) for _ in range(rank))
        if draw(st.integers(0, 3)) and rank >= len(normalized):
            shape = shape[: rank - len(normalized)] + normalized
        ok = rank >= len(normalized) and shape[rank - len(normalized) :] == normalized
        twin = lambda: torch.nn.LayerNorm(normalized, dtype=getattr(torch, str(dtype)))  # noqa: E731
        names = (kind, "layer_norm")
    else:
        groups = draw(st.integers(1, 2))
        c = groups * draw(st.integers(1, 2))
        layer = nn.GroupNorm(groups, c, dtype=dtype)
        shape = _rank_shape(draw, (2, 3, 4, 1), [st.integers(0, 2), st.sampled_from((c, c, c + 1))])
        ok = len(shape) >= 2 and shape[1] == c
        twin = lambda: torch.nn.GroupNorm(groups, c, dtype=getattr(torch, str(dtype)))  # noqa: E731
        names = (kind, "group_norm")
    layer.train(training)
    x_np = _input(draw, shape, dtype)
    return Case(layer, x_np, [shape] if ok else None, names, twin=twin)


@FUZZ
@given(
    case=st.sampled_from(("BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm")).flatmap(
        _norm_case
    )
)
def test_normalization(case):
    _run(case)


@FUZZ
@given(
    kind=st.sampled_from(("BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm")),
    training=st.booleans(),
    seed=st.integers(0, 99),
)
def test_normalization_gradients(kind, training, seed):
    rng = numpy.random.default_rng(seed)
    layer, shape = {
        "BatchNorm1d": lambda: (nn.BatchNorm1d(3, dtype=gf.float64), (4, 3, 2)),
        "BatchNorm2d": lambda: (nn.BatchNorm2d(2, dtype=gf.float64), (2, 2, 2, 3)),
        "LayerNorm": lambda: (nn.LayerNorm((2, 3), dtype=gf.float64), (2, 2, 3)),
        "GroupNorm": lambda: (nn.GroupNorm(2, 4, dtype=gf.float64), (2, 4, 3)),
    }[kind]()
    layer.train(training)
    _gradcheck_layer(layer, shape, rng, view="reversed")


# ---- Embedding ------------------------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_embedding(data):
    num, dim = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 3))
    padding = data.draw(st.one_of(st.none(), st.integers(-num, num - 1)))
    layer = nn.Embedding(num, dim, padding_idx=padding)
    shape = tuple(data.draw(st.integers(0, 3)) for _ in range(data.draw(st.integers(0, 3))))
    kind = data.draw(st.sampled_from(("int64", "int64", "int32", "float32", "bool")))
    rng = numpy.random.default_rng(data.draw(st.integers(0, 2**16)))
    high = num if data.draw(st.integers(0, 3)) else num + 1
    values = rng.integers(0 if data.draw(st.integers(0, 3)) else -1, high, size=shape)
    x_np = with_layout(values.astype(kind), data.draw(st.sampled_from(LAYOUTS)))
    in_range = values.size == 0 or (values.min() >= 0 and values.max() < num)
    ok = kind in ("int64", "int32") and in_range
    case = Case(layer, x_np, [(*shape, dim)] if ok else None, ("Embedding", "embedding"))
    _run_embedding(case)
    if ok and values.size and data.draw(st.booleans()):
        layer64 = nn.Embedding(num, dim, dtype=gf.float64)  # padding_idx's row gets no grad
        indices = gf.tensor(values)
        assert gradcheck(lambda w: layer64(indices) * 1.0, [layer64.weight], full_jacobian=False)


def _run_embedding(case):
    x = gf.from_numpy(case.x_np)
    out, error = outcome(case.names, lambda: case.layer(x))
    if case.expected is None:
        assert error is not None, f"Embedding: expected an error, got {_shapes_of(out)}"
        return
    assert error is None, f"Embedding raised {type(error).__name__}: {error}"
    assert out.shape == case.expected[0] and out.dtype == gf.float32
    weight = as_numpy(case.layer.weight)
    numpy.testing.assert_array_equal(as_numpy(out), weight[case.x_np])


# ---- recurrent layers -----------------------------------------------------------------------
@st.composite
def _rnn_case(draw, kind):
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    size, hidden = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    layers, bidirectional = draw(st.integers(1, 2)), draw(st.booleans())
    batch_first = draw(st.booleans())
    layer = getattr(nn, kind)(
        size,
        hidden,
        num_layers=layers,
        batch_first=batch_first,
        bidirectional=bidirectional,
        dtype=dtype,
    )
    rank = draw(st.sampled_from((3, 3, 2, 1, 4)))
    dims = [draw(st.integers(0, 3)) for _ in range(rank)]
    if rank and draw(st.integers(0, 4)):
        dims[-1] = size
    shape = tuple(dims)
    x_np = _input(draw, shape, dtype)
    directions = 2 if bidirectional else 1
    expected, may_refuse = None, False
    if rank in (2, 3) and shape[-1] == size:
        batched = rank == 3
        steps = shape[1] if batched and batch_first else shape[0]
        batch = (shape[0] if batch_first else shape[1]) if batched else None
        if steps > 0:
            out = (*shape[:-1], directions * hidden)
            state = (
                (layers * directions, batch, hidden) if batched else (layers * directions, hidden)
            )
            expected = [out, state, state] if kind == "LSTM" else [out, state]
            may_refuse = batched and batch == 0
    twin = lambda: getattr(torch.nn, kind)(  # noqa: E731
        size,
        hidden,
        num_layers=layers,
        batch_first=batch_first,
        bidirectional=bidirectional,
        dtype=getattr(torch, str(dtype)),
    )
    return Case(layer, x_np, expected, (kind, "rnn_layer"), may_refuse, twin=twin)


@FUZZ
@given(case=st.sampled_from(("RNN", "LSTM", "GRU")).flatmap(_rnn_case))
def test_recurrent(case):
    _run(case)


@FUZZ
@given(kind=st.sampled_from(("RNN", "LSTM", "GRU")), data=st.data())
def test_recurrent_state_and_lengths(kind, data):
    """h_0 (and c_0) and lengths of right and wrong shapes, for batched and unbatched input."""
    layers, bidirectional = data.draw(st.integers(1, 2)), data.draw(st.booleans())
    layer = getattr(nn, kind)(2, 3, num_layers=layers, bidirectional=bidirectional)
    batched = data.draw(st.booleans())
    steps, batch = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    x = gf.randn(*((steps, batch, 2) if batched else (steps, 2)))
    states = layers * (2 if bidirectional else 1)
    good = (states, batch, 3) if batched else (states, 3)
    h_shape = (
        good
        if data.draw(st.integers(0, 3))
        else tuple(data.draw(st.integers(1, 4)) for _ in range(data.draw(st.integers(1, 3))))
    )
    hx = gf.zeros(*h_shape)
    if kind == "LSTM":
        hx = (hx, gf.zeros(*good))
    lengths = None
    if batched and data.draw(st.booleans()):
        lengths = data.draw(
            st.lists(st.integers(0, steps + 1), min_size=batch - 1, max_size=batch + 1)
        )
    ok = h_shape == good and (
        lengths is None or (len(lengths) == batch and all(1 <= n <= steps for n in lengths))
    )
    out, error = outcome((kind, "rnn_layer"), lambda: layer(x, hx, lengths=lengths))
    if not ok:
        assert error is not None, f"{kind}: expected an error for h_0 {h_shape}, lengths {lengths}"
        return
    assert error is None, f"{kind} raised {type(error).__name__}: {error}"
    assert out[0].shape == (*x.shape[:-1], 3 * (2 if bidirectional else 1))


@FUZZ
@given(kind=st.sampled_from(("RNN", "LSTM", "GRU")), seed=st.integers(0, 99))
def test_recurrent_gradients(kind, seed):
    rng = numpy.random.default_rng(seed)
    layer = getattr(nn, kind)(
        2, 2, num_layers=2, bidirectional=True, batch_first=True, dtype=gf.float64
    )
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)), 2)
    _gradcheck_layer(layer, shape, rng, call=lambda layer, x: layer(x)[0], view="reversed")


# ---- Flatten and Unflatten ------------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_flatten_unflatten(data):
    shape = tuple(data.draw(st.integers(0, 3)) for _ in range(data.draw(st.integers(0, 4))))
    x_np = _input(data.draw, shape, numpy.dtype("float32"))
    ndim = len(shape)
    if data.draw(st.booleans()):
        start, end = data.draw(st.integers(-5, 4)), data.draw(st.integers(-5, 4))
        layer = nn.Flatten(start, end)
        n = max(ndim, 1)
        expected = None
        if ndim == 0 and -1 <= start <= 0 and -1 <= end <= 0:
            expected = [(1,)]
        elif -n <= start < n and -n <= end < n and start % n <= end % n and ndim:
            s, e = start % n, end % n
            expected = [(*shape[:s], math.prod(shape[s : e + 1]), *shape[e + 1 :])]
        _run(
            Case(
                layer,
                x_np,
                expected,
                ("Flatten", "flatten"),
                twin=lambda: torch.nn.Flatten(start, end),
            )
        )
        return
    dim = data.draw(st.integers(-5, 4))
    sizes = tuple(data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=3)))
    layer = nn.Unflatten(dim, sizes)
    n = max(ndim, 1)
    expected = None
    if ndim and -n <= dim < n and math.prod(sizes) == shape[dim % n]:
        d = dim % n
        expected = [(*shape[:d], *sizes, *shape[d + 1 :])]
    elif not ndim and -1 <= dim <= 0 and math.prod(sizes) == 1:
        expected = [sizes]  # gradflow's 0-d tensor has a dim 0 of size 1 (as in flatten)
    _run(Case(layer, x_np, expected, ("Unflatten", "reshape"), may_refuse=0 in sizes))


# ---- explicit cases: bugs found here in files this suite doesn't own, fixed there -------------
def test_batch_norm_eval_on_an_empty_batch():
    _gives_or_refuses(("BatchNorm1d", "batch_norm"), lambda: nn.BatchNorm1d(2).eval(), (0, 2))


def test_group_norm_on_an_empty_batch():
    _gives_or_refuses(("GroupNorm", "group_norm"), lambda: nn.GroupNorm(1, 2), (0, 2, 3))


def test_group_norm_with_an_empty_spatial_dim():
    _gives_or_refuses(("GroupNorm", "group_norm"), lambda: nn.GroupNorm(1, 2), (2, 2, 0))


def test_layer_norm_over_an_empty_normalized_shape():
    _gives_or_refuses(("LayerNorm", "layer_norm"), lambda: nn.LayerNorm(0), (2, 0))


def test_unflatten_checks_the_split_of_an_empty_tensor():
    _, error = outcome(("Unflatten",), lambda: nn.Unflatten(0, (0,))(gf.zeros(1, 0)))
    assert error is not None


def test_max_pool_of_an_empty_plane():
    out, error = outcome(
        ("MaxPool2d", "max_pool2d"), lambda: nn.MaxPool2d((1, 2), 1, (0, 1))(gf.zeros(1, 1, 0))
    )
    assert error is not None or numpy.isfinite(as_numpy(out)).all()


@pytest.mark.parametrize("shape", [(0, 1, 1, 1), (2, 0, 2, 2), (0, 1, 1)])
def test_max_pool_of_an_empty_batch_or_no_channels(shape):
    _gives_or_refuses(("MaxPool2d", "max_pool2d"), lambda: nn.MaxPool2d(1), shape)


def test_conv_transpose_of_an_empty_plane():
    layer = nn.ConvTranspose2d(1, 1, (1, 2), stride=(1, 2), dilation=(1, 2), output_padding=(0, 1))
    _, error = outcome(("ConvTranspose2d", "conv_transpose2d"), lambda: layer(gf.zeros(1, 1, 0)))
    assert error is not None


def _gives_or_refuses(names, make_layer, shape):
    """The layer maps a zeros input of `shape` to an output of the same shape, or refuses it
    with an error that names it (either fix closes the bug)."""
    out, error = outcome(names, lambda: make_layer()(gf.zeros(*shape)))
    assert error is not None or out.shape == shape


# ---- explicit cases ---------------------------------------------------------------------------
def test_linear_rejects_a_0d_input_by_name():
    with pytest.raises(ValueError, match=r"Linear\(in_features=2\)"):
        nn.Linear(2, 3)(gf.tensor(1.0))


def test_an_allowed_error_must_name_the_layer():
    with pytest.raises(AssertionError, match="doesn't name"):
        check_error(ValueError("shapes don't fit"), ("Conv2d", "conv2d"))

"""Fuzz the op library: random shapes (0-d, zero-size and size-1 broadcast dims), dtypes,
layouts (negative strides, Fortran order, strided, read-only) and values (inf, nan, the
largest finite, subnormals). Every op either matches its NumPy reference (shape, dtype, values
with NaNs in the same places) or raises a ValueError/TypeError/IndexError/RuntimeError that
names the op; a float64 subset is gradchecked through non-contiguous views.

GRADFLOW_FUZZ_EXAMPLES sets the examples per test (default 30, derandomized):
    GRADFLOW_FUZZ_EXAMPLES=500 python -m pytest tests/fuzz -q
"""

from __future__ import annotations

import itertools
import math

import numpy
import pytest
from fuzz_support import (
    ALL_DTYPES,
    FLOATS,
    FUZZ,
    INTS,
    VIEWS,
    apply_view,
    arrays,
    as_numpy,
    assert_matches,
    check_gradients,
    elements,
    grad_leaf,
    outcome,
    reference,
    shapes,
    tensors,
)
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradflow as gf
import gradflow.nn.functional as F

DEFAULT_FLOAT = numpy.dtype("float32")
SUPPORTED = {
    numpy.dtype(d)
    for d in ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")
}


def _result(names, fn):
    """fn()'s Tensor (its dtype one gradflow supports), or None after a checked error."""
    out, error = outcome(names, fn)
    for t in out if isinstance(out, tuple) else (out,):
        if isinstance(t, gf.Tensor):
            assert t.dtype in SUPPORTED, f"{names[0]} made a {t.dtype} tensor"
    return out if error is None else None


def _expect(names, fn, expected, dtype=None, may_refuse=False, **tol):
    """fn() matches `expected`; where the reference is None, fn must raise a named error (and
    may, with `may_refuse`, where gradflow checks more than NumPy)."""
    out, error = outcome(names, fn)
    if expected is None:
        assert error is not None, f"{names[0]}: NumPy refuses these inputs but gradflow gave {out}"
        return None
    if error is not None and may_refuse:
        return None
    assert error is None, f"{names[0]} raised {type(error).__name__}: {error}"
    assert_matches(out, expected, dtype, **tol)
    return out


def _unchanged(array, before):
    numpy.testing.assert_array_equal(array, before, err_msg="an op wrote into its input")


# ---- operands -------------------------------------------------------------------------------
@st.composite
def operand(draw, shape, dtypes=ALL_DTYPES, scalars=True):
    """(what the op gets, what NumPy gets): a Tensor, a Python scalar or a NumPy scalar."""
    kind = draw(st.sampled_from(("tensor", "tensor", "tensor", "python", "numpy")))
    if kind == "tensor" or not scalars:
        return draw(tensors(dtypes=dtypes, shape=shape))
    dtype = draw(
        st.sampled_from((numpy.dtype("float64"), numpy.dtype("int64"), numpy.dtype("bool")))
    )
    value = draw(elements(dtype))
    if kind == "numpy":
        value = dtype.type(value)
        return value, value
    return value, (bool(value) if dtype.kind == "b" else type(value)(value))


def _promoted(values, true_division=False, mix_floats=True):
    """NumPy operands under gradflow's rules: an integer/bool tensor takes the float dtype of
    a float tensor on the other side, or the default float for a Python float (or true
    division); NumPy scalars act as Python scalars; two float dtypes meet at the wider one,
    unless one side is 0-d and the other is not (then the dimensioned side's), as PyTorch;
    without `mix_floats` (matmul and other non-elementwise ops) two float dtypes are refused
    (None)."""
    values = [v.item() if isinstance(v, numpy.generic) else v for v in values]
    arrays_ = [v for v in values if isinstance(v, numpy.ndarray)]
    floats = [a for a in arrays_ if a.dtype.kind == "f"]
    if len({a.dtype for a in floats}) > 1 and not mix_floats:
        return None
    if len({a.dtype for a in floats}) > 1:
        dimensioned = [a for a in floats if a.ndim > 0]
        pool = dimensioned if len(dimensioned) == 1 else floats
        wide = max((a.dtype for a in pool), key=lambda d: d.itemsize)
        values = [v.astype(wide) if isinstance(v, numpy.ndarray) else v for v in values]
        arrays_ = [v for v in values if isinstance(v, numpy.ndarray)]
        floats = [a for a in arrays_ if a.dtype.kind == "f"]
    target = floats[0].dtype if floats else None
    if target is None and (true_division or any(type(v) is float for v in values)):
        target = DEFAULT_FLOAT
    if target is not None:
        values = [
            v.astype(target) if isinstance(v, numpy.ndarray) and v.dtype.kind in "iub" else v
            for v in values
        ]
    return values


def _pair_shapes():
    broadcastable = hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=3
    ).map(lambda s: s.input_shapes)
    independent = st.tuples(shapes(max_dims=3, max_side=3), shapes(max_dims=3, max_side=3))
    return st.one_of(broadcastable, broadcastable, independent)


# ---- arithmetic -----------------------------------------------------------------------------
BINARY = {
    "add": (gf.add, numpy.add),
    "sub": (gf.sub, numpy.subtract),
    "mul": (gf.mul, numpy.multiply),
    "div": (gf.div, numpy.true_divide),
    "pow": (gf.pow, numpy.power),
    "maximum": (gf.maximum, numpy.maximum),
    "minimum": (gf.minimum, numpy.minimum),
}


@FUZZ
@given(name=st.sampled_from(sorted(BINARY)), pair=_pair_shapes(), data=st.data())
def test_binary_arithmetic(name, pair, data):
    op, ref = BINARY[name]
    (a, a_np), (b, b_np) = data.draw(operand(pair[0])), data.draw(operand(pair[1]))
    if not (isinstance(a, gf.Tensor) or isinstance(b, gf.Tensor)):
        a, a_np = data.draw(tensors(shape=pair[0]))
    before = [x.copy() for x in (a_np, b_np) if isinstance(x, numpy.ndarray)]
    promoted = _promoted([a_np, b_np], true_division=name == "div")
    expected = None if promoted is None else reference(lambda: ref(*promoted))
    dtype = None if expected is None else numpy.result_type(expected)
    _expect((name,), lambda: op(a, b), expected, dtype)
    for x, copy in zip([x for x in (a_np, b_np) if isinstance(x, numpy.ndarray)], before):
        _unchanged(x, copy)


@FUZZ
@given(
    name=st.sampled_from(sorted(BINARY)),
    pair=hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=3
    ),
    views=st.tuples(st.sampled_from(VIEWS), st.sampled_from(VIEWS)),
    scalar=st.sampled_from((None, "left", "right")),
    seed=st.integers(0, 2**16),
)
def test_binary_arithmetic_gradients(name, pair, views, scalar, seed):
    op, _ = BINARY[name]
    rng = numpy.random.default_rng(seed)
    positive = name in ("pow", "div")
    a, b = (grad_leaf(rng, s, v, positive) for s, v in zip(pair.input_shapes, views))
    if scalar == "left":
        check_gradients(lambda y: op(1.5, y), [b], [views[1]])
    elif scalar == "right":
        check_gradients(lambda x: op(x, 1.5), [a], [views[0]])
    else:
        check_gradients(op, [a, b], list(views))


COMPARISONS = {
    "eq": (gf.eq, numpy.equal),
    "ne": (gf.ne, numpy.not_equal),
    "lt": (gf.lt, numpy.less),
    "le": (gf.le, numpy.less_equal),
    "gt": (gf.gt, numpy.greater),
    "ge": (gf.ge, numpy.greater_equal),
    "logical_and": (gf.logical_and, numpy.logical_and),
    "logical_or": (gf.logical_or, numpy.logical_or),
}


@FUZZ
@given(name=st.sampled_from(sorted(COMPARISONS)), pair=_pair_shapes(), data=st.data())
def test_comparisons(name, pair, data):
    op, ref = COMPARISONS[name]
    (a, a_np), (b, b_np) = data.draw(tensors(shape=pair[0])), data.draw(operand(pair[1]))
    if isinstance(b_np, numpy.generic):
        b_np = b_np.item()
    expected = reference(lambda: ref(a_np, b_np))
    _expect((name,), lambda: op(a, b), expected, numpy.bool_)


@FUZZ
@given(
    name=st.sampled_from(("isfinite", "isnan", "logical_not")),
    pair=st.tuples(tensors()),
)
def test_predicates(name, pair):
    ((x, x_np),) = pair
    expected = getattr(numpy, name)(x_np)
    _expect((name,), lambda: getattr(gf, name)(x), expected, numpy.bool_)


@FUZZ
@given(
    shapes3=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3),
    data=st.data(),
)
def test_where(shapes3, data):
    cond_shape, a_shape, b_shape = shapes3.input_shapes
    if data.draw(st.booleans()):  # sometimes shapes that need not broadcast
        b_shape = data.draw(shapes(max_dims=3, max_side=3))
    cond, cond_np = data.draw(tensors(dtypes=(numpy.dtype("bool"),), shape=cond_shape))
    (a, a_np), (b, b_np) = data.draw(operand(a_shape)), data.draw(operand(b_shape))
    promoted = _promoted([a_np, b_np])
    expected = None if promoted is None else reference(lambda: numpy.where(cond_np, *promoted))
    two_numbers = promoted is not None and not any(isinstance(v, numpy.ndarray) for v in promoted)
    if two_numbers and expected is not None and expected.dtype.kind == "f":
        expected = expected.astype(DEFAULT_FLOAT)  # as PyTorch: the default float
    dtype = None if expected is None else numpy.result_type(expected)
    _expect(("where",), lambda: gf.where(cond, a, b), expected, dtype)


@FUZZ
@given(
    pair=st.tuples(tensors()),
    low=st.one_of(st.none(), elements(numpy.dtype("float64")), st.integers(-3, 3)),
    high=st.one_of(st.none(), elements(numpy.dtype("float64")), st.integers(-3, 3)),
)
def test_clip(pair, low, high):
    ((x, x_np),) = pair
    expected = None
    if low is not None or high is not None:
        promoted = _promoted([x_np, *(v for v in (low, high) if v is not None)])
        expected = reference(lambda: numpy.clip(promoted[0], low, high))
        if expected is not None and x_np.dtype.kind == "b":
            expected = None if numpy.result_type(expected).kind == "b" else expected
    dtype = None if expected is None else numpy.result_type(expected)
    _expect(("clip", "clamp"), lambda: gf.clamp(x, low, high), expected, dtype)


# ---- unary math and activations ---------------------------------------------------------------
def _erf(x):
    return numpy.vectorize(math.erf, otypes=[numpy.float64])(x)


def _sigmoid(x):
    return 1 / (1 + numpy.exp(-x))


UNARY = {  # name: (gradflow, reference in float64, NumPy counterpart computed in x's dtype)
    "exp": (gf.exp, None, numpy.exp),
    "log": (gf.log, None, numpy.log),
    "log1p": (gf.log1p, None, numpy.log1p),
    "expm1": (gf.expm1, None, numpy.expm1),
    "sqrt": (gf.sqrt, None, numpy.sqrt),
    "rsqrt": (gf.rsqrt, lambda x: 1 / numpy.sqrt(x), None),
    "sin": (gf.sin, None, numpy.sin),
    "cos": (gf.cos, None, numpy.cos),
    "tanh": (gf.tanh, None, numpy.tanh),
    "sigmoid": (gf.sigmoid, _sigmoid, None),
    "relu": (gf.relu, lambda x: numpy.maximum(x, 0), None),
    "leaky_relu": (
        lambda x: gf.leaky_relu(x, 0.2),
        lambda x: numpy.where(x > 0, x, 0.2 * x),
        None,
    ),
    "elu": (
        lambda x: gf.elu(x, 1.5),
        lambda x: numpy.where(x > 0, x, 1.5 * numpy.expm1(numpy.minimum(x, 0))),
        None,
    ),
    "gelu": (gf.gelu, lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))), None),
    "gelu_tanh": (
        lambda x: gf.gelu(x, approximate="tanh"),
        lambda x: 0.5 * x * (1 + numpy.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
        None,
    ),
    "silu": (gf.silu, lambda x: x * _sigmoid(x), None),
    "softplus": (
        lambda x: gf.softplus(x, beta=2.0, threshold=10.0),
        lambda x: numpy.where(2 * x > 10, x, numpy.logaddexp(0, 2 * x) / 2),
        None,
    ),
}
INTEGER_KEEPING = {  # name: (gradflow, NumPy) for ops that keep integer dtypes
    "abs": (gf.abs, numpy.abs),
    "neg": (gf.neg, numpy.negative),
    "sign": (gf.sign, numpy.sign),
}


@FUZZ
@given(name=st.sampled_from(sorted(UNARY) + sorted(INTEGER_KEEPING)), pair=st.tuples(tensors()))
def test_unary(name, pair):
    ((x, x_np),) = pair
    before = x_np.copy()
    if name in INTEGER_KEEPING:
        op, ref = INTEGER_KEEPING[name]
        if name == "sign" and x_np.dtype.kind == "b":
            expected = x_np  # PyTorch's sign of a bool tensor is itself
        else:
            expected = reference(lambda: ref(x_np))
        _expect((name,), lambda: op(x), expected)
    else:
        op, ref64, ref_same = UNARY[name]
        dtype = x_np.dtype if x_np.dtype.kind == "f" else DEFAULT_FLOAT  # ints become floats
        xf = x_np.astype(dtype)
        with numpy.errstate(all="ignore"):
            expected = ref_same(xf) if ref_same else ref64(xf.astype(numpy.float64))
        tol = {"rtol": 1e-2, "atol": 1e-3} if dtype == numpy.float16 else {}
        _expect((name,), lambda: op(x), numpy.asarray(expected).astype(dtype), dtype, **tol)
    _unchanged(x_np, before)


POSITIVE_DOMAIN = ("log", "log1p", "sqrt", "rsqrt")  # gradchecked on |x| + 0.5


@FUZZ
@given(
    name=st.sampled_from(sorted(UNARY) + ["abs", "neg"]),
    shape=shapes(max_dims=3, max_side=4),
    view=st.sampled_from(VIEWS),
    seed=st.integers(0, 2**16),
)
def test_unary_gradients(name, shape, view, seed):
    op = UNARY[name][0] if name in UNARY else INTEGER_KEEPING[name][0]
    x = grad_leaf(numpy.random.default_rng(seed), shape, view, name in POSITIVE_DOMAIN)
    check_gradients(op, [x], [view])


# ---- reductions -----------------------------------------------------------------------------
def _axes(dim, ndim):
    """PyTorch's reading of dim (None, an int or a tuple; 0-d tensors take 0 and -1) as NumPy
    axes; raises where PyTorch would."""
    if dim is None:
        return None
    n = max(ndim, 1)
    items = dim if isinstance(dim, tuple) else (dim,)
    if any(not -n <= d < n for d in items):
        raise IndexError("dim out of range")
    axes = tuple(sorted(d % n for d in items))
    if len(set(axes)) != len(axes):
        raise ValueError("dim repeated")
    return None if ndim == 0 else axes


def _logsumexp(x, axis, keepdims):
    x = x.astype(numpy.float64)
    m = numpy.max(x, axis=axis, keepdims=True, initial=-numpy.inf)
    m = numpy.where(numpy.isfinite(m), m, 0)
    out = numpy.log(numpy.sum(numpy.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else (out.reshape(()) if axis is None else out.squeeze(axis))


def _integer_sum(fn):
    """NumPy's sum/prod/cumsum, but integer and bool inputs accumulate in int64 (PyTorch's
    rule; NumPy's uint64 for uint8 is no gradflow dtype)."""
    return lambda x, **kw: fn(x, dtype="int64" if x.dtype.kind in "biu" else None, **kw)


REDUCTIONS = {  # name: (gradflow, NumPy, takes a tuple of dims, float inputs only)
    "sum": (gf.sum, _integer_sum(numpy.sum), True, False),
    "mean": (gf.mean, numpy.mean, True, False),
    "var": (gf.var, lambda x, **kw: numpy.var(x, ddof=1, **kw), True, True),
    "std": (gf.std, lambda x, **kw: numpy.std(x, ddof=1, **kw), True, True),
    "amax": (gf.amax, numpy.amax, True, False),
    "amin": (gf.amin, numpy.amin, True, False),
    "logsumexp": (gf.logsumexp, _logsumexp, True, True),
    "prod": (gf.prod, _integer_sum(numpy.prod), True, False),
    "any": (gf.any, numpy.any, True, False),
    "all": (gf.all, numpy.all, True, False),
    "argmax": (gf.argmax, numpy.argmax, False, False),
    "argmin": (gf.argmin, numpy.argmin, False, False),
}


def _dims(ndim: int, tuples: bool):
    one = st.integers(-ndim - 2, ndim + 1)
    options = [st.none(), one]
    if tuples:
        options.append(st.lists(one, min_size=0, max_size=3).map(tuple))
    return st.one_of(*options)


@FUZZ
@given(name=st.sampled_from(sorted(REDUCTIONS)), pair=st.tuples(tensors()), data=st.data())
def test_reductions(name, pair, data):
    ((x, x_np),) = pair
    op, ref, tuples, float_only = REDUCTIONS[name]
    dim = data.draw(_dims(x_np.ndim, tuples))
    keepdim = data.draw(st.booleans())

    def expected_value():
        if float_only and x_np.dtype.kind != "f":
            return None
        axes = _axes(dim, x_np.ndim)
        if name.startswith("arg"):
            if axes is None and keepdim and x_np.ndim:  # PyTorch keeps every dim as size 1
                return ref(x_np).reshape((1,) * x_np.ndim)
            out = ref(x_np, axis=None if axes is None else axes[0], keepdims=keepdim)
            return numpy.asarray(out, dtype=numpy.int64)
        return numpy.asarray(ref(x_np, axis=axes, keepdims=keepdim))

    expected = reference(expected_value)
    if expected is not None and name in ("mean", "var", "std") and x_np.dtype.kind != "f":
        expected = None  # gradflow refuses these of integers, as PyTorch does (NumPy doesn't)
    dtype = None if expected is None else expected.dtype
    if name == "logsumexp" and expected is not None:
        expected, dtype = expected.astype(x_np.dtype), x_np.dtype
    tol = {"rtol": 1e-2, "atol": 1e-2} if x_np.dtype == numpy.float16 else {}
    _expect((name,), lambda: op(x, dim, keepdim=keepdim), expected, dtype, **tol)


@FUZZ
@given(name=st.sampled_from(("max", "min", "cumsum")), pair=st.tuples(tensors()), data=st.data())
def test_max_min_cumsum_along_a_dim(name, pair, data):
    ((x, x_np),) = pair
    dim = data.draw(st.integers(-x_np.ndim - 2, x_np.ndim + 1))
    keepdim = data.draw(st.booleans())
    try:
        (axis,) = _axes(dim, x_np.ndim) or (None,)
    except (IndexError, ValueError):
        _, error = outcome((name,), lambda: getattr(gf, name)(x, dim))
        assert error is not None
        return
    if name == "cumsum":
        expected = numpy.cumsum(
            x_np, axis=axis, dtype="int64" if x_np.dtype.kind in "biu" else None
        )
        _expect((name,), lambda: gf.cumsum(x, dim), expected.reshape(x_np.shape))
        return
    reduce = numpy.argmax if name == "max" else numpy.argmin
    index = reference(lambda: numpy.asarray(reduce(x_np, axis=axis, keepdims=True)))
    out, error = outcome((name,), lambda: getattr(gf, name)(x, dim, keepdim))
    if index is None:
        assert error is not None, f"{name}: NumPy refuses these inputs but gradflow gave {out}"
        return
    assert error is None, f"{name} raised {type(error).__name__}: {error}"
    values = numpy.take_along_axis(x_np, index, axis) if axis is not None else x_np
    if axis is not None and not keepdim:
        values, index = values.squeeze(axis), index.squeeze(axis)
    assert_matches(out.values, values)
    assert_matches(out.indices, index if axis is not None else numpy.zeros((), "int64"), "int64")


@FUZZ
@given(
    name=st.sampled_from(
        ["sum", "mean", "var", "std", "amax", "amin", "logsumexp", "prod", "max", "min", "cumsum"]
    ),
    shape=shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
    view=st.sampled_from(VIEWS),
    data=st.data(),
)
def test_reduction_gradients(name, shape, view, data):
    x = grad_leaf(numpy.random.default_rng(data.draw(st.integers(0, 2**16))), shape, view)
    ndim = len(shape)
    if name in ("max", "min", "cumsum"):
        dim = data.draw(st.integers(-ndim, ndim - 1))
        if name == "cumsum":
            check_gradients(lambda t: gf.cumsum(t, dim), [x], [view])
        else:
            check_gradients(lambda t: getattr(gf, name)(t, dim).values, [x], [view])
        return
    dim = data.draw(
        st.one_of(
            st.none(), st.integers(-ndim, ndim - 1), st.sets(st.integers(0, ndim - 1)).map(tuple)
        )
    )
    keepdim = data.draw(st.booleans())
    axes = _axes(dim, ndim)
    count = math.prod(shape) if axes is None else math.prod(shape[a] for a in axes)
    if name in ("var", "std") and count < 2:
        return  # one element: the unbiased variance is NaN
    check_gradients(lambda t: getattr(gf, name)(t, dim, keepdim=keepdim), [x], [view])


# ---- shape ops ------------------------------------------------------------------------------
@st.composite
def _shape_call(draw, x_np):
    """(name, gradflow call, NumPy reference) for one shape op with random arguments."""
    ndim, shape = x_np.ndim, x_np.shape
    size = int(numpy.prod(shape))
    dim = st.integers(-ndim - 2, ndim + 1)
    name = draw(
        st.sampled_from(
            (
                "reshape",
                "view",
                "squeeze",
                "unsqueeze",
                "flatten",
                "permute",
                "transpose",
                "expand",
                "broadcast_to",
                "flip",
                "repeat",
                "tile",
                "contiguous",
                "split",
                "chunk",
                "pad",
            )
        )
    )
    if name in ("reshape", "view"):
        target = list(draw(shapes(max_dims=4, max_side=4)))
        if target and draw(st.booleans()):
            target[draw(st.integers(0, len(target) - 1))] = -1
        if draw(st.booleans()) and size:  # often a valid target: the size's factors
            target = [size] if not target else [*target[:-1], -1]
        return name, lambda x: getattr(gf, name)(x, tuple(target)), _np_reshape(x_np, target)
    if name == "squeeze":
        d = draw(st.one_of(st.none(), dim))

        def ref():
            axes = _axes(d, ndim)
            if axes is None:
                return numpy.squeeze(x_np)
            return x_np.squeeze(tuple(a for a in axes if shape[a] == 1))

        return name, lambda x: gf.squeeze(x, d), ref
    if name == "unsqueeze":
        d = draw(st.integers(-ndim - 3, ndim + 2))
        n = ndim + 1
        ref = (lambda: numpy.expand_dims(x_np, d % n)) if -n <= d < n else _refuse
        return name, lambda x: gf.unsqueeze(x, d), ref
    if name == "flatten":
        start, end = draw(dim), draw(dim)

        def ref():
            if ndim == 0:
                _axes(start, ndim), _axes(end, ndim)  # 0 and -1 only
                return x_np.reshape(1)
            s, e = _axes(start, ndim)[0], _axes(end, ndim)[0]
            if s > e:
                raise ValueError("start after end")
            return (
                x_np.reshape(shape[:s] + (-1 if size else 0,) + shape[e + 1 :])
                if size
                else x_np.reshape(shape[:s] + (math.prod(shape[s : e + 1]),) + shape[e + 1 :])
            )

        return name, lambda x: gf.flatten(x, start, end), ref
    if name == "permute":
        dims = draw(st.one_of(st.permutations(range(ndim)), st.lists(dim, max_size=4)))
        dims = tuple(dims)

        def ref():
            axes = [_axes(d, ndim)[0] if ndim else d for d in dims]
            if sorted(axes) != list(range(ndim)):
                raise ValueError("not a permutation")
            return x_np.transpose(axes)

        return name, lambda x: gf.permute(x, dims), ref
    if name == "transpose":
        d0, d1 = draw(dim), draw(dim)

        def ref():
            a0, a1 = ((_axes(d, ndim) or (0,))[0] for d in (d0, d1))
            return numpy.swapaxes(x_np, a0, a1) if ndim else x_np

        return name, lambda x: gf.transpose(x, d0, d1), ref
    if name in ("expand", "broadcast_to"):
        lead = draw(st.lists(st.integers(0, 3), max_size=2))
        target = [*lead] + [draw(st.sampled_from((n, n, 1, 3, -1, 0))) for n in shape]

        def ref():
            if any(t < 0 for t in lead):
                raise ValueError("-1 in new dims")
            full = lead + [n if t == -1 else t for t, n in zip(target[len(lead) :], shape)]
            return numpy.broadcast_to(x_np, full)

        return name, lambda x: getattr(gf, name)(x, tuple(target)), ref
    if name == "flip":
        dims = tuple(draw(st.lists(dim, max_size=3)))

        def ref():
            axes = _axes(dims, ndim)
            return x_np if not axes else numpy.flip(x_np, axes)

        return name, lambda x: gf.flip(x, dims), ref
    if name in ("repeat", "tile"):
        sizes = tuple(draw(st.lists(st.integers(-1, 3), min_size=0, max_size=ndim + 2)))

        def ref():
            if any(s < 0 for s in sizes) or (name == "repeat" and len(sizes) < ndim):
                raise ValueError("bad sizes")
            return numpy.tile(x_np, sizes) if sizes or ndim else x_np

        return name, lambda x: getattr(gf, name)(x, sizes), ref
    if name == "contiguous":
        return name, gf.contiguous, lambda: x_np
    if name in ("split", "chunk"):
        d = draw(dim)
        if name == "chunk":
            chunks = draw(st.integers(-1, 4))

            def ref():
                if ndim == 0 or chunks <= 0:
                    raise ValueError("chunk")
                (a,) = _axes(d, ndim)
                step = max(-(-shape[a] // chunks), 1)
                return _np_split(x_np, a, step)

            return name, lambda x: gf.chunk(x, chunks, d), ref
        size_arg = draw(st.one_of(st.integers(-1, 4), st.lists(st.integers(-1, 4), max_size=4)))

        def ref():
            if ndim == 0:
                raise ValueError("0-d")
            (a,) = _axes(d, ndim)
            if isinstance(size_arg, int):
                if size_arg <= 0 and not (size_arg == 0 and shape[a] == 0):
                    raise ValueError("bad split size")
                return _np_split(x_np, a, size_arg)
            if sum(size_arg) != shape[a] or any(s < 0 for s in size_arg):
                raise ValueError("bad sections")
            bounds = numpy.cumsum([0, *size_arg])
            index = (slice(None),) * a
            return tuple(x_np[(*index, slice(lo, hi))] for lo, hi in itertools.pairwise(bounds))

        return name, lambda x: gf.split(x, size_arg, d), ref
    # pad
    mode = draw(st.sampled_from(("constant", "reflect", "replicate", "circular")))
    widths = tuple(draw(st.lists(st.integers(-2, 3), max_size=2 * ndim + 1)))
    return "pad", lambda x: F.pad(x, widths, mode=mode, value=1.5), _np_pad(x_np, widths, mode)


def _refuse():
    raise ValueError("refused")


def _np_reshape(x_np, target):
    def ref():
        if target.count(-1) > 1 or any(t < -1 for t in target):
            raise ValueError("bad shape")
        if -1 in target and math.prod(t for t in target if t != -1) == 0:
            raise ValueError("-1 with a zero")  # PyTorch can't infer it either
        return x_np.reshape(target)

    return ref


def _np_split(x_np, axis, step):
    n = x_np.shape[axis]
    index = (slice(None),) * axis
    if n == 0:
        return (x_np,)
    return tuple(x_np[(*index, slice(i, i + step))] for i in range(0, n, step))


def _np_pad(x_np, widths, mode):
    def ref():
        if len(widths) % 2 or len(widths) > 2 * x_np.ndim:
            raise ValueError("pad widths")
        if not widths:
            return x_np
        pairs = [(widths[2 * i], widths[2 * i + 1]) for i in range(len(widths) // 2)]
        full = [(0, 0)] * (x_np.ndim - len(pairs)) + pairs[::-1]
        if mode == "constant":
            grow = [(max(a, 0), max(b, 0)) for a, b in full]
            out = numpy.pad(x_np, grow, constant_values=numpy.asarray(1.5).astype(x_np.dtype))
            if any(n + a + b < 0 for n, (a, b) in zip(x_np.shape, full)):
                raise ValueError("crop")
            crop = tuple(slice(-min(a, 0), m + min(b, 0)) for (a, b), m in zip(full, out.shape))
            return out[crop]
        for n, (a, b) in zip(x_np.shape, full):
            limit = {"reflect": n - 1, "circular": n, "replicate": max(a, b)}[mode]
            if (a or b) and (min(a, b) < 0 or max(a, b) > limit or n == 0):
                raise ValueError("pad")
        numpy_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
        return numpy.pad(x_np, full, mode=numpy_mode)

    return ref


@FUZZ
@given(pair=st.tuples(tensors(max_dims=4, max_side=3)), data=st.data())
def test_shape_ops(pair, data):
    ((x, x_np),) = pair
    name, call, ref = data.draw(_shape_call(x_np))
    expected = reference(ref)
    names = (name, "split") if name == "chunk" else (name,)
    out, error = outcome(names, lambda: call(x))
    if expected is None:
        assert error is not None, f"{name}: the reference refuses but gradflow gave {out}"
        return
    assert error is None, f"{name} raised {type(error).__name__}: {error}"
    if isinstance(expected, tuple):
        assert isinstance(out, tuple) and len(out) == len(expected)
        for o, e in zip(out, expected):
            assert_matches(o, e)
    else:
        assert_matches(out, expected)


@FUZZ
@given(
    pieces=st.lists(
        st.tuples(tensors(dtypes=FLOATS[1:] + INTS[:2], max_dims=3, max_side=3)),
        min_size=1,
        max_size=3,
    ),
    name=st.sampled_from(("cat", "stack")),
    dim=st.integers(-4, 3),
)
def test_cat_and_stack(pieces, name, dim):
    xs = [p[0][0] for p in pieces]
    arrays_ = [p[0][1] for p in pieces]

    def ref():
        floats = {a.dtype for a in arrays_ if a.dtype.kind == "f"}
        if len(floats) > 1:
            raise TypeError("float32 with float64")
        if name == "cat":
            if arrays_[0].ndim == 0:
                raise ValueError("0-d")
            (axis,) = _axes(dim, arrays_[0].ndim)
            return numpy.concatenate(arrays_, axis=axis)
        if len({a.shape for a in arrays_}) > 1:
            raise ValueError("shapes")
        (axis,) = _axes(dim, arrays_[0].ndim + 1)
        return numpy.stack(arrays_, axis=axis)

    expected = reference(ref)
    _expect((name, "concatenate"), lambda: getattr(gf, name)(xs, dim), expected)


@FUZZ
@given(
    name=st.sampled_from(
        (
            "reshape",
            "permute",
            "expand",
            "flip",
            "repeat",
            "cat",
            "stack",
            "split",
            "pad",
            "squeeze",
            "unsqueeze",
            "flatten",
        )
    ),
    shape=shapes(min_dims=1, max_dims=3, max_side=3),
    view=st.sampled_from(VIEWS),
    seed=st.integers(0, 2**16),
)
def test_shape_op_gradients(name, shape, view, seed):
    rng = numpy.random.default_rng(seed)
    x = grad_leaf(rng, shape, view)
    ndim = len(shape)
    order = rng.permutation(ndim).tolist()
    fns = {
        "reshape": lambda t: t.reshape(-1),
        "permute": lambda t: t.permute(*order),
        "expand": lambda t: t.unsqueeze(0).expand(2, *shape),
        "flip": lambda t: t.flip(0),
        "repeat": lambda t: t.repeat(*([2] + [1] * (ndim - 1))),
        "cat": lambda t: gf.cat([t, t * 2], dim=-1),
        "stack": lambda t: gf.stack([t, t * 2], dim=0),
        "split": lambda t: gf.split(t, 2, dim=0)[-1],
        "pad": lambda t: F.pad(t, (1, 2), mode="constant"),
        "squeeze": lambda t: t.unsqueeze(1).squeeze(),
        "unsqueeze": lambda t: t.unsqueeze(-1),
        "flatten": lambda t: t.flatten(),
    }
    check_gradients(fns[name], [x], [view])


# ---- indexing -------------------------------------------------------------------------------
@st.composite
def _index(draw, shape):
    """A random basic/advanced index: ints (in and out of range), slices with any step,
    None, Ellipsis, integer lists and bool masks."""
    items = []
    for n in shape[: draw(st.integers(0, len(shape) + 1))]:
        kind = draw(st.sampled_from(("int", "slice", "slice", "none", "array", "mask")))
        if kind == "int":
            items.append(draw(st.integers(-n - 1, n)))
        elif kind == "slice":
            bound = st.one_of(st.none(), st.integers(-n - 2, n + 2))
            items.append(
                slice(draw(bound), draw(bound), draw(st.sampled_from((None, 1, 2, -1, -2, 0))))
            )
        elif kind == "none":
            items.append(None)
        elif kind == "array":
            items.append(draw(st.lists(st.integers(-n - 1, n), max_size=3)))
        else:
            items.append(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), Ellipsis)
    return tuple(items)


def _numpy_index(index):
    converted = []
    for i in index:
        if isinstance(i, list):
            kind = bool if i and isinstance(i[0], bool) else numpy.int64
            converted.append(numpy.asarray(i, dtype=kind))
        else:
            converted.append(i)
    return tuple(converted)


@FUZZ
@given(pair=st.tuples(tensors(max_dims=3, max_side=3)), data=st.data())
def test_getitem(pair, data):
    ((x, x_np),) = pair
    index = data.draw(_index(x_np.shape))
    expected = reference(lambda: x_np[_numpy_index(index)])
    # NumPy skips the bounds check of integer arrays that broadcast to nothing; gradflow
    # checks every index (as PyTorch), so it may refuse those
    empty = expected is not None and expected.size == 0
    _expect(("index", "indexed", "indices"), lambda: x[index], expected, may_refuse=empty)


@FUZZ
@given(pair=st.tuples(tensors(max_dims=3, max_side=3)), data=st.data())
def test_gather_family(pair, data):
    ((x, x_np),) = pair
    ndim = x_np.ndim
    name = data.draw(
        st.sampled_from(("gather", "index_select", "take_along_axis", "masked_select"))
    )
    dim = data.draw(st.integers(-ndim - 1, ndim))
    if name == "masked_select":
        mask_shape = data.draw(st.one_of(st.just(x_np.shape), shapes(max_dims=3, max_side=3)))
        mask = data.draw(arrays(numpy.dtype("bool"), mask_shape))

        def ref():
            full = numpy.broadcast_shapes(x_np.shape, mask.shape)
            return numpy.broadcast_to(x_np, full)[numpy.broadcast_to(mask, full)]

        _expect((name,), lambda: gf.masked_select(x, gf.tensor(mask)), reference(ref))
        return
    n = x_np.shape[dim] if -ndim <= dim < ndim else (1 if ndim == 0 else 2)
    index_shape = data.draw(shapes(max_dims=3, max_side=3))
    if name == "index_select":
        index_shape = index_shape[:1]
    index = data.draw(hnp.arrays(numpy.int64, index_shape, elements=st.integers(-n - 1, n)))

    def ref():
        (axis,) = _axes(dim, ndim) or (0,)
        if index.size and (index.min() < -max(n, 0) or index.max() >= n):
            raise IndexError("out of range")
        if ndim == 0:  # index 0 or -1 picks the value
            if name == "index_select" or (index.size == 1 and name == "gather") or index.ndim == 0:
                return x_np.reshape(1)[index.reshape(-1)].reshape(index.shape)
            raise ValueError("0-d")
        if name == "index_select":
            return numpy.take(x_np, index.reshape(-1), axis=axis)  # a 0-d index keeps the dim
        if index.ndim != ndim:
            raise ValueError("ndim")
        if name == "gather":
            if any(i > m for k, (i, m) in enumerate(zip(index.shape, x_np.shape)) if k != axis):
                raise ValueError("gather: index larger than input")
            corner = tuple(
                slice(None) if k == axis else slice(0, i) for k, i in enumerate(index.shape)
            )
            return numpy.take_along_axis(x_np[corner], index, axis)
        return numpy.take_along_axis(x_np, index, axis)

    op = getattr(gf, name)
    call = (
        (lambda: op(x, gf.tensor(index), dim))
        if name == "take_along_axis"
        else (lambda: op(x, dim, gf.tensor(index)))
    )
    _expect((name,), call, reference(ref))


@FUZZ
@given(
    shape=shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
    view=st.sampled_from(VIEWS),
    data=st.data(),
)
def test_indexing_gradients(shape, view, data):
    rng = numpy.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = grad_leaf(rng, shape, view)
    index = data.draw(_index(shape))
    if reference(lambda: numpy.empty(shape)[_numpy_index(index)]) is None:
        return
    check_gradients(lambda t: t[index], [x], [view])
    picks = gf.tensor(rng.integers(0, shape[0], size=(5,)))
    check_gradients(lambda t: gf.index_select(t, 0, picks), [x], [view])


# ---- matmul ---------------------------------------------------------------------------------
@st.composite
def _matmul_shapes(draw):
    n, k, m = (draw(st.integers(0, 3)) for _ in range(3))
    k2 = k if draw(st.integers(0, 5)) else draw(st.integers(0, 3))  # sometimes a mismatch
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3))
    ba, bb = batch.input_shapes
    if not draw(st.integers(0, 5)):
        bb = draw(shapes(max_dims=2, max_side=3))
    a = draw(st.sampled_from(((k,), (*ba, n, k), (n, k), ())))
    b = draw(st.sampled_from(((k2,), (*bb, k2, m), (k2, m))))
    return a, b


@FUZZ
@given(pair=_matmul_shapes(), data=st.data())
def test_matmul(pair, data):
    dtypes = (numpy.dtype("float32"), numpy.dtype("float64"), numpy.dtype("int64"))
    (a, a_np), (b, b_np) = (data.draw(tensors(dtypes=dtypes, shape=s)) for s in pair)
    promoted = _promoted([a_np, b_np], mix_floats=False)
    expected = None if promoted is None else reference(lambda: numpy.matmul(*promoted))
    _expect(("matmul",), lambda: gf.matmul(a, b), expected, None, rtol=1e-5, atol=1e-5)


@FUZZ
@given(
    pair=hnp.mutually_broadcastable_shapes(
        signature="(n?,k),(k,m?)->(n?,m?)", max_dims=2, min_side=0, max_side=3
    ),
    views=st.tuples(st.sampled_from(VIEWS), st.sampled_from(VIEWS)),
    seed=st.integers(0, 2**16),
)
def test_matmul_gradients(pair, views, seed):
    rng = numpy.random.default_rng(seed)
    a, b = (grad_leaf(rng, s, v) for s, v in zip(pair.input_shapes, views))
    check_gradients(gf.matmul, [a, b], list(views))


@FUZZ
@given(
    x_shape=shapes(max_dims=3, max_side=3),
    out_features=st.integers(0, 3),
    bias=st.booleans(),
    view=st.sampled_from(VIEWS),
    seed=st.integers(0, 2**16),
)
def test_linear_function(x_shape, out_features, bias, view, seed):
    rng = numpy.random.default_rng(seed)
    in_features = x_shape[-1] if x_shape and rng.integers(0, 4) else int(rng.integers(0, 3))
    x = grad_leaf(rng, x_shape, view)
    w = grad_leaf(rng, (out_features, in_features), "none")
    b = grad_leaf(rng, (out_features,), "none") if bias else None
    x_np = as_numpy(apply_view(x, view))

    def ref():
        if x_np.ndim == 0 or x_np.shape[-1] != in_features:
            raise ValueError("linear")
        out = x_np @ as_numpy(w).T
        return out if b is None else out + as_numpy(b)

    out = _expect(("linear",), lambda: F.linear(apply_view(x, view), w, b), reference(ref))
    if out is not None and out.numel() and x_np.size:
        inputs = [x, w] + ([b] if bias else [])
        views = [view] + ["none"] * (len(inputs) - 1)
        check_gradients(F.linear, inputs, views)


# ---- losses and softmax -----------------------------------------------------------------------
def _softmax_ref(x, axis, log):
    x = x.astype(numpy.float64)
    m = numpy.max(x, axis=axis, keepdims=True, initial=-numpy.inf)
    m = numpy.where(numpy.isfinite(m), m, 0)
    e = numpy.exp(x - m)
    total = e.sum(axis=axis, keepdims=True)
    return (x - m) - numpy.log(total) if log else e / total


@FUZZ
@given(pair=st.tuples(tensors()), name=st.sampled_from(("softmax", "log_softmax")), data=st.data())
def test_softmax(pair, name, data):
    ((x, x_np),) = pair
    dim = data.draw(st.integers(-x_np.ndim - 1, x_np.ndim))

    def ref():
        if x_np.dtype.kind != "f":
            raise TypeError("float only")
        (axis,) = _axes(dim, x_np.ndim) or (None,)
        return _softmax_ref(x_np, axis, name == "log_softmax").astype(x_np.dtype)

    tol = {"rtol": 1e-2, "atol": 1e-2} if x_np.dtype == numpy.float16 else {}
    _expect((name,), lambda: getattr(gf, name)(x, dim), reference(ref), **tol)


@st.composite
def _class_problem(draw):
    """(input, target, keyword arguments) for cross_entropy/nll_loss: any rank, class-index
    or probability targets (sometimes of the wrong shape or out of range), ignore_index,
    class weights (sometimes of the wrong size) and label smoothing."""
    ndim = draw(st.integers(0, 4))
    shape = draw(shapes(min_dims=ndim, max_dims=ndim, max_side=3))
    dtype = draw(st.sampled_from((numpy.dtype("float32"), numpy.dtype("float64"))))
    x_np = draw(arrays(dtype, shape, special=draw(st.booleans())))
    n_classes = shape[1] if ndim > 1 else (shape[0] if ndim == 1 else 2)
    if draw(st.booleans()) and ndim:
        t_np = draw(arrays(dtype, shape, special=False, low=0, high=1))
    else:
        t_shape = (shape[0], *shape[2:]) if ndim > 1 else ()
        if draw(st.integers(0, 6)) == 0:
            t_shape = draw(shapes(max_dims=3, max_side=3))
        t_np = draw(hnp.arrays(numpy.int64, t_shape, elements=st.integers(-1, max(n_classes, 1))))
    kwargs = {"reduction": draw(st.sampled_from(("mean", "sum", "none")))}
    if draw(st.booleans()):
        kwargs["ignore_index"] = -1
    if draw(st.integers(0, 2)) == 0:
        size = n_classes + (draw(st.integers(0, 5)) == 0)
        kwargs["weight"] = draw(arrays(dtype, (size,), special=False, low=0, high=2))
    if draw(st.booleans()):
        kwargs["label_smoothing"] = draw(st.sampled_from((0.1, 0.5, 1.0)))
    return x_np, t_np, kwargs


def _cross_entropy_ref(
    x, t, reduction, ignore_index=-100, weight=None, label_smoothing=0.0, log_probs=False
):
    """PyTorch's cross_entropy (nll_loss with log_probs) in float64."""
    if x.ndim == 0 or x.shape[1 if x.ndim > 1 else 0] == 0:
        raise ValueError("0-d, or no classes")
    lifted = x.ndim == 1
    if lifted:
        x, t = x[None], t[None]
    n_classes = x.shape[1]
    w = numpy.ones(n_classes) if weight is None else weight.astype(numpy.float64)
    if w.shape != (n_classes,):
        raise ValueError("weight")
    w_b = w.reshape((1, -1) + (1,) * (x.ndim - 2))
    eps = label_smoothing
    logp = x.astype(numpy.float64) if log_probs else _softmax_ref(x, 1, log=True)
    if t.dtype.kind == "f":
        if t.shape != x.shape:
            raise ValueError("shape")
        loss = -(logp * (t * (1 - eps) + eps / n_classes) * w_b).sum(axis=1)
        denom = loss.size
    else:
        if t.shape != (x.shape[0], *x.shape[2:]):
            raise ValueError("target shape")
        keep = t != ignore_index
        if ((t < 0) | (t >= n_classes))[keep].any():
            raise IndexError("class out of range")
        safe = numpy.where(keep, t, 0)
        picked = numpy.take_along_axis(logp, safe[:, None], axis=1)[:, 0]
        w_t = w[safe] * keep
        loss = -picked * w_t
        if eps:
            smooth = -(logp * w_b).sum(axis=1) * keep
            loss = (1 - eps) * loss + eps / n_classes * smooth
        denom = w_t.sum()
    if reduction == "none":
        return loss[0] if lifted else loss
    total = loss.sum()
    return total if reduction == "sum" else total / denom


@FUZZ
@given(problem=_class_problem(), name=st.sampled_from(("cross_entropy", "nll_loss")))
def test_class_losses(problem, name):
    x_np, t_np, kwargs = problem
    if name == "nll_loss":
        t_np = t_np.astype(numpy.int64)  # nll_loss takes class indices only
        kwargs.pop("label_smoothing", None)
    expected = reference(
        lambda: _cross_entropy_ref(x_np, t_np, log_probs=name == "nll_loss", **kwargs)
    )
    if expected is not None:
        expected = numpy.asarray(expected).astype(x_np.dtype)
    if "weight" in kwargs:
        kwargs["weight"] = gf.tensor(kwargs["weight"])
    op = getattr(F, name)
    _expect(
        (name,),
        lambda: op(gf.tensor(x_np), gf.tensor(t_np), **kwargs),
        expected,
        rtol=1e-5,
        atol=1e-5,
    )


@FUZZ
@given(
    # small class values: one_hot(tensor([2**31 - 1])) rightly needs 2**31 columns
    pair=st.tuples(tensors(dtypes=INTS + FLOATS[1:2], special=False, max_dims=3, max_side=3)),
    num_classes=st.integers(-1, 4),
)
def test_one_hot(pair, num_classes):
    ((x, x_np),) = pair

    def ref():
        if x_np.dtype.kind not in "iu":
            raise TypeError("integer indices")
        n = num_classes
        if n == -1:
            if not x_np.size:
                raise ValueError("can't infer")
            n = int(x_np.max()) + 1
        if x_np.size and (x_np.min() < 0 or x_np.max() >= n):
            raise IndexError("class out of range")
        return (numpy.arange(n) == x_np[..., None]).astype(numpy.int64)

    _expect(("one_hot",), lambda: F.one_hot(x, num_classes), reference(ref))


@FUZZ
@given(
    pair=st.tuples(tensors(dtypes=FLOATS, max_dims=3)),
    p=st.sampled_from((-0.5, 0, 0.3, 1, 2)),
    training=st.booleans(),
)
def test_dropout(pair, p, training):
    ((x, x_np),) = pair
    out, error = outcome(("dropout",), lambda: F.dropout(x, p, training))
    if not 0 <= p <= 1:
        assert error is not None, "dropout accepted a probability outside [0, 1]"
        return
    assert error is None, f"dropout raised {type(error).__name__}: {error}"
    got = as_numpy(out)
    assert got.shape == x_np.shape and got.dtype == x_np.dtype
    scale = 1.0 if not training or p == 0 else (0.0 if p == 1 else 1 / (1 - p))
    with numpy.errstate(all="ignore"):
        kept = x_np * x_np.dtype.type(scale)
        dropped = x_np * x_np.dtype.type(0)  # 0, or NaN for inf and NaN (as in PyTorch)
    same = lambda a, b: (a == b) | (numpy.isnan(a) & numpy.isnan(b))  # noqa: E731
    assert (same(got, kept) | same(got, dropped)).all(), "dropout: an element neither kept nor 0"


PAIR_LOSSES = {
    "mse_loss": lambda x, y: (x - y) ** 2,
    "l1_loss": lambda x, y: numpy.abs(x - y),
    "binary_cross_entropy_with_logits": lambda x, y: (1 - y) * x + numpy.logaddexp(0, -x),
    "binary_cross_entropy": lambda p, y: (
        -(y * numpy.maximum(numpy.log(p), -100) + (1 - y) * numpy.maximum(numpy.log1p(-p), -100))
    ),
}


@FUZZ
@given(
    name=st.sampled_from(sorted(PAIR_LOSSES)),
    pair=_pair_shapes(),
    reduction=st.sampled_from(("mean", "sum", "none")),
    data=st.data(),
)
def test_pair_losses(name, pair, reduction, data):
    dtype = data.draw(st.sampled_from((numpy.dtype("float32"), numpy.dtype("float64"))))
    bce = name == "binary_cross_entropy"
    x_np = data.draw(arrays(dtype, pair[0], low=0 if bce else -50, high=1 if bce else 50))
    y_np = data.draw(arrays(dtype, pair[1], special=False, low=0, high=1))

    def ref():
        same_shape_only = name.startswith("binary")
        if same_shape_only and x_np.shape != y_np.shape:
            raise ValueError("shape")
        if bce and ((x_np < 0) | (x_np > 1)).any():
            raise ValueError("outside [0, 1]")
        loss = PAIR_LOSSES[name](x_np.astype(numpy.float64), y_np.astype(numpy.float64))
        loss = loss.astype(dtype)  # reduced in the input's dtype, as NumPy (float32 may overflow)
        if reduction == "none":
            return loss
        return numpy.asarray(loss.sum() if reduction == "sum" else loss.mean())

    op = getattr(F, name)
    call = lambda: op(gf.tensor(x_np), gf.tensor(y_np), reduction=reduction)  # noqa: E731
    _expect((name,), call, reference(ref), rtol=1e-5, atol=1e-5)


@FUZZ
@given(
    name=st.sampled_from(
        ["softmax", "log_softmax", "cross_entropy", "nll_loss", *sorted(PAIR_LOSSES)]
    ),
    shape=shapes(min_dims=1, max_dims=3, min_side=1, max_side=3),
    view=st.sampled_from(VIEWS),
    reduction=st.sampled_from(("mean", "sum", "none")),
    seed=st.integers(0, 2**16),
)
def test_loss_gradients(name, shape, view, reduction, seed):
    rng = numpy.random.default_rng(seed)
    x = grad_leaf(rng, shape, view)
    if name in ("softmax", "log_softmax"):
        check_gradients(lambda t: getattr(gf, name)(t, -1), [x], [view])
        return
    if name in ("cross_entropy", "nll_loss"):
        n_classes = shape[1] if len(shape) > 1 else shape[0]
        t_shape = (shape[0], *shape[2:]) if len(shape) > 1 else ()
        target = gf.tensor(rng.integers(0, n_classes, size=t_shape))
        check_gradients(lambda t: getattr(F, name)(t, target, reduction=reduction), [x], [view])
        return
    y = gf.tensor(rng.uniform(0.1, 0.9, size=shape), dtype=gf.float64)
    fn = getattr(F, name)
    if name == "binary_cross_entropy":
        check_gradients(lambda t: fn(gf.sigmoid(t), y, reduction=reduction), [x], [view])
    else:
        check_gradients(lambda t: fn(t, y, reduction=reduction), [x], [view])


# ---- regressions: one explicit case per bug the fuzzing found (fixed in the op files) ---------
F16, F32, F64 = gf.float16, gf.float32, gf.float64


def _named_error(names, call):
    _, error = outcome(names, call)
    assert error is not None, f"{names[0]} accepted what it should refuse"


REFUSALS = {  # name: (names an error may use, call)
    "add, shapes that don't broadcast": (("add",), lambda: gf.ones(2) + gf.ones(3)),
    "where, shapes that don't broadcast": (
        ("where",),
        lambda: gf.where(gf.ones(2) > 0, gf.ones(3), gf.ones(2)),
    ),
    "eq, shapes that don't broadcast": (("eq",), lambda: gf.ones(2) == gf.ones(3)),
    "sub of bools": (("sub",), lambda: gf.tensor([True]) - gf.tensor([True])),
    "neg of a bool": (("neg",), lambda: -gf.tensor([True])),
    "int ** negative int": (("pow",), lambda: gf.tensor([2]) ** -1),
    "Python int outside uint8": (("add",), lambda: gf.tensor([1], dtype=gf.uint8) + (-1)),
    "linear of a 0-d input": (("linear",), lambda: F.linear(gf.tensor(1.0), gf.ones(2, 1))),
    "slice step 0": (("index",), lambda: gf.ones(3)[::0]),
    "index arrays that don't broadcast": (
        ("index",),
        lambda: gf.zeros(2, 1, 0)[[True, True], 0, []],
    ),
    "gather out of range": (("gather",), lambda: gf.gather(gf.tensor(1.0), 0, gf.tensor(1))),
    "index_select out of range": (
        ("index_select",),
        lambda: gf.index_select(gf.ones(0), 0, gf.tensor(0)),
    ),
    "tile with a negative size": (("tile",), lambda: gf.tile(gf.ones(2), (-1,))),
    "chunk of a 0-d tensor": (("chunk",), lambda: gf.chunk(gf.tensor(1.0), 2)),
    "argmax of a 0-d tensor along dim 1": (("argmax",), lambda: gf.argmax(gf.tensor(1.0), 1)),
    "flatten of a 0-d tensor with end_dim 1": (
        ("flatten",),
        lambda: gf.flatten(gf.tensor(1.0), 0, 1),
    ),
    "reshape to a float size": (("reshape",), lambda: gf.reshape(gf.ones(4), (2.5, 2))),
    "cross_entropy without classes": (
        ("cross_entropy",),
        lambda: F.cross_entropy(gf.ones(1, 0), gf.tensor([-100])),
    ),
    "nll_loss without classes": (
        ("nll_loss",),
        lambda: F.nll_loss(gf.ones(1, 0), gf.tensor([-1]), ignore_index=-1),
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_name_the_op(case):
    names, call = REFUSALS[case]
    _named_error(names, call)


RESULTS = {  # name: (call, expected NumPy value, expected dtype)
    "float32 * numpy.float64 keeps float32": (
        lambda: gf.ones(2) * numpy.float64(2.0),
        numpy.full(2, 2.0),
        F32,
    ),
    "float16 + numpy.float64 keeps float16": (
        lambda: gf.tensor(0.0, dtype=F16) + numpy.float64(0.0),
        numpy.zeros(()),
        F16,
    ),
    "eq of 0-d tensors is an array": (
        lambda: gf.tensor(1.0) == gf.tensor(1.0),
        numpy.array(True),
        gf.bool,
    ),
    "isfinite of a 0-d bool": (lambda: gf.isfinite(gf.tensor(False)), numpy.array(True), gf.bool),
    "sign of a 0-d float": (lambda: gf.sign(gf.tensor(-2.0)), numpy.array(-1.0), F32),
    "sign of a bool is itself": (lambda: gf.sign(gf.tensor([True, False])), [True, False], gf.bool),
    "where of two floats: the default float": (
        lambda: gf.where(gf.tensor(False), 0.0, 1.0),
        numpy.array(1.0),
        F32,
    ),
    "where of an int and a float32 tensor": (
        lambda: gf.where(gf.tensor([True]), gf.tensor([1]), gf.tensor([2.0])),
        [1.0],
        F32,
    ),
    "clip of a bool with a float bound": (
        lambda: gf.clamp(gf.tensor(False), None, 0.0),
        numpy.array(0.0),
        F32,
    ),
    "gelu of float16 stays float16": (
        lambda: gf.gelu(gf.zeros(2, dtype=F16)),
        numpy.zeros(2),
        F16,
    ),
    "sigmoid of a 0-d tensor": (lambda: gf.sigmoid(gf.tensor(0.0)), numpy.array(0.5), F32),
    "silu of a 0-d tensor": (lambda: gf.silu(gf.tensor(0.0)), numpy.array(0.0), F32),
    "softmax of a 0-d tensor": (lambda: gf.softmax(gf.tensor(3.0), 0), numpy.array(1.0), F32),
    "log_softmax of a 0-d tensor": (
        lambda: gf.log_softmax(gf.tensor(3.0), 0),
        numpy.array(0.0),
        F32,
    ),
    "softmax over an empty dim": (lambda: gf.softmax(gf.zeros(3, 0), 1), numpy.zeros((3, 0)), F32),
    "softmax of [12, inf] in float16": (
        lambda: gf.softmax(gf.tensor([12.0, numpy.inf], dtype=F16), 0),
        [numpy.nan, numpy.nan],  # a slice holding +inf is NaN throughout, as PyTorch
        F16,
    ),
    "logsumexp over an empty dim": (
        lambda: gf.logsumexp(gf.zeros(3, 0), 1),
        numpy.full(3, -numpy.inf),
        F32,
    ),
    "binary_cross_entropy of 0-d tensors": (
        lambda: F.binary_cross_entropy(gf.tensor(0.5), gf.tensor(1.0)),
        numpy.array(numpy.log(2.0)),
        F32,
    ),
    "binary_cross_entropy_with_logits of 0-d tensors": (
        lambda: F.binary_cross_entropy_with_logits(gf.tensor(0.0), gf.tensor(1.0)),
        numpy.array(numpy.log(2.0)),
        F32,
    ),
    "var of an empty tensor is NaN": (lambda: gf.var(gf.zeros(0)), numpy.array(numpy.nan), F32),
    "std of an empty tensor is NaN": (lambda: gf.std(gf.zeros(0)), numpy.array(numpy.nan), F32),
    "sum of uint8 is int64": (
        lambda: gf.sum(gf.tensor([200, 100], dtype=gf.uint8)),
        numpy.array(300),
        gf.int64,
    ),
    "cumsum of uint8 is int64": (
        lambda: gf.cumsum(gf.tensor([200, 100], dtype=gf.uint8), 0),
        [200, 300],
        gf.int64,
    ),
    "amax along a full dim of an empty tensor": (
        lambda: gf.amax(gf.zeros(0, 3), 1),
        numpy.zeros(0),
        F32,
    ),
    "max along dim 0 of shape (1, 0)": (
        lambda: gf.max(gf.zeros(1, 0), 0).values,
        numpy.zeros(0),
        F32,
    ),
    "matmul of float32 and int64": (
        lambda: gf.matmul(gf.ones(2, 2), gf.ones(2, 2, dtype=gf.int64)),
        numpy.full((2, 2), 2.0),
        F32,
    ),
    "take_along_axis of a 0-d tensor": (
        lambda: gf.take_along_axis(gf.tensor(5.0), gf.tensor(0), 0),
        numpy.array(5.0),
        F32,
    ),
    "flip of a 0-d tensor": (lambda: gf.flip(gf.tensor(1.0), 0), numpy.array(1.0), F32),
    "pad of a 0-d tensor with no widths": (
        lambda: F.pad(gf.tensor(1.0), ()),
        numpy.array(1.0),
        F32,
    ),
}


@pytest.mark.parametrize("case", sorted(RESULTS))
def test_results_of_fixed_cases(case):
    call, expected, dtype = RESULTS[case]
    out, error = outcome((case,), call)
    assert error is None, f"{case}: {type(error).__name__}: {error}"
    assert_matches(out, numpy.asarray(expected), dtype)


def test_gradients_of_0d_tensors_are_arrays():
    x = gf.tensor(0.5, requires_grad=True)
    gf.tanh(x).backward()
    gf.softplus(x).backward()  # accumulates into the 0-d gradient in place
    assert type(x.grad.array) is numpy.ndarray and x.grad.shape == ()
    numpy.testing.assert_allclose(
        x.grad.item(), 1 - numpy.tanh(0.5) ** 2 + 1 / (1 + numpy.exp(-0.5)), rtol=1e-6
    )

"""What the fuzz tests share: the hypothesis settings, strategies for arrays (shapes with
zero-size and size-1 dims, 0-d, every supported dtype, values with inf/nan/huge/tiny, strided
and read-only layouts) and the two checks every example ends in: a result that matches its
reference, or an error of an allowed type whose message names the op.

GRADFLOW_FUZZ_EXAMPLES (default 30) sets the examples per test; derandomized, so a run is
reproducible: ``GRADFLOW_FUZZ_EXAMPLES=500 pytest tests/fuzz`` for a long hunt.
"""

from __future__ import annotations

import os
import re

import numpy
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradflow as gf
from gradflow.testing import gradcheck

EXAMPLES = int(os.environ.get("GRADFLOW_FUZZ_EXAMPLES", "30"))
settings.register_profile(
    "gradflow-fuzz",
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("gradflow-fuzz")  # a decorator: @FUZZ over @given

FLOATS = (numpy.dtype("float16"), numpy.dtype("float32"), numpy.dtype("float64"))
INTS = (numpy.dtype("int32"), numpy.dtype("int64"), numpy.dtype("uint8"))
BOOL = numpy.dtype("bool")
ALL_DTYPES = (*FLOATS, *INTS, BOOL)
ALLOWED_ERRORS = (ValueError, TypeError, IndexError, RuntimeError)


# ---- strategies -----------------------------------------------------------------------------
def shapes(min_dims: int = 0, max_dims: int = 4, min_side: int = 0, max_side: int = 4):
    """Shapes with 0-d, zero-size and size-1 dims drawn often."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def specials(dtype: numpy.dtype) -> list:
    """inf, nan, signed zeros, the largest finite, the smallest subnormal, in `dtype`."""
    info = numpy.finfo(dtype)
    values = [0.0, -0.0, numpy.inf, -numpy.inf, numpy.nan, info.max, -info.max, 1.0, -1.0]
    values += [float(info.smallest_subnormal), -float(info.smallest_subnormal)]
    return [float(dtype.type(v)) for v in values]


def elements(dtype: numpy.dtype, special: bool = True, low: float = -50, high: float = 50):
    """Values of `dtype`: moderate ones, and for floats the special values when `special`."""
    if dtype.kind == "f":
        finite = st.floats(low, high, width=8 * dtype.itemsize)
        return st.one_of(finite, st.sampled_from(specials(dtype))) if special else finite
    if dtype.kind == "b":
        return st.booleans()
    info = numpy.iinfo(dtype)
    edges = st.sampled_from([int(info.min), int(info.max)]) if special else st.nothing()
    return st.one_of(st.integers(max(int(info.min), -5), min(int(info.max), 5)), edges)


def arrays(dtype: numpy.dtype, shape: tuple, special: bool = True, **bounds):
    return hnp.arrays(dtype, shape, elements=elements(dtype, special, **bounds))


LAYOUTS = ("contiguous", "reversed", "transposed", "strided", "readonly")


def with_layout(values: numpy.ndarray, layout: str) -> numpy.ndarray:
    """An array equal to `values` laid out as `layout`: negative strides on every dim, Fortran
    order, every other element of a wider buffer (its gaps hold garbage), or read-only."""
    values = numpy.asarray(values)
    if layout == "reversed":
        flip = (Ellipsis, *(slice(None, None, -1),) * values.ndim)  # 0-d: still an array
        return values[flip].copy(order="C")[flip]
    if layout == "transposed":
        return values.T.copy(order="C").T
    if layout == "strided" and values.ndim:
        base = numpy.full((*values.shape[:-1], 2 * values.shape[-1]), 77, values.dtype)
        base[..., ::2] = values
        return base[..., ::2]
    if layout == "readonly":
        values = values.copy()
        values.flags.writeable = False
    return values


@st.composite
def tensors(draw, dtypes=ALL_DTYPES, shape=None, special: bool = True, **shape_args):
    """(Tensor, the NumPy array it shares memory with): any dtype, shape and layout."""
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(shapes(**shape_args)) if shape is None else shape
    values = draw(arrays(dtype, shape, special))
    array = with_layout(values, draw(st.sampled_from(LAYOUTS)))
    return gf.from_numpy(array), array


# ---- gradients through non-contiguous views ------------------------------------------------
VIEWS = ("none", "reversed", "transposed", "strided")


def view_base_shape(shape: tuple, view: str) -> tuple:
    """The shape of the leaf that `apply_view(leaf, view)` turns into `shape`."""
    if view == "transposed":
        return shape[::-1]
    if view == "strided" and shape:
        return (*shape[:-1], 2 * shape[-1])
    return shape


def apply_view(x: gf.Tensor, view: str) -> gf.Tensor:
    """A non-contiguous view of x made by gradflow ops (x[::-1, ...], x.T, x[..., ::2])."""
    if view == "reversed" and x.ndim:
        return x[(slice(None, None, -1),) * x.ndim]
    if view == "transposed":
        return x.T
    if view == "strided" and x.ndim:
        return x[..., ::2]
    return x


def grad_leaf(rng: numpy.random.Generator, shape: tuple, view: str, positive: bool = False):
    """A float64 leaf of standard normal values (|x| + 0.5 when `positive`)."""
    values = rng.standard_normal(view_base_shape(shape, view))
    if positive:
        values = numpy.abs(values) + 0.5
    return gf.tensor(values, dtype=gf.float64, requires_grad=True)


def check_gradients(fn, leaves: list, views: list) -> None:
    """gradcheck (a random directional derivative) of fn on the views of float64 leaves."""
    assert gradcheck(
        lambda *xs: fn(*(apply_view(x, v) for x, v in zip(xs, views))), leaves, full_jacobian=False
    )


# ---- outcomes -------------------------------------------------------------------------------
def check_error(exc: BaseException, names: tuple) -> None:
    """`exc` is a ValueError, TypeError, IndexError or RuntimeError (or gradflow's own
    subclass), not NumPy's, with a message that names one of `names`."""
    kind = type(exc)
    ours = kind.__module__.partition(".")[0] == "gradflow"
    assert isinstance(exc, ALLOWED_ERRORS) and (kind in ALLOWED_ERRORS or ours), (
        f"{kind.__module__}.{kind.__name__} escaped: {exc}"
    )
    message = str(exc)
    assert message.strip(), f"{kind.__name__} with an empty message"
    named = any(
        re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", message, re.IGNORECASE) for n in names
    )  # a whole word: "negative" doesn't name neg
    assert named, f"{kind.__name__} doesn't name {' or '.join(names)}: {message}"


def outcome(names: tuple, fn):
    """(fn(), None), or (None, the error) after check_error; other exceptions propagate."""
    try:
        with numpy.errstate(all="ignore"):
            return fn(), None
    except Exception as exc:
        check_error(exc, names)
        return None, exc


def reference(fn):
    """A NumPy reference value, or None where NumPy refuses the inputs."""
    try:
        with numpy.errstate(all="ignore"):
            return fn()
    except (ValueError, TypeError, IndexError, OverflowError, ZeroDivisionError):
        return None


def tolerance(dtype: numpy.dtype) -> dict:
    if dtype == numpy.float16:
        return {"rtol": 2e-3, "atol": 2e-3}
    if dtype == numpy.float32:
        return {"rtol": 2e-6, "atol": 1e-6}
    return {"rtol": 1e-12, "atol": 1e-12}


def as_numpy(t: gf.Tensor) -> numpy.ndarray:
    return t.detach().numpy()


def assert_matches(out, expected, dtype=None, **tol) -> None:
    """A Tensor of the reference's shape and dtype (or `dtype`) and values (NaNs where the
    reference has NaNs)."""
    expected = numpy.asarray(expected)
    dtype = numpy.dtype(dtype) if dtype is not None else expected.dtype
    assert isinstance(out, gf.Tensor), f"expected a Tensor, got {type(out).__name__}"
    got = as_numpy(out)
    assert got.shape == expected.shape, f"shape {got.shape}, expected {expected.shape}"
    assert got.dtype == dtype, f"dtype {got.dtype}, expected {dtype}"
    if dtype.kind == "f":
        tol = tol or tolerance(dtype)
        numpy.testing.assert_allclose(got, expected.astype(dtype), equal_nan=True, **tol)
    else:
        numpy.testing.assert_array_equal(got, expected.astype(dtype))

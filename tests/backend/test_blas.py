"""gradflow/backend/blas.py: the GEMM that adds into its output and the transposing copy, both
through the BLAS NumPy loaded, against NumPy's own matmul and copy, on every layout the
callers pass and on the layouts the route must refuse."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import numpy
import pytest

import gradflow as gf
from gradflow.backend import blas
from gradflow.ops import conv_offsets
from gradflow.ops.window import Window

ROUTE = not blas.status().startswith("off")
needs_route = pytest.mark.skipif(not ROUTE, reason=f"cblas route {blas.status()}")


def _rng():
    return numpy.random.default_rng(7)


def _layout(a, transposed):
    """a itself, or the same values as the transpose of a row-major copy."""
    return numpy.ascontiguousarray(a.T).T if transposed else a


def test_status_names_the_route_or_why_not():
    line = blas.status()
    assert line.startswith("OpenBLAS ") or line.startswith("off (")


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_addmm_matches_numpy_in_every_transpose_layout(dtype, ta, tb):
    rng = _rng()
    a = _layout(rng.standard_normal((37, 19)).astype(dtype), ta)
    b = _layout(rng.standard_normal((19, 23)).astype(dtype), tb)
    out = rng.standard_normal((37, 23)).astype(dtype)
    expected = out + a @ b
    assert blas.addmm_(out, a, b) is out
    tol = 1e-5 if dtype == numpy.float32 else 1e-12
    numpy.testing.assert_allclose(out, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_addmm_writes_only_its_block_of_a_wider_output(dtype):
    rng = _rng()
    whole = rng.standard_normal((12, 30)).astype(dtype)
    before = whole.copy()
    a = rng.standard_normal((10, 6)).astype(dtype)[:, ::1]
    b = rng.standard_normal((8, 11)).astype(dtype)[1:7, 2:9]  # a strided block
    blas.addmm_(whole[1:11, 5:12], a, b)
    expected = before.copy()
    expected[1:11, 5:12] += a @ b
    numpy.testing.assert_allclose(whole, expected, rtol=1e-5, atol=1e-5)
    mask = numpy.ones(whole.shape, bool)
    mask[1:11, 5:12] = False
    assert numpy.array_equal(whole[mask], before[mask])  # nothing outside the block moved


def test_addmm_with_and_without_the_route_agree():
    rng = _rng()
    a = rng.standard_normal((64, 48)).astype(numpy.float32)
    b = rng.standard_normal((40, 48)).astype(numpy.float32).T  # a transposed operand
    out_on = rng.standard_normal((64, 40)).astype(numpy.float32)
    out_off = out_on.copy()
    blas.addmm_(out_on, a, b)
    with blas.disabled():
        blas.addmm_(out_off, a, b)
    numpy.testing.assert_allclose(out_on, out_off, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "case",
    ["strided_both_axes", "broadcast", "out_overlaps_a", "mixed_dtypes", "int", "readonly_a"],
)
def test_addmm_layouts_blas_cannot_read_still_give_the_sum(case):
    rng = _rng()
    a = rng.standard_normal((9, 5)).astype(numpy.float32)
    b = rng.standard_normal((5, 7)).astype(numpy.float32)
    out = rng.standard_normal((9, 7)).astype(numpy.float32)
    if case == "strided_both_axes":
        a = rng.standard_normal((18, 10)).astype(numpy.float32)[::2, ::2]
    elif case == "broadcast":
        b = numpy.broadcast_to(rng.standard_normal((1, 7)).astype(numpy.float32), (5, 7))
    elif case == "out_overlaps_a":
        buf = rng.standard_normal((9, 12)).astype(numpy.float32)
        a, out = buf[:, :5], buf[:, 5:12]
    elif case == "mixed_dtypes":
        b = b.astype(numpy.float64)
    elif case == "int":
        a, b, out = (numpy.arange(v.size).reshape(v.shape) for v in (a, b, out))
    elif case == "readonly_a":
        a.flags.writeable = False
    expected = out + a @ b
    blas.addmm_(out, a, b)
    numpy.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_addmm_empty_and_mismatched_shapes():
    out = numpy.ones((3, 4), numpy.float32)
    blas.addmm_(out, numpy.empty((3, 0), numpy.float32), numpy.empty((0, 4), numpy.float32))
    assert numpy.array_equal(out, numpy.ones((3, 4)))  # K = 0 adds nothing
    blas.addmm_(numpy.empty((0, 4), numpy.float32), numpy.empty((0, 2), numpy.float32),
                numpy.ones((2, 4), numpy.float32))  # fmt: skip
    with pytest.raises(ValueError, match="do not give the output"):
        blas.addmm_(out, numpy.ones((3, 2), numpy.float32), numpy.ones((3, 4), numpy.float32))


def _transposed_layouts():
    rng = _rng()
    f = numpy.float32
    yield "t", rng.standard_normal((300, 200)).astype(f).T
    yield "nchw_to_nhwc", rng.standard_normal((4, 24, 16, 16)).astype(f).transpose(0, 2, 3, 1)
    yield "nhwc_to_nchw", rng.standard_normal((4, 16, 16, 24)).astype(f).transpose(0, 3, 1, 2)
    yield "batched", rng.standard_normal((3, 160, 130)).astype(f).transpose(0, 2, 1)
    yield "sliced", rng.standard_normal((310, 220)).astype(f)[3:303, 5:205].T
    yield "reversed_rows", rng.standard_normal((300, 200)).astype(f)[::-1].T
    yield "tall", rng.standard_normal((40000, 8)).astype(f).T
    yield "float64", rng.standard_normal((300, 200)).T  # NumPy's copy: same values
    yield "small", rng.standard_normal((20, 30)).astype(f).T  # under MIN_VALUES: NumPy's copy
    yield "int32", numpy.arange(60000, dtype=numpy.int32).reshape(300, 200).T


@pytest.mark.parametrize("name,src", list(_transposed_layouts()), ids=lambda v: str(v)[:14])
def test_ascontiguous_gives_numpys_bits_in_c_order(name, src):
    out = blas.ascontiguous(src)
    assert out.flags.c_contiguous and out.dtype == src.dtype and out.shape == src.shape
    assert numpy.array_equal(out, src)
    assert not numpy.shares_memory(out, src)
    again = blas.copy(src)
    assert numpy.array_equal(again, src) and not numpy.shares_memory(again, src)


@needs_route
def test_transposing_copy_keeps_every_bit_of_special_values():
    values = numpy.array(
        [numpy.nan, -numpy.nan, numpy.inf, -numpy.inf, -0.0, 0.0, 1e-45, -1e-40, 3.4e38],
        numpy.float32,
    )
    src = numpy.resize(values, 256 * 128).reshape(256, 128)
    src = numpy.ascontiguousarray(src.T).T  # the same values, transposed layout
    dst = numpy.empty(src.shape, numpy.float32)
    assert blas.copy_into(dst, src)
    assert numpy.array_equal(dst.view(numpy.uint32), numpy.asarray(src).copy().view(numpy.uint32))


@needs_route
def test_copy_into_takes_the_route_only_where_it_pays():
    rng = _rng()
    big = rng.standard_normal((256, 256)).astype(numpy.float32).T
    assert blas.copy_into(numpy.empty(big.shape, numpy.float32), big)
    with blas.disabled():
        assert not blas.copy_into(numpy.empty(big.shape, numpy.float32), big)
    contiguous = numpy.ascontiguousarray(big)  # nothing transposed: NumPy's copy
    assert not blas.copy_into(numpy.empty(big.shape, numpy.float32), contiguous)
    f64 = big.astype(numpy.float64)
    assert not blas.copy_into(numpy.empty(big.shape), f64)
    not_c = numpy.empty((256, 512), numpy.float32)[:, :256]  # dst must be C-contiguous
    assert not blas.copy_into(not_c, big)


def test_contiguous_op_and_its_gradient():
    x = gf.randn(300, 200, requires_grad=True)
    y = x.t().contiguous()
    assert y.is_contiguous() and numpy.array_equal(y.detach().numpy(), x.detach().numpy().T)
    g = gf.randn(200, 300)
    (y * g).sum().backward()
    assert x.grad.is_contiguous()
    assert numpy.array_equal(x.grad.numpy(), g.numpy().T)
    assert not numpy.shares_memory(x.grad.numpy(), g.numpy())


def test_leaf_gradient_from_a_transposed_view_is_its_own_contiguous_copy():
    w = gf.randn(256, 128, requires_grad=True)
    upstream = gf.randn(128, 256)
    w.t().backward(upstream)
    assert w.grad.is_contiguous()
    assert numpy.array_equal(w.grad.numpy(), upstream.numpy().T)
    assert not numpy.shares_memory(w.grad.numpy(), upstream.numpy())


@pytest.mark.parametrize("groups,channels", [(1, 32), (2, 64)])
def test_conv_offsets_with_and_without_the_route_agree(groups, channels):
    rng = _rng()
    x = rng.standard_normal((2, channels, 32, 32)).astype(numpy.float32)
    w = rng.standard_normal((32, channels // groups, 3, 3)).astype(numpy.float32)
    g = rng.standard_normal((2, 32, 32, 32)).astype(numpy.float32)
    window = Window((3, 3), (1, 1), (1, 1), (1, 1), (32, 32))
    assert conv_offsets.applies(x, w.shape, window, groups)  # the route that calls addmm_

    def grads():
        tx, tw = gf.tensor(x, requires_grad=True), gf.tensor(w, requires_grad=True)
        y = gf.nn.functional.conv2d(tx, tw, padding=1, groups=groups)
        y.backward(gf.tensor(g))
        return y.detach().numpy(), tx.grad.numpy(), tw.grad.numpy()

    on = grads()
    with blas.disabled():
        off = grads()
    for a, b in zip(on, off):
        numpy.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_environment_switch_turns_the_route_off():
    env = dict(os.environ, GRADFLOW_CBLAS="0")
    code = (
        "import numpy; from gradflow.backend import blas; print(blas.status());"
        "o = numpy.ones((2, 2), numpy.float32); blas.addmm_(o, o.copy(), o.copy()); print(o[0, 0])"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()  # fmt: skip
    assert out[0] == "off" and "GRADFLOW_CBLAS=0" in " ".join(out) and out[-1] == "3.0"


def test_the_openblas_found_is_numpys_among_several(monkeypatch):
    import threadpoolctl

    numpy_lib = os.path.join(os.path.dirname(numpy.__file__) + ".libs", "libscipy_openblas.so")
    pools = [
        {"user_api": "openmp", "internal_api": "openmp", "filepath": "/x/libgomp.so"},
        {"user_api": "blas", "internal_api": "mkl", "filepath": "/x/torch/lib/libmkl.so"},
        {"user_api": "blas", "internal_api": "openblas", "filepath": "/x/scipy/libopenblas.so"},
        {"user_api": "blas", "internal_api": "openblas", "filepath": numpy_lib},
    ]
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: pools)
    assert blas._openblas_file() == (numpy_lib, "")
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: pools[:3])
    assert blas._openblas_file() == ("/x/scipy/libopenblas.so", "")
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: pools[:2])
    path, why = blas._openblas_file()
    assert path is None and "no OpenBLAS" in why and "mkl" in why


@pytest.mark.parametrize("pad", [0, 1])
@pytest.mark.parametrize("shape", [(3, 32, 24, 24), (2, 8, 12, 12, 12), (2, 16, 20, 30)])
def test_channels_last_copy_into_a_padded_frame_gives_numpys_bits(shape, pad):
    from gradflow.ops.window import copy_channels_last

    rng = _rng()
    x = rng.standard_normal(shape).astype(numpy.float32)
    inside = (slice(None),) + tuple(slice(pad, pad + d) for d in shape[2:])
    frames = []
    for off in (False, True):
        frame = numpy.full((shape[0], *(d + 2 * pad for d in shape[2:]), shape[1]), 7.0, "f4")
        with blas.disabled() if off else contextlib.nullcontext():
            copy_channels_last(frame[inside], x)
        frames.append(frame)
    assert numpy.array_equal(frames[0], frames[1])
    assert numpy.array_equal(frames[0][inside], numpy.moveaxis(x, 1, -1))
    border = numpy.ones(frames[0].shape, bool)
    border[inside] = False
    assert (frames[0][border] == 7.0).all()  # the padding is left alone


@pytest.mark.parametrize("make", ["broadcast", "strided_rows", "contiguous_float64"])
def test_copies_allocate_once_for_layouts_omatcopy_does_not_take(make):
    # a buffer allocated for omatcopy and then dropped doubled the peak of a leaf gradient's
    # copy (sum's backward: a broadcast)
    import tracemalloc

    rng = _rng()
    if make == "broadcast":
        a = numpy.broadcast_to(rng.standard_normal((1024, 1)).astype("f4"), (1024, 1024))
    elif make == "strided_rows":
        a = rng.standard_normal((2048, 1024)).astype("f4")[::2]
    else:
        a = rng.standard_normal((1024, 512)).T
    for fn in (blas.copy, blas.ascontiguous):
        tracemalloc.start()
        out = fn(a)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert numpy.array_equal(out, a)
        assert peak < 1.25 * out.nbytes, (fn.__name__, peak, out.nbytes)

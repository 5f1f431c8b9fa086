"""kernels/elementwise.cu through its launchers on the CPU emulation, against NumPy float64."""

import ctypes

import numpy as np
import pytest
from kernel_reference import TOLERANCES, activation, activation_grad, binary_grads

from gradflow.kernels import ACTIVATIONS, SAVES_OUTPUT, activation_bwd, activation_fwd, binary_bwd
from gradflow.kernels.loader import compile_options, kernel_source_dir, read_kernel_source
from gradflow.testing.emulation import EmulationBackend, compile_emulation, unavailable_reason

# 1 and 7 leave most of a block idle, 255 all but one thread; 3000 needs three rounds of the
# grid-stride loop under the fixture's 4-block cap.
SIZES = [1, 7, 255, 3000]
PARAMS = {"negative_slope": 0.2, "alpha": 1.3, "beta": 2.0, "threshold": 3.0}


def _inputs(dtype, n, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 3).astype(dtype)
    x[: min(n, 2)] = 0  # relu'(0), leaky and elu at the kink
    g = rng.standard_normal(n).astype(dtype)
    return x, g


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_fwd_matches_reference(emu, dtype, name, n):
    x, _ = _inputs(dtype, n)
    y = activation_fwd(name, x, backend=emu, **PARAMS)
    assert y.dtype == dtype and y.shape == x.shape
    expected = activation(name, x.astype(np.float64), PARAMS)
    np.testing.assert_allclose(y, expected, **TOLERANCES[dtype])


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_bwd_matches_reference(emu, dtype, name, n):
    x, g = _inputs(dtype, n)
    x64 = x.astype(np.float64)
    saved = activation(name, x64, PARAMS).astype(dtype) if name in SAVES_OUTPUT else x
    gx = activation_bwd(name, saved, g, backend=emu, **PARAMS)
    assert gx.dtype == dtype and gx.shape == g.shape
    if name in SAVES_OUTPUT:  # the kernel sees the rounded output: compare on that footing
        y = saved.astype(np.float64)
        expected = g * (y * (1 - y) if name == "sigmoid" else 1 - y * y)
    else:
        expected = g * activation_grad(name, x64, PARAMS)
    np.testing.assert_allclose(gx, expected, **TOLERANCES[dtype])


def test_activation_defaults_are_pytorchs(emu):
    x = np.array([-2.0, -0.5, 0.5, 30.0])
    g = np.ones(4)
    leaky = activation_bwd("leaky_relu", x, g, backend=emu)
    np.testing.assert_allclose(leaky, [0.01, 0.01, 1, 1])
    softplus = activation_bwd("softplus", x, g, backend=emu)  # beta=1, threshold=20
    np.testing.assert_allclose(softplus, [*(1 / (1 + np.exp(-x[:3]))), 1.0])


def test_activation_bwd_on_multidimensional_and_strided_input(emu, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 10)).astype(dtype)[:, ::2]  # not contiguous: copied
    g = rng.standard_normal((6, 5)).astype(dtype)
    gx = activation_bwd("silu", x, g, backend=emu)
    assert gx.shape == (6, 5)
    np.testing.assert_allclose(
        gx, g * activation_grad("silu", x.astype(np.float64)), **TOLERANCES[dtype]
    )


def test_activation_on_empty_array(emu):
    out = activation_bwd("relu", np.empty((0, 3)), np.empty((0, 3)), backend=emu)
    assert out.shape == (0, 3)


def test_extreme_inputs_stay_finite(emu, dtype):
    x = np.array([-1e4, -100.0, 100.0, 1e4], dtype=dtype)
    g = np.ones(4, dtype=dtype)
    for name in ("gelu_erf", "gelu_tanh", "silu", "softplus", "elu"):
        gx = activation_bwd(name, x, g, backend=emu)
        assert np.all(np.isfinite(gx)), name
        np.testing.assert_allclose(gx[[0, 3]], [0.0, 1.0], atol=1e-6, err_msg=name)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("op", ["mul", "div", "pow"])
def test_binary_bwd_matches_reference(emu, dtype, op, n):
    rng = np.random.default_rng(2)
    a = rng.uniform(0.5, 2.0, n).astype(dtype)
    b = rng.uniform(-2.0, 2.0, n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    out = np.power(a, b) if op == "pow" else None
    ga, gb = binary_bwd(op, a, b, g, out=out, backend=emu)
    ea, eb = binary_grads(op, a.astype(np.float64), b.astype(np.float64), g.astype(np.float64))
    np.testing.assert_allclose(ga, ea, **TOLERANCES[dtype])
    np.testing.assert_allclose(gb, eb, **TOLERANCES[dtype])


def test_pow_bwd_follows_pytorch_at_zero_base_and_exponent(emu):
    a = np.array([0.0, 0.0, 0.0, 2.0, -1.0])
    b = np.array([2.0, 0.0, -1.0, 0.0, 2.0])
    g = np.ones(5)
    ga, gb = binary_bwd("pow", a, b, g, backend=emu)  # out recomputed in the kernel
    np.testing.assert_array_equal(ga[:2], [0.0, 0.0])  # b == 0 -> 0, b = 2: 2 * 0^1 = 0
    assert ga[3] == 0.0 and ga[4] == -2.0
    assert gb[0] == 0.0 and gb[1] == 0.0  # a == 0, b >= 0 -> 0
    assert np.isnan(gb[2]) or np.isinf(gb[2])  # a == 0, b < 0: inf * log(0), as in PyTorch
    assert np.isnan(gb[4])  # log of a negative base


def test_binary_bwd_computes_only_what_is_needed(emu, dtype):
    a, b, g = (np.full(9, v, dtype=dtype) for v in (2.0, 4.0, 1.0))
    ga, gb = binary_bwd("div", a, b, g, need_a=False, backend=emu)
    assert ga is None
    np.testing.assert_allclose(gb, -2.0 / 16)
    ga, gb = binary_bwd("mul", a, b, g, need_b=False, backend=emu)
    assert gb is None
    np.testing.assert_allclose(ga, 4.0)
    assert binary_bwd("mul", a, b, g, need_a=False, need_b=False, backend=emu) == (None, None)


def _check_error(exc, pattern, fn, *args, **kwargs):
    with pytest.raises(exc, match=pattern):
        fn(*args, **kwargs)


def test_activation_errors(emu):
    x = np.zeros(4, np.float32)
    _check_error(
        ValueError,
        r"activation_bwd: unknown activation 'gelu'; expected one of",
        activation_bwd,
        "gelu",
        x,
        x,
        backend=emu,
    )
    _check_error(
        ValueError,
        r"activation_fwd: softplus needs a nonzero beta",
        activation_fwd,
        "softplus",
        x,
        beta=0,
        backend=emu,
    )
    _check_error(
        TypeError,
        r"activation_fwd: argument 'x' is a list; expected a numpy.ndarray",
        activation_fwd,
        "relu",
        [1.0],
        backend=emu,
    )
    _check_error(
        TypeError,
        r"argument 'x' has shape \(4,\) and dtype int64; expected float32 or",
        activation_fwd,
        "relu",
        np.zeros(4, np.int64),
        backend=emu,
    )
    _check_error(
        TypeError,
        r"argument 'grad_out' has shape \(4,\) and dtype float64; expected "
        r"dtype float32 like 'saved'",
        activation_bwd,
        "relu",
        x,
        x.astype(np.float64),
        backend=emu,
    )
    _check_error(
        ValueError,
        r"argument 'grad_out' has shape \(5,\) and dtype float32; expected "
        r"shape \(4,\) \(the shape of 'saved'\)",
        activation_bwd,
        "relu",
        x,
        np.zeros(5, np.float32),
        backend=emu,
    )


def test_binary_bwd_errors(emu):
    x = np.zeros(4)
    _check_error(
        ValueError,
        r"binary_bwd: unknown op 'add'; expected one of \('mul', 'div', 'pow'\)",
        binary_bwd,
        "add",
        x,
        x,
        x,
        backend=emu,
    )
    _check_error(
        ValueError,
        r"binary_bwd: 'out' is used only by op 'pow', not 'mul'",
        binary_bwd,
        "mul",
        x,
        x,
        x,
        out=x,
        backend=emu,
    )
    _check_error(
        ValueError,
        r"argument 'b' has shape \(1,\) and dtype float64; expected shape "
        r"\(4,\) \(the shape of 'a'; broadcast the operands first\)",
        binary_bwd,
        "mul",
        x,
        np.zeros(1),
        x,
        backend=emu,
    )
    _check_error(
        TypeError,
        r"binary_bwd: argument 'out' is a float; expected a numpy.ndarray",
        binary_bwd,
        "pow",
        x,
        x,
        x,
        out=1.0,
        backend=emu,
    )


def test_device_mismatch_is_reported(emu):
    class OnOtherDevice(np.ndarray):
        pass

    class TwoDevices(type(emu)):
        def device_of(self, x):
            return "cpu:1" if isinstance(x, OnOtherDevice) else "cpu"

    x = np.zeros(4)
    other = x.view(OnOtherDevice)
    _check_error(
        ValueError,
        r"activation_bwd: argument 'grad_out' is on device cpu:1 but "
        r"'saved' is on device cpu; move them to one device",
        activation_bwd,
        "relu",
        x,
        other,
        backend=TwoDevices(),
    )


# ---- the 16-byte vector path (VEC_GRID_STRIDE in common.cuh) and its scalar fallback ----------
#
# The kernels load 16-byte vectors (4 float32 or 2 float64 lanes) when every pointer is 16-byte
# aligned, and run element by element otherwise; the last n % lanes elements are always scalar.
# These sizes leave every tail length for both dtypes (float32: n % 4 = 1, 2, 3; float64: odd
# n), include n below one vector and n = 0, and 9001 goes round the loops several times: the
# fixture's 4 blocks of 256 threads take 4096 float32 (2048 float64) per round as vectors.
VECTOR_BYTES = 16
VEC_SIZES = [0, 1, 2, 3, 5, 6, 7, 8, 9001]
PLACEMENTS = ["aligned", "all_misaligned", "last_misaligned"]


def _lanes(dtype):
    return VECTOR_BYTES // np.dtype(dtype).itemsize


def _place(values, misaligned):
    """A contiguous copy of ``values`` that starts on a 16-byte boundary, or one element past
    one (a view into a larger array), checked either way (an empty array has no address to
    check: the launchers return before any launch)."""
    values = np.asarray(values)
    buf = np.zeros(values.size + _lanes(values.dtype) + 1, values.dtype)
    start = (-buf.ctypes.data % VECTOR_BYTES) // values.itemsize + int(misaligned)
    placed = buf[start : start + values.size]
    placed[...] = values
    assert placed.flags.c_contiguous
    if values.size:
        assert (placed.ctypes.data % VECTOR_BYTES != 0) == misaligned, "placement not as intended"
    return placed


def _placed_inputs(arrays, placement):
    """``arrays`` placed per ``placement``: all aligned, all misaligned, or only the last one."""
    last = len(arrays) - 1
    return [
        _place(x, placement == "all_misaligned" or (placement == "last_misaligned" and i == last))
        for i, x in enumerate(arrays)
    ]


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_fwd_vector_and_scalar_paths(emu, dtype, name, placement):
    for n in VEC_SIZES:
        x, _ = _inputs(dtype, n, seed=n)
        (xp,) = _placed_inputs([x], placement)
        y = activation_fwd(name, xp, backend=emu, **PARAMS)
        assert y.shape == (n,) and y.ctypes.data % VECTOR_BYTES == 0
        expected = activation(name, x.astype(np.float64), PARAMS)
        np.testing.assert_allclose(y, expected, **TOLERANCES[dtype], err_msg=f"n={n}")


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_bwd_vector_and_scalar_paths(emu, dtype, name, placement):
    for n in VEC_SIZES:
        x, g = _inputs(dtype, n, seed=n)
        x64 = x.astype(np.float64)
        saved = activation(name, x64, PARAMS).astype(dtype) if name in SAVES_OUTPUT else x
        saved_p, g_p = _placed_inputs([saved, g], placement)
        gx = activation_bwd(name, saved_p, g_p, backend=emu, **PARAMS)
        assert gx.shape == (n,)
        if name in SAVES_OUTPUT:
            y = saved.astype(np.float64)
            expected = g * (y * (1 - y) if name == "sigmoid" else 1 - y * y)
        else:
            expected = g * activation_grad(name, x64, PARAMS)
        np.testing.assert_allclose(gx, expected, **TOLERANCES[dtype], err_msg=f"n={n}")


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("op", ["mul", "div", "pow"])
def test_binary_bwd_vector_and_scalar_paths(emu, dtype, op, placement):
    for n in VEC_SIZES:
        rng = np.random.default_rng(n)
        a = rng.uniform(0.5, 2.0, n).astype(dtype)
        b = rng.uniform(-2.0, 2.0, n).astype(dtype)
        g = rng.standard_normal(n).astype(dtype)
        ea, eb = binary_grads(op, a.astype(np.float64), b.astype(np.float64), g.astype(np.float64))
        # pow with out given, and recomputed (out=None); a None gradient is a null pointer
        outs = [np.power(a, b), None] if op == "pow" else [None]
        for out in outs:
            inputs = [a, b, g] if out is None else [a, b, out, g]
            placed = _placed_inputs(inputs, placement)
            pa, pb, pg = placed[0], placed[1], placed[-1]
            pout = None if out is None else placed[2]
            for need_a, need_b in [(True, True), (True, False), (False, True)]:
                ga, gb = binary_bwd(
                    op, pa, pb, pg, out=pout, need_a=need_a, need_b=need_b, backend=emu
                )
                where = f"n={n} out={out is not None} need_a={need_a} need_b={need_b}"
                assert (ga is None) != need_a and (gb is None) != need_b, where
                if need_a:
                    np.testing.assert_allclose(ga, ea, **TOLERANCES[dtype], err_msg=where)
                if need_b:
                    np.testing.assert_allclose(gb, eb, **TOLERANCES[dtype], err_msg=where)


def _emulated(source, dtype):
    return compile_emulation(source, compile_options(dtype), dtype)


def _common_source():
    text = (kernel_source_dir() / "common.cuh").read_text()
    return text.replace("#pragma once", "")


# A kernel that runs VEC_GRID_STRIDE with a step adding L (its lane count) to each element it
# covers: the output shows which path ran where, and that each element was visited once.
# `opt` is an optional pointer: null, or checked for alignment like the others.
_LANE_RECORDER = r"""
template <int L>
__device__ __forceinline__ void add_lane_count(long long i, scalar_t* __restrict__ out) {
  for (int k = 0; k < L; ++k) out[i + k] += scalar_t(L);
}
extern "C" __global__ void record_lanes(const scalar_t* __restrict__ in, const scalar_t* opt,
                                        scalar_t* __restrict__ out, long long n) {
  VEC_GRID_STRIDE(n, vec_aligned(in, opt, out), add_lane_count, out);
}
"""


@pytest.mark.parametrize("grid_blocks", [1, 3])
def test_vec_grid_stride_takes_vectors_only_when_all_pointers_are_aligned(emu, dtype, grid_blocks):
    module = _emulated(_common_source() + _LANE_RECORDER, dtype)
    lanes = _lanes(dtype)
    for n in [*VEC_SIZES, 2 * 256 * grid_blocks * lanes + lanes + 1]:  # 3 rounds, a tail
        whole = n // lanes * lanes
        vector_pattern = np.r_[np.full(whole, lanes), np.ones(n - whole)]
        cases = [  # (misaligned in, opt, out; opt is None), path expected
            ((False, False, False, True), vector_pattern),
            ((False, False, False, False), vector_pattern),
            ((True, False, False, True), np.ones(n)),
            ((False, True, False, False), np.ones(n)),
            ((False, False, True, True), np.ones(n)),
        ]
        for (mis_in, mis_opt, mis_out, opt_null), expected in cases:
            x = _place(np.zeros(n, dtype), mis_in)
            opt = None if opt_null else _place(np.zeros(n, dtype), mis_opt)
            out = _place(np.zeros(n, dtype), mis_out)
            args = (x, opt, out, np.int64(n))
            module.launch("record_lanes", (grid_blocks, 1, 1), (256, 1, 1), args)
            where = f"n={n} misaligned={(mis_in, mis_opt, mis_out)} opt_null={opt_null}"
            np.testing.assert_array_equal(out, expected, err_msg=where)


# Every elementwise kernel, compiled with its VEC_GRID_STRIDE wrapped to report whether the
# vector path was chosen: each pointer argument alone, misaligned, must switch it off. A dry
# run (gf_probe_run = 0) reports the choice without touching memory, so a kernel that would
# wrongly take the vector path fails its assertion here instead of crashing the test process.
_PATH_PROBE = r"""
extern "C" {
int gf_probe_vector_path = -1;
int gf_probe_run = 1;
}
#define PROBED_GRID_STRIDE(n, aligned, step, ...)                                  \
  do {                                                                             \
    if (threadIdx.x == 0 && blockIdx.x == 0) gf_probe_vector_path = (aligned) ? 1 : 0; \
    if (gf_probe_run) VEC_GRID_STRIDE(n, aligned, step, __VA_ARGS__);              \
  } while (0)
"""
_KERNEL_POINTERS = {
    **{f"{name}_fwd": ("in", "out") for name in ACTIVATIONS},
    **{f"{name}_bwd": ("in", "in", "out") for name in ACTIVATIONS},
    "mul_bwd": ("in", "in", "in", "opt_out", "opt_out"),
    "div_bwd": ("in", "in", "in", "opt_out", "opt_out"),
    "pow_bwd": ("in", "in", "opt_in", "in", "opt_out", "opt_out"),
}


@pytest.fixture(scope="module", params=[np.float32, np.float64], ids=["f32", "f64"])
def probed(request):
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    source = read_kernel_source("elementwise")
    call = "VEC_GRID_STRIDE(n, vec_aligned("
    assert call in source
    # Each kernel sets the flag, or its test finds it still at -1.
    module = _emulated(_PATH_PROBE + source.replace(call, "PROBED_" + call[4:]), request.param)
    assert set(module.signatures) == set(_KERNEL_POINTERS), "a kernel without pointer kinds"
    return module, np.dtype(request.param)


def _probe_launch(module, dtype, kernel, n, misaligned=None, null=(), run=True):
    """Launches ``kernel`` on n elements with pointer number ``misaligned`` one element off and
    those in ``null`` null (a dry run unless ``run``); returns (1 if it chose the vector path
    else 0, its outputs)."""
    pointers = _KERNEL_POINTERS[kernel]
    flag = ctypes.c_int.in_dll(module.library, "gf_probe_vector_path")
    flag.value = -1
    ctypes.c_int.in_dll(module.library, "gf_probe_run").value = int(run)
    rng = np.random.default_rng(3)
    arrays = [
        None if i in null else _place(rng.uniform(0.5, 2.0, n).astype(dtype), i == misaligned)
        for i in range(len(pointers))
    ]
    params = (dtype.type(0.5), dtype.type(3.0)) if kernel[:-4] in ACTIVATIONS else ()
    module.launch(kernel, (2, 1, 1), (256, 1, 1), (*arrays, np.int64(n), *params))
    outputs = [x for x, kind in zip(arrays, pointers) if kind.endswith("out") and x is not None]
    return flag.value, outputs


@pytest.mark.parametrize("kernel", sorted(_KERNEL_POINTERS))
def test_each_kernel_checks_every_pointer_for_the_vector_path(probed, kernel):
    module, dtype = probed
    n = 4 * 256 * _lanes(dtype) + 3  # two rounds of the 2-block grid, and a tail
    path, reference = _probe_launch(module, dtype, kernel, n)
    assert path == 1, "all pointers aligned: the vector path"
    pointers = _KERNEL_POINTERS[kernel]
    for i in range(len(pointers)):
        path, _ = _probe_launch(module, dtype, kernel, n, misaligned=i, run=False)
        assert path == 0, f"pointer {i} misaligned: the scalar path"
        _, outputs = _probe_launch(module, dtype, kernel, n, misaligned=i)
        for got, want in zip(outputs, reference):  # the same per-element code: the same bits
            np.testing.assert_array_equal(got, want, err_msg=f"pointer {i} misaligned")
    for i, kind in enumerate(pointers):  # a null optional pointer counts as aligned
        if kind.startswith("opt"):
            path, _ = _probe_launch(module, dtype, kernel, n, null=(i,), run=False)
            assert path == 1, f"pointer {i} null: still the vector path"


class _GridRecorder(EmulationBackend):
    def __init__(self):
        super().__init__(max_grid_blocks=1000)
        self.grids = []

    def launch(self, family, dtype, kernel, grid, block, args, device):
        self.grids.append(grid)
        super().launch(family, dtype, kernel, grid, block, args, device)


def test_launchers_size_the_grid_for_vectors_when_aligned(emu, dtype):
    recorder = _GridRecorder()
    n = 256 * 8 + 1
    vectors = -(-n // _lanes(dtype))
    vector_blocks, scalar_blocks = -(-vectors // 256), 9
    x = _place(np.ones(n, dtype), misaligned=False)
    x_off = _place(np.ones(n, dtype), misaligned=True)
    activation_fwd("relu", x, backend=recorder)
    activation_fwd("relu", x_off, backend=recorder)
    binary_bwd("mul", x, x, x, backend=recorder)
    binary_bwd("mul", x, x, x_off, need_b=False, backend=recorder)
    blocks = [grid[0] for grid in recorder.grids]
    assert blocks == [vector_blocks, scalar_blocks, vector_blocks, scalar_blocks]

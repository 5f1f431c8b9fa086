"""kernels/attention.cu: the launchers on the CPU emulation against NumPy float64, the op's
kernel route (gradflow/ops/attention.py) against its array path, and its cuda variant, on the
CuPy stand-in in CI (GRADFLOW_CUDA_STANDIN=1 pytest -m gpu) or a GPU, against the cpu op."""

import numpy as np
import pytest
from kernel_reference import TOLERANCES

import gradflow
import gradflow.nn.functional as F
from gradflow.kernels import attn_softmax_bwd, attn_softmax_fwd, dispatch
from gradflow.kernels.attention import (
    attn_flash_bwd,
    attn_flash_fwd,
    flash_supports,
    mask_layout,
    row_threads,
)
from gradflow.testing import standin
from gradflow.testing.emulation import EmulationBackend, route_kernels, unavailable_reason

BATCH, L = (2, 3), 6
LENGTHS = [1, 7, 33, 257]  # one key; odd; past one warp; past the 256-thread block (threads loop)


def softmax_reference(s, scale, mask=None, causal=False):
    """PyTorch's masked softmax of scale * s (+ additive mask) in float64; all-masked rows 0."""
    x = s.astype(np.float64) * scale
    keep = np.ones(s.shape, bool)
    if mask is not None and mask.dtype == bool:
        keep &= np.broadcast_to(mask, s.shape)
    elif mask is not None:
        x = x + mask
    if causal:
        keep &= np.tri(*s.shape[-2:], dtype=bool)
    keep &= ~np.isneginf(x)
    x = np.where(keep, x, -np.inf)
    m = x.max(axis=-1, keepdims=True)
    m[~np.isfinite(m)] = 0
    e = np.where(keep, np.exp(x - m), 0.0)
    total = e.sum(axis=-1, keepdims=True)
    total[total == 0] = 1
    return e / total


def softmax_grad_reference(p, dp, drop=None, drop_scale=1.0):
    """dS = P * (g - rowsum(g * P)), g = dP with dropout applied, in float64."""
    p = p.astype(np.float64)
    g = dp.astype(np.float64)
    if drop is not None:
        g = np.where(drop, g * drop_scale, 0.0)
    return p * (g - (g * p).sum(axis=-1, keepdims=True))


def _masks(kind, dtype, n_keys, rng):
    """(attn_mask, is_causal) for a mask kind, broadcastable to (*BATCH, L, n_keys)."""
    if kind == "none":
        return None, False
    if kind == "causal":
        return None, True
    if kind == "bool_rows":  # (L, S) shared by batch and heads; query 1 sees no key at all
        mask = rng.random((L, n_keys)) > 0.3
        mask[1] = False
        return mask, False
    if kind == "bool_padding":  # (B, 1, 1, S): key padding per batch element, one all-masked
        mask = rng.random((BATCH[0], 1, 1, n_keys)) > 0.4
        mask[1] = False
        return mask, False
    if kind == "additive":  # (H, 1, S) with -inf places and a row of all -inf
        mask = rng.standard_normal((BATCH[1], 1, n_keys)).astype(dtype)
        mask[0, 0, ::3] = -np.inf
        mask[2] = -np.inf
        return mask, False
    raise AssertionError(kind)


MASK_KINDS = ["none", "bool_rows", "bool_padding", "causal", "additive"]


def _scores(dtype, n_keys, rng, scale=3.0):
    return (rng.standard_normal((*BATCH, L, n_keys)) * scale).astype(dtype)


@pytest.mark.parametrize("n_keys", LENGTHS)
@pytest.mark.parametrize("kind", MASK_KINDS)
def test_softmax_fwd_matches_reference(emu, dtype, kind, n_keys):
    rng = np.random.default_rng(n_keys)
    s = _scores(dtype, n_keys, rng)
    mask, causal = _masks(kind, dtype, n_keys, rng)
    expected = softmax_reference(s, 0.7, mask, causal)
    p, pd = attn_softmax_fwd(s, 0.7, attn_mask=mask, is_causal=causal, backend=emu)
    assert p is s and pd is None and p.dtype == dtype
    np.testing.assert_allclose(p, expected, **TOLERANCES[dtype])
    assert np.all(p[expected == 0] == 0)  # masked places are exactly 0, no NaN anywhere
    assert np.isfinite(p).all()
    sums = p.sum(axis=-1)
    np.testing.assert_allclose(sums[expected.sum(axis=-1) > 0], 1, rtol=1e-5)


@pytest.mark.parametrize("n_keys", [7, 257])
def test_softmax_fwd_dropout_writes_the_dropped_weights(emu, dtype, n_keys):
    rng = np.random.default_rng(1)
    s = _scores(dtype, n_keys, rng)
    mask, _ = _masks("bool_rows", dtype, n_keys, rng)
    drop = rng.random(s.shape) >= 0.3
    plain, _ = attn_softmax_fwd(s.copy(), 0.5, attn_mask=mask, backend=emu)
    k = dtype.type(1 / 0.7)
    p, pd = attn_softmax_fwd(
        s, 0.5, attn_mask=mask, dropout_mask=drop, dropout_scale=k, backend=emu
    )
    np.testing.assert_array_equal(p, plain)  # P itself is not dropped
    np.testing.assert_array_equal(pd, np.where(drop, p * k, 0))
    _, none_kept = attn_softmax_fwd(
        s.copy(), 0.5, dropout_mask=drop, dropout_scale=dtype.type(0), backend=emu
    )
    assert not none_kept.any()  # dropout_p = 1


@pytest.mark.parametrize("n_keys", LENGTHS)
@pytest.mark.parametrize("dropout", [False, True])
def test_softmax_bwd_matches_reference(emu, dtype, n_keys, dropout):
    rng = np.random.default_rng(2)
    mask, _ = _masks("bool_rows", dtype, n_keys, rng)
    p = softmax_reference(_scores(dtype, n_keys, rng), 1.0, mask).astype(dtype)
    dp = rng.standard_normal(p.shape).astype(dtype)
    drop = rng.random(p.shape) >= 0.25 if dropout else None
    k = dtype.type(1 / 0.75 if dropout else 1)
    expected = softmax_grad_reference(p, dp, drop, k)
    ds, raw, pd = attn_softmax_bwd(
        p, dp, 0.125, dropout_mask=drop, dropout_scale=k, write_unscaled=True,
        write_dropped=dropout, backend=emu,
    )  # fmt: skip
    tol = TOLERANCES[dtype]
    assert ds is dp
    np.testing.assert_allclose(raw, expected, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10)
    np.testing.assert_allclose(ds, expected * 0.125, rtol=tol["rtol"] * 10, atol=tol["atol"])
    assert np.all(ds[p == 0] == 0)  # masked places and all-masked rows get no gradient
    if dropout:
        np.testing.assert_array_equal(pd, np.where(drop, p * k, 0))
    else:
        assert pd is None


def test_softmax_bwd_outputs_only_what_is_asked(emu):
    rng = np.random.default_rng(3)
    p = softmax_reference(_scores(np.float64, 9, rng), 1.0)
    dp = rng.standard_normal(p.shape)
    expected = softmax_grad_reference(p, dp)
    ds, raw, pd = attn_softmax_bwd(p, dp.copy(), backend=emu)  # scale 1: dS itself
    assert raw is None and pd is None
    np.testing.assert_allclose(ds, expected, rtol=1e-12, atol=1e-15)


def test_results_do_not_depend_on_the_grid(emu):
    """One block per row: the grid (here 1 block against 64) changes nothing, bit for bit."""
    rng = np.random.default_rng(4)
    s = _scores(np.float32, 300, rng)
    mask, _ = _masks("additive", np.float32, 300, rng)
    dp = rng.standard_normal(s.shape).astype(np.float32)
    runs = []
    for backend in (EmulationBackend(max_grid_blocks=1), EmulationBackend(max_grid_blocks=64)):
        p, _ = attn_softmax_fwd(s.copy(), 0.3, attn_mask=mask, backend=backend)
        ds, _, _ = attn_softmax_bwd(p, dp.copy(), 0.3, backend=backend)
        runs.append((p, ds))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_softmax_is_stable_for_huge_scores(emu, dtype):
    s = np.array([[1e4, 0.0, -1e4, 1e4 - 1.0]], dtype=dtype)
    p, _ = attn_softmax_fwd(s, 1.0, backend=emu)
    e = np.exp(-1.0)
    np.testing.assert_allclose(p, [[1 / (1 + e), 0, 0, e / (1 + e)]], rtol=1e-6, atol=1e-30)


def test_row_threads_fit_the_row():
    assert [row_threads(n) for n in (0, 1, 32, 33, 200, 256, 257, 10_000)] == [
        32, 32, 32, 64, 256, 256, 256, 256,
    ]  # fmt: skip


# ---- broadcast masks: strides, not an expanded (..., L, S) array ------------------------------


def _layout(mask_shape, shape, itemsize=1):
    strides = tuple(int(s) for s in np.empty(mask_shape, np.bool_).strides)
    return mask_layout(mask_shape, tuple(s * itemsize for s in strides), itemsize, shape)


def test_mask_layout_strides():
    # (L, S) for (2, 3, L, S): batch dims broadcast (stride 0), merged into one
    assert _layout((4, 5), (2, 3, 4, 5)) == (1, 1, 6, 0, 0, 0, 0, 5, 1)
    # (2, 1, 1, S) key padding: stride S over the batch, 0 over heads and queries
    assert _layout((2, 1, 1, 5), (2, 3, 4, 5)) == (1, 2, 3, 0, 0, 5, 0, 0, 1)
    # a full mask: its two batch dims merge into one of stride L*S
    assert _layout((2, 3, 4, 5), (2, 3, 4, 5)) == (1, 1, 6, 0, 0, 0, 20, 5, 1)
    # float64 strides count elements, not bytes
    assert _layout((3, 1, 5), (2, 3, 4, 5), itemsize=8) == (1, 2, 3, 0, 0, 0, 5, 0, 1)
    # five batch dims that do not merge: None (the launcher expands the mask)
    assert _layout((2, 1, 2, 1, 2, 4, 5), (2, 2, 2, 2, 2, 4, 5)) is None
    with pytest.raises(ValueError, match="does not broadcast"):
        _layout((3, 5), (2, 3, 4, 5))


def test_mask_with_many_batch_dims_and_a_strided_mask(emu):
    rng = np.random.default_rng(5)
    s = rng.standard_normal((2, 2, 2, 2, 2, 3, 4))
    mask = rng.random((2, 1, 2, 1, 2, 3, 4)) > 0.3  # five unmergeable batch dims
    p, _ = attn_softmax_fwd(s.copy(), 0.5, attn_mask=mask, backend=emu)
    np.testing.assert_allclose(p, softmax_reference(s, 0.5, mask), rtol=1e-12, atol=1e-15)
    add = rng.standard_normal((4, 3)).T  # a transposed (non-contiguous) additive mask
    s2 = rng.standard_normal((2, 3, 4))
    p, _ = attn_softmax_fwd(s2.copy(), 0.5, attn_mask=add, backend=emu)
    np.testing.assert_allclose(p, softmax_reference(s2, 0.5, add), rtol=1e-12, atol=1e-15)


def test_attention_kernel_errors(emu):
    s = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="not C-contiguous"):
        attn_softmax_fwd(np.zeros((4, 3)).T, 1.0, backend=emu)
    with pytest.raises(ValueError, match=r"expected \(\.\.\., L, S\)"):
        attn_softmax_fwd(np.zeros(4), 1.0, backend=emu)
    with pytest.raises(TypeError, match="expected bool or the scores' dtype"):
        attn_softmax_fwd(s, 1.0, attn_mask=np.zeros((3, 4), np.float32), backend=emu)
    with pytest.raises(TypeError, match="expected bool or the scores' dtype"):
        attn_softmax_fwd(s, 1.0, attn_mask=np.zeros((3, 4), np.int64), backend=emu)
    with pytest.raises(ValueError, match="broadcasts to the scores"):
        attn_softmax_fwd(s, 1.0, attn_mask=np.ones((2, 4), bool), backend=emu)
    with pytest.raises(ValueError, match="dropout_mask"):
        attn_softmax_fwd(s, 1.0, dropout_mask=np.ones((3, 4), bool), backend=emu)
    with pytest.raises(TypeError, match="expected bool"):
        attn_softmax_fwd(s, 1.0, dropout_mask=np.ones(s.shape), backend=emu)
    with pytest.raises(ValueError, match="write_dropped needs a dropout_mask"):
        attn_softmax_bwd(s, s.copy(), write_dropped=True, backend=emu)
    with pytest.raises(ValueError, match="argument 'p'"):
        attn_softmax_bwd(np.zeros((2, 3, 5)), s.copy(), backend=emu)
    with pytest.raises(TypeError, match="expected float32 or float64"):
        attn_softmax_fwd(s.astype(np.float16), 1.0, backend=emu)


# ---- the op's kernel route (emulated) against its array path ----------------------------------

needs_emulation = pytest.mark.skipif(
    unavailable_reason() is not None, reason=str(unavailable_reason())
)

OP_CASES = {  # name: (query, key, value shapes, keyword arguments from rng and dtype)
    "plain": ((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4), lambda rng, dt: {}),
    "causal": ((2, 2, 6, 4), (2, 2, 6, 4), (2, 2, 6, 4), lambda rng, dt: {"is_causal": True}),
    "bool_broadcast": (
        (2, 3, 5, 8), (1, 3, 7, 8), (1, 3, 7, 4),
        lambda rng, dt: {"attn_mask": _all_masked_row(rng.random((2, 1, 5, 7)) > 0.3)},
    ),
    "additive": (
        (2, 3, 5, 8), (2, 3, 33, 8), (2, 3, 33, 4),
        lambda rng, dt: {"attn_mask": rng.standard_normal((3, 1, 33)).astype(dt)},
    ),
    "gqa_scale": (
        (2, 4, 3, 8), (2, 2, 6, 8), (2, 2, 6, 8),
        lambda rng, dt: {"scale": 0.3, "enable_gqa": True},
    ),
    "dropout": ((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4), lambda rng, dt: {"dropout_p": 0.3}),
    # masks with q, k and v of one batch shape, as the tiled kernels need
    "flash_bool": (
        (2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4),
        lambda rng, dt: {"attn_mask": rng.random((5, 7)) > 0.3},
    ),
    "flash_additive": (
        (2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4),
        lambda rng, dt: {"attn_mask": rng.standard_normal((3, 1, 7)).astype(dt)},
    ),
}  # fmt: skip


def _all_masked_row(keep):
    keep[0, 0, 2] = False
    return keep


def _op_inputs(case, dtype, requires=(True, True, True, True)):
    rng = np.random.default_rng(7)
    qs, ks, vs, extra = OP_CASES[case]
    arrays = [rng.standard_normal(s).astype(dtype) for s in (qs, ks, vs)]
    kwargs = extra(rng, dtype)
    key_batch = (*ks[:-3], qs[-3]) if kwargs.get("enable_gqa") else ks[:-2]  # heads repeated
    g = rng.standard_normal((*np.broadcast_shapes(qs[:-2], key_batch), qs[-2], vs[-1]))
    return arrays, kwargs, g.astype(dtype), requires


def _run_op(arrays, kwargs, g, requires, device="cpu"):
    """(output, grads of q, k, v and an additive mask) of one forward and backward."""
    tensors = [gradflow.tensor(a, device=device, requires_grad=r) for a, r in zip(arrays, requires)]
    kwargs = dict(kwargs)
    mask = kwargs.pop("attn_mask", None)
    if mask is not None:
        float_mask = mask.dtype != bool
        mask = gradflow.tensor(mask, device=device, requires_grad=float_mask and requires[3])
        tensors.append(mask)
    gradflow.manual_seed(11)  # the same dropout masks on both routes
    out = F.scaled_dot_product_attention(*tensors[:3], attn_mask=mask, **kwargs)
    out.backward(gradflow.tensor(g, device=device))
    grads = [None if t.grad is None else t.grad.cpu().numpy() for t in tensors]
    return out.detach().cpu().numpy(), grads


class _Recorder:
    """Records the kernels an EmulationBackend launches."""

    def __init__(self, backend):
        self.names = []
        launch = backend.launch

        def recording(family, dtype, kernel, *rest):
            self.names.append(kernel)
            return launch(family, dtype, kernel, *rest)

        backend.launch = recording


def _assert_same(ours, ref, dtype):
    rtol, atol = (1e-4, 1e-5) if dtype == np.float32 else (1e-12, 1e-12)
    for a, b in [(ours[0], ref[0]), *zip(ours[1], ref[1])]:
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


@needs_emulation
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", sorted(OP_CASES))
def test_op_kernel_route_matches_the_array_path(case, dtype):
    arrays, kwargs, g, requires = _op_inputs(case, dtype)
    ref = _run_op(arrays, kwargs, g, requires)
    with route_kernels() as backend:
        recorder = _Recorder(backend)
        ours = _run_op(arrays, kwargs, g, requires)
    assert recorder.names == ["attn_softmax_fwd", "attn_softmax_bwd"]
    _assert_same(ours, ref, dtype)


@needs_emulation
@pytest.mark.parametrize(
    "case, requires, launched",
    [
        ("plain", (False, False, True, False), ["attn_softmax_fwd"]),  # dV only: no softmax bwd
        ("dropout", (False, False, True, False), ["attn_softmax_fwd"]),  # dV from P and mask
        ("dropout", (True, False, True, False), ["attn_softmax_fwd", "attn_softmax_bwd"]),
        ("additive", (False, False, False, True), ["attn_softmax_fwd", "attn_softmax_bwd"]),
        ("additive", (False, True, False, True), ["attn_softmax_fwd", "attn_softmax_bwd"]),
        ("causal", (True, False, False, False), ["attn_softmax_fwd", "attn_softmax_bwd"]),
    ],
)
def test_op_kernel_route_computes_only_the_gradients_asked_for(case, requires, launched):
    arrays, kwargs, g, _ = _op_inputs(case, np.float64)
    ref = _run_op(arrays, kwargs, g, requires)
    with route_kernels() as backend:
        recorder = _Recorder(backend)
        ours = _run_op(arrays, kwargs, g, requires)
    assert recorder.names == launched
    _assert_same(ours, ref, np.float64)


@needs_emulation
def test_op_kernel_route_is_differentiable_twice_over_the_same_saved_arrays():
    """A forward on the kernel route and a backward on the array path (or the reverse) agree:
    both routes save the same arrays."""
    arrays, kwargs, g, requires = _op_inputs("bool_broadcast", np.float64)
    ref = _run_op(arrays, kwargs, g, requires)
    q, k, v = (gradflow.tensor(a, requires_grad=True) for a in arrays)
    mask = gradflow.tensor(kwargs["attn_mask"])
    with route_kernels():
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out.backward(gradflow.tensor(g))  # outside: the array path
    for ours, theirs in zip((q, k, v), ref[1]):
        np.testing.assert_allclose(ours.grad.numpy(), theirs, rtol=1e-12, atol=1e-12)


# ---- the cuda variant: the stand-in in CI, or a GPU --------------------------------------------


def _cuda(test):
    """Marks a test as a cuda variant: run by -m gpu, skipped without a (stand-in) GPU."""
    skip = pytest.mark.skipif(not gradflow.cuda.is_available(), reason="no CUDA GPU visible")
    return pytest.mark.gpu(skip(test))


@_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", sorted(set(OP_CASES) - {"dropout"}))
def test_cuda_op_matches_the_cpu_op(case, dtype):
    arrays, kwargs, g, requires = _op_inputs(case, dtype)
    ref = _run_op(arrays, kwargs, g, requires)
    ours = _run_op(arrays, kwargs, g, requires, device="cuda")
    _assert_same(ours, ref, dtype)


@_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_cuda_dropout_matches_the_array_path_on_cuda(dtype, monkeypatch):
    """The kernels apply the dropout mask CuPy's generator draws, the same draw as the array
    path's (a seed's masks on cuda need not equal NumPy's, so the reference is cuda's array
    path, taken by turning the kernel route off)."""
    import gradflow.ops.attention as attention

    arrays, kwargs, g, requires = _op_inputs("dropout", dtype)
    ours = _run_op(arrays, kwargs, g, requires, device="cuda")
    monkeypatch.setattr(attention, "uses_kernels", lambda array: False)
    ref = _run_op(arrays, kwargs, g, requires, device="cuda")
    _assert_same(ours, ref, dtype)
    assert (ours[0] != 0).any() and np.isfinite(ours[0]).all()


@_cuda
@pytest.mark.skipif(not standin.enabled(), reason="counts need the CuPy stand-in")
@pytest.mark.parametrize("case", ["plain", "causal", "bool_broadcast", "additive", "dropout"])
def test_cuda_route_launches_one_kernel_each_way_and_never_syncs(case, monkeypatch):
    """Forward: two GEMMs and attn_softmax_fwd; backward: four GEMMs and attn_softmax_bwd; no
    host synchronization (the array path's safe softmax syncs twice: boolean-mask writes), and
    fewer CuPy kernels than the array path."""
    import gradflow.ops.attention as attention

    arrays, kwargs, g, _ = _op_inputs(case, np.float32)
    kwargs = dict(kwargs)
    mask = kwargs.pop("attn_mask", None)
    q, k, v = (gradflow.tensor(a, device="cuda", requires_grad=True) for a in arrays)
    if mask is not None:
        mask = gradflow.tensor(mask, device="cuda", requires_grad=mask.dtype != bool)
    grad = gradflow.tensor(g, device="cuda")

    def counts():
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, **kwargs)  # warm-up
        out.backward(grad)
        with standin.counting() as forward:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, **kwargs)
        with standin.counting() as backward:
            out.backward(grad)
        return forward.counts, backward.counts

    forward, backward = counts()
    assert (forward.raw_launches, forward.cublas) == (1, 2), forward
    assert (backward.raw_launches, backward.cublas) == (1, 4), backward
    for c in (forward, backward):
        assert c.syncs == c.h2d == c.d2h == c.get_function == 0, c
    monkeypatch.setattr(attention, "uses_kernels", lambda array: False)
    array_forward, array_backward = counts()
    assert array_forward.raw_launches == array_backward.raw_launches == 0
    assert array_forward.syncs == 2  # what the kernel route saves, beside the passes
    assert forward.kernels < array_forward.kernels and backward.kernels < array_backward.kernels


# ---- the tiled (FlashAttention-style) kernels ------------------------------------------------

FLASH_SHAPES = [  # (L, S, E, Ev): single rows and keys, odd sizes across tile edges, max dims
    (1, 1, 3, 2),
    (5, 7, 8, 4),
    (17, 33, 16, 24),
    (40, 20, 128, 128),
]


def _flash_case(dtype, shape, kind, seed):
    n_query, n_keys, dim, dim_v = shape
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((*BATCH, n_query, dim)).astype(dtype)
    k = rng.standard_normal((*BATCH, n_keys, dim)).astype(dtype)
    v = rng.standard_normal((*BATCH, n_keys, dim_v)).astype(dtype)
    mask, causal = None, kind == "causal"
    if kind == "bool_rows":
        mask = rng.random((n_query, n_keys)) > 0.3
        mask[0] = False  # a query that sees no key
    elif kind == "additive":
        mask = rng.standard_normal((BATCH[1], 1, n_keys)).astype(dtype)
        mask[1, 0, ::2] = -np.inf
    return q, k, v, mask, causal, rng


def attention_reference(q, k, v, g, scale, mask, causal):
    """(out, dq, dk, dv) in float64 from the softmax reference."""
    q, k, v, g = (a.astype(np.float64) for a in (q, k, v, g))
    p = softmax_reference(q @ k.swapaxes(-1, -2), scale, mask, causal)
    ds = softmax_grad_reference(p, g @ v.swapaxes(-1, -2))
    return p @ v, scale * ds @ k, scale * ds.swapaxes(-1, -2) @ q, p.swapaxes(-1, -2) @ g


@pytest.mark.parametrize("kind", ["none", "causal", "bool_rows", "additive"])
@pytest.mark.parametrize("shape", FLASH_SHAPES)
def test_flash_kernels_match_reference(emu, dtype, shape, kind):
    q, k, v, mask, causal, rng = _flash_case(dtype, shape, kind, seed=sum(shape))
    g = rng.standard_normal((*BATCH, shape[0], shape[3])).astype(dtype)
    o, stats = attn_flash_fwd(q, k, v, 0.4, attn_mask=mask, is_causal=causal, backend=emu)
    grads = attn_flash_bwd(q, k, v, o, g, stats, 0.4, attn_mask=mask, is_causal=causal,
                           backend=emu)  # fmt: skip
    expected = attention_reference(q, k, v, g, 0.4, mask, causal)
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-11, "atol": 1e-12}
    assert stats.shape == (2, np.prod(BATCH) * shape[0])
    for ours, ref in zip((o, *grads), expected):
        assert ours.dtype == dtype and ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, **tol)
    if kind == "bool_rows":  # the query with no key: zero output and no gradient
        assert not o[..., 0, :].any() and not grads[0][..., 0, :].any()


def test_flash_results_do_not_depend_on_the_grid(emu):
    q, k, v, mask, causal, rng = _flash_case(np.float32, (17, 33, 16, 24), "additive", seed=9)
    g = rng.standard_normal((*BATCH, 17, 24)).astype(np.float32)
    runs = []
    for backend in (EmulationBackend(max_grid_blocks=1), EmulationBackend(max_grid_blocks=64)):
        o, stats = attn_flash_fwd(q, k, v, 0.4, attn_mask=mask, backend=backend)
        runs.append((o, stats, *attn_flash_bwd(q, k, v, o, g, stats, 0.4, attn_mask=mask,
                                               backend=backend)))  # fmt: skip
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_flash_supports_and_errors(emu):
    assert flash_supports((2, 5, 8), (2, 7, 8), (2, 7, 4))
    assert flash_supports((5, 128), (7, 128), (7, 128))
    assert not flash_supports((2, 5, 8), (1, 7, 8), (1, 7, 4))  # broadcast batch dims
    assert not flash_supports((5, 129), (7, 129), (7, 4))  # head dim past FLASH_MAX_DIM
    assert not flash_supports((5, 8), (0, 8), (0, 4))  # no keys
    q = np.zeros((2, 5, 8))
    with pytest.raises(ValueError, match="one batch shape"):
        attn_flash_fwd(q, np.zeros((1, 7, 8)), np.zeros((1, 7, 4)), 1.0, backend=emu)
    k, v = np.zeros((2, 7, 8)), np.zeros((2, 7, 4))
    o, stats = attn_flash_fwd(q, k, v, 1.0, backend=emu)
    np.testing.assert_allclose(o, 0)  # zero values: any weights give 0
    with pytest.raises(ValueError, match="argument 'dout'"):
        attn_flash_bwd(q, k, v, o, np.zeros((2, 5, 3)), stats, 1.0, backend=emu)
    with pytest.raises(ValueError, match="argument 'stats'"):
        attn_flash_bwd(q, k, v, o, o, stats[:, :3], 1.0, backend=emu)


FLASH_OP_CASES = ["plain", "causal", "gqa_scale", "flash_bool", "flash_additive"]
NO_MASK_GRAD = (True, True, True, False)
FLASH_KERNELS = ["attn_flash_fwd", "attn_flash_bwd_dq", "attn_flash_bwd_dkv"]


@needs_emulation
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", FLASH_OP_CASES)
def test_op_flash_route_matches_the_array_path(case, dtype):
    arrays, kwargs, g, _ = _op_inputs(case, dtype)
    ref = _run_op(arrays, kwargs, g, NO_MASK_GRAD)
    with route_kernels() as backend, dispatch.forced("attention", "flash"):
        recorder = _Recorder(backend)
        ours = _run_op(arrays, kwargs, g, NO_MASK_GRAD)
    assert recorder.names == FLASH_KERNELS
    _assert_same(ours, ref, dtype)


@needs_emulation
@pytest.mark.parametrize(
    "case, requires",
    [
        ("dropout", (True, True, True, False)),  # dropout's mask would be an L x S array
        ("flash_additive", (True, True, True, True)),  # so would the mask's gradient
        ("bool_broadcast", (True, True, True, False)),  # k, v broadcast over the batch
    ],
)
def test_op_flash_route_falls_back_to_the_row_kernels(case, requires):
    arrays, kwargs, g, _ = _op_inputs(case, np.float64)
    ref = _run_op(arrays, kwargs, g, requires)
    with route_kernels() as backend, dispatch.forced("attention", "flash"):
        recorder = _Recorder(backend)
        ours = _run_op(arrays, kwargs, g, requires)
    assert recorder.names == ["attn_softmax_fwd", "attn_softmax_bwd"]
    _assert_same(ours, ref, np.float64)


def test_the_dispatch_default_is_the_row_kernels():
    assert dispatch.DEFAULTS["attention"] == "rows"
    assert dispatch.choose("attention", 1 << 40, np.zeros(1)) == "rows"


@_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", FLASH_OP_CASES)
def test_cuda_flash_route_matches_the_cpu_op(case, dtype):
    arrays, kwargs, g, _ = _op_inputs(case, dtype)
    ref = _run_op(arrays, kwargs, g, NO_MASK_GRAD)
    with dispatch.forced("attention", "flash"):
        ours = _run_op(arrays, kwargs, g, NO_MASK_GRAD, device="cuda")
    _assert_same(ours, ref, dtype)


@_cuda
@pytest.mark.skipif(not standin.enabled(), reason="counts need the CuPy stand-in")
def test_cuda_flash_route_launches_no_gemm():
    arrays, kwargs, g, _ = _op_inputs("causal", np.float32)
    q, k, v = (gradflow.tensor(a, device="cuda", requires_grad=True) for a in arrays)
    grad = gradflow.tensor(g, device="cuda")
    with dispatch.forced("attention", "flash"):
        F.scaled_dot_product_attention(q, k, v, **kwargs).backward(grad)  # warm-up
        with standin.counting() as forward:
            out = F.scaled_dot_product_attention(q, k, v, **kwargs)
        with standin.counting() as backward:
            out.backward(grad)
    assert (forward.counts.raw_launches, forward.counts.cublas) == (1, 0)
    assert (backward.counts.raw_launches, backward.counts.cublas) == (2, 0)
    assert forward.counts.syncs == backward.counts.syncs == 0


# ---- gradflow.bench.tune's attention choice ---------------------------------------------------


@_cuda
def test_tune_times_both_attention_sides_after_checking_they_agree():
    from gradflow.bench import tune

    flash, rows = tune._attention_sides((2, 5, 7, 8))
    assert flash is not tune._never  # they agreed
    for a, b in zip(flash(), rows()):
        np.testing.assert_allclose(a.cpu().numpy(), b.cpu().numpy(), rtol=1e-4, atol=1e-5)
    assert tune._median_time(tune._never, 5, None) == float("inf")
    assert tune.decide({"small": [(float("inf"), 1.0)]}, "attention") == {"small": "rows"}
    assert tune.decide({"large": [(0.5, 1.0)]}, "attention") == {"large": "flash"}


@_cuda
def test_tune_keeps_the_ops_measured_before_an_interruption(monkeypatch):
    from gradflow.bench import tune

    def measure_op(op, *rest):
        if op == "attention":
            raise KeyboardInterrupt
        return {"small": [((1,), (1.0, 2.0))]}

    monkeypatch.setattr(tune, "_measure_op", measure_op)
    results, complete = tune.measure(1)
    assert not complete and set(results) == set(tune.CASES) - {"attention"}

"""The cpu speed routes of smooth_l1_loss/huber_loss (arithmetic selects, the reduction in
the op), binary_cross_entropy_with_logits (one exp for the loss and the saved sigmoid),
pad's copied modes (slices, no numpy.add.at), embedding_bag (middle-axis sums, scatter-add
by rounds) and index_add (fancy-indexed adds): values and gradients against torch where it is
installed, against float64 NumPy references otherwise, hostile inputs included, and the bits of
numpy.add.at where the old route had them."""

import numpy
import pytest

import gradflow as gf
from gradflow.ops import embedding as E

F = gf.nn.functional


def _grads(fn, *arrays, g=None):
    """fn's value and its inputs' gradients (gradflow), upstream gradient g (ones if None)."""
    ts = [gf.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts)
    out.backward(gf.ones_like(out) if g is None else gf.tensor(g))
    return out.detach().numpy(), [t.grad.numpy() for t in ts]


def _torch_grads(torch, fn, *arrays, g=None):
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts)
    out.backward(torch.ones_like(out) if g is None else torch.tensor(g))
    return out.detach().numpy(), [t.grad.numpy() for t in ts]


def _close(got, want, rtol=1e-5):
    numpy.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 1e-2, equal_nan=True)


def _hostile(rng, shape, dtype=numpy.float32):
    x = rng.standard_normal(shape) * 3
    flat = x.reshape(-1)
    specials = [numpy.nan, numpy.inf, -numpy.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1e30, -1e30]
    flat[: min(flat.size, len(specials))] = specials[: flat.size]
    return x.astype(dtype)


# ---- smooth_l1_loss / huber_loss ---------------------------------------------------------------


def _smooth_l1_reference(d, beta, huber):
    a = numpy.abs(d)
    if huber:
        return numpy.where(a < beta, 0.5 * d * d, beta * (a - 0.5 * beta))
    if beta == 0:
        return a
    return numpy.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta)


def _slope_reference(d, beta, huber):
    if huber:
        return numpy.clip(d, -beta, beta)
    if beta == 0:
        return numpy.nan_to_num(numpy.sign(d), nan=0.0)
    return numpy.clip(d / beta, -1, 1)


@pytest.mark.parametrize("huber", [False, True])
@pytest.mark.parametrize("beta", [0.0, 0.25, 0.3, 1.0, 2.0, 3.7])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_smooth_l1_and_huber_against_float64(huber, beta, reduction, rng):
    if huber and beta == 0:
        return  # huber's delta must be positive
    x, y = rng.standard_normal((2, 7, 9)) * 2
    x[0, :4] = y[0, :4] + numpy.array([beta, -beta, 0.0, beta * 0.999])  # on and near the kink
    loss = (lambda a, b: F.huber_loss(a, b, reduction, delta=beta)) if huber else (
        lambda a, b: F.smooth_l1_loss(a, b, reduction=reduction, beta=beta)
    )  # fmt: skip
    value, (gx, gy) = _grads(loss, x, y)
    per = _smooth_l1_reference(x - y, beta, huber)
    slope = _slope_reference(x - y, beta, huber)
    if reduction == "none":
        want, scale = per, 1.0
    elif reduction == "sum":
        want, scale = per.sum(), 1.0
    else:
        want, scale = per.mean(), 1.0 / per.size
    _close(value, want, 1e-12)
    _close(gx, slope * scale, 1e-12)
    _close(gy, -slope * scale, 1e-12)


@pytest.mark.parametrize("beta", [0.25, 0.5, 1.0, 4.0])
def test_huber_and_power_of_two_smooth_l1_are_torchs_formula_bit_for_bit(beta, rng):
    x = _hostile(rng, (40, 33))
    y = (rng.standard_normal((40, 33)) * 2).astype(numpy.float32)
    d = x - y
    a = numpy.abs(d)
    half, dt = numpy.float32(0.5), numpy.float32(beta)
    with numpy.errstate(invalid="ignore", over="ignore"):
        huber = numpy.where(a < dt, half * d * d, dt * (a - half * dt))
        smooth = numpy.where(a < dt, half * d * d / dt, a - half * dt)
    got = F.huber_loss(gf.tensor(x), gf.tensor(y), "none", delta=beta).numpy()
    numpy.testing.assert_array_equal(got, huber)
    got = F.smooth_l1_loss(gf.tensor(x), gf.tensor(y), reduction="none", beta=beta).numpy()
    numpy.testing.assert_array_equal(got, smooth)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0])
def test_smooth_l1_huber_against_torch_hostile_broadcast_and_0d(reduction, beta, rng):
    torch = pytest.importorskip("torch")
    x = _hostile(rng, (6, 5))
    y = (rng.standard_normal((1, 5)) * 2).astype(numpy.float32)
    g = rng.standard_normal((6, 5)).astype(numpy.float32) if reduction == "none" else None
    cases = [(lambda lib: (lambda a, b: lib.nn.functional.smooth_l1_loss(
        a, b, reduction=reduction, beta=beta)))]  # fmt: skip
    if beta:
        cases.append(lambda lib: (lambda a, b: lib.nn.functional.huber_loss(
            a, b, reduction=reduction, delta=beta)))  # fmt: skip
    for make in cases:
        with pytest.warns(UserWarning):
            got = _grads(make(gf), x, y, g=g)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = _torch_grads(torch, make(torch), x, y, g=g)
        _close(got[0], want[0])
        for a, b in zip(got[1], want[1]):
            _close(a, b)
        # 0-d operands
        x0, y0 = numpy.float32(2.5), numpy.float32(-0.1)
        got = _grads(make(gf), numpy.array(x0), numpy.array(y0))
        want = _torch_grads(torch, make(torch), numpy.array(x0), numpy.array(y0))
        _close(got[0], want[0])
        _close(got[1][0], want[1][0])


def test_huber_weight_and_double_backward_against_torch(rng):
    torch = pytest.importorskip("torch")
    x, y, w = rng.standard_normal((3, 4, 6))
    for reduction in ("none", "sum", "mean"):
        got = _grads(lambda a, b, r=reduction: F.huber_loss(a, b, r, 0.7, gf.tensor(w)), x, y)
        want = _torch_grads(
            torch,
            lambda a, b, r=reduction: torch.nn.functional.huber_loss(a, b, r, 0.7, torch.tensor(w)),
            x, y,
        )  # fmt: skip
        _close(got[0], want[0], 1e-10)
        _close(got[1][0], want[1][0], 1e-10)
    for name, kw in (("smooth_l1_loss", {"beta": 0.5}), ("huber_loss", {"delta": 0.5})):
        gx = gf.tensor(x, requires_grad=True)
        (dx,) = gf.autograd.grad(getattr(F, name)(gx, gf.tensor(y), **kw) * 3, [gx],
                                 create_graph=True)  # fmt: skip
        (dx * dx).sum().backward()
        tx = torch.tensor(x, requires_grad=True)
        (tdx,) = torch.autograd.grad(getattr(torch.nn.functional, name)(
            tx, torch.tensor(y), **kw) * 3, [tx], create_graph=True)  # fmt: skip
        (tdx * tdx).sum().backward()
        _close(dx.detach().numpy(), tdx.detach().numpy(), 1e-10)
        _close(gx.grad.numpy(), tx.grad.numpy(), 1e-10)


# ---- binary_cross_entropy_with_logits ----------------------------------------------------------


def _bce_reference(x, y, w=None, pw=None):
    x, y = x.astype(numpy.float64), y.astype(numpy.float64)
    with numpy.errstate(over="ignore", invalid="ignore"):
        sp = numpy.logaddexp(0, -x)  # log(1 + exp(-x))
        lw = 1 if pw is None else 1 + (pw - 1) * y
        loss = (1 - y) * x + lw * sp
        sig = numpy.exp(-numpy.logaddexp(0, -x))
        dx = sig - y if pw is None else (1 - y) - lw * (1 - sig)
    if w is not None:
        loss, dx = loss * w, dx * w
    return loss, dx


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_with_logits_against_float64(dtype, weighted, rng):
    x = (rng.standard_normal((50, 40)) * 8).astype(dtype)
    x[0, :6] = [-200, -90, -30, 30, 90, 200]
    y = rng.random((50, 40)).astype(dtype)
    y[1] = numpy.round(y[1])
    y[0, :3] = 0  # x = -200, -90, -30: the left tail
    w = rng.random((40,)).astype(dtype) if weighted else None
    value, (gx,) = _grads(
        lambda a: F.binary_cross_entropy_with_logits(
            a, gf.tensor(y), None if w is None else gf.tensor(w), reduction="none"),
        x,
    )  # fmt: skip
    loss, dx = _bce_reference(x, y, w)
    tol = 2e-6 if dtype == numpy.float32 else 1e-10
    numpy.testing.assert_allclose(value, loss, rtol=tol, atol=tol * 1e-3)
    # sigmoid(x) - y cancels where y is near sigmoid(x): an absolute error (|dx| <= 1) ...
    numpy.testing.assert_allclose(gx, dx, rtol=tol, atol=tol * 0.1)
    # ... but where y = 0 the left tail keeps its relative digits (no flush to 0)
    tail = (y == 0) & (x < -20)
    assert tail.sum() >= 3
    tiny = numpy.finfo(dtype).smallest_subnormal * 4
    numpy.testing.assert_allclose(gx[tail], dx[tail].astype(dtype), rtol=tol, atol=tiny)


def test_bce_with_logits_hostile_and_retain_graph_against_torch(rng):
    torch = pytest.importorskip("torch")
    x = _hostile(rng, (8, 9))
    y = rng.random((8, 9)).astype(numpy.float32)
    y[0, :4] = [0.0, 1.0, 0.5, 0.0]
    w = rng.random((9,)).astype(numpy.float32)
    pw = (rng.random((9,)) * 3).astype(numpy.float32)
    for kw in ({}, {"weight": w}, {"pos_weight": pw}, {"weight": w, "pos_weight": pw}):
        for reduction in ("none", "sum", "mean"):
            g = rng.standard_normal((8, 9)).astype(numpy.float32) if reduction == "none" else None

            def make(lib, kw=kw, reduction=reduction):
                extra = {k: lib.tensor(v) for k, v in kw.items()}

                def loss(inp, tgt, reduction=reduction, extra=extra):
                    return lib.nn.functional.binary_cross_entropy_with_logits(
                        inp, tgt, reduction=reduction, **extra)  # fmt: skip

                return loss

            got = _grads(make(gf), x, y, g=g)
            want = _torch_grads(torch, make(torch), x, y, g=g)
            _close(got[0], want[0])
            for a, b in zip(got[1], want[1]):
                _close(a, b)
    # the saved sigmoid is not consumed: a second backward (retain_graph) gives the same
    gx = gf.tensor(x[1:], requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(gx, gf.tensor(y[1:]))
    loss.backward(retain_graph=True)
    first = gx.grad.numpy().copy()
    loss.backward()
    numpy.testing.assert_array_equal(gx.grad.numpy(), 2 * first)
    x0 = gf.tensor(numpy.float32(-3.0), requires_grad=True)  # 0-d
    F.binary_cross_entropy_with_logits(x0, gf.tensor(numpy.float32(0.25))).backward()
    t0 = torch.tensor(numpy.float32(-3.0), requires_grad=True)
    torch.nn.functional.binary_cross_entropy_with_logits(t0, torch.tensor(0.25)).backward()
    _close(x0.grad.numpy(), t0.grad.numpy())


# ---- pad ---------------------------------------------------------------------------------------

_PADS = [
    ((2, 3, 5, 6), (1, 1, 1, 1)),
    ((2, 3, 5, 6), (2, 0, 0, 4)),
    ((2, 3, 5, 6), (5, 5, 4, 4)),
    ((3, 4, 7), (6, 0)),
    ((3, 4, 7), (0, 6)),
    ((3, 4, 7), (0, 0)),
    ((2, 3, 4, 5, 6), (1, 2, 3, 1, 2, 0)),
    ((2, 3, 4, 5, 6), (5, 5, 4, 4, 3, 3)),
    ((5,), (4, 2)),
    ((1, 1, 1, 3), (2, 2, 0, 0)),
]


def _fits(mode, shape, pads):
    most = {"reflect": -1, "circular": 0, "replicate": 10**9}[mode]
    return all(
        max(pads[2 * i], pads[2 * i + 1]) <= shape[-1 - i] + most for i in range(len(pads) // 2)
    )


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_copied_modes_against_numpy_pad_and_adjoint(mode, rng):
    numpy_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    for shape, pads in _PADS:
        if not _fits(mode, shape, pads):
            continue
        x = rng.standard_normal(shape)
        widths = [(0, 0)] * (len(shape) - len(pads) // 2) + [
            (pads[2 * i], pads[2 * i + 1]) for i in range(len(pads) // 2)
        ][::-1]
        want = numpy.pad(x, widths, mode=numpy_mode)
        g = rng.standard_normal(want.shape)
        value, (gx,) = _grads(lambda t, p=pads: F.pad(t, p, mode=mode), x, g=g)
        numpy.testing.assert_array_equal(value, want)
        # the adjoint: <pad(e_i), g> for every basis vector e_i, i.e. each input element's
        # gradient is the sum of g over the padded positions holding a copy of it
        index = numpy.arange(x.size).reshape(shape)
        copies = numpy.pad(index, widths, mode=numpy_mode).reshape(-1)
        reference = numpy.bincount(copies, weights=g.reshape(-1), minlength=x.size)
        numpy.testing.assert_allclose(gx.reshape(-1), reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_copied_modes_against_torch_with_views_and_double_backward(mode, rng):
    torch = pytest.importorskip("torch")
    for shape, pads in _PADS:
        if not _fits(mode, shape, pads) or len(shape) - len(pads) // 2 not in (1, 2):
            continue
        base = rng.standard_normal(shape[:-1] + (2 * shape[-1],)).astype(numpy.float32)
        x = base[..., ::2]  # non-contiguous
        g = None
        got = _grads(lambda t, p=pads: F.pad(t, p, mode=mode) * 1.5, x, g=g)
        want = _torch_grads(torch, lambda t, p=pads: torch.nn.functional.pad(t, p, mode=mode) * 1.5,
                            numpy.ascontiguousarray(x), g=g)  # fmt: skip
        numpy.testing.assert_array_equal(got[0], want[0])
        _close(got[1][0], want[1][0])
    x = rng.standard_normal((2, 3, 4, 5))
    gx = gf.tensor(x, requires_grad=True)
    (dx,) = gf.autograd.grad((F.pad(gx, (2, 1, 1, 3), mode=mode) ** 2).sum(), [gx],
                             create_graph=True)  # fmt: skip
    (dx * dx).sum().backward()
    tx = torch.tensor(x, requires_grad=True)
    (tdx,) = torch.autograd.grad((torch.nn.functional.pad(tx, (2, 1, 1, 3), mode=mode) ** 2)
                                 .sum(), [tx], create_graph=True)  # fmt: skip
    (tdx * tdx).sum().backward()
    _close(dx.detach().numpy(), tdx.detach().numpy(), 1e-12)
    _close(gx.grad.numpy(), tx.grad.numpy(), 1e-12)


def test_pad_reflect_keeps_nan_inf_and_empty_batch(rng):
    x = _hostile(rng, (2, 4, 5))
    g = rng.standard_normal((2, 6, 9)).astype(numpy.float32)
    value, (gx,) = _grads(lambda t: F.pad(t, (2, 2, 1, 1), mode="reflect"), x, g=g)
    numpy.testing.assert_array_equal(value, numpy.pad(x, [(0, 0), (1, 1), (2, 2)], "reflect"))
    assert gx.dtype == numpy.float32 and numpy.isfinite(gx).all()
    empty = gf.tensor(numpy.zeros((0, 3, 4), numpy.float32), requires_grad=True)
    out = F.pad(empty, (1, 1), mode="reflect")
    assert out.shape == (0, 3, 6)
    out.sum().backward()
    assert empty.grad.shape == (0, 3, 4)


# ---- embedding_bag -----------------------------------------------------------------------------


def _add_at_reference(shape, index, values):
    out = numpy.zeros(shape, values.dtype)
    numpy.add.at(out, index, values)
    return out


@pytest.mark.parametrize("width", [1, 2, 5, 64])
@pytest.mark.parametrize("length", [1, 7, 40])
def test_embedding_bag_2d_sums_and_grads_are_add_at_bits(width, length, rng):
    table = rng.standard_normal((30, width)).astype(numpy.float32)
    table[3] = -0.0
    rows = rng.integers(0, 30, (6, length))
    rows[0, 0] = 3
    for padding_idx in (None, 5):
        weight = gf.tensor(table, requires_grad=True)
        out = F.embedding_bag(gf.tensor(rows), weight, mode="sum", padding_idx=padding_idx)
        keep = numpy.ones(rows.size, bool) if padding_idx is None else rows.reshape(-1) != 5
        bags = numpy.repeat(numpy.arange(6), length)[keep]
        flat = rows.reshape(-1)[keep]
        want = _add_at_reference((6, width), bags, table[flat])
        numpy.testing.assert_array_equal(out.detach().numpy(), want)
        assert not numpy.signbit(out.detach().numpy()[want == 0]).any()
        g = rng.standard_normal((6, width)).astype(numpy.float32)
        g[0] = -0.0
        out.backward(gf.tensor(g))
        numpy.testing.assert_array_equal(
            weight.grad.numpy(), _add_at_reference((30, width), flat, g[bags])
        )


def test_embedding_bag_grad_rounds_and_many_repeats_are_add_at_bits(rng):
    width = 8
    table = rng.standard_normal((50, width)).astype(numpy.float32)
    for rows in (
        rng.integers(0, 50, 400),  # a few repeats per row: rounds
        numpy.concatenate([numpy.full(100, 7), rng.integers(0, 50, 100)]),  # > 16: add.at
        rng.permutation(50),  # no repeats
    ):
        offsets = numpy.array([0, 3, 3, rows.size // 2])
        bags = numpy.searchsorted(offsets, numpy.arange(rows.size), side="right") - 1
        psw = rng.standard_normal(rows.size).astype(numpy.float32)
        for mode, weights in (("sum", None), ("mean", None), ("sum", psw)):
            weight = gf.tensor(table, requires_grad=True)
            out = F.embedding_bag(gf.tensor(rows), weight, gf.tensor(offsets), mode=mode,
                                  per_sample_weights=None if weights is None else
                                  gf.tensor(weights))  # fmt: skip
            g = rng.standard_normal(out.shape).astype(numpy.float32)
            out.backward(gf.tensor(g))
            counts = numpy.maximum(numpy.bincount(bags, minlength=4), 1).astype(numpy.float32)
            per = (g / counts[:, None] if mode == "mean" else g)[bags]
            if weights is not None:
                per = per * weights[:, None]
            numpy.testing.assert_array_equal(
                weight.grad.numpy(), _add_at_reference((50, width), rows, per)
            )


def test_occurrence_ranks_are_stable(rng):
    rows = rng.integers(0, 9, 300)
    positions, ranks = E._occurrence_ranks(rows, 9)
    for r in range(9):
        mine = numpy.flatnonzero(rows == r)
        got = positions[rows[positions] == r]
        numpy.testing.assert_array_equal(got, mine)
        numpy.testing.assert_array_equal(ranks[rows[positions] == r], numpy.arange(mine.size))


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_against_torch(mode, rng):
    torch = pytest.importorskip("torch")
    table = rng.standard_normal((40, 6))
    cases = [
        (rng.integers(0, 40, (5, 8)), None, None),
        (rng.integers(0, 40, (5, 8)), None, 3),
        (rng.integers(0, 40, 30), numpy.array([0, 0, 4, 4, 20, 30]), 2),
        (rng.integers(0, 40, 12), numpy.array([0, 4, 8]), None),  # even: the middle-axis sum
    ]
    for rows, offsets, padding_idx in cases:
        use_psw = mode == "sum"
        psw = rng.standard_normal(rows.shape) if use_psw else None

        def run(lib, w, p=None, rows=rows, offsets=offsets, padding_idx=padding_idx):
            return lib.nn.functional.embedding_bag(
                lib.tensor(rows), w, None if offsets is None else lib.tensor(offsets),
                mode=mode, padding_idx=padding_idx, per_sample_weights=p)  # fmt: skip

        args = (table, psw) if use_psw else (table,)
        got = _grads(lambda *t: run(gf, *t), *args)
        want = _torch_grads(torch, lambda *t: run(torch, *t), *args)
        _close(got[0], want[0], 1e-12)
        for a, b in zip(got[1], want[1]):
            _close(a, b, 1e-12)


# ---- index_add ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_index_add_is_add_at_bits_with_and_without_repeats(dim, rng):
    shape = (5, 6, 7)
    x = rng.standard_normal(shape).astype(numpy.float32)
    for index in (rng.permutation(shape[dim])[:3], rng.integers(0, shape[dim], 9),
                  numpy.zeros(0, numpy.int64), numpy.array([1, 1, 1], numpy.int32)):  # fmt: skip
        src_shape = shape[:dim] + (index.size,) + shape[dim + 1 :]
        src = rng.standard_normal(src_shape).astype(numpy.float32)
        g = rng.standard_normal(shape).astype(numpy.float32)
        value, (gx, gs) = _grads(
            lambda a, s, i=index: a.index_add(dim, gf.tensor(i), s), x, src, g=g
        )
        want = numpy.moveaxis(x.copy(), dim, 0).copy()
        numpy.add.at(want, index, numpy.moveaxis(src, dim, 0))
        numpy.testing.assert_array_equal(value, numpy.moveaxis(want, 0, dim))
        numpy.testing.assert_array_equal(gx, g)
        numpy.testing.assert_array_equal(gs, numpy.take(g, index, axis=dim))


def test_index_add_against_torch_alpha_0d_noncontiguous_and_double_backward(rng):
    torch = pytest.importorskip("torch")
    base = rng.standard_normal((6, 10))
    x = base[:, ::2]  # non-contiguous (6, 5)
    index = numpy.array([4, 0, 4, 2])
    src = rng.standard_normal((6, 4))
    for alpha in (1, -2.5):
        got = _grads(lambda a, s, k=alpha: a.index_add(1, gf.tensor(index), s, alpha=k), x, src)
        want = _torch_grads(torch, lambda a, s, k=alpha: a.index_add(1, torch.tensor(index), s,
                                                                      alpha=k),
                            numpy.ascontiguousarray(x), src)  # fmt: skip
        _close(got[0], want[0], 1e-12)
        for a, b in zip(got[1], want[1]):
            _close(a, b, 1e-12)
    got = _grads(lambda a, s: a.index_add(0, gf.tensor([0]), s), numpy.array(1.5),
                 numpy.array(2.0))  # fmt: skip
    assert got[0].shape == () and got[0] == 3.5
    gx = gf.tensor(x, requires_grad=True)
    gs = gf.tensor(src, requires_grad=True)
    dx, ds = gf.autograd.grad((gx.index_add(1, gf.tensor(index), gs) ** 2).sum(), [gx, gs],
                              create_graph=True)  # fmt: skip
    ((dx**2).sum() + (ds**2).sum()).backward()
    tx = torch.tensor(numpy.ascontiguousarray(x), requires_grad=True)
    ts = torch.tensor(src, requires_grad=True)
    tdx, tds = torch.autograd.grad((tx.index_add(1, torch.tensor(index), ts) ** 2).sum(),
                                   [tx, ts], create_graph=True)  # fmt: skip
    ((tdx**2).sum() + (tds**2).sum()).backward()
    _close(gx.grad.numpy(), tx.grad.numpy(), 1e-12)
    _close(gs.grad.numpy(), ts.grad.numpy(), 1e-12)

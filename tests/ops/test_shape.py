"""Shape ops: values against NumPy, gradcheck (non-contiguous inputs included), expand and
broadcast shapes drawn by hypothesis, split/chunk pieces, pad modes, errors, PyTorch parity."""

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow as gf
from gradflow.ops import shape as S
from gradflow.ops.padding import pad
from gradflow.testing import gradcheck


def _t(a, device, requires_grad=True):
    a = numpy.asarray(a, dtype=numpy.float64)
    return gf.tensor(a, device=device, requires_grad=requires_grad)


def _host(t):
    return t.detach().cpu().numpy()


def _x(device, rng, shape=(2, 3, 4)):
    return _t(rng.standard_normal(shape), device)


# name -> (gradflow op, NumPy reference); each runs on a contiguous and a transposed input
CASES = {
    "reshape": (lambda t: S.reshape(t, (4, -1)), lambda a: a.reshape(4, -1)),
    "view": (lambda t: S.view(t, (-1,)), lambda a: a.reshape(-1)),
    "transpose": (lambda t: S.transpose(t, 0, -1), lambda a: a.swapaxes(0, -1)),
    "permute": (lambda t: S.permute(t, (1, 2, 0)), lambda a: a.transpose(1, 2, 0)),
    "expand": (
        lambda t: S.expand(t[:, :1], (5, -1, 2, -1)),
        lambda a: numpy.broadcast_to(a[:, :1], (5, a.shape[0], 2, a.shape[2])),
    ),
    "squeeze": (lambda t: S.squeeze(t[:, :1]), lambda a: a[:, :1].squeeze()),
    "unsqueeze": (lambda t: S.unsqueeze(t, -1), lambda a: a[..., None]),
    "flatten": (lambda t: S.flatten(t, 1), lambda a: a.reshape(a.shape[0], -1)),
    "flip": (lambda t: S.flip(t, (0, -1)), lambda a: a[::-1, :, ::-1]),
    "repeat": (lambda t: S.repeat(t, (2, 1, 3, 1)), lambda a: numpy.tile(a, (2, 1, 3, 1))),
    "tile": (lambda t: S.tile(t, (2, 1)), lambda a: numpy.tile(a, (2, 1))),
    "contiguous": (S.contiguous, lambda a: a),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided"])
def test_shape_op_values_and_gradcheck(name, layout, device, rng):
    op, ref = CASES[name]
    base = _x(device, rng, (2, 3, 4) if layout == "contiguous" else (4, 3, 4))
    views = {
        "contiguous": lambda t: t,
        "transposed": lambda t: t.transpose(0, 2),  # (4, 3, 4), non-contiguous
        "strided": lambda t: t[::2, :, ::-1],  # (2, 3, 4), steps and a negative step
    }
    arrange = views[layout]
    out = op(arrange(base))
    numpy.testing.assert_array_equal(_host(out), ref(_host(arrange(base))))
    assert gradcheck(lambda t: op(arrange(t)), [base], full_jacobian=False)


def test_full_jacobian_of_small_shape_ops(device, rng):
    x = _x(device, rng, (2, 3))
    for op in [
        lambda t: S.permute(t, (1, 0)),
        lambda t: S.expand(t[:1], (3, 2, 3)),
        lambda t: S.repeat(t, (2, 2)),
        lambda t: pad(t, (1, 1), mode="reflect"),
    ]:
        assert gradcheck(op, [x], full_jacobian=True)


def test_view_of_a_non_contiguous_input_copies_and_still_differentiates(device, rng):
    x = _x(device, rng)
    v = S.view(x.transpose(0, 1), (-1,))  # PyTorch would need .contiguous() first
    numpy.testing.assert_array_equal(_host(v), _host(x).swapaxes(0, 1).reshape(-1))
    assert gradcheck(lambda t: S.view(t.transpose(0, 1), (6, 4)), [x])


def test_contiguous_returns_self_when_already_contiguous(device, rng):
    x = _x(device, rng)
    assert S.contiguous(x) is x
    y = S.contiguous(x.transpose(0, 1))
    assert y.is_contiguous() and y is not x


def test_squeeze_dims(device, rng):
    x = _x(device, rng, (1, 3, 1, 2))
    assert S.squeeze(x).shape == (3, 2)
    assert S.squeeze(x, 0).shape == (3, 1, 2)
    assert S.squeeze(x, (0, -2)).shape == (3, 2)
    assert S.squeeze(x, 1).shape == (1, 3, 1, 2)  # size 3: kept, as in PyTorch
    assert gradcheck(lambda t: S.squeeze(t, 2), [x])


def test_flatten_and_unsqueeze_edges(device, rng):
    x = _x(device, rng)
    assert S.flatten(x).shape == (24,)
    assert S.flatten(x, 0, 1).shape == (6, 4)
    assert S.flatten(_t(3.0, device)).shape == (1,)
    assert S.unsqueeze(x, 0).shape == (1, 2, 3, 4)
    assert S.unsqueeze(x, 3).shape == (2, 3, 4, 1)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_expand_matches_numpy_broadcast_for_drawn_shapes(data):
    target = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    ndim = data.draw(st.integers(0, len(target)))
    source = [data.draw(st.sampled_from([1, n])) for n in target[len(target) - ndim :]]
    keep = data.draw(st.lists(st.booleans(), min_size=ndim, max_size=ndim))
    request = target[: len(target) - ndim] + [
        -1 if k else n for k, n in zip(keep, target[len(target) - ndim :])
    ]
    a = numpy.random.default_rng(0).standard_normal(source)
    x = _t(a, "cpu")
    out = S.expand(x, request)
    numpy.testing.assert_array_equal(_host(out), numpy.broadcast_to(a, _resolved(source, request)))
    numpy.testing.assert_array_equal(_host(S.broadcast_to(x, out.shape)), _host(out))
    assert gradcheck(lambda t: S.expand(t, request), [x], full_jacobian=False)


def _resolved(source, request):
    lead = len(request) - len(source)
    return tuple(s if r == -1 else r for s, r in zip([None] * lead + list(source), request))


@settings(max_examples=25, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    reps=st.lists(st.integers(0, 3), min_size=0, max_size=5),
)
def test_tile_matches_numpy_for_drawn_shapes(shape, reps):
    a = numpy.random.default_rng(0).standard_normal(shape)
    x = _t(a, "cpu")
    numpy.testing.assert_array_equal(_host(S.tile(x, reps)), numpy.tile(a, reps))
    if len(reps) >= len(shape) and 0 not in reps:
        assert gradcheck(lambda t: S.repeat(t, reps), [x], full_jacobian=False)


# ---- cat / stack / split / chunk -------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat(dim, device, rng):
    shapes = [(2, 3, 4), (2, 3, 4), (2, 3, 4)]
    shapes[1] = tuple(5 if d == dim % 3 else n for d, n in enumerate(shapes[1]))
    xs = [_x(device, rng, s) for s in shapes]
    out = S.cat(xs, dim)
    numpy.testing.assert_array_equal(
        _host(out), numpy.concatenate([_host(x) for x in xs], axis=dim)
    )
    assert gradcheck(lambda *ts: S.cat(ts, dim), xs, full_jacobian=False)


def test_cat_gives_no_gradient_to_inputs_that_need_none(device, rng):
    a = _x(device, rng)
    b = _t(rng.standard_normal((2, 3, 4)), device, requires_grad=False)
    S.cat([b, a.transpose(1, 2).transpose(1, 2)], 1).sum().backward()
    assert b.grad is None
    numpy.testing.assert_array_equal(_host(a.grad), numpy.ones((2, 3, 4)))


@pytest.mark.parametrize("dim", [0, 2, -1, -4])
def test_stack(dim, device, rng):
    xs = [_x(device, rng) for _ in range(3)]
    out = S.stack(xs, dim)
    numpy.testing.assert_array_equal(_host(out), numpy.stack([_host(x) for x in xs], axis=dim))
    assert gradcheck(lambda *ts: S.stack(ts, dim), xs, full_jacobian=False)


@pytest.mark.parametrize(
    "sizes, dim, expected",
    [(2, 2, [2, 2]), (3, 2, [3, 1]), ([1, 0, 2], 1, [1, 0, 2]), (5, 0, [2])],
)
def test_split_pieces_and_gradient(sizes, dim, expected, device, rng):
    x = _x(device, rng)
    pieces = S.split(x, sizes, dim)
    assert isinstance(pieces, tuple)
    assert [p.shape[dim] for p in pieces] == expected
    numpy.testing.assert_array_equal(_host(S.cat(pieces, dim)), _host(x))
    assert gradcheck(lambda t: S.split(t, sizes, dim), [x], full_jacobian=False)


def test_split_unused_pieces_get_zero_gradient(device, rng):
    x = _x(device, rng)
    first, _second = S.split(x, 2, 1)
    (first * 3).sum().backward()
    expected = numpy.zeros((2, 3, 4))
    expected[:, :2] = 3
    numpy.testing.assert_array_equal(_host(x.grad), expected)


@pytest.mark.parametrize("n, chunks, expected", [(6, 3, [2, 2, 2]), (5, 2, [3, 2]), (2, 4, [1, 1])])
def test_chunk(n, chunks, expected, device, rng):
    x = _x(device, rng, (3, n))
    pieces = S.chunk(x, chunks, -1)
    assert [p.shape[1] for p in pieces] == expected
    assert gradcheck(lambda t: S.chunk(t, chunks, 1)[-1], [x])


# ---- pad -------------------------------------------------------------------------------
PADS = [
    ("constant", (1, 2)),
    ("constant", (1, 0, 0, 2, 1, 1)),
    ("constant", (-1, 2, 1, -2)),  # negative widths crop
    ("reflect", (2, 1, 1, 1)),
    ("replicate", (3, 0, 0, 4)),
    ("circular", (3, 2, 1, 3)),
]


@pytest.mark.parametrize("mode, widths", PADS)
def test_pad_values_and_gradcheck(mode, widths, device, rng):
    x = _x(device, rng, (2, 3, 4))
    out = pad(x, widths, mode=mode, value=0.5)
    assert out.shape == tuple(
        n + (widths[2 * (2 - d)] + widths[2 * (2 - d) + 1] if 2 * (2 - d) < len(widths) else 0)
        for d, n in enumerate(x.shape)
    )
    assert gradcheck(lambda t: pad(t, widths, mode=mode, value=0.5), [x], full_jacobian=False)
    assert gradcheck(lambda t: pad(t.transpose(1, 2), widths, mode=mode), [_x(device, rng)])


def test_pad_values_against_numpy(rng):
    a = rng.standard_normal((2, 3))
    x = _t(a, "cpu")
    numpy.testing.assert_array_equal(
        _host(pad(x, (1, 2), value=7)), numpy.pad(a, ((0, 0), (1, 2)), constant_values=7)
    )
    numpy.testing.assert_array_equal(
        _host(pad(x, (2, 1, 1, 0), mode="reflect")),
        numpy.pad(a, ((1, 0), (2, 1)), mode="reflect"),
    )
    numpy.testing.assert_array_equal(
        _host(pad(x, (3, 0), mode="replicate")), numpy.pad(a, ((0, 0), (3, 0)), mode="edge")
    )
    numpy.testing.assert_array_equal(
        _host(pad(x, (0, 0, 2, 2), mode="circular")),
        numpy.pad(a, ((2, 2), (0, 0)), mode="wrap"),
    )


# ---- errors ----------------------------------------------------------------------------
def test_shape_errors():
    x = gf.zeros((2, 3))
    with pytest.raises(ValueError, match=r"reshape: shape \(4, 2\) is invalid for input of shape"):
        S.reshape(x, (4, 2))
    with pytest.raises(ValueError, match=r"view: shape \(-1, 4\) is invalid .* \(6 elements\)"):
        S.view(x, (-1, 4))
    with pytest.raises(ValueError, match=r"reshape: invalid shape \(-1, -1\): at most one -1"):
        S.reshape(x, (-1, -1))
    with pytest.raises(ValueError, match=r"expand: can't expand shape \(2, 3\) to \(2, 4\): dim 1"):
        S.expand(x, (2, 4))
    with pytest.raises(ValueError, match=r"expand: the target shape \(3,\) has fewer dims"):
        S.expand(x, (3,))
    with pytest.raises(ValueError, match=r"expand: -1 is not allowed for the new leading dims"):
        S.expand(x, (-1, 2, 3))
    with pytest.raises(ValueError, match=r"broadcast_to: can't expand shape \(2, 3\) to \(3, 3\)"):
        S.broadcast_to(x, (3, 3))
    with pytest.raises(ValueError, match=r"permute: dims \(0, 0\) must be a permutation"):
        S.permute(x, (0, 0))
    with pytest.raises(IndexError, match=r"transpose: dim 2 is out of range"):
        S.transpose(x, 0, 2)
    with pytest.raises(IndexError, match=r"unsqueeze: dim 3 is out of range"):
        S.unsqueeze(x, 3)
    with pytest.raises(ValueError, match=r"flatten: start_dim \(1\) must not come after end_dim"):
        S.flatten(x, 1, 0)


def test_join_and_split_errors():
    a, b = gf.zeros((2, 3)), gf.zeros((2, 4))
    with pytest.raises(
        ValueError, match=r"cat: shapes \(2, 3\), \(2, 4\) must match except in dim 0"
    ):
        S.cat([a, b], 0)
    with pytest.raises(ValueError, match=r"cat: shapes \(2, 3\), \(3,\) must match"):
        S.cat([a, gf.zeros(3)], 0)
    with pytest.raises(ValueError, match="cat: expected a non-empty sequence"):
        S.cat([], 0)
    with pytest.raises(TypeError, match="cat: expected Tensors, got ndarray at position 1"):
        S.cat([a, numpy.zeros((2, 3))])
    with pytest.raises(ValueError, match="cat: zero-dimensional tensors can't be concatenated"):
        S.cat([gf.tensor(1.0), gf.tensor(2.0)])
    with pytest.raises(
        ValueError, match=r"stack: expects tensors of one shape, got \(2, 3\), \(2, 4\)"
    ):
        S.stack([a, b])
    with pytest.raises(IndexError, match=r"stack: dim 3 is out of range"):
        S.stack([a, a], 3)
    with pytest.raises(ValueError, match=r"split: sections \[1, 1\] must be non-negative and sum"):
        S.split(a, [1, 1], 1)
    with pytest.raises(ValueError, match="split: split_size must be a positive int, got 0"):
        S.split(a, 0)
    with pytest.raises(ValueError, match="split: a 0-d tensor can't be split"):
        S.split(gf.tensor(1.0), 1)
    with pytest.raises(ValueError, match="chunk: chunks must be a positive int, got 0"):
        S.chunk(a, 0)


def test_pad_and_repeat_errors():
    x = gf.zeros((2, 3))
    with pytest.raises(ValueError, match=r"pad: expects an even number of widths"):
        pad(x, (1, 2, 3))
    with pytest.raises(
        ValueError, match=r"pad: expects an even number .* got \(1, 1, 1, 1, 1, 1\)"
    ):
        pad(x, (1,) * 6)
    with pytest.raises(ValueError, match=r"pad: mode must be one of"):
        pad(x, (1, 1), mode="mirror")
    with pytest.raises(
        ValueError, match=r"pad: reflect padding \(3, 0\) doesn't fit dim 1 of size 3"
    ):
        pad(x, (3, 0), mode="reflect")
    with pytest.raises(
        ValueError, match=r"pad: circular padding \(0, 3\) doesn't fit dim 0 of size 2"
    ):
        pad(x, (0, 0, 0, 3), mode="circular")
    with pytest.raises(ValueError, match=r"pad: replicate padding \(-1, 0\) doesn't fit"):
        pad(x, (-1, 0), mode="replicate")
    with pytest.raises(ValueError, match=r"pad: widths \(-2, -2\) crop more than dim 1 of size 3"):
        pad(x, (-2, -2))
    with pytest.raises(ValueError, match=r"repeat: needs at least one size per dim: got \(2,\)"):
        S.repeat(x, (2,))
    with pytest.raises(ValueError, match=r"repeat: sizes must be non-negative, got \(2, -1\)"):
        S.repeat(x, (2, -1))


def test_tensor_methods_route_to_shape_ops(rng):
    x = _x("cpu", rng)
    assert x.expand(5, 2, 3, 4).shape == (5, 2, 3, 4)
    assert x.view(6, 4).shape == (6, 4)
    assert x.flip(0).shape == (2, 3, 4)
    assert x.repeat(1, 2, 1).shape == (2, 6, 4)
    assert [p.shape for p in x.chunk(2, 2)] == [(2, 3, 2), (2, 3, 2)]
    assert x.squeeze().shape == (2, 3, 4)


# ---- PyTorch parity --------------------------------------------------------------------
PARITY = {
    "expand": lambda t: S.expand(t[:, :1], (3, 2, 5, 4)),
    "repeat": lambda t: S.repeat(t, (2, 1, 3)),
    "cat": lambda t: S.cat([t, t * 2], 1),
    "pad_reflect": lambda t: pad(t, (1, 2, 2, 0), mode="reflect"),
    "pad_replicate": lambda t: pad(t, (3, 1, 0, 2), mode="replicate"),
    "pad_circular": lambda t: pad(t, (4, 1, 1, 2), mode="circular"),
    "pad_constant": lambda t: pad(t, (-1, 2, 1, -1), value=2.0),
    "chunk": lambda t: S.chunk(t, 3, 2)[1],
}


def _torch_ops(torch):
    import torch.nn.functional as F

    return {
        "expand": lambda t: t[:, :1].expand(3, 2, 5, 4),
        "repeat": lambda t: t.repeat(2, 1, 3),
        "cat": lambda t: torch.cat([t, t * 2], 1),
        "pad_reflect": lambda t: F.pad(t, (1, 2, 2, 0), mode="reflect"),
        "pad_replicate": lambda t: F.pad(t, (3, 1, 0, 2), mode="replicate"),
        "pad_circular": lambda t: F.pad(t, (4, 1, 1, 2), mode="circular"),
        "pad_constant": lambda t: F.pad(t, (-1, 2, 1, -1), value=2.0),
        "chunk": lambda t: t.chunk(3, 2)[1],
    }


@pytest.mark.parametrize("name", sorted(PARITY))
def test_torch_parity(name, rng):
    torch = pytest.importorskip("torch")
    ours, theirs = PARITY[name], _torch_ops(torch)[name]
    a = rng.standard_normal((2, 3, 4))
    x = _t(a, "cpu")
    tx = torch.tensor(a, requires_grad=True)
    out, tout = ours(x), theirs(tx)
    numpy.testing.assert_array_equal(_host(out), tout.detach().numpy())
    g = rng.standard_normal(tout.shape)
    out.backward(gf.tensor(g))
    tout.backward(torch.tensor(g))
    numpy.testing.assert_allclose(_host(x.grad), tx.grad.numpy(), rtol=1e-12)

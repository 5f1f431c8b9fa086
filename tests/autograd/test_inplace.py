"""In-place writes and views follow PyTorch: a write whose operand or target requires grad is
recorded (the target becomes the output of a new node, CopySlices), a leaf that requires grad
can't be written, views and detach() share their storage's version counter, and a view taken
before a recorded write can't be used after it. Compared with torch where it is importable."""

import numpy
import pytest

import gradflow as gf

rng = numpy.random.default_rng(0)
W0, U0, X0 = (
    rng.standard_normal((4, 4)) * 0.5,
    rng.standard_normal((4, 4)) * 0.5,
    rng.standard_normal((5, 3, 4)),
)


def _grads(lib, device, body):
    """body(lib, tensor) builds a loss from leaves it makes with `tensor`; returns the leaves'
    gradients as NumPy arrays."""
    leaves = []

    def tensor(values, requires_grad=True):
        kw = {"device": device} if lib is gf else {}
        t = lib.tensor(numpy.array(values, dtype=numpy.float64), requires_grad=requires_grad, **kw)
        if requires_grad:
            leaves.append(t)
        return t

    body(lib, tensor).backward()
    return [numpy.asarray(t.grad.cpu().numpy()) if t.grad is not None else None for t in leaves]


def _rnn_into_a_buffer(lib, tensor):
    W, U, xs = tensor(W0), tensor(U0), tensor(X0, requires_grad=False)
    out = lib.zeros(5, 3, 4, dtype=lib.float64, **({"device": xs.device} if lib is gf else {}))
    h = lib.zeros(3, 4, dtype=lib.float64, **({"device": xs.device} if lib is gf else {}))
    for t in range(5):
        h = (xs[t] @ W + h @ U).tanh()
        out[t] = h  # the write that dropped the graph before
    return (out**2).sum()


def _copy_into(lib, tensor):
    w = tensor([0.5, -1.0, 2.0])
    buf = lib.zeros(3, dtype=lib.float64, **({"device": w.device} if lib is gf else {}))
    buf.copy_(w.exp())
    return (buf * buf).sum()


def _accumulate(lib, tensor):
    w = tensor([0.5, -1.0, 2.0])
    acc = lib.zeros(3, dtype=lib.float64, **({"device": w.device} if lib is gf else {}))
    for k in range(3):
        acc += w * (k + 1)
    acc *= w  # the target in the graph, multiplied in place by an operand that needs grad
    return acc.sum()


def _slice_assign(lib, tensor):
    p = tensor([[1.0, 2.0], [3.0, 4.0]])
    feats = lib.zeros(3, 2, dtype=lib.float64, **({"device": p.device} if lib is gf else {}))
    feats[1:] = p * 3  # the only path from p to the loss
    feats[0, 1] = p[0, 0] ** 2
    return (feats.sin()).sum()


def _non_leaf_in_place(lib, tensor):
    x = tensor([1.0, 2.0, 3.0])
    y = x * 2
    y.add_(1)
    y.mul_(x)
    y.clamp_(max=10.0)
    y.sub_(x, alpha=2)
    y.div_(2)
    return y.sum()


CASES = [_rnn_into_a_buffer, _copy_into, _accumulate, _slice_assign, _non_leaf_in_place]


@pytest.mark.parametrize("body", CASES, ids=lambda f: f.__name__.strip("_"))
def test_recorded_writes_give_torchs_gradients(body, device):
    torch = pytest.importorskip("torch")
    ours = _grads(gf, device, body)
    theirs = _grads(torch, "cpu", body)
    assert all(g is not None for g in ours), "a leaf lost its gradient"
    for a, b in zip(ours, theirs):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_the_buffer_rnn_gradient_is_nonzero_without_torch(device):
    (w_grad, u_grad) = _grads(gf, device, _rnn_into_a_buffer)
    assert numpy.abs(w_grad).sum() > 1.0 and numpy.abs(u_grad).sum() > 1.0


def test_writing_into_a_leaf_that_requires_grad_raises(device):
    w = gf.tensor([1.0, 2.0], device=device, requires_grad=True)
    for write in (lambda: w.add_(1.0), lambda: w.__setitem__(0, 5.0), lambda: w.zero_(),
                  lambda: w.copy_(gf.ones(2, device=device))):  # fmt: skip
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad .* in-place"):
            write()
    with gf.no_grad():
        w.add_(1.0)  # as optimizers do
    assert w.tolist() == [2.0, 3.0]


@pytest.mark.parametrize(
    "alias_write",
    [
        lambda x, y: x.detach().mul_(10.0),
        lambda x, y: x.detach()[1:].fill_(0.0),
        lambda x, y: x.detach().view(-1).fill_(0.0),
        lambda x, y: x.detach().reshape(3, 1).add_(1.0),
    ],
    ids=["detach", "slice", "view", "reshape"],
)
def test_a_write_through_any_alias_of_a_saved_input_is_caught(alias_write, device):
    x = gf.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    y = x * x  # saves x
    alias_write(x, y)
    with pytest.raises(RuntimeError, match="mul: .* modified by an inplace operation"):
        y.sum().backward()


def test_a_saved_output_changed_under_no_grad_is_caught(device):
    x = gf.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = x.exp()  # saves its output
    with gf.no_grad():
        y.mul_(0.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_a_write_to_an_unsaved_region_of_another_tensor_is_fine(device):
    x = gf.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = x * 3  # saves nothing of x's storage (a scalar factor)
    other = gf.zeros(2, device=device)
    other.add_(1.0)
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_a_view_taken_before_a_recorded_write_cannot_be_used_after_it(device):
    w = gf.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    buf = gf.zeros(2, 3, device=device)
    stale = buf[0]
    buf[0] = w * 2
    with pytest.raises(RuntimeError, match="a view taken before an in-place write"):
        stale * 1
    fresh = buf[0]
    (fresh * 1).sum().backward()
    assert w.grad.tolist() == [2.0, 2.0, 2.0]


def test_a_recorded_write_into_a_view_gives_the_view_a_history_and_retires_the_owner(device):
    w = gf.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    buf = gf.zeros(2, 3, device=device)
    row = buf[0]
    row.copy_(w)
    assert buf.tolist()[0] == [1.0, 2.0, 3.0]
    (row * 2).sum().backward()
    assert w.grad.tolist() == [2.0, 2.0, 2.0]
    # buf shows w's values without w's history: PyTorch would rebase it, gradflow refuses it
    with pytest.raises(RuntimeError, match="shares memory with a tensor that was written"):
        buf * 1
    with gf.no_grad():
        assert (buf * 1).tolist()[0] == [1.0, 2.0, 3.0]  # reading without a graph is fine


def test_an_inplace_activation_on_an_op_output_that_views_a_buffer(device):
    # A conv's output views the GEMM's result: ReLU(inplace=True) after it, as every DCGAN
    # and ResNet does, is recorded on the output and gives torch's gradients.
    x = gf.randn(2, 3, 8, 8, device=device, dtype=gf.float64, requires_grad=True)
    conv = gf.nn.Conv2d(3, 4, 3, padding=1).double().to(device)
    ref = gf.nn.functional.leaky_relu(conv(x), 0.2).sum()
    ref.backward()
    expected = x.grad.cpu().numpy().copy()
    x.grad = None
    out = gf.nn.functional.leaky_relu(conv(x), 0.2, inplace=True)
    out.sum().backward()
    numpy.testing.assert_allclose(x.grad.cpu().numpy(), expected, rtol=1e-12)
    v = gf.tensor([-1.0, 2.0], device=device, requires_grad=True) * 1
    flat = v.view(-1)
    flat.relu_()
    flat.sum().backward()


def test_writes_bump_the_shared_version(device):
    x = gf.zeros(4, device=device)
    view, detached = x[1:], x.detach()
    start = x._version
    view.add_(1.0)
    detached[0] = 2.0
    assert x._version == view._version == detached._version == start + 2


class _WrongShape(gf.autograd.Function):
    def forward(self, x):
        return x * 2

    def backward(self, g):
        return g.reshape(-1)[:3]


class _WrongType(gf.autograd.Function):
    def forward(self, x):
        return x * 2

    def backward(self, g):
        return memoryview(b"abc")


class _ListForward(gf.autograd.Function):
    def forward(self, x):
        return [x]

    def backward(self, g):
        return g


class _NoneForward(gf.autograd.Function):
    def forward(self, x):
        return None

    def backward(self, g):
        return g


def test_a_custom_functions_mistakes_are_named():
    x = gf.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"_WrongShape.backward returned an invalid gradient "
                       r"for input 0: shape \(3,\), but the input has shape \(2, 3\)"):  # fmt: skip
        _WrongShape.apply(x).sum().backward()
    with pytest.raises(TypeError, match=r"_WrongType.backward returned a memoryview .* input 0"):
        _WrongType.apply(x).sum().backward()
    with pytest.raises(TypeError, match=r"_ListForward.forward returned a list"):
        _ListForward.apply(x)
    with pytest.raises(TypeError, match=r"_NoneForward.forward returned a NoneType"):
        _NoneForward.apply(x)


def test_a_hooks_mistakes_are_named():
    x = gf.ones(2, 3, requires_grad=True)
    y = x * 2
    y.register_hook(lambda g: g.reshape(-1))
    with pytest.raises(RuntimeError, match=r"hook <lambda> returned a gradient of shape \(6,\)"):
        y.sum().backward()
    z = gf.ones(2, requires_grad=True)
    z.register_hook(lambda g: g.numpy())
    with pytest.raises(TypeError, match="hook <lambda> returned a ndarray"):
        (z * 2).sum().backward()

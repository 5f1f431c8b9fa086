"""A leaf's gradient is its own array: whatever views the backward passes produce, writing
into one leaf's .grad never changes another's, and accumulation over several backward calls
adds up. Views that are the only holder of their memory are kept without a copy."""

import numpy

import gradflow as gf
from gradflow.autograd.function import Function


class _SumOfTwo(Function):
    """out = a + b, whose backward hands both inputs a view of one fresh array (the same
    memory twice)."""

    def forward(self, a, b):
        return a + b

    def backward(self, g):
        fresh = g.copy().reshape(-1)
        return fresh.reshape(g.shape), fresh[:].reshape(g.shape)


def test_views_of_one_array_given_to_two_leaves_are_separate_gradients():
    a = gf.tensor([1.0, 2.0], requires_grad=True)
    b = gf.tensor([3.0, 4.0], requires_grad=True)
    _SumOfTwo.apply(a, b).sum().backward()
    a.grad += 100  # must not reach b.grad through shared memory
    numpy.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0])
    numpy.testing.assert_array_equal(a.grad.numpy(), [101.0, 101.0])


def test_a_view_of_the_upstream_gradient_is_not_shared_with_another_leaf():
    a = gf.ones(2, 3, requires_grad=True)
    x = gf.ones(6, requires_grad=True)
    (a + x.reshape(2, 3)).sum().backward()  # a gets g, x a view of g
    a.grad += 5
    numpy.testing.assert_array_equal(x.grad.numpy(), numpy.ones(6))


def test_a_sole_view_is_kept_and_accumulates():
    x = gf.randn(2, 3, 8, 8, requires_grad=True)
    w = gf.randn(4, 3, 3, 3)
    for _ in range(2):  # conv's dx comes back as a reshape of a fresh array
        gf.nn.functional.conv2d(x, w, padding=1).sum().backward()
    once = gf.tensor(x.detach().numpy(), requires_grad=True)
    gf.nn.functional.conv2d(once, w, padding=1).sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), 2 * once.grad.numpy(), rtol=1e-6)
    x.grad.zero_()
    assert float(x.grad.abs().sum()) == 0.0


def test_a_sole_view_is_not_copied():
    from gradflow.autograd.engine import _sole_view

    fresh = numpy.zeros((4, 4))
    view = fresh.reshape(16)
    assert not _sole_view(view)  # `fresh` still holds the memory
    del fresh
    assert _sole_view(view)
    other = view[:8]
    assert not _sole_view(other) and not _sole_view(view)  # two views share the memory

"""The backward engine: ordering, accumulation, freeing, retain_graph, grad(), hooks."""

import gc
import weakref

import numpy
import pytest

import gradflow as gf


def test_scalar_backward_accumulates_into_leaves(device):
    x = gf.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    (x * x).sum().backward()
    numpy.testing.assert_allclose(x.grad.cpu().numpy(), [2.0, 4.0, 6.0])
    (x * 3).sum().backward()
    numpy.testing.assert_allclose(x.grad.cpu().numpy(), [5.0, 7.0, 9.0])


def test_grad_is_none_until_first_backward():
    x = gf.ones(3, requires_grad=True)
    assert x.grad is None
    y = x * 2
    assert x.grad is None and y.grad is None


def test_non_scalar_backward_needs_gradient():
    x = gf.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"only for scalar outputs.*shape \(2, 3\)"):
        (x * 2).backward()


def test_backward_with_gradient_argument():
    x = gf.ones(2, 3, requires_grad=True)
    g = gf.full((2, 3), 0.5)
    (x * 4).backward(g)
    numpy.testing.assert_allclose(x.grad.numpy(), numpy.full((2, 3), 2.0))


def test_gradient_shape_mismatch_is_an_error():
    x = gf.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"gradient has shape \(3,\) but the tensor has shape"):
        (x * 2).backward(gf.ones(3))


def test_backward_on_tensor_without_grad_is_an_error():
    x = gf.ones(3)
    with pytest.raises(RuntimeError, match="does not require grad"):
        x.sum().backward()


def test_second_backward_through_freed_graph_names_retain_graph():
    x = gf.ones(3, requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


def test_diamond_graph_sums_both_paths():
    x = gf.tensor([3.0], requires_grad=True)
    a = x * 2
    b = x * x
    (a * b).sum().backward()  # d/dx 2x^3 = 6x^2
    numpy.testing.assert_allclose(x.grad.numpy(), [54.0])


def test_shared_gradient_arrays_are_not_aliased_between_leaves():
    a = gf.ones(3, requires_grad=True)
    b = gf.ones(3, requires_grad=True)
    (a + b).sum().backward()
    with gf.no_grad():
        a.grad.mul_(10.0)
    numpy.testing.assert_allclose(b.grad.numpy(), numpy.ones(3))


def test_user_gradient_is_not_kept_as_leaf_grad():
    a = gf.ones(3, requires_grad=True)
    g = gf.ones(3)
    (a + 1).backward(g)
    g.fill_(7.0)
    numpy.testing.assert_allclose(a.grad.numpy(), numpy.ones(3))


def test_long_chain_of_100000_ops_forward_and_backward():
    x = gf.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.sum().backward()
    assert x.grad.item() == 1.0
    del y
    gc.collect()


def test_graph_is_freed_when_loss_goes_out_of_scope():
    x = gf.randn(4, 4, requires_grad=True)
    h = (x @ x).tanh()
    loss = (h * h).sum()
    fn_ref = weakref.ref(loss.grad_fn)
    inner_ref = weakref.ref(h.grad_fn)
    data_ref = weakref.ref(h.array) if hasattr(h.array, "__weakref__") else None
    del h, loss
    # no reference cycles: freed by reference counting alone, without the cycle collector
    assert fn_ref() is None and inner_ref() is None
    if data_ref is not None:
        assert data_ref() is None


def test_saved_arrays_are_released_after_backward():
    x = gf.randn(100, requires_grad=True)
    y = x.exp()
    saved = y.grad_fn._saved
    assert saved is not None and saved[0].shape == (100,)
    y.sum().backward()
    assert y.grad_fn._saved is None


def test_no_grad_records_and_saves_nothing():
    x = gf.ones(3, requires_grad=True)
    with gf.no_grad():
        y = x.exp() * x
    assert y.grad_fn is None and not y.requires_grad


def test_intermediate_grads_are_not_kept_unless_retained():
    x = gf.ones(3, requires_grad=True)
    h = x * 2
    h.retain_grad()
    k = h * 3
    (k * 1).sum().backward()
    numpy.testing.assert_allclose(h.grad.numpy(), numpy.full(3, 3.0))
    assert k.grad is None


def test_leaf_hook_can_replace_gradient_and_be_removed():
    x = gf.ones(2, requires_grad=True)
    seen = []
    handle = x.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 10)
    (x * 1).sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [10.0, 10.0])
    handle.remove()
    (x * 1).sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [11.0, 11.0])
    assert len(seen) == 1


def test_nonleaf_hook_sees_and_changes_its_gradient():
    x = gf.ones(2, requires_grad=True)
    h = x * 3
    h.register_hook(lambda g: g * 0)
    (h * 2).sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0])


def test_grad_function_returns_gradients_without_touching_dot_grad():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    w = gf.tensor([3.0, 4.0], requires_grad=True)
    y = (x * w).sum()
    gx, gw = gf.grad(y, [x, w])
    numpy.testing.assert_allclose(gx.numpy(), [3.0, 4.0])
    numpy.testing.assert_allclose(gw.numpy(), [1.0, 2.0])
    assert x.grad is None and w.grad is None


def test_grad_of_intermediate_tensor():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    y = (h * h).sum()
    (gh,) = gf.grad(y, h)
    numpy.testing.assert_allclose(gh.numpy(), [4.0, 8.0])


def test_grad_unused_input_raises_unless_allowed():
    x = gf.ones(2, requires_grad=True)
    z = gf.ones(2, requires_grad=True)
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        gf.grad(y, [x, z], retain_graph=True)
    gx, gz = gf.grad(y, [x, z], allow_unused=True)
    assert gz is None and gx is not None


def test_multiple_roots_with_grad_outputs():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    a = x * 2
    b = x * 3
    (gx,) = gf.grad([a, b], [x], grad_outputs=[gf.ones(2), gf.full((2,), 2.0)])
    numpy.testing.assert_allclose(gx.numpy(), [8.0, 8.0])


def test_inplace_change_of_saved_tensor_is_detected():
    w = gf.tensor([1.0, 2.0], requires_grad=True)
    x = gf.tensor([3.0, 4.0])
    y = (w * x).sum()
    x.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_inplace_on_leaf_requiring_grad_is_refused_under_grad_mode():
    w = gf.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="no_grad"):
        w.add_(1.0)
    with gf.no_grad():
        w.add_(1.0)
    numpy.testing.assert_allclose(w.detach().numpy(), [2.0, 2.0])


def test_detach_and_requires_grad_():
    x = gf.ones(2, requires_grad=True)
    d = (x * 2).detach()
    assert d.is_leaf and not d.requires_grad
    d.requires_grad_()
    (d * d).sum().backward()
    numpy.testing.assert_allclose(d.grad.numpy(), [4.0, 4.0])
    assert x.grad is None

"""gradflow.utils.checkpoint: recomputation in backward gives the plain gradients (dropout
included), keeps less memory, and handles PyTorch's cases: gradflow.grad, nesting, keyword
arguments, non-tensor outputs, inputs without grad, in-place changes, both mechanisms."""

import tracemalloc

import numpy
import pytest

import gradflow
from gradflow import nn
from gradflow.utils.checkpoint import checkpoint, checkpoint_sequential

MODES = [False, True]  # use_reentrant


def host(t):
    return t.numpy(force=True)


def block(device="cpu"):
    gradflow.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Dropout(0.3), nn.Linear(16, 4)).to(device)


def grads(model, x):
    return [host(p.grad).copy() for p in model.parameters()] + [host(x.grad).copy()]


@pytest.mark.parametrize("reentrant", MODES)
def test_gradients_equal_the_plain_run_with_dropout(device, reentrant):
    model = block(device)
    if device != "cpu":  # a GPU's stream is re-seeded, not replayed: no dropout to compare
        model.eval()
    x = gradflow.randn(8, 6, device=device, requires_grad=True)
    gradflow.manual_seed(5)
    plain = model(x)
    plain.square().sum().backward()
    expected = grads(model, x)
    model.zero_grad()
    x.grad = None
    gradflow.manual_seed(5)
    out = checkpoint(model, x, use_reentrant=reentrant)
    assert out.grad_fn is not None and "Checkpoint" in repr(out.grad_fn)
    numpy.testing.assert_array_equal(host(out), host(plain))
    gradflow.manual_seed(99)  # the random stream moved on: backward must restore forward's
    out.square().sum().backward()
    for got, want in zip(grads(model, x), expected, strict=True):
        numpy.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("reentrant", MODES)
def test_recomputation_draws_the_dropout_mask_of_forward(device, reentrant):
    w = gradflow.full((64,), 2.0, device=device, requires_grad=True)
    x = (gradflow.rand(32, 64, device=device) + 0.5).requires_grad_()

    def fn(a):
        return nn.functional.dropout(a * w, 0.5, training=True)

    out = checkpoint(fn, x, use_reentrant=reentrant)
    gradflow.randn(1000, device=device)  # the stream moves on before backward
    out.sum().backward()
    # d sum(mask * x * w / (1 - p)) / dw = sum over the batch of out / w: the forward's mask
    numpy.testing.assert_allclose(host(w.grad), host(out).sum(0) / 2.0, rtol=1e-5)
    assert 0 < (host(out) == 0).mean() < 1


def test_without_preserve_rng_state_dropout_is_drawn_again():
    model = block()
    x = gradflow.randn(8, 6, requires_grad=True)
    gradflow.manual_seed(5)
    model(x).square().sum().backward()
    expected = grads(model, x)
    model.zero_grad()
    x.grad = None
    gradflow.manual_seed(5)
    out = checkpoint(model, x, preserve_rng_state=False)
    out.square().sum().backward()
    assert not numpy.allclose(grads(model, x)[0], expected[0])


def test_forward_runs_once_more_in_backward_only():
    calls = []
    lin = nn.Linear(3, 3)

    def fn(a):
        calls.append(gradflow.is_grad_enabled())
        return lin(a).relu()

    x = gradflow.randn(2, 3, requires_grad=True)
    out = checkpoint(fn, x)
    assert len(calls) == 1
    out.sum().backward()
    assert calls == [True, True]
    with gradflow.no_grad():
        checkpoint(fn, x)
    assert len(calls) == 3  # under no_grad it is just a call


def test_activations_are_not_kept_between_forward_and_backward():
    gradflow.manual_seed(0)
    layers = [nn.Linear(256, 256) for _ in range(8)]
    x = gradflow.randn(512, 256, requires_grad=True)

    def deep(a):
        for layer in layers:
            a = layer(a).tanh()
        return a

    def held(run):
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        out = run()
        kept = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        out.sum().backward()
        return kept

    plain = held(lambda: deep(x))
    checkpointed = held(lambda: checkpoint(deep, x))
    one_activation = 512 * 256 * 4
    assert plain > 7 * one_activation  # each of the 8 layers keeps its tanh output
    assert checkpointed < 2.5 * one_activation  # the output (and the input, already there)


def test_grad_and_backward_inputs_work_without_touching_other_grads():
    model = block()
    model.eval()
    x = gradflow.randn(4, 6, requires_grad=True)
    out = checkpoint(model, x)
    got = gradflow.autograd.grad(out.sum(), [x, model[0].weight])
    assert all(p.grad is None for p in model.parameters())
    model(x).sum().backward()
    numpy.testing.assert_allclose(host(got[0]), host(x.grad), rtol=1e-6)
    numpy.testing.assert_allclose(host(got[1]), host(model[0].weight.grad), rtol=1e-6)
    model.zero_grad()
    x.grad = None
    checkpoint(model, x).sum().backward(inputs=[model[3].bias])
    assert x.grad is None and model[0].weight.grad is None
    assert model[3].bias.grad is not None


def test_reentrant_form_refuses_grad_and_warns_without_inputs_needing_grad():
    model = block()
    x = gradflow.randn(4, 6, requires_grad=True)
    out = checkpoint(model, x, use_reentrant=True)
    with pytest.raises(RuntimeError, match="use_reentrant=False"):
        gradflow.autograd.grad(out.sum(), [x])
    with pytest.warns(UserWarning, match="none of the inputs requires grad"):
        checkpoint(model, x.detach(), use_reentrant=True)
    with pytest.raises(ValueError, match="Unexpected keyword arguments"):
        checkpoint(lambda a, b: a + b, x, b=x, use_reentrant=True)


def test_parameters_reached_only_inside_get_their_gradient_without_reentrant():
    model = block()
    model.eval()
    x = gradflow.randn(4, 6)  # the input needs no gradient; the parameters do
    checkpoint(model, x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_nested_checkpoints():
    model = block()
    model.eval()
    x = gradflow.randn(4, 6, requires_grad=True)
    model(x).exp().sum().backward()
    expected = grads(model, x)
    model.zero_grad()
    x.grad = None

    def outer(a):
        h = checkpoint(lambda b: model[1](model[0](b)), a)
        return checkpoint(lambda b: model[3](b), h).exp()

    checkpoint(outer, x).sum().backward()
    for got, want in zip(grads(model, x), expected, strict=True):
        numpy.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_keywords_structures_and_tensors_without_grad():
    w = gradflow.randn(3, requires_grad=True)
    x = gradflow.randn(3, requires_grad=True)
    mask = gradflow.tensor([1.0, 0.0, 1.0])

    def fn(a, scale, *, m, label):
        return (a * w * m * scale, label, None, (a * 0).detach(), a)

    out = checkpoint(fn, x, 2.0, m=mask, label="tag")
    assert out[1] == "tag" and out[2] is None and not out[3].requires_grad
    assert out[4] is x  # an input returned as it is stays that tensor
    (out[0].sum() + out[4].sum()).backward()
    numpy.testing.assert_allclose(host(x.grad), host(w * mask * 2 + 1), rtol=1e-6)
    numpy.testing.assert_allclose(host(w.grad), host(x * mask * 2), rtol=1e-6)


def test_an_input_changed_in_place_after_forward_is_refused():
    lin = nn.Linear(3, 3)
    x = gradflow.randn(2, 3)
    out = checkpoint(lin, x)
    x.add_(1.0)
    with pytest.raises(RuntimeError, match="modified in place"):
        out.sum().backward()


def test_a_closure_over_an_intermediate_tensor_is_refused():
    x = gradflow.randn(3, requires_grad=True)
    h = x * 3
    with pytest.raises(RuntimeError, match="argument"):
        checkpoint(lambda a: a + h, x)
    # a closure over a leaf (a parameter) is what a module is: fine
    p = gradflow.ones(3, requires_grad=True)
    checkpoint(lambda a: a * p, x).sum().backward()
    numpy.testing.assert_allclose(host(p.grad), host(x))


def test_checkpoint_sequential_matches_the_plain_run():
    model = nn.Sequential(*[nn.Sequential(nn.Linear(5, 5), nn.Tanh()) for _ in range(5)])
    x = gradflow.randn(3, 5, requires_grad=True)
    model(x).sum().backward()
    expected = grads(model, x)
    for segments in (1, 2, 3, 5):
        model.zero_grad()
        x.grad = None
        checkpoint_sequential(model, segments, x, use_reentrant=False).sum().backward()
        for got, want in zip(grads(model, x), expected, strict=True):
            numpy.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="segments"):
        checkpoint_sequential(model, 0, x)
    with pytest.raises(ValueError, match="Unexpected keyword"):
        checkpoint_sequential(model, 2, x, bogus=1)


def test_torch_parity_of_checkpointed_gradients():
    torch = pytest.importorskip("torch")
    from torch.utils.checkpoint import checkpoint as torch_checkpoint

    gradflow.manual_seed(0)
    ours = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 2))
    with torch.no_grad():
        for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
            b.copy_(torch.from_numpy(host(a)))
    x = numpy.random.default_rng(0).normal(size=(5, 4)).astype(numpy.float32)
    checkpoint(ours, gradflow.tensor(x)).pow(2).sum().backward()
    torch_checkpoint(theirs, torch.tensor(x), use_reentrant=False).pow(2).sum().backward()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        numpy.testing.assert_allclose(host(a.grad), b.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_double_backward_through_a_checkpoint():
    from gradflow.autograd import gradgradcheck

    gradflow.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    x0 = gradflow.randn(5, 3, dtype=gradflow.float64)
    assert gradgradcheck(lambda t: checkpoint(model, t), (x0.clone().requires_grad_(),))

    def penalty(checkpointed):  # a gradient penalty: the input gradient differentiated again
        model.zero_grad()
        x = x0.clone().requires_grad_()
        h = x * 2  # the checkpoint's input has a graph of its own
        out = checkpoint(model, h) if checkpointed else model(h)
        (g,) = gradflow.grad(out.sum(), x, create_graph=True)
        (g.square().sum() + out.sum()).backward()
        return [host(p.grad).copy() for p in model.parameters()]

    for got, want in zip(penalty(True), penalty(False), strict=True):
        numpy.testing.assert_allclose(got, want, rtol=1e-10)
    out = checkpoint(model, x0.clone().requires_grad_(), use_reentrant=True)
    with pytest.raises(RuntimeError, match="create_graph"):
        gradflow.grad(out.sum(), list(model.parameters()), create_graph=True)

"""A cell run step by step equals the layer over the whole sequence, to the bit: on NumPy the
layer folds the sigmoid gates' 1/2 into its weights (T > 1) while a single step scales its
gates instead, and both are exact (a power of two)."""

import numpy
import pytest

import gradflow as gf

LAYERS = {"lstm": (gf.nn.LSTM, gf.nn.LSTMCell), "gru": (gf.nn.GRU, gf.nn.GRUCell)}


@pytest.mark.parametrize("mode", list(LAYERS))
@pytest.mark.parametrize("bias", [True, False])
def test_cell_steps_equal_the_layer_bitwise(mode, bias):
    layer_cls, cell_cls = LAYERS[mode]
    gf.manual_seed(3)
    layer = layer_cls(6, 5, bias=bias)
    cell = cell_cls(6, 5, bias=bias)
    for name, p in cell.named_parameters():
        p.data = getattr(layer, name + "_l0").detach().clone()
    rng = numpy.random.default_rng(2)
    x = rng.standard_normal((7, 3, 6)).astype(numpy.float32)
    h0 = rng.standard_normal((3, 5)).astype(numpy.float32)
    state = (gf.tensor(h0), gf.tensor(h0 * 0.5)) if mode == "lstm" else gf.tensor(h0)
    hx = (state[0][None], state[1][None]) if mode == "lstm" else state[None]

    xs = gf.tensor(x, requires_grad=True)
    out, _ = layer(xs, hx)
    out.sum().backward()

    xc = gf.tensor(x, requires_grad=True)
    outs, h = [], state
    for t in range(7):
        h = cell(xc[t], h)
        outs.append(h[0] if mode == "lstm" else h)
    steps = gf.stack(outs)
    steps.sum().backward()

    numpy.testing.assert_array_equal(steps.detach().numpy(), out.detach().numpy())
    numpy.testing.assert_allclose(xc.grad.numpy(), xs.grad.numpy(), rtol=1e-5, atol=1e-6)
    for name, p in cell.named_parameters():
        want = getattr(layer, name + "_l0").grad.numpy()
        numpy.testing.assert_allclose(p.grad.numpy(), want, rtol=1e-5, atol=1e-5)

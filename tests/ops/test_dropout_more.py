"""dropout1d/2d/3d (channel dropout), alpha_dropout and feature_alpha_dropout: which elements
share a draw, scaling, gradients, reproducibility, PyTorch's rank rules, errors."""

import numpy
import pytest

import gradflow as gf
from gradflow.ops.dropout import (
    alpha_dropout,
    dropout1d,
    dropout2d,
    dropout3d,
    feature_alpha_dropout,
)

_SATURATION = -1.7580993408473766


def host(t):
    return t.detach().cpu().numpy()


@pytest.mark.parametrize(
    ("fn", "shape", "mask_dims"),
    [
        (dropout1d, (4, 6, 5), 2),
        (dropout1d, (6, 5), 1),
        (dropout2d, (4, 6, 3, 3), 2),
        (dropout2d, (4, 6, 5), 2),  # PyTorch reads a 3-D input as (N, C, L)
        (dropout2d, (4, 6), 2),
        (dropout3d, (2, 6, 2, 2, 2), 2),
        (dropout3d, (6, 2, 2, 2), 1),
    ],
)
def test_channel_dropout_zeroes_whole_channels(device, fn, shape, mask_dims):
    x = gf.ones(*shape, device=device, requires_grad=True)
    y = fn(x, p=0.4)
    out = host(y).reshape(*shape[:mask_dims], -1)
    assert set(numpy.unique(out).tolist()) <= {0.0, float(numpy.float32(1 / 0.6))}
    assert (out.min(axis=-1) == out.max(axis=-1)).all()  # one draw per channel
    assert 0 < (out[..., 0] == 0).sum() < out[..., 0].size
    g = numpy.random.default_rng(0).standard_normal(shape)
    y.backward(gf.tensor(g, device=device, dtype=x.dtype))
    numpy.testing.assert_allclose(host(x.grad), g * host(y), rtol=1e-6)  # mask * scale


@pytest.mark.parametrize("fn", [dropout1d, dropout2d, dropout3d])
def test_channel_dropout_identity_cases(fn):
    x = gf.ones(2, 3, 4, 4) if fn is not dropout1d else gf.ones(2, 3, 4)
    assert fn(x, 0.5, training=False) is x
    assert fn(x, 0.0) is x
    assert not host(fn(x, 1.0)).any()


def test_channel_dropout_is_reproducible_with_a_generator():
    x = gf.ones(8, 16, 3)
    a = dropout1d(x, generator=gf.Generator().manual_seed(3))
    b = dropout1d(x, generator=gf.Generator().manual_seed(3))
    numpy.testing.assert_array_equal(host(a), host(b))


def test_alpha_dropout_matches_pytorchs_formula(device):
    x = gf.tensor(numpy.random.default_rng(0).standard_normal((200, 50)), device=device,
                  requires_grad=True)  # fmt: skip
    p = 0.2
    y = alpha_dropout(x, p, training=True)
    a = 1 / numpy.sqrt((_SATURATION**2 * p + 1) * (1 - p))
    b = -a * _SATURATION * p
    dropped = numpy.isclose(host(y), a * _SATURATION + b)
    kept = ~dropped
    numpy.testing.assert_allclose(host(y)[kept], a * host(x)[kept] + b, rtol=1e-12)
    assert abs(dropped.mean() - p) < 0.03
    # Mean 0 and variance 1 survive for standard normal inputs (SELU's fixed point).
    assert abs(host(y).mean()) < 0.05 and abs(host(y).std() - 1) < 0.05
    y.backward(gf.ones_like(y))
    numpy.testing.assert_allclose(host(x.grad), kept * a, rtol=1e-12)


def test_alpha_dropout_defaults_and_identities():
    x = gf.ones(3, 4)
    assert alpha_dropout(x) is x  # PyTorch's default training=False
    assert alpha_dropout(x, 0.0, training=True) is x
    assert feature_alpha_dropout(x) is x
    assert not host(alpha_dropout(x, 1.0, training=True)).any()


def test_feature_alpha_dropout_drops_whole_channels():
    y = host(feature_alpha_dropout(gf.ones(8, 16, 5), 0.5, training=True))
    assert (y.min(axis=-1) == y.max(axis=-1)).all()
    assert len(numpy.unique(y)) == 2


@pytest.mark.parametrize(
    ("fn", "shape", "kwargs", "error", "message"),
    [
        (dropout1d, (2, 3, 4, 5), {}, RuntimeError,
         "dropout1d: Expected 2D or 3D input, but received a 4D input. Note that dropout1d "
         "exists to provide channel-wise dropout on inputs with 1 spatial dimension, a channel "
         "dimension, and an optional batch dimension (i.e. 2D or 3D inputs)."),
        (dropout2d, (6,), {}, RuntimeError,
         "dropout2d: Feature dropout requires at least 2 dimensions in the input"),
        (feature_alpha_dropout, (6,), {"training": True}, RuntimeError,
         "feature_alpha_dropout: Feature dropout requires at least 2 dimensions in the input"),
        (dropout2d, (2, 3, 4, 4), {"p": 1.5}, ValueError,
         "dropout2d: dropout probability has to be between 0 and 1, but got 1.5"),
        (alpha_dropout, (2, 3), {"p": -0.1}, ValueError,
         "alpha_dropout: dropout probability has to be between 0 and 1, but got -0.1"),
    ],
)  # fmt: skip
def test_errors(fn, shape, kwargs, error, message):
    with pytest.raises(error) as info:
        fn(gf.ones(*shape), **kwargs)
    assert str(info.value) == message


def test_integer_input_is_rejected():
    with pytest.raises(TypeError, match="dropout2d: argument 'input' has dtype int64"):
        dropout2d(gf.zeros(2, 3, dtype=gf.int64))


def test_dropout_takes_pytorchs_positional_inplace_flag():
    from gradflow.ops.dropout import dropout

    x = gf.ones(100)
    y = dropout(x, 0.5, True, False)  # F.dropout(input, p, training, inplace)
    assert set(numpy.unique(host(y)).tolist()) == {0.0, 2.0}
    assert dropout(x, 0.5, False, True) is x

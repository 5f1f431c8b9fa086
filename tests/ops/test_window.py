"""ops.window: the sliding-window geometry conv and pooling share (output sizes against
PyTorch's, 'same' padding, the 1-D lift, the padded frames, the argument checks)."""

import numpy
import pytest

import gradflow as gf
from gradflow.ops import window as geometry
from gradflow.ops.window import Window


@pytest.mark.parametrize("size,k,s,p,d", [(7, 3, 2, 1, 1), (9, 2, 3, 0, 2), (5, 5, 1, 2, 1)])
def test_output_sizes_match_torch(size, k, s, p, d):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, w = torch.zeros(1, 1, size), torch.zeros(1, 1, k)
    assert geometry.conv_output_size(size, p, p, k, s, d) == F.conv1d(x, w, None, s, p, d).shape[-1]
    for ceil_mode in (False, True):
        pooled = F.max_pool1d(x, k, s, min(p, k // 2), d, ceil_mode=ceil_mode)
        assert (
            geometry.pool_output_size(size, k, s, min(p, k // 2), d, ceil_mode) == pooled.shape[-1]
        )
    up = F.conv_transpose1d(x, w, None, s, p, s - 1, 1, d)
    assert geometry.transposed_output_size(size, k, s, p, d, s - 1) == up.shape[-1]


def test_same_padding_keeps_the_size_and_puts_an_odd_extra_at_the_end():
    before, after = geometry.conv_padding("same", (4, 3), (1, 2), (1, 1), "conv2d")
    assert (before, after) == ((1, 2), (2, 2))
    assert geometry.conv_padding("valid", (4, 3), (1, 1), (1, 1), "conv2d") == ((0, 0), (0, 0))
    assert geometry.conv_padding(1, (3,), (1,), (1,), "conv1d") == ((1,), (1,))
    with pytest.raises(ValueError, match=r"conv1d: padding='same' needs stride 1"):
        geometry.conv_padding("same", (3,), (1,), (2,), "conv1d")


def test_a_1d_window_is_lifted_to_a_unit_height():
    window = Window.lifted((3,), (2,), (1,), (2,), (4,))
    assert window == Window((1, 3), (1, 2), (0, 1), (1, 2), (1, 4))
    assert Window.lifted((2, 3), (1, 2), (0, 1), (1, 1), (5, 4)) == Window(
        (2, 3), (1, 2), (0, 1), (1, 1), (5, 4)
    )


def test_padded_frame_holds_every_window_and_gradient_frame_the_input_too():
    window = Window((2, 2), (2, 2), (1, 0), (1, 1), (2, 1))  # a last row past the input
    x = numpy.arange(6.0).reshape(1, 3, 2)
    frame = geometry.padded_frame(x, window, -1.0)
    assert frame.shape == (1, window.span(0), window.span(1)) == (1, 4, 2)
    numpy.testing.assert_array_equal(frame[0, 0], [-1.0, -1.0])
    numpy.testing.assert_array_equal(frame[0, 1:], x[0])
    assert geometry.gradient_frame((1,), window, (3, 2), x.dtype, numpy).shape == (1, 4, 2)
    assert geometry.padded_frame(x, Window((2, 2), (1, 1), (0, 0), (1, 1), (2, 1)), 0.0) is x


def test_argument_checks_name_the_op():
    assert geometry.int_tuple(numpy.int64(3), 2, "stride", "max_pool2d", 1) == (3, 3)
    with pytest.raises(ValueError, match=r"max_pool1d: argument 'stride' is True"):
        geometry.int_tuple(True, 1, "stride", "max_pool1d", 1)
    with pytest.raises(ValueError, match=r"avg_pool2d: input of shape \(1, 1, 2, 2\) is too small"):
        geometry.check_output_size("avg_pool2d", gf.zeros(1, 1, 2, 2), (0, 1), "kernel_size (3, 3)")

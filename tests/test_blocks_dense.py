"""DenseBlock: shapes in 2D/3D, dense connectivity, U-Net fit, gradients, bad input."""

from __future__ import annotations

import pytest
import torch

from course_lib.blocks.dense import DenseBlock


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("padding, trimmed", [("valid", 4), ("same", 0)])
def test_shapes(spatial_dims, padding, trimmed):
    block = DenseBlock(3, 6, spatial_dims=spatial_dims, padding=padding, norm="instance")
    out = block(torch.randn(2, 3, *(12,) * spatial_dims))
    assert out.shape == (2, 6, *(12 - trimmed,) * spatial_dims)


def test_layer_l_sees_input_plus_l_times_growth_rate_channels():
    block = DenseBlock(5, 8, num_layers=3, growth_rate=4, padding="same")
    assert [layer[0].in_channels for layer in block.layers] == [5, 9, 13]
    assert block.transition[0].in_channels == 5 + 3 * 4
    assert block(torch.randn(1, 5, 9, 9)).shape == (1, 8, 9, 9)


def test_valid_trims_two_pixels_per_layer():
    block = DenseBlock(1, 4, num_layers=3, padding="valid")
    assert block(torch.randn(1, 1, 15, 15)).shape == (1, 4, 9, 9)


def test_input_reaches_the_transition_unchanged():
    # dense connectivity: the 1x1 transition sees x itself (centre-cropped), not only new maps
    torch.manual_seed(0)
    block = DenseBlock(2, 3, padding="valid").double()
    x = torch.randn(1, 2, 9, 9, dtype=torch.float64)
    h1 = block.layers[0](x)
    h2 = block.layers[1](torch.cat([x[:, :, 1:-1, 1:-1], h1], 1))
    features = torch.cat([x[:, :, 2:-2, 2:-2], h1[:, :, 1:-1, 1:-1], h2], 1)
    assert torch.allclose(block(x), block.transition(features))


def test_gradcheck():
    torch.manual_seed(0)
    block = DenseBlock(2, 2, padding="same", growth_rate=2).double()
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,))


def test_bfloat16_runs():
    block = DenseBlock(2, 4, padding="same").to(torch.bfloat16)
    assert torch.isfinite(block(torch.randn(1, 2, 8, 8, dtype=torch.bfloat16))).all()


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"num_layers": 0}, "num_layers"),
        ({"growth_rate": 0}, "growth_rate"),
        ({"padding": "full"}, "padding"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        DenseBlock(1, 2, **kwargs)

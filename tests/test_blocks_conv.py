"""Conv-norm-activation and double-conv blocks: shapes, options, initialisation, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_lib.blocks.conv import ConvNormAct, DoubleConv, init_gaussian_, norm_layer


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("padding, lost", [("valid", 4), ("same", 0)])
def test_double_conv_shape(spatial_dims, padding, lost):
    block = DoubleConv(2, 5, spatial_dims=spatial_dims, padding=padding)
    x = torch.randn(1, 2, *([12] * spatial_dims))
    assert block(x).shape == (1, 5, *([12 - lost] * spatial_dims))


@pytest.mark.parametrize("norm, kind", [("batch", nn.BatchNorm3d), ("instance", nn.InstanceNorm3d)])
def test_norm_drops_the_redundant_bias(norm, kind):
    block = ConvNormAct(1, 4, spatial_dims=3, norm=norm)
    assert block[0].bias is None
    assert isinstance(block[1], kind)
    assert ConvNormAct(1, 4)[0].bias is not None  # no norm: the conv keeps its bias


def test_activations():
    assert isinstance(ConvNormAct(1, 3, activation="prelu")[2], nn.PReLU)
    assert ConvNormAct(1, 3, activation="leaky_relu")[2].negative_slope == 0.01


def test_gaussian_init_matches_the_paper():
    # Ronneberger et al.: std sqrt(2/N), N = 9 * 64 = 576 for a 3x3 conv over 64 channels
    torch.manual_seed(0)
    conv = nn.Conv2d(64, 64, 3)
    up = nn.ConvTranspose2d(128, 64, 2, stride=2)
    init_gaussian_(nn.Sequential(conv, up))
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / 576), rel=0.02)
    assert up.weight.std().item() == pytest.approx(math.sqrt(2 / 128), rel=0.02)
    assert conv.bias.abs().max() == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(padding="full"), "padding"),
        (dict(norm="group"), "norm"),
        (dict(activation="gelu"), "activation"),
        (dict(spatial_dims=1), "spatial_dims"),
        (dict(kernel_size=2), "kernel_size"),
    ],
)
def test_bad_options_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConvNormAct(1, 2, **kwargs)


def test_norm_none_is_identity():
    assert isinstance(norm_layer(None, 3, 2), nn.Identity)

"""SpatialAttention (Wang et al. 2019): shapes, the map's logit, the residual formula, kernels,
errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.blocks.spatial_attention import SpatialAttention


@pytest.mark.parametrize(
    "spatial_dims, kernel, shape",
    [(3, (1, 3, 3), (2, 8, 3, 10, 12)), (3, 3, (1, 6, 5, 6, 7)), (2, 3, (2, 4, 9, 11))],
)
def test_shapes_and_the_map_is_returned_as_its_logit(spatial_dims, kernel, shape):
    torch.manual_seed(0)
    sa = SpatialAttention(shape[1], kernel_size=kernel, spatial_dims=spatial_dims)
    x = torch.randn(shape)
    y, z = sa(x)
    assert y.shape == x.shape
    assert z.shape == (shape[0], 1, *shape[2:])
    assert (z < 0).any() and (z > 0).any()  # a logit, not a map squashed into [0, 1]
    torch.testing.assert_close(y, x * (1 + torch.sigmoid(z)))


def test_hidden_layer_has_half_the_channels_and_kernels_as_given():
    sa = SpatialAttention(8, kernel_size=(1, 3, 3))
    assert sa.conv1.weight.shape == (4, 8, 1, 3, 3)
    assert sa.conv2.weight.shape == (1, 4, 1, 3, 3)


def test_output_is_features_times_one_plus_attention():
    """The residual connection: y = x * A + x, computed independently with functional convs."""
    torch.manual_seed(1)
    sa = SpatialAttention(6, kernel_size=3).double()
    x = torch.randn(2, 6, 4, 5, 6, dtype=torch.float64)
    hidden = torch.nn.functional.conv3d(x, sa.conv1.weight, sa.conv1.bias, padding=1).clamp_min(0)
    z = torch.nn.functional.conv3d(hidden, sa.conv2.weight, sa.conv2.bias, padding=1)
    y, z_module = sa(x)
    torch.testing.assert_close(z_module, z)  # the logit, before the sigmoid
    torch.testing.assert_close(y, x * torch.sigmoid(z) + x)


def test_zero_attention_passes_features_through():
    """A map driven to 0 (very negative bias) leaves the features unchanged: y = x."""
    sa = SpatialAttention(4, kernel_size=1)
    with torch.no_grad():
        sa.conv2.bias.fill_(-1e4)
    x = torch.randn(1, 4, 2, 3, 3)
    y, z = sa(x)
    assert torch.all(torch.sigmoid(z) == 0)
    torch.testing.assert_close(y, x)


@settings(max_examples=10, deadline=None)
@given(bias=st.floats(-1e6, 1e6), scale=st.floats(0.0, 1e4))
def test_extreme_inputs_stay_finite_and_in_range(bias, scale):
    sa = SpatialAttention(4, kernel_size=1)
    with torch.no_grad():
        sa.conv2.bias.fill_(bias)
    x = torch.randn(1, 4, 2, 3, 3) * scale
    y, z = sa(x)
    assert torch.isfinite(y).all() and torch.isfinite(z).all()


def test_gradcheck_float64():
    torch.manual_seed(2)
    sa = SpatialAttention(4, kernel_size=(1, 3, 3)).double()
    x = torch.randn(1, 4, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(sa, (x,))  # both outputs: the features and the map's logit


def test_bfloat16():
    sa = SpatialAttention(4, kernel_size=3).to(torch.bfloat16)
    y, z = sa(torch.randn(1, 4, 3, 6, 6, dtype=torch.bfloat16))
    assert y.dtype == z.dtype == torch.bfloat16
    assert torch.isfinite(y).all() and torch.isfinite(z).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"channels": 1}, "channels"),
        ({"channels": 4, "kernel_size": 2}, "kernel_size"),
        ({"channels": 4, "kernel_size": (3, 3)}, "kernel_size"),
        ({"channels": 4, "spatial_dims": 1}, "spatial_dims"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SpatialAttention(**kwargs)


def test_bad_input_shape():
    with pytest.raises(ValueError, match=r"x must be \(N, 4"):
        SpatialAttention(4)(torch.randn(1, 3, 2, 4, 4))

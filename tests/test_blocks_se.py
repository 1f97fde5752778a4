"""Squeeze-and-excitation: identity-safe shape, the paper's formula, gates, U-Net factory."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.blocks.conv import DoubleConv
from course_lib.blocks.se import REDUCTION, SqueezeExcitation, se_block


@pytest.mark.parametrize("spatial", [(6, 7), (3, 4, 5)])
def test_output_shape_equals_input_shape_2d_and_3d(spatial):
    x = torch.randn(2, 32, *spatial)
    assert SqueezeExcitation(32)(x).shape == x.shape


def test_hidden_width_is_channels_over_r():
    assert SqueezeExcitation(64).excitation[0].out_features == 64 // REDUCTION == 4
    assert SqueezeExcitation(8).excitation[0].out_features == 1  # at least one unit


def test_matches_the_papers_equations():
    torch.manual_seed(0)
    se = SqueezeExcitation(6, reduction=2).double()
    x = torch.randn(2, 6, 4, 5, dtype=torch.float64)
    fc1, fc2 = se.excitation[0], se.excitation[2]
    z = x.mean(dim=(2, 3))  # squeeze, eq. 2
    s = torch.sigmoid(
        fc2.weight @ torch.relu(fc1.weight @ z.T + fc1.bias[:, None]) + fc2.bias[:, None]
    )
    assert torch.allclose(se(x), x * s.T[:, :, None, None])


@settings(max_examples=10, deadline=None)
@given(scale=st.floats(1e-3, 1e3), seed=st.integers(0, 100))
def test_gates_are_in_0_1_and_channel_wise(scale, seed):
    torch.manual_seed(seed)
    se = SqueezeExcitation(8, reduction=2)
    x = scale * torch.randn(1, 8, 5, 5)
    s = se.gates(x)
    assert s.shape == (1, 8) and bool(((s >= 0) & (s <= 1)).all())
    ratio = se(x) / x
    assert torch.allclose(ratio, s[:, :, None, None].expand_as(ratio), rtol=1e-4, atol=1e-6)


def test_constant_gates_on_a_zero_excitation():
    se = SqueezeExcitation(4, reduction=2)
    for p in se.parameters():
        torch.nn.init.zeros_(p)
    x = torch.randn(1, 4, 3, 3)
    assert torch.allclose(se(x), 0.5 * x)  # sigmoid(0) = 1/2 everywhere


def test_extreme_inputs_stay_finite():
    x = torch.full((1, 4, 3, 3), 1e30)
    assert torch.isfinite(SqueezeExcitation(4, 2)(x)).all()


def test_gradcheck():
    torch.manual_seed(0)
    se = SqueezeExcitation(4, reduction=2).double()
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(se, (x,))


def test_bfloat16_runs():
    se = SqueezeExcitation(4, 2).to(torch.bfloat16)
    assert se(torch.randn(1, 4, 3, 3, dtype=torch.bfloat16)).dtype == torch.bfloat16


def test_bad_input():
    with pytest.raises(ValueError, match="reduction"):
        SqueezeExcitation(4, reduction=0)
    with pytest.raises(ValueError, match=r"\(N, 4, \*spatial\)"):
        SqueezeExcitation(4)(torch.zeros(1, 3, 2, 2))


def test_se_block_is_the_block_then_se_with_the_same_signature():
    make = se_block(DoubleConv, reduction=2)
    block = make(3, 8, spatial_dims=3, padding="valid", norm="batch")
    assert isinstance(block[0], DoubleConv) and isinstance(block[1], SqueezeExcitation)
    assert block(torch.randn(2, 3, 9, 9, 9)).shape == (2, 8, 5, 5, 5)

"""ResidualBlock: shapes in 2D/3D, the identity/projection shortcut, U-Net fit, gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.blocks.residual import ResidualBlock


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("padding, trimmed", [("valid", 4), ("same", 0)])
def test_shapes(spatial_dims, padding, trimmed):
    block = ResidualBlock(3, 5, spatial_dims=spatial_dims, padding=padding, norm="batch")
    out = block(torch.randn(2, 3, *(12,) * spatial_dims))
    assert out.shape == (2, 5, *(12 - trimmed,) * spatial_dims)


def test_identity_shortcut_when_channels_stay():
    block = ResidualBlock(4, 4, padding="same")
    assert isinstance(block.shortcut, nn.Identity)
    assert isinstance(ResidualBlock(4, 6).shortcut, nn.Sequential)


def test_zero_residual_branch_passes_the_input_through():
    # with F(x) = 0 the block is act(x): the shortcut carries the signal (He et al. 2016)
    block = ResidualBlock(4, 4, padding="valid")
    for p in block.residual.parameters():
        nn.init.zeros_(p)
    x = torch.randn(1, 4, 10, 10)
    assert torch.equal(block(x), torch.relu(x[:, :, 2:-2, 2:-2]))


def test_matches_a_hand_written_forward():
    torch.manual_seed(0)
    block = ResidualBlock(2, 3, padding="same").double()
    x = torch.randn(1, 2, 7, 7, dtype=torch.float64)
    conv1, conv2, proj = block.residual[0][0], block.residual[1], block.shortcut[0]
    f = conv2(torch.relu(conv1(x)))
    assert torch.allclose(block(x), torch.relu(f + proj(x)))


def test_gradcheck():
    torch.manual_seed(0)
    block = ResidualBlock(2, 3, padding="valid").double()
    x = torch.randn(1, 2, 7, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,))


def test_bfloat16_runs():
    block = ResidualBlock(2, 3, padding="same").to(torch.bfloat16)
    out = block(torch.randn(1, 2, 8, 8, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="padding"):
        ResidualBlock(1, 2, padding="full")
    with pytest.raises(ValueError, match="spatial_dims"):
        ResidualBlock(1, 2, spatial_dims=1)

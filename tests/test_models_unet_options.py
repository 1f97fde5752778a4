"""UNet options of chapter 05: attention gates on the skips, residual / dense / SE blocks."""

from __future__ import annotations

import pytest
import torch

from course_lib.blocks.attention_gate import AttentionGate
from course_lib.blocks.conv import DoubleConv
from course_lib.blocks.dense import DenseBlock
from course_lib.blocks.residual import ResidualBlock
from course_lib.blocks.se import SqueezeExcitation, se_block
from course_lib.models.unet import UNet


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("up_mode", ["transpose", "upsample"])
def test_attention_gates_keep_every_shape(spatial_dims, padding, up_mode):
    net = UNet(
        1,
        2,
        2,
        2,
        padding=padding,
        spatial_dims=spatial_dims,
        up_mode=up_mode,
        attention_gates=True,
    )
    gates = [m for m in net.modules() if isinstance(m, AttentionGate)]
    assert len(gates) == 2  # one per skip connection
    size = net.valid_input_shape((20,) * spatial_dims)
    assert net(torch.randn(1, 1, *size)).shape == (1, 2, *net.output_shape(size))


def test_gates_off_by_default_and_the_same_net_otherwise():
    torch.manual_seed(0)
    plain = UNet(1, 2, 4, 2, padding="same")
    gated = UNet(1, 2, 4, 2, padding="same", attention_gates=True)
    assert not any(isinstance(m, AttentionGate) for m in plain.modules())
    extra = sum(p.numel() for p in gated.parameters()) - sum(p.numel() for p in plain.parameters())
    # per gate: W_x (c -> c/2, no bias), W_g (c -> c/2 + bias), psi (c/2 -> 1 + bias)
    assert extra == sum(c * (c // 2) * 2 + c // 2 + c // 2 + 1 for c in (4, 8))


def test_a_gate_that_passes_everything_gives_the_plain_net():
    torch.manual_seed(0)
    plain = UNet(1, 2, 4, 2, padding="same")
    gated = UNet(1, 2, 4, 2, padding="same", attention_gates=True)
    gated.load_state_dict(plain.state_dict(), strict=False)
    for stage in gated.decoder:  # alpha = sigmoid(large) = 1: the skip passes unchanged
        torch.nn.init.zeros_(stage.gate.psi.weight)
        torch.nn.init.constant_(stage.gate.psi.bias, 50.0)
    x = torch.randn(1, 1, 16, 16)
    assert torch.allclose(gated(x), plain(x), atol=1e-5)


def test_gradients_reach_the_gates():
    net = UNet(1, 2, 2, 2, padding="same", attention_gates=True)
    net(torch.randn(1, 1, 16, 16)).sum().backward()
    assert all(stage.gate.theta_x.weight.grad is not None for stage in net.decoder)


@pytest.mark.parametrize(
    "block",
    [ResidualBlock, DenseBlock, se_block(DoubleConv, reduction=2)],
    ids=["res", "dense", "se"],
)
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_blocks_combine_with_gates_norm_and_dropout(block, padding):
    net = UNet(
        1, 3, 4, 2, padding=padding, norm="batch", dropout=0.5, block=block, attention_gates=True
    )
    size = net.valid_input_shape((30, 30))
    assert net(torch.randn(2, 1, *size)).shape == (2, 3, *net.output_shape(size))


def test_se_block_puts_one_se_module_after_every_block():
    net = UNet(1, 2, 4, 2, padding="same", block=se_block(DoubleConv, reduction=2))
    assert sum(isinstance(m, SqueezeExcitation) for m in net.modules()) == 2 + 1 + 2

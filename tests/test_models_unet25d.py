"""UNet25D (Wang et al. 2019): shapes on anisotropic input, 2D vs 3D levels, attention maps,
receptive field, training signal of the attention loss, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.blocks.conv import ConvNormAct
from course_lib.losses.attention import attention_loss
from course_lib.models.unet25d import (
    BLOCK_OPTIONS,
    UNet25D,
    receptive_field_by_gradient,
    unet_receptive_field,
)


def _kernels(module: nn.Module) -> list[tuple[int, ...]]:
    return [m.kernel_size for m in module.modules() if isinstance(m, nn.Conv3d)]


def test_paper_configuration_shapes_on_anisotropic_input():
    torch.manual_seed(0)
    net = UNet25D(1, 2, base_channels=4)  # the paper's 5 levels, 2 of them 2D
    assert net.size_divisor == (4, 16, 16)
    x = torch.randn(2, 1, 8, 32, 48)  # few thick slices, many in-plane voxels
    logits, attention_logits = net(x, return_auxiliary=True)
    assert logits.shape == (2, 2, 8, 32, 48)
    # levels 1-2 pool in-plane only, then 2x2x2: the maps of decoder levels 1..4
    assert [tuple(z.shape) for z in attention_logits] == [
        (2, 1, 8, 32, 48),
        (2, 1, 8, 16, 24),
        (2, 1, 8, 8, 12),
        (2, 1, 4, 4, 6),
    ]
    assert all(torch.isfinite(z).all() for z in attention_logits)
    assert any((z < 0).any() or (z > 1).any() for z in attention_logits)  # logits, not maps
    assert not hasattr(net, "attention_maps")  # nothing (and no graph) kept on the module
    assert torch.equal(net(x), logits)  # plain call: the logits alone


def test_auxiliary_outputs_are_the_attention_modules_logits_before_the_sigmoid():
    torch.manual_seed(4)
    net = UNet25D(1, 2, base_channels=4, depth=2, levels_2d=1)
    seen = {}
    for level, sa in enumerate(net.spatial_attention):
        sa.conv2.register_forward_hook(lambda m, i, out, level=level: seen.update({level: out}))
    _, attention_logits = net(torch.randn(1, 1, 4, 16, 16), return_auxiliary=True)
    assert len(attention_logits) == len(seen) == 2
    for level, z in enumerate(attention_logits):
        assert torch.equal(z, seen[level])  # conv2's output: the map is torch.sigmoid(z)


def test_channels_double_per_level_from_16():
    net = UNet25D(1, 2)
    widths = [block[1][0].out_channels for block in net.encoder]
    assert widths == [16, 32, 64, 128, 256]


@pytest.mark.parametrize("levels_2d", [0, 2, 5])
def test_which_levels_use_2d_kernels_and_in_plane_pooling(levels_2d):
    net = UNet25D(1, 2, base_channels=4, depth=4, levels_2d=levels_2d)
    for level in range(5):
        expected = (1, 3, 3) if level < levels_2d else (3, 3, 3)
        assert set(_kernels(net.encoder[level])) == {expected}, level
        if level < 4:
            assert set(_kernels(net.decoder[level])) == {expected}, level
            assert set(_kernels(net.spatial_attention[level])) == {expected}, level
            pool = (1, 2, 2) if level < levels_2d else (2, 2, 2)
            assert net.down[level].kernel_size == pool and net.down[level].stride == pool
            assert net.up[level].kernel_size == pool and net.up[level].stride == pool


def test_block_is_conv_bn_prelu():
    net = UNet25D(1, 2, base_channels=4, depth=2, levels_2d=1)
    for block in [*net.encoder, *net.decoder]:
        for unit in block:
            assert [type(m) for m in unit] == [nn.Conv3d, nn.BatchNorm3d, nn.PReLU]
            assert unit[0].bias is None
    assert net.encoder[0][0][0].padding == (0, 1, 1)


def test_all_2d_net_never_mixes_slices():
    torch.manual_seed(1)
    net = UNet25D(1, 2, base_channels=4, depth=2, levels_2d=3).eval()
    x = torch.randn(1, 1, 5, 16, 16)
    y = x.clone()
    y[:, :, 2] += 1.0
    changed = (net(x) - net(y)).abs().sum(dim=(0, 1, 3, 4)) > 0
    assert changed.tolist() == [False, False, True, False, False]


@pytest.mark.parametrize(
    "levels_2d, input_shape, expected",
    [(1, (1, 1, 32, 64, 64), (22, 56, 56)), (3, (1, 1, 4, 64, 64), (1, 56, 56))],
)
def test_receptive_field_formula_matches_the_gradient(levels_2d, input_shape, expected):
    torch.manual_seed(0)
    net = UNet25D(1, 2, base_channels=8, depth=2, levels_2d=levels_2d)
    assert net.receptive_field == expected
    assert receptive_field_by_gradient(net, input_shape) == expected


def test_receptive_field_without_attention_and_in_mm():
    net = UNet25D(1, 2, base_channels=4, depth=2, levels_2d=1, attention=False)
    assert net.receptive_field == (18, 44, 44)
    assert receptive_field_by_gradient(net, (1, 1, 32, 64, 64)) == (18, 44, 44)
    # the paper's net on 1.5 x 0.4 x 0.4 mm voxels: 2.5D balances mm, 3D does not
    mm = {
        l2: [
            v * s
            for v, s in zip(
                UNet25D(1, 2, levels_2d=l2).receptive_field, (1.5, 0.4, 0.4), strict=True
            )
        ]
        for l2 in (0, 2)
    }
    assert mm[2][0] / mm[2][1] < 1 < mm[0][0] / mm[0][1]


def test_gradient_measurement_refuses_a_too_small_input():
    net = UNet25D(1, 2, base_channels=4, depth=1, levels_2d=0, attention=False)
    with pytest.raises(ValueError, match="too small"):
        receptive_field_by_gradient(net, (1, 1, 8, 8, 8))


def test_attention_loss_trains_the_attention_modules():
    torch.manual_seed(2)
    net = UNet25D(1, 2, base_channels=4, depth=2, levels_2d=1)
    x = torch.randn(2, 1, 4, 16, 16)
    foreground = torch.zeros(2, 4, 16, 16)
    foreground[:, 1:3, 4:8, 4:8] = 1
    _, attention_logits = net(x, return_auxiliary=True)
    attention_loss(attention_logits, foreground).backward()
    for sa in net.spatial_attention:
        assert sa.conv2.weight.grad is not None and sa.conv2.weight.grad.abs().sum() > 0
    assert net.head.weight.grad is None  # the head does not shape the maps


def test_without_attention():
    net = UNet25D(1, 3, base_channels=4, depth=2, attention=False)
    assert len(net.spatial_attention) == 0
    assert net(torch.randn(1, 1, 2, 8, 8)).shape == (1, 3, 2, 8, 8)
    with pytest.raises(ValueError, match="attention=True"):
        net(torch.randn(1, 1, 2, 8, 8), return_auxiliary=True)


def test_bfloat16_forward_is_finite():
    torch.manual_seed(3)
    net = UNet25D(2, 2, base_channels=4, depth=2).eval()
    x = torch.randn(1, 2, 4, 16, 16)
    low, attention_logits = net.to(torch.bfloat16)(x.bfloat16(), return_auxiliary=True)
    assert low.dtype == torch.bfloat16 and torch.isfinite(low).all()
    assert all(z.dtype == torch.bfloat16 and torch.isfinite(z).all() for z in attention_logits)


def test_receptive_field_helper_examples():
    assert unet_receptive_field([(3, 3)] * 2, [(2, 2)]) == (18, 18)
    # 1x1 conv: 1; pool by 2: 1 + 1 = 2, jump 2; one 3-conv at jump 2: 2 + 2 * 2 = 6; up; 1x1 conv
    assert unet_receptive_field([(1,), (3,)], [(2,)], convs_per_block=1) == (6,)
    with pytest.raises(ValueError, match="one pooling per level"):
        unet_receptive_field([(3,)] * 3, [(2,)])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"depth": 0}, "depth must be"),
        ({"depth": 2, "levels_2d": 4}, "levels_2d"),
        ({"base_channels": 1}, "base_channels"),
        ({"in_channels": 0}, "in_channels"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UNet25D(**{"in_channels": 1, "num_classes": 2, **kwargs})


def test_bad_input():
    net = UNet25D(2, 2, base_channels=4, depth=2, levels_2d=1)
    with pytest.raises(ValueError, match=r"\(N, 2, D, H, W\)"):
        net(torch.randn(1, 1, 2, 8, 8))
    with pytest.raises(ValueError, match=r"multiples of \(2, 4, 4\)"):
        net(torch.randn(1, 2, 3, 8, 8))
    with pytest.raises(ValueError, match="kernel_size"):
        ConvNormAct(1, 1, kernel_size=(2, 3, 3), **BLOCK_OPTIONS)

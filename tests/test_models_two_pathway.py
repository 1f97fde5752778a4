"""TwoPathwayUNet: the block's kernel shapes, what each pathway mixes, shapes, the baseline."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.blocks.conv import DoubleConv
from course_lib.models.two_pathway import TwoPathwayBlock, TwoPathwayUNet, single_pathway_unet
from course_lib.models.unet25d import gradient_support, receptive_field_by_gradient


def _conv_weights(module: nn.Module) -> list[tuple[int, ...]]:
    return [tuple(m.weight.shape) for m in module.modules() if isinstance(m, nn.Conv3d)]


def test_block_kernel_shapes():
    block = TwoPathwayBlock(3, 8)
    assert _conv_weights(block.in_plane) == [(8, 3, 1, 3, 3), (8, 8, 1, 3, 3)]  # 3x3x1 (x, y, z)
    assert _conv_weights(block.through_plane) == [(8, 3, 3, 1, 1), (8, 8, 3, 1, 1)]  # 1x1x3
    assert _conv_weights(block.fuse) == [(8, 16, 1, 1, 1)]  # concatenation fused by 1x1x1
    norms = [m for m in block.modules() if isinstance(m, nn.BatchNorm3d)]
    assert len(norms) == 5 and sum(isinstance(m, nn.PReLU) for m in block.modules()) == 5


def test_each_pathway_mixes_only_its_own_axes():
    torch.manual_seed(0)
    block = TwoPathwayBlock(1, 4).eval()
    x = torch.randn(1, 1, 7, 9, 9)
    y = x.clone()
    y[0, 0, 3, 4, 4] += 5.0
    in_plane = (block.in_plane(x) - block.in_plane(y)).abs().sum(1)[0] > 0
    through = (block.through_plane(x) - block.through_plane(y)).abs().sum(1)[0] > 0
    # in-plane: only slice 3, a 5x5 patch (two 3x3 convs); through-plane: one column, 5 slices
    assert torch.nonzero(in_plane)[:, 0].unique().tolist() == [3]
    assert in_plane[3].sum() == 25
    assert torch.nonzero(through)[:, 1:].unique(dim=0).tolist() == [[4, 4]]
    assert through[:, 4, 4].nonzero().flatten().tolist() == [1, 2, 3, 4, 5]


def test_multichannel_anisotropic_shapes():
    torch.manual_seed(1)
    net = TwoPathwayUNet(2, 3, base_channels=4, depth=2)  # T1-like + T2-like in, 3 classes out
    assert all(isinstance(stage, TwoPathwayBlock) for stage in net.encoder)
    x = torch.randn(2, 2, 8, 24, 32)
    assert net(x).shape == (2, 3, 8, 24, 32)
    with pytest.raises(ValueError):
        net(torch.randn(1, 1, 8, 24, 32))


def test_receptive_field_reaches_as_far_as_3x3x3_blocks():
    torch.manual_seed(2)
    two, single = TwoPathwayUNet(1, 2, 4, depth=2), single_pathway_unet(1, 2, 4, depth=2)
    assert two.receptive_field == (44, 44, 44)
    assert receptive_field_by_gradient(two, (1, 1, 48, 48, 48)) == (44, 44, 44)
    assert receptive_field_by_gradient(single, (1, 1, 48, 48, 48)) == (44, 44, 44)


def test_support_is_a_cross_only_the_bounding_box_matches_3x3x3():
    torch.manual_seed(3)
    cross = gradient_support(TwoPathwayBlock(1, 4), (1, 1, 7, 7, 7))
    expected = torch.zeros(7, 7, 7, dtype=torch.bool)
    expected[3, 1:6, 1:6] = True  # 5x5 in-plane on the centre slice (two 1x3x3 convs)
    expected[1:6, 3, 3] = True  # 5 slices through the centre pixel (two 3x1x1 convs)
    assert torch.equal(cross, expected)  # 29 voxels, where two 3x3x3 convs reach 5x5x5 = 125
    cube = gradient_support(DoubleConv(1, 4, spatial_dims=3, padding="same"), (1, 1, 7, 7, 7))
    assert int(cube.sum()) == 125
    # whole nets: the same 18^3 bounding box, but the two-pathway net reaches well under half of it
    two = gradient_support(TwoPathwayUNet(1, 2, 4, depth=1), (1, 1, 24, 24, 24))
    single = gradient_support(single_pathway_unet(1, 2, 4, depth=1), (1, 1, 24, 24, 24))
    assert int(single.sum()) == 18**3
    assert int(two.sum()) < 0.5 * 18**3
    assert [int(two.any(dim=other).sum()) for other in ((1, 2), (0, 2), (0, 1))] == [18] * 3


def test_fewer_parameters_than_the_single_pathway_baseline():
    def count(net: nn.Module) -> int:
        return sum(p.numel() for p in net.parameters())

    assert count(TwoPathwayUNet(2, 2, 16, 3)) < 0.6 * count(single_pathway_unet(2, 2, 16, 3))
    kernels = {
        m.kernel_size
        for m in single_pathway_unet(2, 2, 4, 2).encoder.modules()
        if isinstance(m, nn.Conv3d)
    }
    assert kernels == {(3, 3, 3)}


def test_bfloat16_forward_is_finite():
    net = TwoPathwayUNet(2, 2, 4, depth=1).eval().to(torch.bfloat16)
    out = net(torch.randn(1, 2, 4, 8, 8, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()


@pytest.mark.parametrize(
    "kwargs, match", [({"spatial_dims": 2}, "spatial_dims"), ({"padding": "valid"}, "padding")]
)
def test_block_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TwoPathwayBlock(1, 2, **kwargs)

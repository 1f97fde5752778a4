"""3D U-Net (Cicek et al. 2016): the paper's size facts, its channel plan, shapes and tiling."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from course_lib.models.unet import shape_table
from course_lib.models.unet3d import PAPER_PARAMETERS, UNet3D, analysis_block, paper_parameter_count


def _paper_count_by_hand() -> int:
    """19,069,955 from the paper's architecture figure, layer by layer (not using the class)."""
    convs = [  # (in, out) of every 3x3x3 convolution: weights + one bias per output channel
        (3, 32), (32, 64), (64, 64), (64, 128), (128, 128), (128, 256),  # analysis
        (256, 256), (256, 512),  # bottom
        (512 + 256, 256), (256, 256), (256 + 128, 128), (128, 128), (128 + 64, 64), (64, 64),
    ]  # fmt: skip
    up_convs = [512, 256, 128]  # 2x2x2, channels kept, no bias
    return (
        sum(27 * c_in * c_out + c_out for c_in, c_out in convs)
        + sum(8 * c * c for c in up_convs)
        + (64 * 3 + 3)  # 1x1x1 head with bias
    )


@pytest.fixture(scope="module")
def paper_net() -> UNet3D:
    return UNet3D(3, 3)


def test_paper_tile_132_132_116_gives_44_44_28(paper_net):
    assert paper_net.output_shape((132, 132, 116)) == (44, 44, 28)
    rows = shape_table(paper_net, (1, 3, 132, 132, 116))
    assert rows[-1] == {"stage": "head", "channels": 3, "shape": (44, 44, 28)}


def test_paper_parameter_count_under_the_papers_convention(paper_net):
    assert _paper_count_by_hand() == PAPER_PARAMETERS == 19_069_955
    assert paper_parameter_count(paper_net) == 19_069_955


def test_package_parameter_count_differs_by_norm_scales_and_up_conv_biases(paper_net):
    total = sum(p.numel() for p in paper_net.parameters())
    conv_channels = 32 + 64 + 64 + 128 + 128 + 256 + 256 + 512 + 256 + 256 + 128 + 128 + 64 + 64
    up_channels = 512 + 256 + 128
    assert total == 19_069_955 + conv_channels + up_channels == 19_073_187
    # the bias a 3x3x3 conv would carry lives in the batch norm's shift beta
    convs = [m for m in paper_net.modules() if type(m) is nn.Conv3d and m.kernel_size == (3,) * 3]
    assert all(m.bias is None for m in convs)
    assert sum(m.out_channels for m in convs) == conv_channels


def test_paper_count_without_norm_excludes_only_up_conv_biases():
    net = UNet3D(3, 3, base_channels=8, depth=2, norm=None)
    total = sum(p.numel() for p in net.parameters())
    up_biases = sum(m.bias.numel() for m in net.modules() if isinstance(m, nn.ConvTranspose3d))
    assert paper_parameter_count(net) == total - up_biases


def test_channels_double_inside_each_analysis_block_before_pooling(paper_net):
    blocks = [*paper_net.encoder, paper_net.bottom]
    widths = [(b[0][0].in_channels, b[0][0].out_channels, b[1][0].out_channels) for b in blocks]
    assert widths == [(3, 32, 64), (64, 64, 128), (128, 128, 256), (256, 256, 512)]


def test_up_convolutions_keep_the_channels_and_concatenate_the_skip(paper_net):
    stages = [(s.up.in_channels, s.up.out_channels, s.block[0][0].in_channels)
              for s in paper_net.decoder]  # fmt: skip
    assert stages == [(512, 512, 768), (256, 256, 384), (128, 128, 192)]
    assert all(
        s.up.kernel_size == (2, 2, 2) and s.up.stride == (2, 2, 2) for s in paper_net.decoder
    )
    assert paper_net.head.kernel_size == (1, 1, 1) and paper_net.head.in_channels == 64


def test_batch_norm_before_every_relu(paper_net):
    blocks = [*paper_net.encoder, paper_net.bottom, *(s.block for s in paper_net.decoder)]
    for unit in (u for b in blocks for u in b):
        assert [type(m) for m in unit] == [nn.Conv3d, nn.BatchNorm3d, nn.ReLU]


def test_analysis_block_reaches_half_width_first():
    block = analysis_block(5, 12, spatial_dims=3, padding="same", norm=None)
    assert (block[0][0].out_channels, block[1][0].out_channels) == (6, 12)
    assert block(torch.zeros(1, 5, 4, 4, 4)).shape == (1, 12, 4, 4, 4)


@settings(max_examples=6, deadline=None)
@given(depth=st.integers(1, 2), d=st.integers(0, 6), h=st.integers(0, 6), w=st.integers(0, 6))
def test_forward_shape_matches_output_shape(depth, d, h, w):
    net = UNet3D(1, 2, base_channels=2, depth=depth).eval()
    shape = net.valid_input_shape((8 + 2 * d, 8 + 2 * h, 8 + 2 * w))
    with torch.no_grad():
        out = net(torch.zeros(1, 1, *shape))
    assert out.shape == (1, 2, *net.output_shape(shape))


def test_same_padding_keeps_the_size():
    net = UNet3D(2, 3, base_channels=4, depth=2, padding="same").eval()
    with torch.no_grad():
        assert net(torch.randn(2, 2, 8, 12, 16)).shape == (2, 3, 8, 12, 16)


def test_invalid_sizes_and_arguments_raise_clear_errors():
    net = UNet3D(1, 2, base_channels=2, depth=2)
    with pytest.raises(ValueError, match="nearest valid sizes"):
        net(torch.zeros(1, 1, 45, 44, 44))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 1, D, H, W\)"):
        net(torch.zeros(1, 1, 44, 44))
    for bad in (0, 2.5, None):
        with pytest.raises(ValueError, match="base_channels"):
            UNet3D(1, 2, base_channels=bad)
    with pytest.raises(ValueError, match="padding"):
        UNet3D(1, 2, padding="reflect")
    with pytest.raises(ValueError, match="norm"):
        UNet3D(1, 2, norm="group")


def test_every_parameter_gets_a_gradient():
    net = UNet3D(1, 3, base_channels=4, depth=2)
    net(torch.randn(2, 1, 44, 44, 44)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_bfloat16_forward_is_finite_and_close_to_float32():
    torch.manual_seed(0)
    net = UNet3D(1, 2, base_channels=4, depth=1, padding="same").eval()
    x = torch.randn(1, 1, 8, 8, 8)
    with torch.no_grad():
        ref = net(x)
        low = net.to(torch.bfloat16)(x.bfloat16())
    assert low.dtype == torch.bfloat16 and torch.isfinite(low).all()
    torch.testing.assert_close(low.float(), ref, atol=0.1, rtol=0.05)


def test_overlap_tile_prediction_of_a_volume_equals_one_tile():
    tiling = pytest.importorskip("course_lib.inference.tiling")
    torch.manual_seed(0)
    net = UNet3D(1, 2, base_channels=2, depth=2).double()
    net(torch.randn(2, 1, 44, 44, 44, dtype=torch.float64))  # non-trivial batch-norm statistics
    net.eval()
    volume = torch.randn(1, 1, 9, 14, 11, dtype=torch.float64)
    tiled = tiling.overlap_tile_predict(net, volume, patch_size=(44, 44, 44))
    assert tiling.tile_layout(net, (9, 14, 11), (44, 44, 44)).corners[1:]  # several tiles
    whole = tiling.overlap_tile_predict(net, volume)  # one tile covers the volume
    assert tiled.shape == (1, 2, 9, 14, 11)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-10)

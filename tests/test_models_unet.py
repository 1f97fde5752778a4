"""U-Net: the paper's size and parameter facts, shape helpers, options, gradients, bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from course_lib.models import _shapes
from course_lib.models.unet import UNet, shape_table
from course_lib.ops import center_crop


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_paper_parameter_count():
    with torch.device("meta"):  # shapes only: no 31M random numbers to draw
        net = UNet(1, 2, base_channels=64, depth=4, padding="valid")
    assert _n_params(net) == 31_030_658


def test_paper_572_gives_388():
    with torch.device("meta"):
        net = UNet(1, 2)
    assert net.output_shape((572, 572)) == (388, 388)
    rows = shape_table(net, (1, 1, 572, 572))
    assert rows[0] == {"stage": "encoder.0", "channels": 64, "shape": (568, 568)}
    assert rows[4] == {"stage": "bottom", "channels": 1024, "shape": (28, 28)}
    assert rows[-1] == {"stage": "head", "channels": 2, "shape": (388, 388)}


def test_3d_unet_size_fact_shares_the_shape_code():
    # Cicek et al. 2016: 132 x 132 x 116 -> 44 x 44 x 28 (depth 3, valid 3x3x3 convs)
    assert _shapes.output_shape((132, 132, 116), 3, block_loss=4) == (44, 44, 28)


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("up_mode", ["transpose", "upsample"])
def test_forward_shape_matches_output_shape(spatial_dims, padding, up_mode):
    net = UNet(
        2, 3, base_channels=2, depth=2, padding=padding, spatial_dims=spatial_dims, up_mode=up_mode
    )
    size = net.valid_input_shape((30,) * spatial_dims)
    out = net(torch.randn(1, 2, *size))
    assert out.shape == (1, 3, *net.output_shape(size))
    if padding == "same":
        assert net.output_shape(size) == size


@settings(max_examples=25, deadline=None)
@given(min_size=st.integers(1, 300), depth=st.integers(1, 4), valid=st.booleans())
def test_valid_input_shape_is_the_smallest_valid_size(min_size, depth, valid):
    net = UNet(1, 2, base_channels=1, depth=depth, padding="valid" if valid else "same")
    (size,) = net.valid_input_shape((min_size,))
    assert size >= min_size
    net.output_shape((size,))  # valid: does not raise
    for smaller in range(min_size, size):
        with pytest.raises(ValueError):
            net.output_shape((smaller,))
    # valid sizes are spaced 2**depth apart
    assert net.valid_input_shape((size + 1,)) == (size + 2**depth,)


def test_invalid_size_names_the_nearest_valid_ones():
    with torch.device("meta"):
        net = UNet(1, 2)
    with pytest.raises(ValueError, match="556 or 572"):
        net.output_shape((571, 572))


def test_forward_rejects_bad_input():
    net = UNet(1, 2, base_channels=2, depth=2)
    with pytest.raises(ValueError, match="does not go through"):
        net(torch.zeros(1, 1, 90, 92))
    with pytest.raises(ValueError, match=r"shape \(N, 1, H, W\)"):
        net(torch.zeros(1, 3, 92, 92))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(padding="reflect"), "padding"),
        (dict(up_mode="bilinear"), "up_mode"),
        (dict(dropout=1.0), "dropout"),
        (dict(depth=0), "depth"),
        (dict(norm="layer"), "norm"),
        (dict(spatial_dims=4), "spatial_dims"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        UNet(1, 2, **kwargs)


def test_dropout_sits_at_the_end_of_the_contracting_path():
    net = UNet(1, 2, base_channels=2, depth=2, dropout=0.5)
    assert isinstance(net.dropout, nn.Dropout) and net.dropout.p == 0.5
    x = torch.randn(1, 1, 44, 44)
    net.eval()
    assert torch.equal(net(x), net(x))  # no dropout at inference


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_norm_option(norm):
    net = UNet(1, 2, base_channels=4, depth=2, norm=norm, padding="same")
    assert any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) for m in net.modules())
    assert net(torch.randn(2, 1, 16, 16)).shape == (2, 2, 16, 16)


def test_custom_block_factory():
    calls = []

    def block(c_in, c_out, **kwargs):
        calls.append((c_in, c_out))
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU())

    net = UNet(1, 2, base_channels=4, depth=2, padding="same", block=block)
    assert calls == [(1, 4), (4, 8), (8, 16), (16, 8), (8, 4)]
    assert net(torch.randn(1, 1, 8, 8)).shape == (1, 2, 8, 8)


def test_gradcheck_float64():
    torch.manual_seed(0)
    net = UNet(1, 2, base_channels=2, depth=1).double()
    x = torch.randn(1, 1, 20, 20, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(net, (x,), eps=1e-6, atol=1e-5)


def test_bfloat16_autocast_on_cpu_is_close_to_float32():
    torch.manual_seed(0)
    net = UNet(1, 2, base_channels=4, depth=2)
    x = torch.randn(1, 1, 44, 44)
    ref = net(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = net(x)
    assert low.dtype == torch.bfloat16
    assert torch.isfinite(low).all()
    assert (low.float() - ref).abs().max() < 0.05 * ref.abs().max()


def test_center_crop():
    x = torch.arange(36.0).reshape(1, 6, 6)
    assert torch.equal(center_crop(x, (2, 4)), x[:, 2:4, 1:5])
    with pytest.raises(ValueError, match="centre-crop"):
        center_crop(x, (3, 4))

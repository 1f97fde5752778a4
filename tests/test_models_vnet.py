"""V-Net: the paper's architecture (stages, kernels, channels, shapes), residuals, memory helper."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.models.vnet import (
    ResidualStage,
    VNet,
    convs_per_stage,
    receptive_fields,
    saved_tensor_bytes,
)


def _convs(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.modules.conv._ConvNd)]


def test_paper_net_keeps_the_128x128x64_shape() -> None:
    with torch.device("meta"):  # shapes only: the paper's net is too big to run in a unit test
        net = VNet(1, 2)
        out = net(torch.zeros(2, 1, 128, 128, 64))
    assert out.shape == (2, 2, 128, 128, 64)


def test_paper_stages_kernels_and_channels() -> None:
    with torch.device("meta"):
        net = VNet(1, 2)
    assert net.channels == (16, 32, 64, 128, 256)
    # compression 1, 2, 3, 3, 3 convolutions; decompression (from the bottom up) 3, 3, 2, 1
    assert [len(stage.convs) for stage in net.encoder] == [1, 2, 3, 3, 3]
    assert [len(net.decoder[lv].convs) for lv in reversed(range(4))] == [3, 3, 2, 1]
    for stage in [*net.encoder, *net.decoder]:
        for conv in _convs(stage.convs):
            assert conv.kernel_size == (5, 5, 5) and conv.padding == (2, 2, 2)
        assert all(isinstance(unit[-1], nn.PReLU) for unit in stage.convs)  # conv + PReLU
    # decompression stages work at 256, 128, 64 and 32 channels (concatenation doubles c[lv])
    assert [_convs(net.decoder[lv])[0].in_channels for lv in reversed(range(4))] == [
        256,
        128,
        64,
        32,
    ]
    for down, (c_in, c_out) in zip(
        net.down, [(16, 32), (32, 64), (64, 128), (128, 256)], strict=True
    ):
        conv = down[0]
        assert isinstance(conv, nn.Conv3d)
        assert (conv.in_channels, conv.out_channels) == (c_in, c_out)
        assert conv.kernel_size == (2, 2, 2) and conv.stride == (2, 2, 2)
    for up in net.up:
        assert isinstance(up[0], nn.ConvTranspose3d)
        assert up[0].kernel_size == (2, 2, 2) and up[0].stride == (2, 2, 2)
    head = net.head
    assert head.kernel_size == (1, 1, 1) and (head.in_channels, head.out_channels) == (32, 2)
    assert not any(isinstance(m, nn.modules.pooling._MaxPoolNd) for m in net.modules())


def test_paper_parameter_count_closed_form() -> None:
    def conv(k: int, c_in: int, c_out: int) -> int:
        return k**3 * c_in * c_out + c_out  # weights + bias

    def unit(k: int, c_in: int, c_out: int) -> int:
        return conv(k, c_in, c_out) + c_out  # + one PReLU slope per channel

    c = [16, 32, 64, 128, 256]
    n_conv = [1, 2, 3, 3, 3]
    expected = unit(5, 1, 16)  # stage 1 (1 -> 16)
    expected += sum(n_conv[lv] * unit(5, c[lv], c[lv]) for lv in range(1, 5))
    expected += sum(unit(2, c[lv], c[lv + 1]) for lv in range(4))  # down-convolutions
    expected += unit(2, 256, 128) + sum(unit(2, 2 * c[lv + 1], c[lv]) for lv in range(3))  # up
    expected += sum(n_conv[lv] * unit(5, 2 * c[lv], 2 * c[lv]) for lv in range(4))
    expected += conv(1, 32, 2)
    with torch.device("meta"):
        net = VNet(1, 2)
    assert sum(p.numel() for p in net.parameters()) == expected == 65_175_314


def test_convs_per_stage_and_receptive_fields_of_the_paper() -> None:
    assert [convs_per_stage(lv) for lv in range(6)] == [1, 2, 3, 3, 3, 3]
    # Milletari et al. Table 1
    assert receptive_fields() == [
        ("L-Stage 1", 5),
        ("L-Stage 2", 22),
        ("L-Stage 3", 72),
        ("L-Stage 4", 172),
        ("L-Stage 5", 372),
        ("R-Stage 4", 476),
        ("R-Stage 3", 528),
        ("R-Stage 2", 546),
        ("R-Stage 1", 551),
    ]


@pytest.mark.parametrize(("depth", "kernel_size"), [(1, 5), (2, 3)])
def test_measured_receptive_field_is_at_most_the_papers_count(depth: int, kernel_size: int) -> None:
    torch.manual_seed(0)
    net = VNet(1, 1, base_channels=2, depth=depth, kernel_size=kernel_size, spatial_dims=2)
    theory = receptive_fields(depth, kernel_size)[-1][1]
    x = torch.randn(1, 1, 96, 96, dtype=torch.float64, requires_grad=True)
    net = net.double()
    for row, col in [(48, 48), (49, 50), (51, 47)]:
        (grad,) = torch.autograd.grad(net(x)[0, 0, row, col], x)
        cols = grad[0, 0].abs().sum(0).nonzero()
        extent = int(cols.max() - cols.min()) + 1
        # the transposed convolutions add nothing, the stride-2 grids shift the field a little
        assert theory - 2 ** (depth + 1) < extent <= theory


def test_residual_stage_with_zero_convolutions_is_the_identity() -> None:
    stage = ResidualStage(8, 8, 3, spatial_dims=3, kernel_size=3)
    for p in stage.convs.parameters():
        nn.init.zeros_(p)  # conv outputs 0, PReLU(0) = 0: only the shortcut is left
    x = torch.randn(2, 8, 6, 6, 6)
    assert torch.equal(stage(x), x)


def test_single_channel_input_is_broadcast_to_the_first_stage() -> None:
    net = VNet(1, 2, base_channels=4, depth=1, kernel_size=3)
    assert isinstance(net.encoder[0].shortcut, nn.Identity)
    for p in net.encoder[0].convs.parameters():
        nn.init.zeros_(p)
    x = torch.randn(1, 1, 4, 4, 4)
    torch.testing.assert_close(net.encoder[0](x), x.expand(1, 4, 4, 4, 4))
    multi = VNet(3, 2, base_channels=4, depth=1, kernel_size=3)
    assert isinstance(multi.encoder[0].shortcut, nn.Conv3d)
    assert multi(torch.randn(1, 3, 4, 4, 4)).shape == (1, 2, 4, 4, 4)


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("norm", [None, "batch", "instance"])
def test_small_nets_keep_the_shape(spatial_dims: int, norm: str | None) -> None:
    net = VNet(2, 3, base_channels=2, depth=2, kernel_size=3, spatial_dims=spatial_dims, norm=norm)
    x = torch.randn(2, 2, *(8, 12, 16)[-spatial_dims:])
    assert net(x).shape == (2, 3, *x.shape[2:])


def test_gradcheck_float64() -> None:
    torch.manual_seed(0)
    net = VNet(1, 2, base_channels=2, depth=1, kernel_size=3, spatial_dims=2).double()
    x = torch.randn(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(net, (x,), eps=1e-6, atol=1e-5)


def test_bfloat16_forward_is_finite_and_close() -> None:
    torch.manual_seed(0)
    net = VNet(1, 2, base_channels=4, depth=2, kernel_size=3)
    x = torch.randn(1, 1, 8, 8, 8)
    reference = net(x)
    half = net.to(torch.bfloat16)(x.to(torch.bfloat16)).float()
    assert torch.isfinite(half).all()
    torch.testing.assert_close(half, reference, rtol=0.1, atol=0.1)


def test_rejects_bad_input() -> None:
    net = VNet(1, 2, base_channels=2, depth=2, kernel_size=3)
    with pytest.raises(ValueError, match="divisible by 4|multiples of 2"):
        net(torch.zeros(1, 1, 8, 8, 6))
    with pytest.raises(ValueError, match="spatial"):
        net(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="depth"):
        VNet(1, 2, depth=0)
    with pytest.raises(ValueError, match="base_channels"):
        VNet(1, 2, base_channels=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="spatial_dims"):
        VNet(1, 2, spatial_dims=4)
    with pytest.raises(ValueError, match="kernel_size"):
        VNet(1, 2, kernel_size=4)
    with pytest.raises(ValueError, match="norm"):
        VNet(1, 2, norm="group")


def test_saved_tensor_bytes_shows_the_pooling_switches() -> None:
    x = torch.randn(2, 8, 16, 16, 16, requires_grad=True)
    pool = saved_tensor_bytes(nn.MaxPool3d(2), x)
    strided = saved_tensor_bytes(nn.Conv3d(8, 8, 2, stride=2), x)
    n_out = x.numel() // 8
    assert pool == {"torch.float32": 4 * x.numel(), "torch.int64": 8 * n_out}
    assert strided == {"torch.float32": 4 * x.numel()}  # the input only: no switches


def test_saved_tensor_bytes_counts_a_shared_tensor_once() -> None:
    x = torch.randn(1, 4, 8, 8, requires_grad=True)

    class Twice(nn.Module):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return t * t + t.sin()  # mul saves t twice, sin saves it again

    assert saved_tensor_bytes(Twice(), x) == {"torch.float32": 4 * x.numel()}

"""The plan's U-Net: shapes, deep-supervision outputs and weights, init, devices and dtypes."""

from __future__ import annotations

import pytest
import torch

from course_lib.nnunet.network import PlainConvUNet, build_network, deep_supervision_weights
from course_lib.nnunet.planning import features_per_stage, pool_and_conv_props


def small_net(dim: int = 3) -> PlainConvUNet:
    topo = pool_and_conv_props((3.0, 1.0, 1.0)[-dim:], (8, 32, 32)[-dim:])
    feats = [f // 8 for f in features_per_stage(len(topo.strides), dim)]
    return PlainConvUNet(2, 3, feats, topo.kernel_sizes, topo.strides)


def test_deep_supervision_outputs_at_every_decoder_resolution() -> None:
    net = small_net()
    logits, auxiliary = net(torch.zeros(1, 2, 8, 32, 32), return_auxiliary=True)
    outputs = [logits, *auxiliary]
    shapes = [tuple(o.shape[2:]) for o in outputs]
    assert shapes[0] == (8, 32, 32)
    assert len(outputs) == len(net.encoder) - 1
    # the anisotropic plan pools z later than x/y: sizes shrink per the strides
    strides = net.strides
    size = [8, 32, 32]
    for i, shape in enumerate(shapes[1:], start=1):
        size = [s // k for s, k in zip(size, strides[i], strict=True)]
        assert shape == tuple(size)


def test_without_deep_supervision_one_full_resolution_output() -> None:
    out = small_net()(torch.zeros(2, 2, 8, 32, 32))
    assert out.shape == (2, 3, 8, 32, 32)


def test_2d_net_and_instance_norm_is_per_sample() -> None:
    net = small_net(dim=2).eval()
    x = torch.randn(2, 2, 32, 32)
    together = net(x)
    alone = net(x[:1])
    # no batch statistics involved; batched and single convolutions may sum in another order
    torch.testing.assert_close(together[:1], alone, rtol=1e-4, atol=1e-5)


def test_deep_supervision_weights_as_nnunet() -> None:
    w = deep_supervision_weights(5)
    torch.testing.assert_close(w, torch.tensor([8, 4, 2, 1, 0]) / 15.0)
    assert deep_supervision_weights(1).tolist() == [1.0]
    with pytest.raises(ValueError):
        deep_supervision_weights(0)


def test_he_init_and_zero_bias() -> None:
    net = small_net()
    conv = net.encoder[0][0][0]
    assert torch.all(conv.bias == 0)
    fan_in = conv.weight[0].numel()
    expected_std = (2 / (1 + 0.01**2) / fan_in) ** 0.5
    assert conv.weight.std().item() == pytest.approx(expected_std, rel=0.35)


def test_build_network_from_plan_and_features_scale() -> None:
    plans = {
        "configurations": {
            "3d_fullres": {
                "architecture": {
                    "arch_kwargs": {
                        "features_per_stage": [32, 64, 128],
                        "kernel_sizes": [[1, 3, 3], [3, 3, 3], [3, 3, 3]],
                        "strides": [[1, 1, 1], [1, 2, 2], [2, 2, 2]],
                        "n_conv_per_stage": [2, 2, 2],
                    }
                }
            },
            "3d_cascade_fullres": {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"},
        }
    }
    net = build_network(plans, "3d_cascade_fullres", 1, 2, features_scale=0.25)
    assert [s[0][0].out_channels for s in net.encoder] == [8, 16, 32]
    assert net.encoder[0][0][0].kernel_size == (1, 3, 3)
    with pytest.raises(ValueError, match="not in the plans"):
        build_network(plans, "2d", 1, 2)
    with pytest.raises(ValueError, match="features_scale"):
        build_network(plans, "3d_fullres", 1, 2, features_scale=0)


def test_bfloat16_forward_is_finite() -> None:
    net = small_net().to(torch.bfloat16)
    out = net(torch.randn(1, 2, 8, 32, 32, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()


def test_bad_stage_lists_raise() -> None:
    with pytest.raises(ValueError, match="one entry per stage"):
        PlainConvUNet(1, 2, [8, 16], [[3, 3]], [[1, 1], [2, 2]])

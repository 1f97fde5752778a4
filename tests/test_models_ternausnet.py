"""TernausNet: VGG11 layout and torchvision keys, shapes, weight loading, threshold, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.losses import bce_minus_log_jaccard
from course_lib.models.ternausnet import (
    THRESHOLD,
    VGG11_WEIGHTS_FILE,
    TernausNet,
    VGG11Encoder,
    find_vgg11_weights,
    load_vgg11_weights,
    predict_mask,
)

# torchvision's VGG11 (configuration "A"): conv indices in `features` and their out channels
VGG11_CONVS = {0: 64, 3: 128, 6: 256, 8: 256, 11: 512, 13: 512, 16: 512, 18: 512}
# torchvision documents 132,863,336 parameters for vgg11; its classifier holds
# 25088*4096+4096 + 4096*4096+4096 + 4096*1000+1000 of them
VGG11_FEATURE_PARAMS = 132_863_336 - (25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000)


def _torchvision_vgg11_state_dict(seed: int = 0, width: int = 64) -> dict[str, torch.Tensor]:
    """Random tensors with torchvision's vgg11 key names and shapes (classifier included).

    ``width`` < 64 scales the conv channels down, for fast tests of narrow encoders.
    """
    gen = torch.Generator().manual_seed(seed)
    state, c_in = {}, 3
    for index, c_64 in VGG11_CONVS.items():
        c_out = c_64 * width // 64
        state[f"features.{index}.weight"] = torch.randn(c_out, c_in, 3, 3, generator=gen)
        state[f"features.{index}.bias"] = torch.randn(c_out, generator=gen)
        c_in = c_out
    for index, (n_out, n_in) in {0: (4096, 25088), 3: (4096, 4096), 6: (1000, 4096)}.items():
        state[f"classifier.{index}.weight"] = torch.empty(n_out, n_in, device="meta")
        state[f"classifier.{index}.bias"] = torch.empty(n_out, device="meta")
    return state


def test_encoder_has_torchvision_vgg11_keys_shapes_and_parameter_count():
    with torch.device("meta"):
        encoder = VGG11Encoder()
    expected = {k: v.shape for k, v in _torchvision_vgg11_state_dict().items() if "features" in k}
    assert {k: v.shape for k, v in encoder.state_dict().items()} == expected
    assert sum(p.numel() for p in encoder.parameters()) == VGG11_FEATURE_PARAMS == 9_220_480
    assert sum(isinstance(m, nn.MaxPool2d) for m in encoder.features) == 5


def test_model_keys_are_the_encoder_keys_with_prefix():
    keys = set(TernausNet(3, 1, base_channels=2).state_dict())
    assert {f"encoder.features.{i}.{p}" for i in VGG11_CONVS for p in ("weight", "bias")} <= keys


@pytest.mark.parametrize("size", [(32, 32), (64, 96)])
def test_output_has_the_input_size(size):
    net = TernausNet(1, 2, base_channels=4)
    assert net(torch.randn(2, 1, *size)).shape == (2, 2, *size)


def test_encoder_skips_halve_the_size_and_follow_vgg_widths():
    skips, bottom = VGG11Encoder(3, width=2)(torch.randn(1, 3, 64, 64))
    assert [tuple(s.shape[1:]) for s in skips] == [
        (2, 64, 64),
        (4, 32, 32),
        (8, 16, 16),
        (16, 8, 8),
        (16, 4, 4),
    ]
    assert bottom.shape == (1, 16, 2, 2)


def test_loading_a_torchvision_state_dict_copies_every_tensor():
    state = _torchvision_vgg11_state_dict()
    net = TernausNet(3, 1)
    assert net.center[0].out_channels == 512  # the 512-channel bottleneck conv
    report = load_vgg11_weights(net, state)
    assert set(report.loaded) == {k for k in state if k.startswith("features.")}
    assert set(report.ignored) == {k for k in state if k.startswith("classifier.")}
    assert report.adapted == ()
    for key in report.loaded:
        assert torch.equal(net.state_dict()[f"encoder.{key}"], state[key])
    assert "loaded 16 tensors" in str(report)


def test_loading_from_a_file(tmp_path):
    state = {k: v for k, v in _torchvision_vgg11_state_dict(1, 8).items() if "features" in k}
    path = tmp_path / VGG11_WEIGHTS_FILE
    torch.save(state, path)
    net = TernausNet(3, 1, base_channels=8)
    load_vgg11_weights(net, path)
    assert torch.equal(net.encoder.features[18].weight, state["features.18.weight"])
    assert find_vgg11_weights(tmp_path) == path
    assert find_vgg11_weights(tmp_path / "nowhere") is None


def test_gray_input_with_summed_rgb_kernels_equals_the_rgb_net_on_a_gray_image():
    torch.manual_seed(0)
    state = {k: v for k, v in _torchvision_vgg11_state_dict(width=8).items() if "features" in k}
    rgb, gray = TernausNet(3, 1, base_channels=8), TernausNet(1, 1, base_channels=8)
    load_vgg11_weights(rgb, state)
    report = load_vgg11_weights(gray, state)
    assert report.adapted == ("features.0.weight",)
    x = torch.rand(1, 1, 32, 32)
    skips_rgb, _ = rgb.encoder(x.expand(1, 3, 32, 32))
    skips_gray, _ = gray.encoder(x)
    assert torch.allclose(skips_rgb[0], skips_gray[0], atol=1e-4)


def test_an_encoder_trained_in_the_course_loads_into_another_net():
    source, target = TernausNet(1, 1, base_channels=4), TernausNet(1, 1, base_channels=4)
    report = load_vgg11_weights(target, source.encoder.state_dict())
    assert report.ignored == ()
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            source.encoder.state_dict().values(), target.encoder.state_dict().values(), strict=True
        )
    )


def test_mismatch_fails_clearly_and_copies_nothing():
    net = TernausNet(3, 1, base_channels=8)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(ValueError, match=r"shape mismatch.*base_channels=8.*base_channels=64"):
        load_vgg11_weights(net, _torchvision_vgg11_state_dict())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with pytest.raises(ValueError, match=r"lacks 16 of the 16.*features.0.weight"):
        load_vgg11_weights(net, {"encoder.features.0.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="mapping"):
        load_vgg11_weights(net, [1, 2])  # type: ignore[arg-type]


def test_threshold_is_the_papers_0_3():
    assert THRESHOLD == 0.3
    logits = torch.logit(torch.tensor([0.29, 0.3, 0.31, 0.9]))
    assert predict_mask(logits).tolist() == [False, True, True, True]
    assert predict_mask(logits, 0.5).tolist() == [False, False, False, True]
    with pytest.raises(ValueError, match="threshold"):
        predict_mask(logits, 1.5)


def test_gradients_reach_the_encoder():
    net = TernausNet(1, 1, base_channels=2)
    net(torch.randn(1, 1, 32, 32)).sum().backward()
    assert net.encoder.features[0].weight.grad.abs().sum() > 0


def test_bad_input():
    net = TernausNet(1, 1, base_channels=2)
    with pytest.raises(ValueError, match="multiples of 32"):
        net(torch.zeros(1, 1, 48, 40))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        net(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="even"):
        TernausNet(3, 1, base_channels=5)
    with pytest.raises(ValueError, match="num_classes"):
        TernausNet(3, num_classes=0)


def test_ternausnet_loss_by_hand_and_gradcheck():
    # Iglovikov and Shvets, eq. (2): L = H - log J, J the soft Jaccard index of sigmoid(logits)
    logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]], dtype=torch.float64)
    target = torch.tensor([[[1, 0], [1, 1]]])
    p, g = torch.sigmoid(logits)[:, 0], target.double()
    bce = -(g * p.log() + (1 - g) * (1 - p).log()).mean()
    jaccard = (p * g).sum() / (p.sum() + g.sum() - (p * g).sum())
    assert torch.isclose(bce_minus_log_jaccard(logits, target), bce - jaccard.log())
    x = torch.randn(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 2, (2, 3, 3))
    assert torch.autograd.gradcheck(lambda z: bce_minus_log_jaccard(z, y), (x,))


def test_ternausnet_loss_trains_the_net_one_step():
    torch.manual_seed(0)
    net = TernausNet(1, 1, base_channels=2)
    x, y = torch.randn(2, 1, 32, 32), torch.randint(0, 2, (2, 32, 32))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    before = bce_minus_log_jaccard(net(x), y)
    before.backward()
    opt.step()
    assert torch.isfinite(before) and bce_minus_log_jaccard(net(x), y) < before

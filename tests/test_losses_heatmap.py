"""gaussian_heatmaps and heatmap_mse_loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib.losses import gaussian_heatmaps, heatmap_mse_loss


def test_heatmap_peaks_at_the_keypoint_with_the_given_width():
    maps = gaussian_heatmaps(torch.tensor([[[3.0, 5.0], [0.0, 0.0]]]), (8, 10), sigma=2.0)
    assert maps.shape == (1, 2, 8, 10)
    flat_argmax = maps[0, 0].argmax().item()
    assert divmod(flat_argmax, 10) == (3, 5) and maps[0, 0, 3, 5] == 1.0
    # one sigma away the value is exp(-1/2)
    assert maps[0, 0, 5, 5].item() == pytest.approx(torch.exp(torch.tensor(-0.5)).item())
    maps3d = gaussian_heatmaps(torch.tensor([[[1.0, 2.0, 3.0]]]), (4, 5, 6), sigma=1.0)
    assert maps3d.shape == (1, 1, 4, 5, 6) and maps3d[0, 0, 1, 2, 3] == 1.0


def test_mse_and_keypoint_weights():
    g = torch.Generator().manual_seed(0)
    target = gaussian_heatmaps(torch.rand(2, 3, 2, generator=g) * 8, (8, 8), sigma=1.5)
    prediction = torch.randn(2, 3, 8, 8, generator=g)
    assert torch.allclose(heatmap_mse_loss(prediction, target), F.mse_loss(prediction, target))
    weight = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    changed = prediction.clone()
    changed[0, 1] += 100.0  # an invisible keypoint's channel: no effect
    assert torch.allclose(
        heatmap_mse_loss(prediction, target, keypoint_weight=weight),
        heatmap_mse_loss(changed, target, keypoint_weight=weight),
    )
    assert heatmap_mse_loss(prediction, target, reduction="none").shape == prediction.shape


def test_bad_input_raises():
    with pytest.raises(ValueError, match="shape"):
        gaussian_heatmaps(torch.zeros(1, 1, 2), (4, 4, 4), sigma=1.0)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_heatmaps(torch.zeros(1, 1, 2), (4, 4), sigma=0.0)
    with pytest.raises(ValueError, match="logits' shape"):
        heatmap_mse_loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="keypoint_weight"):
        heatmap_mse_loss(
            torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4), keypoint_weight=torch.ones(2)
        )

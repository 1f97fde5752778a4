"""dice_ce_loss, focal_dice_loss, bce_minus_log_jaccard: MONAI and hand formulas."""

from __future__ import annotations

import pytest
import torch

from course_lib.losses import (
    bce_minus_log_jaccard,
    binary_cross_entropy,
    dice_ce_loss,
    dice_loss,
    focal_dice_loss,
    focal_loss,
)


def _inputs(seed=0, channels=3):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, channels, 6, 7, generator=g, dtype=torch.float64)
    labels = torch.randint(0, max(channels, 2), (2, 6, 7), generator=g)
    return logits, labels


@pytest.mark.parametrize("include_background", [True, False])
def test_dice_ce_equals_monai(include_background):
    monai_losses = pytest.importorskip("monai.losses")
    logits, labels = _inputs()
    monai = monai_losses.DiceCELoss(
        softmax=True, to_onehot_y=True, include_background=include_background, lambda_dice=0.7
    )
    expected = monai(logits, labels.unsqueeze(1))
    got = dice_ce_loss(logits, labels, include_background=include_background, lambda_dice=0.7)
    assert torch.allclose(got, expected)


def test_dice_ce_single_channel_uses_sigmoid_and_bce_like_monai():
    monai_losses = pytest.importorskip("monai.losses")
    logits, labels = _inputs(channels=1)
    monai = monai_losses.DiceCELoss(sigmoid=True)
    expected = monai(logits, labels.unsqueeze(1).double())
    assert torch.allclose(dice_ce_loss(logits, labels), expected)


def test_focal_dice_is_the_weighted_sum():
    logits, labels = _inputs()
    expected = 2.0 * focal_loss(logits, labels, activation="softmax", gamma=2.0) + 0.5 * dice_loss(
        logits, labels
    )
    got = focal_dice_loss(logits, labels, lambda_focal=2.0, lambda_dice=0.5)
    assert torch.allclose(got, expected)


def test_bce_minus_log_jaccard_hand_formula():
    logits, labels = _inputs(channels=1)
    p, g = logits.sigmoid()[:, 0], labels.double()
    intersection = (p * g).sum()
    jaccard = (intersection + 1e-15) / (p.sum() + g.sum() - intersection + 1e-15)
    expected = binary_cross_entropy(logits, labels) - 0.5 * torch.log(jaccard)
    assert torch.allclose(bce_minus_log_jaccard(logits, labels, jaccard_weight=0.5), expected)


def test_minus_log_jaccard_keeps_pushing_where_one_minus_jaccard_flattens():
    """Near zero overlap, d(-log J)/dJ = -1/J is large while d(1 - J)/dJ = -1."""
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[0, :2, :2] = 1
    logits = torch.full((1, 1, 8, 8), -6.0, dtype=torch.float64, requires_grad=True)
    bce_minus_log_jaccard(logits, labels).backward()
    with_log = logits.grad[0, 0, 0, 0].abs()
    logits.grad = None
    binary_cross_entropy(logits, labels).backward()
    assert with_log > 10 * logits.grad[0, 0, 0, 0].abs()


def test_bad_weights_raise():
    logits, labels = _inputs()
    with pytest.raises(ValueError, match="lambda_ce"):
        dice_ce_loss(logits, labels, lambda_ce=-1.0)
    with pytest.raises(ValueError, match="jaccard_weight"):
        bce_minus_log_jaccard(logits[:, :1], labels.clamp(max=1), jaccard_weight=-1.0)


def test_dice_ce_keeps_class_weights_and_pos_weight_apart():
    g = torch.Generator().manual_seed(0)
    binary, labels = (
        torch.randn(2, 1, 4, 4, generator=g),
        torch.randint(0, 2, (2, 4, 4), generator=g),
    )
    with pytest.raises(ValueError, match="pos_weight"):
        dice_ce_loss(binary, labels, weight=[1.0, 3.0])  # once silently turned into pos_weight
    expected = dice_loss(binary, labels) + binary_cross_entropy(binary, labels, pos_weight=3.0)
    torch.testing.assert_close(dice_ce_loss(binary, labels, pos_weight=3.0), expected)
    multi = torch.randn(2, 3, 4, 4, generator=g)
    with pytest.raises(ValueError, match="class weights"):
        dice_ce_loss(multi, labels, pos_weight=3.0)

"""The threshold explorer: Dice per threshold, driven without a browser."""

from __future__ import annotations

import pytest
import torch

from course_lib.metrics import dice_score
from course_lib.widgets.threshold_explorer import THRESHOLDS, dice_by_threshold, threshold_explorer


def _blob(size=32):
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    r = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2).sqrt()
    return torch.sigmoid(size / 4 - r), r < size / 4


def test_dice_by_threshold_matches_one_threshold_at_a_time():
    probs, target = _blob()
    curve = dice_by_threshold(probs, target)
    for i in (0, 10, 24, 48):
        assert curve[i] == pytest.approx(dice_score(probs > THRESHOLDS[i], target).item())


def test_a_calibrated_map_is_best_near_one_half():
    probs, target = _blob()
    curve = dice_by_threshold(probs, target)
    assert abs(THRESHOLDS[curve.argmax()].item() - 0.5) < 0.15
    assert curve[0] < curve.max() and curve[-1] < curve.max()


def test_update_redraws_at_the_new_threshold():
    probs, target = _blob()
    explorer = threshold_explorer(probs, target)
    fig = explorer.update(threshold=0.9)
    assert "threshold 0.90" in fig.axes[1].get_title()
    assert explorer.values == {"threshold": 0.9}


def test_bad_input_is_a_clear_error():
    probs, target = _blob()
    with pytest.raises(ValueError, match="probabilities must lie in"):
        threshold_explorer(probs * 3, target)
    with pytest.raises(ValueError, match="one shape"):
        dice_by_threshold(probs, target[:-1])
    with pytest.raises(ValueError, match="threshold must lie"):
        threshold_explorer(probs, target, threshold=2.0)

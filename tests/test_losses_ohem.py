"""ohem_cross_entropy: which pixels are kept, and the limits of the ratio."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib.losses import cross_entropy, ohem_cross_entropy


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 6, 6, generator=g, dtype=torch.float64)
    labels = torch.zeros(2, 6, 6, dtype=torch.long)
    labels[0, 1:3, 1:3] = 1
    labels[1, 4, 4] = 2
    return logits, labels


def test_keeps_all_positives_and_the_hardest_negatives_of_each_image():
    logits, labels = _inputs()
    pixel = F.cross_entropy(logits, labels, reduction="none")
    kept = []
    for n, ratio_count in ((0, 8), (1, 2)):  # 4 positives * 2 and 1 positive * 2
        positives = pixel[n][labels[n] > 0]
        negatives = pixel[n][labels[n] == 0].sort(descending=True).values[:ratio_count]
        kept += [positives, negatives]
    expected = torch.cat(kept).mean()
    assert torch.allclose(ohem_cross_entropy(logits, labels, neg_pos_ratio=2.0), expected)


def test_limits_of_the_ratio_and_min_negatives():
    logits, labels = _inputs()
    everything = ohem_cross_entropy(logits, labels, neg_pos_ratio=1e6)
    assert torch.allclose(everything, cross_entropy(logits, labels))
    positives_only = ohem_cross_entropy(logits, labels, neg_pos_ratio=0.0)
    assert torch.allclose(
        positives_only, cross_entropy(logits, labels.masked_fill(labels == 0, -1), ignore_index=-1)
    )
    empty = torch.zeros_like(labels)
    assert ohem_cross_entropy(logits, empty) == 0  # no positives, no negatives kept
    hardest = F.cross_entropy(logits, empty, reduction="none").flatten(1).max(dim=1).values
    assert torch.allclose(ohem_cross_entropy(logits, empty, min_negatives=1), hardest.mean())


def test_gradient_reaches_only_kept_pixels():
    logits, labels = _inputs()
    logits.requires_grad_(True)
    ohem_cross_entropy(logits, labels, neg_pos_ratio=1.0).backward()
    touched = logits.grad.abs().sum(dim=1) > 0
    assert touched.sum() == 2 * (4 + 1)


def test_bad_input_raises():
    logits, labels = _inputs()
    with pytest.raises(ValueError, match="neg_pos_ratio"):
        ohem_cross_entropy(logits, labels, neg_pos_ratio=-1.0)
    with pytest.raises(ValueError, match="min_negatives"):
        ohem_cross_entropy(logits, labels, min_negatives=1.5)
    with pytest.raises(ValueError, match="integer label map"):
        ohem_cross_entropy(logits, logits.softmax(dim=1))

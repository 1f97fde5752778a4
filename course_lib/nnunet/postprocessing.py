"""Largest-connected-component post-processing, decided on the cross-validation predictions.

nnU-Net v2 (``determine_postprocessing``) tries two steps on the validation predictions:

1. treat all foreground labels as one mask and keep only its largest connected component; keep
   the step if the mean foreground Dice goes up and no class's Dice goes down;
2. with several labels: for each label on its own, keep its largest component; keep it for that
   label if its Dice strictly goes up.

Removed voxels become background. The 2018 paper instead decided from the training labels'
connectivity; v2 decides empirically.

References
----------
Isensee et al., Nature Methods 2021, online methods "postprocessing"; nnunetv2 2.8.1
``postprocessing/remove_connected_components.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from course_lib.metrics import dice_score
from course_lib.ops.components import connected_components


def keep_largest_component(seg: torch.Tensor, labels: Sequence[int]) -> torch.Tensor:
    """Keep only the largest connected component of the union of ``labels`` (full connectivity);
    voxels of those labels outside it become background (0).

    Examples
    --------
    >>> keep_largest_component(torch.tensor([1, 1, 0, 2, 0, 1]), [1, 2]).tolist()
    [1, 1, 0, 0, 0, 0]
    """
    mask = torch.isin(seg, torch.as_tensor(list(labels), device=seg.device))
    if not mask.any():
        return seg.clone()
    components = connected_components(mask, connectivity="full")
    sizes = torch.bincount(components.flatten())
    sizes[0] = 0
    largest = int(sizes.argmax())
    out = seg.clone()
    out[mask & (components != largest)] = 0
    return out


def _class_dice(preds: Sequence[torch.Tensor], refs: Sequence[torch.Tensor], n: int) -> list[float]:
    """Per-class Dice over the cases (mean of the per-case values, cases empty in both skipped)."""
    scores = torch.stack(
        [dice_score(p, r, num_classes=n)[1:] for p, r in zip(preds, refs, strict=True)]
    )
    return [
        float(col[~col.isnan()].mean()) if (~col.isnan()).any() else math.nan for col in scores.T
    ]


def determine_postprocessing(
    predictions: Sequence[torch.Tensor], references: Sequence[torch.Tensor], num_classes: int
) -> dict[str, Any]:
    """Decide nnU-Net's two post-processing steps on validation predictions.

    Returns
    -------
    dict
        ``{"all_foreground": bool, "per_label": [labels], "dice_before": [...],
        "dice_after": [...]}`` (per-class foreground Dice before and after the chosen steps).
    """
    if not predictions or len(predictions) != len(references):
        raise ValueError("predictions and references need one (matching) entry per case")
    labels = list(range(1, num_classes))
    before = _class_dice(predictions, references, num_classes)
    current = list(predictions)
    current_dice = before
    trial = [keep_largest_component(p, labels) for p in current]
    trial_dice = _class_dice(trial, references, num_classes)
    all_fg = _mean(trial_dice) > _mean(current_dice) and all(
        t >= c for t, c in zip(trial_dice, current_dice, strict=True) if not math.isnan(c)
    )
    if all_fg:
        current, current_dice = trial, trial_dice
    per_label = []
    if len(labels) > 1:
        for label in labels:
            trial = [keep_largest_component(p, [label]) for p in current]
            trial_dice = _class_dice(trial, references, num_classes)
            if trial_dice[label - 1] > current_dice[label - 1]:
                per_label.append(label)
                current, current_dice = trial, trial_dice
    return {
        "all_foreground": all_fg,
        "per_label": per_label,
        "dice_before": before,
        "dice_after": current_dice,
    }


def _mean(values: Sequence[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def apply_postprocessing(
    seg: torch.Tensor, decision: dict[str, Any], num_classes: int
) -> torch.Tensor:
    """Apply the steps :func:`determine_postprocessing` chose."""
    if decision["all_foreground"]:
        seg = keep_largest_component(seg, range(1, num_classes))
    for label in decision["per_label"]:
        seg = keep_largest_component(seg, [label])
    return seg

"""Largest-connected-component post-processing and nnU-Net's rule for choosing it."""

from __future__ import annotations

import pytest
import torch

from course_lib.nnunet.postprocessing import (
    apply_postprocessing,
    determine_postprocessing,
    keep_largest_component,
)


def test_keep_largest_component_treats_labels_as_one_mask() -> None:
    seg = torch.zeros(10, 10, dtype=torch.long)
    seg[1:4, 1:4] = 1
    seg[2, 4] = 2  # touches the big blob: same component
    seg[8, 8] = 1  # a speck far away
    out = keep_largest_component(seg, [1, 2])
    assert out[8, 8] == 0 and out[2, 4] == 2 and (out[1:4, 1:4] == 1).all()
    # empty input is returned unchanged
    assert torch.equal(
        keep_largest_component(torch.zeros(3, 3, dtype=torch.long), [1]),
        torch.zeros(3, 3, dtype=torch.long),
    )


def test_diagonal_neighbours_are_connected() -> None:
    seg = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    assert torch.equal(keep_largest_component(seg, [1]), seg)


def _blob_case() -> tuple[torch.Tensor, torch.Tensor]:
    ref = torch.zeros(12, 12, dtype=torch.long)
    ref[2:6, 2:6] = 1
    pred = ref.clone()
    pred[10, 10] = 1  # a false-positive speck
    return pred, ref


def test_postprocessing_chosen_when_it_helps() -> None:
    pred, ref = _blob_case()
    decision = determine_postprocessing([pred], [ref], 2)
    assert decision["all_foreground"] is True
    assert decision["dice_after"][0] == pytest.approx(1.0)
    assert decision["dice_before"][0] < 1.0
    assert torch.equal(apply_postprocessing(pred, decision, 2), ref)


def test_postprocessing_rejected_when_it_hurts() -> None:
    ref = torch.zeros(12, 12, dtype=torch.long)
    ref[1:4, 1:4] = 1
    ref[8:10, 8:10] = 1  # the truth has two components
    decision = determine_postprocessing([ref.clone()], [ref], 2)
    assert decision["all_foreground"] is False and decision["per_label"] == []


def test_per_label_step() -> None:
    ref = torch.zeros(12, 12, dtype=torch.long)
    ref[1:4, 1:4] = 1
    ref[8:10, 8:10] = 2
    pred = ref.clone()
    pred[0, 11] = 2  # a speck of label 2 far from its blob
    decision = determine_postprocessing([pred], [ref], 3)
    # step 1 would delete the whole second blob (hurting label 2), per-label fixes the speck
    assert decision["all_foreground"] is False and decision["per_label"] == [2]


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="one"):
        determine_postprocessing([], [], 2)

"""Training pieces: splits, learning rate, oversampling, patch sampling, deep-supervision loss."""

from __future__ import annotations

import pytest
import torch

from course_lib.losses import dice_ce_loss
from course_lib.nnunet.network import deep_supervision_weights
from course_lib.nnunet.training import (
    deep_supervision_loss,
    forced_foreground,
    kfold_splits,
    make_optimizer,
    poly_lr,
    sample_batch,
    sample_patch,
)


def test_splits_equal_sklearn_kfold() -> None:
    # scikit-learn 1.9.1 KFold(5, shuffle=True, random_state=12345) on these sorted ids
    ids = [f"c{i}" for i in range(12)]
    expected = [["c0", "c11", "c6"], ["c5", "c8", "c9"], ["c4", "c7"], ["c1", "c2"], ["c10", "c3"]]
    splits = kfold_splits(ids)
    assert [s["val"] for s in splits] == expected
    for s in splits:
        assert sorted(s["train"] + s["val"]) == sorted(ids)
    sklearn = pytest.importorskip("sklearn.model_selection")
    keys = sorted(ids)
    for ours, (_, val) in zip(
        splits, sklearn.KFold(5, shuffle=True, random_state=12345).split(keys), strict=True
    ):
        assert ours["val"] == [keys[i] for i in val]


def test_poly_schedule_endpoints_and_optimizer() -> None:
    assert poly_lr(0, 10) == 1e-2 and poly_lr(10, 10) == 0.0
    assert poly_lr(5, 10) == pytest.approx(1e-2 * 0.5**0.9)
    opt = make_optimizer(torch.nn.Linear(2, 2))
    group = opt.param_groups[0]
    assert group["momentum"] == 0.99 and group["nesterov"] and group["weight_decay"] == 3e-5
    with pytest.raises(ValueError):
        poly_lr(11, 10)


def test_oversampling_rule() -> None:
    assert forced_foreground(2) == [False, True]
    assert forced_foreground(3) == [False, False, True]
    assert sum(forced_foreground(12)) == 4


def test_forced_patch_contains_foreground_and_pads_outside() -> None:
    data = torch.arange(4 * 20 * 20, dtype=torch.float32).reshape(1, 4, 20, 20) + 1
    seg = torch.zeros(4, 20, 20, dtype=torch.long)
    seg[0, 0, 0] = 2  # a single foreground voxel in a corner
    g = torch.Generator().manual_seed(0)
    x, y = sample_patch(data, seg, (8, 8, 8), force_foreground=True, generator=g)
    assert x.shape == (1, 8, 8, 8) and y.shape == (8, 8, 8)
    assert (y == 2).sum() == 1 and y[4, 4, 4] == 2  # centred on it
    assert (x[0, :4] == 0).all()  # padded above the volume


def test_random_patches_stay_mostly_inside() -> None:
    data = torch.ones(1, 10, 10)
    seg = torch.zeros(10, 10, dtype=torch.long)
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        x, _ = sample_patch(data, seg, (6, 14), force_foreground=False, generator=g)
        assert x.shape == (1, 6, 14)
        assert (x == 1).all(dim=1).sum() == 10  # all 10 columns of the case are in the patch
    with pytest.raises(ValueError, match="patch_size"):
        sample_patch(data, seg, (6,), force_foreground=False, generator=g)


def test_sample_batch_shapes_and_foreground_share() -> None:
    data = torch.randn(2, 12, 12)
    seg = torch.zeros(12, 12, dtype=torch.long)
    seg[5:7, 5:7] = 1
    g = torch.Generator().manual_seed(0)
    x, y = sample_batch([(data, seg)], 3, (4, 4), g, mirror_axes=(0, 1))
    assert x.shape == (3, 2, 4, 4) and y.shape == (3, 4, 4) and y.dtype == torch.long
    assert (y[2] == 1).any()  # the last third is forced to hold foreground


def test_deep_supervision_loss_weights_the_outputs() -> None:
    torch.manual_seed(0)
    target = torch.randint(0, 3, (2, 8, 8))
    outputs = [torch.randn(2, 3, 8, 8), torch.randn(2, 3, 4, 4), torch.randn(2, 3, 2, 2)]
    w = deep_supervision_weights(3)
    small = torch.nn.functional.interpolate(
        target[:, None].float(), size=(4, 4), mode="nearest-exact"
    )
    expected = w[0] * dice_ce_loss(
        outputs[0], target, include_background=False, smooth_nr=1e-5, smooth_dr=1e-5
    ) + w[1] * dice_ce_loss(
        outputs[1], small[:, 0].long(), include_background=False, smooth_nr=1e-5, smooth_dr=1e-5
    )
    pair = (outputs[0], outputs[1:])  # what net(x, return_auxiliary=True) returns
    torch.testing.assert_close(deep_supervision_loss(pair, target), expected)
    # a single output: plain Dice + CE
    torch.testing.assert_close(
        deep_supervision_loss(outputs[0], target),
        dice_ce_loss(outputs[0], target, include_background=False, smooth_nr=1e-5, smooth_dr=1e-5),
    )


def test_deep_supervision_loss_gradcheck() -> None:
    target = torch.tensor([[[0, 1], [2, 1]]])
    logits = [
        torch.randn(1, 3, 2, 2, dtype=torch.float64, requires_grad=True),
        torch.randn(1, 3, 1, 1, dtype=torch.float64, requires_grad=True),
    ]
    assert torch.autograd.gradcheck(lambda a, b: deep_supervision_loss((a, [b]), target), logits)

"""dice_loss, jaccard_loss, tversky_loss, hardness_weighted_dice_loss: MONAI, closed forms,
properties (perfect prediction, Tversky 0.5/0.5 = Dice, empty masks)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.losses import (
    dice_loss,
    hardness_weighted_dice_loss,
    jaccard_loss,
    tversky_loss,
)


def _inputs(seed=0, shape=(2, 3, 6, 7)):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(*shape, generator=g, dtype=torch.float64)
    labels = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    return logits, labels


def _one_hot(labels, c):
    return F.one_hot(labels, c).movedim(-1, 1).double()


SETTINGS = [
    ({}, {}),
    ({"squared": True}, {"squared_pred": True}),
    ({"batch": True}, {"batch": True}),
    ({"include_background": False}, {"include_background": False}),
    ({"smooth_nr": 1.0, "smooth_dr": 1.0}, {"smooth_nr": 1.0, "smooth_dr": 1.0}),
]


@pytest.mark.parametrize("ours, theirs", SETTINGS)
@pytest.mark.parametrize("shape", [(2, 3, 6, 7), (2, 2, 3, 4, 5)], ids=["2d", "3d"])
def test_dice_and_jaccard_equal_monai(ours, theirs, shape):
    monai_losses = pytest.importorskip("monai.losses")
    logits, labels = _inputs(shape=shape)
    for jaccard, fn in ((False, dice_loss), (True, jaccard_loss)):
        monai = monai_losses.DiceLoss(softmax=True, to_onehot_y=True, jaccard=jaccard, **theirs)
        expected = monai(logits, labels.unsqueeze(1))
        assert torch.allclose(fn(logits, labels, **ours), expected, atol=1e-6)


def test_dice_sigmoid_ignore_index_and_none_reduction_equal_monai():
    monai_losses = pytest.importorskip("monai.losses")
    logits, labels = _inputs()
    monai = monai_losses.DiceLoss(sigmoid=True, to_onehot_y=True, reduction="none")
    expected = monai(logits, labels.unsqueeze(1)).reshape(2, 3)
    assert torch.allclose(
        dice_loss(logits, labels, activation="sigmoid", reduction="none"), expected
    )
    monai = monai_losses.DiceLoss(softmax=True, to_onehot_y=True, ignore_index=2)
    assert torch.allclose(dice_loss(logits, labels, ignore_index=2), monai(logits, labels[:, None]))


@pytest.mark.parametrize("alpha, beta", [(0.5, 0.5), (0.3, 0.7), (0.9, 0.1)])
def test_tversky_equals_monai(alpha, beta):
    monai_losses = pytest.importorskip("monai.losses")
    logits, labels = _inputs()
    monai = monai_losses.TverskyLoss(softmax=True, to_onehot_y=True, alpha=alpha, beta=beta)
    expected = monai(logits, labels.unsqueeze(1))
    assert torch.allclose(tversky_loss(logits, labels, alpha=alpha, beta=beta), expected)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), squared=st.booleans(), smooth=st.floats(0.0, 2.0))
def test_perfect_one_hot_prediction_gives_zero_up_to_smoothing(seed, squared, smooth):
    _, labels = _inputs(seed)
    one_hot = _one_hot(labels, 3)
    sizes = one_hot.sum(dim=(2, 3))
    # p = g: 1 - (2G + s_nr) / (2G + s_dr); exactly 0 when the two smoothings agree
    loss = dice_loss(one_hot, labels, activation="none", squared=squared, smooth_nr=0.0,
                     smooth_dr=smooth, reduction="none")  # fmt: skip
    assert torch.allclose(loss, 1 - 2 * sizes / (2 * sizes + smooth))
    logits = 1e4 * one_hot  # softmax of these is exactly one-hot
    assert dice_loss(logits, labels, squared=squared, smooth_nr=smooth, smooth_dr=smooth) == 0
    assert jaccard_loss(logits, labels, squared=squared, smooth_nr=smooth, smooth_dr=smooth) == 0


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_tversky_with_half_half_equals_dice(seed):
    logits, labels = _inputs(seed)
    assert torch.allclose(
        tversky_loss(logits, labels, alpha=0.5, beta=0.5, smooth_nr=0.0, smooth_dr=0.0),
        dice_loss(logits, labels, smooth_nr=0.0, smooth_dr=0.0),
    )
    # with smoothing they differ only by where the constants sit (MONAI: 0.6307008 vs 0.6307010)
    assert torch.allclose(tversky_loss(logits, labels), dice_loss(logits, labels), atol=1e-5)


def test_tversky_beta_weighs_false_negatives():
    probs = torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=torch.float64).view(1, 1, 1, 4)
    mask = torch.tensor([[[1, 1, 1, 0]]])  # TP = 1, FP = 1, FN = 2
    kwargs = {"activation": "none", "smooth_nr": 0.0, "smooth_dr": 0.0}
    assert tversky_loss(probs, mask, alpha=0.3, beta=0.7, **kwargs).item() == pytest.approx(
        1 - 1 / (1 + 0.3 * 1 + 0.7 * 2)
    )


@pytest.mark.parametrize("squared", [False, True])
def test_dice_gradient_matches_closed_form(squared):
    """d/dp_j of 1 - 2I/D is -(2 g_j D - 2I dD/dp_j) / D^2 with dD/dp_j = 1 or 2 p_j."""
    g = torch.Generator().manual_seed(3)
    p = torch.rand(1, 1, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.randint(0, 2, (1, 4, 5), generator=g)
    gt = mask.double().unsqueeze(1)
    kwargs = {"activation": "none", "squared": squared, "smooth_nr": 0.0, "smooth_dr": 0.0}
    dice_loss(p, mask, **kwargs).backward()
    pd = p.detach()
    intersection = (pd * gt).sum()
    denominator = (pd**2 + gt**2).sum() if squared else (pd + gt).sum()
    d_denominator = 2 * pd if squared else torch.ones_like(pd)
    expected = -(2 * gt * denominator - 2 * intersection * d_denominator) / denominator**2
    assert torch.allclose(p.grad, expected)


def test_empty_masks_follow_monai():
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    empty_prediction = torch.full((1, 1, 4, 4), -1e4)
    sigmoid = {"activation": "sigmoid"}
    assert dice_loss(empty_prediction, labels, **sigmoid) == 0  # 1 - s_nr / s_dr
    assert dice_loss(empty_prediction, labels, smooth_nr=0.0, **sigmoid) == 1
    assert dice_loss(-empty_prediction, labels, **sigmoid) > 0.99


def test_hardness_weighted_dice_uses_the_paper_weight():
    logits, labels = _inputs()
    lam = 0.6
    p, g = logits.softmax(dim=1), _one_hot(labels, 3)
    w = lam * (p - g).abs() + (1 - lam)  # paper form, not PyMIC's lam + (1 - lam)|p - g|
    expected = 1 - (2 * (w * p * g).sum((2, 3)) + 1e-5) / ((w * (p + g)).sum((2, 3)) + 1e-5)
    got = hardness_weighted_dice_loss(logits, labels, hardness_lambda=lam, reduction="none")
    assert torch.allclose(got, expected)
    assert torch.allclose(
        hardness_weighted_dice_loss(logits, labels, hardness_lambda=0.0, batch=True),
        dice_loss(logits, labels, batch=True),
    )


def test_hardness_weight_puts_more_gradient_on_hard_voxels():
    probs = torch.tensor([0.9, 0.6], dtype=torch.float64).view(1, 1, 1, 2).requires_grad_(True)
    mask = torch.tensor([[[1, 1]]])
    kwargs = {"activation": "none"}
    hardness_weighted_dice_loss(probs, mask, hardness_lambda=0.9, **kwargs).backward()
    hard = probs.grad.clone()
    probs.grad = None
    dice_loss(probs, mask, **kwargs).backward()
    # plain Dice pushes both voxels equally; the hardness weight pushes the worse one harder
    assert torch.allclose(probs.grad[..., 0], probs.grad[..., 1])
    assert hard[..., 1].abs() > hard[..., 0].abs()


def test_bad_parameters_raise():
    logits, labels = _inputs()
    with pytest.raises(ValueError, match="beta"):
        tversky_loss(logits, labels, beta=-0.1)
    with pytest.raises(ValueError, match="hardness_lambda"):
        hardness_weighted_dice_loss(logits, labels, hardness_lambda=1.5)
    with pytest.raises(ValueError, match="single channel"):
        dice_loss(
            logits[:, :1], labels.clamp(max=1), activation="sigmoid", include_background=False
        )

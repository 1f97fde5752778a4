"""focal_loss: MONAI, the paper's closed form, gamma = 0 equals cross-entropy, stability."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.losses import binary_cross_entropy, cross_entropy, focal_loss


def _inputs(seed=0, shape=(2, 3, 5, 6)):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(*shape, generator=g, dtype=torch.float64)
    labels = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    return logits, labels, F.one_hot(labels, shape[1]).movedim(-1, 1).double()


@pytest.mark.parametrize("alpha", [None, 0.25])
@pytest.mark.parametrize("shape", [(2, 3, 5, 6), (1, 2, 3, 4, 5)], ids=["2d", "3d"])
def test_sigmoid_focal_equals_monai(alpha, shape):
    monai_losses = pytest.importorskip("monai.losses")
    logits, labels, one_hot = _inputs(shape=shape)
    expected = monai_losses.FocalLoss(alpha=alpha, gamma=2.0)(logits, one_hot)
    assert torch.allclose(
        focal_loss(logits, labels, alpha=alpha, activation="sigmoid"), expected.double(), atol=1e-6
    )


@pytest.mark.parametrize("alpha", [None, 0.25])
def test_softmax_focal_equals_monai_times_channels(alpha):
    """MONAI's softmax mode averages over C channels too (C - 1 of them zero); we do not."""
    monai_losses = pytest.importorskip("monai.losses")
    logits, labels, one_hot = _inputs()
    expected = monai_losses.FocalLoss(use_softmax=True, alpha=alpha)(logits, one_hot) * 3
    got = focal_loss(logits, labels, activation="softmax", alpha=alpha)
    assert torch.allclose(got, expected.double(), atol=1e-6)


def test_gamma_zero_without_alpha_is_cross_entropy():
    logits, labels, _ = _inputs()
    assert torch.allclose(
        focal_loss(logits, labels, gamma=0.0, activation="softmax"), cross_entropy(logits, labels)
    )
    assert torch.allclose(
        focal_loss(logits, labels, gamma=0.0, activation="sigmoid"),
        binary_cross_entropy(logits, labels),
    )


@settings(max_examples=25, deadline=None)
@given(
    x=st.floats(-30, 30),
    t=st.sampled_from([0, 1]),
    alpha=st.floats(0.0, 1.0),
    gamma=st.floats(0.0, 5.0),
)
def test_sigmoid_element_matches_the_paper(x, t, alpha, gamma):
    """FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t), eq. (5) of Lin et al."""
    logits = torch.full((1, 1, 1, 1), x, dtype=torch.float64)
    p = torch.sigmoid(torch.tensor(x, dtype=torch.float64))
    p_t = p if t == 1 else 1 - p
    alpha_t = alpha if t == 1 else 1 - alpha
    log_p_t = F.logsigmoid(torch.tensor(x if t == 1 else -x, dtype=torch.float64))
    expected = -alpha_t * (1 - p_t) ** gamma * log_p_t
    got = focal_loss(logits, torch.full((1, 1, 1), t), alpha=alpha, gamma=gamma)
    assert torch.allclose(got, expected, rtol=1e-9, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), gamma=st.floats(0.0, 4.0))
def test_focal_never_exceeds_cross_entropy(seed, gamma):
    logits, labels, _ = _inputs(seed)
    ce = cross_entropy(logits, labels, reduction="none")
    fl = focal_loss(logits, labels, gamma=gamma, activation="softmax", reduction="none")
    assert (fl <= ce + 1e-12).all()


def test_per_class_alpha_and_reductions():
    logits, labels, _ = _inputs()
    alpha = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    per_class = focal_loss(logits, labels, activation="softmax", alpha=alpha, gamma=0.0)
    # alpha weights each pixel by its class, but the mean stays over pixels (not over weights)
    expected = F.cross_entropy(logits, labels, weight=alpha, reduction="sum") / labels.numel()
    assert torch.allclose(per_class, expected)
    sigmoid = {"activation": "sigmoid"}
    assert focal_loss(logits, labels, reduction="none", **sigmoid).shape == logits.shape
    assert focal_loss(logits, labels, activation="softmax", reduction="none").shape == labels.shape
    total = focal_loss(logits, labels, reduction="sum", **sigmoid)
    assert torch.allclose(total, focal_loss(logits, labels, **sigmoid) * logits.numel())


def test_small_gamma_keeps_gradients_finite_at_perfect_predictions():
    labels = torch.tensor([[[0, 1]]])
    logits = (1e4 * F.one_hot(labels, 2).movedim(-1, 1).float()).requires_grad_(True)
    focal_loss(logits, labels, gamma=0.5, activation="softmax").backward()
    assert torch.isfinite(logits.grad).all()


def test_bad_parameters_raise():
    logits, labels, _ = _inputs()
    with pytest.raises(ValueError, match="gamma"):
        focal_loss(logits, labels, gamma=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        focal_loss(logits, labels, alpha=1.5)
    with pytest.raises(ValueError, match="alpha"):
        focal_loss(logits, labels, alpha=[0.5, 0.5])
    with pytest.raises(ValueError, match="C >= 2"):
        focal_loss(logits[:, :1], labels.clamp(max=1), activation="softmax")

"""Lovasz hinge and Lovasz-softmax against an independent, loop-based implementation of Berman's
reference written from the paper's set formulas, and the extension property on binary errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.losses import lovasz_grad, lovasz_hinge, lovasz_softmax


def jaccard_set_loss(mispredicted: set[int], foreground: set[int]) -> float:
    """Delta_J(M) = |M| / |F u M| (Berman et al., eq. 5); 0 for an empty M."""
    return len(mispredicted) / len(foreground | mispredicted) if mispredicted else 0.0


def lovasz_extension_naive(errors: list[float], labels: list[int]) -> float:
    """sum_i m_(i) (Delta(M_i) - Delta(M_(i-1))) with M_i the i largest errors (eq. 8-9)."""
    order = sorted(range(len(errors)), key=lambda i: -errors[i])
    foreground = {i for i, y in enumerate(labels) if y == 1}
    total, previous, mispredicted = 0.0, 0.0, set()
    for i in order:
        mispredicted.add(i)
        current = jaccard_set_loss(mispredicted, foreground)
        total += errors[i] * (current - previous)
        previous = current
    return total


def reference_hinge(logits, labels, per_image, ignore=None):
    """Berman's lovasz_hinge: logits (N, *spatial), labels in {0, 1}."""
    groups = (
        [(logits[n], labels[n]) for n in range(len(logits))] if per_image else [(logits, labels)]
    )
    losses = []
    for x, y in groups:
        x, y = x.flatten().tolist(), y.flatten().tolist()
        kept = [(xi, yi) for xi, yi in zip(x, y, strict=True) if yi != ignore]
        errors = [max(0.0, 1 - xi * (2 * yi - 1)) for xi, yi in kept]
        losses.append(lovasz_extension_naive(errors, [yi for _, yi in kept]) if kept else 0.0)
    return sum(losses) / len(losses)


def reference_softmax(probs, labels, classes="present", per_image=False, ignore=None):
    """Berman's lovasz_softmax: probs (N, C, *spatial), integer labels."""
    n_classes = probs.shape[1]
    if per_image:
        groups = [(probs[n : n + 1], labels[n : n + 1]) for n in range(len(probs))]
    else:
        groups = [(probs, labels)]
    image_losses = []
    for p, y in groups:
        y = y.flatten().tolist()
        p = p.movedim(1, -1).reshape(-1, n_classes).tolist()
        kept = [(pi, yi) for pi, yi in zip(p, y, strict=True) if yi != ignore]
        chosen = range(n_classes) if classes in ("present", "all") else classes
        class_losses = []
        for c in chosen:
            fg = [int(yi == c) for _, yi in kept]
            if classes == "present" and sum(fg) == 0:
                continue
            errors = [abs(f - pi[c]) for f, (pi, _) in zip(fg, kept, strict=True)]
            class_losses.append(lovasz_extension_naive(errors, fg))
        image_losses.append(sum(class_losses) / len(class_losses) if class_losses else 0.0)
    return sum(image_losses) / len(image_losses)


def _binary(seed, spatial=(5, 6)):
    g = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(3, 1, *spatial, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 2, (3, *spatial), generator=g)
    return logits, labels


def _multi(seed, spatial=(5, 6), classes=4):
    g = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(2, classes, *spatial, generator=g, dtype=torch.float64)
    labels = torch.randint(0, classes - 1, (2, *spatial), generator=g)  # the last class is absent
    return logits, labels


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), per_image=st.booleans())
def test_hinge_equals_reference(seed, per_image):
    logits, labels = _binary(seed)
    expected = reference_hinge(logits[:, 0], labels, per_image)
    assert lovasz_hinge(logits, labels, per_image=per_image).item() == pytest.approx(expected)


@pytest.mark.parametrize("per_image", [True, False])
def test_hinge_with_ignore_index_3d_and_an_image_without_positives(per_image):
    logits, labels = _binary(1, spatial=(3, 4, 5))
    labels[0] = 0  # no positives at all in image 0
    labels[1, 0] = 255
    expected = reference_hinge(logits[:, 0], labels, per_image, ignore=255)
    got = lovasz_hinge(logits, labels, per_image=per_image, ignore_index=255)
    assert got.item() == pytest.approx(expected)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"classes": "all"},
        {"per_image": True},
        {"classes": [1, 2]},
        {"classes": "all", "per_image": True},
    ],
)
def test_softmax_equals_reference(kwargs):
    logits, labels = _multi(2)
    expected = reference_softmax(logits.softmax(dim=1), labels, **kwargs)
    assert lovasz_softmax(logits, labels, **kwargs).item() == pytest.approx(expected)


def test_softmax_with_ignore_index_in_3d():
    logits, labels = _multi(3, spatial=(3, 4, 4))
    labels[:, :, 0] = 255
    expected = reference_softmax(logits.softmax(dim=1), labels, ignore=255, per_image=True)
    got = lovasz_softmax(logits, labels, ignore_index=255, per_image=True)
    assert got.item() == pytest.approx(expected)


@settings(max_examples=20, deadline=None)
@given(data=st.lists(st.tuples(st.integers(0, 1), st.floats(0, 1)), min_size=1, max_size=12))
def test_lovasz_grad_is_the_increment_of_the_set_jaccard_loss(data):
    labels = [y for y, _ in data]
    gt_sorted = torch.tensor(labels, dtype=torch.float64)
    foreground = {i for i, y in enumerate(labels) if y == 1}
    expected = [jaccard_set_loss(set(range(i + 1)), foreground) for i in range(len(labels))]
    increments = [expected[0]] + [b - a for a, b in zip(expected, expected[1:], strict=False)]
    assert torch.allclose(lovasz_grad(gt_sorted), torch.tensor(increments, dtype=torch.float64))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_extension_equals_jaccard_loss_at_binary_predictions(seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (1, 4, 5), generator=g)
    predicted = torch.randint(0, 3, (1, 4, 5), generator=g)
    logits = 1e4 * F.one_hot(predicted, 3).movedim(-1, 1).double()  # exactly one-hot softmax
    ious = []
    for c in range(3):
        union = ((labels == c) | (predicted == c)).sum().item()
        inter = ((labels == c) & (predicted == c)).sum().item()
        ious.append(inter / union if union else 1.0)
    expected = sum(1 - iou for iou in ious) / 3
    assert lovasz_softmax(logits, labels, classes="all").item() == pytest.approx(expected)


def test_worked_example_from_the_docstring():
    """Two pixels wrong out of a foreground of 2: the hinge errors are m = [2, 0.5, 0, 0]."""
    logits = torch.tensor([-1.0, 0.5, 3.0, -4.0]).view(1, 1, 1, 4)
    labels = torch.tensor([[[1, 1, 1, 0]]])
    # sorted errors 2 (fg), 0.5 (fg); J_1 = 1/3, J_2 = 2/3 -> 2 * 1/3 + 0.5 * 1/3
    assert lovasz_hinge(logits, labels).item() == pytest.approx(2 / 3 + 0.5 / 3)


def test_bad_input_raises():
    logits, labels = _multi(0)
    with pytest.raises(ValueError, match="one channel"):
        lovasz_hinge(logits, labels)
    with pytest.raises(ValueError, match="C >= 2"):
        lovasz_softmax(logits[:, :1], labels.clamp(max=1))
    with pytest.raises(ValueError, match="classes"):
        lovasz_softmax(logits, labels, classes=[7])
    with pytest.raises(ValueError, match="classes"):
        lovasz_softmax(logits, labels, classes="some")
    with pytest.raises(ValueError, match="integer label map"):
        lovasz_softmax(logits, logits.softmax(1))


def test_reduction_over_images():
    g = torch.Generator().manual_seed(0)
    logits, labels = (
        torch.randn(3, 1, 5, 5, generator=g),
        torch.randint(0, 2, (3, 5, 5), generator=g),
    )
    per_image = lovasz_hinge(logits, labels, reduction="none")
    assert per_image.shape == (3,)
    torch.testing.assert_close(per_image.mean(), lovasz_hinge(logits, labels))
    torch.testing.assert_close(per_image.sum(), lovasz_hinge(logits, labels, reduction="sum"))
    multi = torch.randn(3, 3, 5, 5, generator=g)
    labels3 = torch.randint(0, 3, (3, 5, 5), generator=g)
    assert lovasz_softmax(multi, labels3, reduction="none").shape == (1,)  # the batch is one item
    assert lovasz_softmax(multi, labels3, per_image=True, reduction="none").shape == (3,)

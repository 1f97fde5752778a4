"""Lovasz hinge and Lovasz-softmax losses (Berman, Rannen Triki, Blaschko, CVPR 2018).

The Jaccard loss ``1 - |y & y_hat| / |y | y_hat|`` is a set function of the *set of mispredicted
pixels*: it jumps when a pixel flips and has no useful gradient. It is submodular, so its Lovasz
extension (Lovasz 1983) is its tight convex, piecewise-linear interpolation to real-valued
per-pixel errors ``m``: sort the errors in decreasing order, ``m_(1) >= m_(2) >= ...``, and take

    loss(m) = sum_i m_(i) * (J_i - J_(i-1)),   J_i = Jaccard loss of the set {(1), ..., (i)},

which :func:`lovasz_grad` computes. On 0/1 errors it is the Jaccard loss itself; on soft errors it
is the surrogate we can train with. The hinge version uses hinge errors of the logits of a binary
net, the softmax version uses ``|1[y = c] - p_c|`` per class.

Both functions take logits (Berman's ``lovasz_softmax`` takes probabilities) and give the same
values as Berman's reference code on the same scores; they work in 2D and 3D.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from course_lib.losses._module import LossModule
from course_lib.losses._validate import (
    check_logits,
    reduce,
    require_label_map,
    safe_divide,
    target_to_one_hot,
    upcast,
)


def lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    r"""Gradient of the Lovasz extension of the Jaccard loss, for 0/1 labels sorted by error.

    .. math:: J_i = 1 - \frac{G - \sum_{k \le i} g_k}{G + \sum_{k \le i} (1 - g_k)},
              \qquad \nabla_i = J_i - J_{i-1},\ J_0 = 0

    where ``G`` is the number of positives. Works along the last axis, batched over the others.

    Examples
    --------
    >>> lovasz_grad(torch.tensor([1.0, 0.0, 1.0]))  # J = 1/2, 2/3, 1
    tensor([0.5000, 0.1667, 0.3333])
    """
    positives = gt_sorted.sum(dim=-1, keepdim=True)
    intersection = positives - gt_sorted.cumsum(dim=-1)
    union = positives + (1 - gt_sorted).cumsum(dim=-1)  # >= 1 at every position
    jaccard = 1 - intersection / union
    return torch.diff(jaccard, dim=-1, prepend=torch.zeros_like(jaccard[..., :1]))


def _lovasz_extension(
    errors: torch.Tensor, foreground: torch.Tensor, valid: torch.Tensor | None
) -> torch.Tensor:
    """Lovasz extension of the Jaccard loss per row of ``errors`` (..., M); negative errors count 0.

    Ignored elements get an error of -inf: they sort last, where they change neither the
    cumulative counts of the valid ones nor (after the ReLU) the sum.
    """
    if valid is not None:
        errors = errors.masked_fill(~valid, float("-inf"))
        foreground = foreground * valid
    errors_sorted, order = errors.sort(dim=-1, descending=True)
    grad = lovasz_grad(foreground.gather(-1, order))
    return (errors_sorted.relu() * grad).sum(dim=-1)


def _rows(x: torch.Tensor, per_image: bool) -> torch.Tensor:
    """``(N, C, *spatial)`` to ``(N, C, M)`` (per image) or ``(1, C, N * M)`` (whole batch)."""
    n, c = x.shape[:2]
    rows = x.reshape(n, c, -1)
    return rows if per_image else rows.movedim(0, 1).reshape(1, c, -1)


def lovasz_hinge(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    per_image: bool = True,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Binary Lovasz hinge loss of a one-channel net.

    Hinge errors :math:`m_i = \max(0, 1 - x_i s_i)` with signs :math:`s_i = 2 g_i - 1`, then the
    Lovasz extension of the Jaccard loss of the foreground (see the module docstring).

    Parameters
    ----------
    logits
        Raw scores ``(N, 1, *spatial)`` (Berman's code takes ``(N, H, W)``).
    target
        0/1 labels ``(N, *spatial)``.
    per_image
        One loss per image, then the mean (Berman's default); else one loss over the whole batch.
    ignore_index
        Label of pixels that do not count. A batch with every pixel ignored gives 0.
    reduction
        ``"mean"``, ``"sum"`` or ``"none"`` over the images (``(N,)``; with ``per_image=False``
        the batch is one item, ``(1,)``).

    References
    ----------
    Berman et al., "The Lovasz-Softmax loss", CVPR 2018, Sec. 3.1 and eq. (10).

    Examples
    --------
    >>> logits = torch.tensor([[[[2.0, -2.0, 0.5]]]])
    >>> labels = torch.tensor([[[1, 0, 1]]])
    >>> lovasz_hinge(logits, labels)  # only the third pixel violates the margin: error 0.5
    tensor(0.2500)
    """
    logits = upcast(check_logits(logits))
    if logits.shape[1] != 1:
        raise ValueError(
            f"lovasz_hinge needs one channel (a binary net), got C = {logits.shape[1]}; use "
            "lovasz_softmax for several classes"
        )
    require_label_map(target, "lovasz_hinge")
    foreground, valid = target_to_one_hot(logits, target, ignore_index)
    errors = 1 - logits * (2 * foreground - 1)
    valid_rows = None if valid is None else _rows(valid, per_image)[:, 0]
    losses = _lovasz_extension(
        _rows(errors, per_image)[:, 0], _rows(foreground, per_image)[:, 0], valid_rows
    )
    return reduce(losses, reduction)


def lovasz_softmax(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    classes: str | Sequence[int] = "present",
    per_image: bool = False,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Multi-class Lovasz-softmax loss.

    For each class ``c``, errors :math:`m_i = |1[y_i = c] - p_{ic}|` with ``p = softmax(logits)``,
    then the Lovasz extension of the Jaccard loss of class ``c``; the mean over the chosen classes.

    Parameters
    ----------
    logits
        Raw scores ``(N, C, *spatial)``, ``C >= 2``.
    target
        Integer labels ``(N, *spatial)``.
    classes
        ``"present"`` (classes with at least one pixel in the target, of each image when
        ``per_image``; Berman's default), ``"all"``, or a list of class indices.
    per_image
        One loss per image, then the mean; else one loss over the whole batch (Berman's default).
    ignore_index
        Label of pixels that do not count.
    reduction
        ``"mean"``, ``"sum"`` or ``"none"`` over the images (``(N,)``; with ``per_image=False``
        the batch is one item, ``(1,)``).

    References
    ----------
    Berman et al., "The Lovasz-Softmax loss", CVPR 2018, Sec. 3.2, eq. (11)-(12).

    Examples
    --------
    >>> labels = torch.tensor([[[0, 1], [1, 1]]])
    >>> logits = 20.0 * torch.nn.functional.one_hot(labels, 2).movedim(-1, 1).float()
    >>> lovasz_softmax(logits, labels).item() < 1e-6  # a right, confident prediction
    True
    """
    logits = upcast(check_logits(logits))
    n_classes = logits.shape[1]
    if n_classes < 2:
        raise ValueError("lovasz_softmax needs C >= 2 channels; use lovasz_hinge for one channel")
    require_label_map(target, "lovasz_softmax")
    foreground, valid = target_to_one_hot(logits, target, ignore_index)
    foreground = _rows(foreground, per_image)
    errors = (foreground - _rows(logits.softmax(dim=1), per_image)).abs()
    valid_rows = None if valid is None else _rows(valid, per_image).expand_as(errors)
    losses = _lovasz_extension(errors, foreground, valid_rows)  # (rows, C)

    if classes == "present":
        kept = foreground if valid_rows is None else foreground * valid_rows
        selected = kept.sum(dim=-1) > 0
    elif classes == "all":
        selected = torch.ones_like(losses, dtype=torch.bool)
    elif isinstance(classes, str) or not all(
        isinstance(c, int) and 0 <= c < n_classes for c in classes
    ):
        raise ValueError(
            f"classes must be 'present', 'all' or a list of class indices in [0, {n_classes - 1}]"
            f", got {classes!r}"
        )
    else:
        selected = torch.zeros_like(losses, dtype=torch.bool)
        selected[:, list(classes)] = True
    selected = selected.to(losses.dtype)
    per_row = safe_divide((losses * selected).sum(dim=-1), selected.sum(dim=-1))
    return reduce(per_row, reduction)


class LovaszHingeLoss(LossModule):
    """Module twin of :func:`lovasz_hinge` (same keyword arguments)."""

    function = staticmethod(lovasz_hinge)


class LovaszSoftmaxLoss(LossModule):
    """Module twin of :func:`lovasz_softmax` (same keyword arguments)."""

    function = staticmethod(lovasz_softmax)

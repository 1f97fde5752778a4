"""Distance-based losses: the boundary loss and the Hausdorff-distance (distance transform) loss.

Dice and cross-entropy count pixels; they barely notice a thin false-positive blob far from the
object, which is exactly what the Hausdorff distance punishes (chapter 04). These losses weight each
pixel's error by how far it lies from the boundary, using exact Euclidean distance transforms of the
target (and, for the Hausdorff loss, of the thresholded prediction), computed without gradient by
:func:`course_lib.ops.distance_transform_edt` on the inputs' device.
"""

from __future__ import annotations

import torch

from course_lib.losses._module import LossModule
from course_lib.losses._validate import check_range, reduce
from course_lib.losses.overlap import probabilities_and_target
from course_lib.ops.checks import Spacing
from course_lib.ops.distance_transform import distance_transform_edt


def _edt(mask: torch.Tensor, spacing: Spacing) -> torch.Tensor:
    """EDT of a ``(N, C, *spatial)`` mask, every (image, class) on its own."""
    return distance_transform_edt(mask, spacing, spatial_dims=mask.ndim - 2)


def _is_empty_or_full(mask: torch.Tensor) -> torch.Tensor:
    """``(N, C, 1, ...)``: True where a channel has no foreground or no background at all."""
    dims = tuple(range(2, mask.ndim))
    return (~mask.any(dim=dims, keepdim=True)) | mask.all(dim=dims, keepdim=True)


@torch.no_grad()
def signed_distance_map(mask: torch.Tensor, spacing: Spacing = None) -> torch.Tensor:
    r"""Kervadec's signed distance map of each channel of a binary mask.

    .. math:: \phi = d(\neg m)\,[\neg m] - (d(m) - 1)\,[m]

    with :math:`d` the Euclidean distance transform (distance to the nearest zero voxel): outside
    the object, the distance to the nearest object pixel (1 next to it); inside, minus the distance
    to the background plus 1, so **0 on the object's inner contour** and -1, -2, ... deeper in. A
    channel that is empty or full gets 0 everywhere. This is the map of the authors' code and of
    MONAI 1.6 ``BoundaryLoss``.

    Parameters
    ----------
    mask
        Binary (or one-hot) ``(N, C, *spatial)``, 2 or 3 spatial dimensions; nonzero is inside.
    spacing
        Voxel size per spatial axis (e.g. mm), or one value; default 1. The ``- 1`` stays 1 (as in
        the authors' code), whatever the spacing.

    Returns
    -------
    torch.Tensor
        float32 ``(N, C, *spatial)`` on the mask's device.

    References
    ----------
    Kervadec et al., "Boundary loss for highly unbalanced segmentation", MIDL 2019, Sec. 2.

    Examples
    --------
    >>> row = torch.tensor([[[[0, 0, 1, 1, 1, 0, 0, 0]]]])
    >>> signed_distance_map(row)
    tensor([[[[ 2.,  1.,  0., -1.,  0.,  1.,  2.,  3.]]]])
    """
    if not isinstance(mask, torch.Tensor) or mask.ndim not in (4, 5):
        raise ValueError(
            "mask must be a tensor (N, C, H, W) or (N, C, D, H, W), got "
            f"{tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__}"
        )
    inside = mask != 0
    degenerate = _is_empty_or_full(inside)
    # An empty or full channel has no zero voxel in one of the two EDTs (inf there): masked out.
    phi = torch.where(inside, 1.0 - _edt(inside, spacing), _edt(~inside, spacing))
    return phi.masked_fill(degenerate, 0.0)


def boundary_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    activation: str | None = None,
    include_background: bool = True,
    spacing: Spacing = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Boundary loss: the mean of the probabilities weighted by the target's signed distance map.

    .. math:: L = \frac{1}{|\Omega|} \sum_{i \in \Omega} p_i\, \phi_G(i)

    per (image, class), with :math:`\phi_G` from :func:`signed_distance_map`. Probability put
    outside the object costs its distance to it; probability inside earns a reward growing with
    depth, so the loss can be negative (a perfect prediction sums the non-positive inside values).
    Kervadec et al. use it next to a region loss (GDL) whose weight is shifted to it during
    training; on its own it is not a good loss. Equals MONAI 1.6 ``BoundaryLoss`` with the same
    activation and ``include_background`` (default True, as MONAI; the binary experiments of the
    paper use the foreground channel only: ``include_background=False``).

    No ``ignore_index``: the signed distance map needs every voxel's label, and an unannotated
    voxel has no known distance to the boundary.

    Parameters
    ----------
    logits
        Raw scores ``(N, C, *spatial)``.
    target
        Integer labels ``(N, *spatial)`` or a one-hot map ``(N, C, *spatial)``.
    activation
        ``"softmax"``, ``"sigmoid"`` or ``"none"``; default ``None``: softmax for ``C >= 2``
        channels, sigmoid for one.
    include_background
        Whether channel 0 enters the mean.
    spacing
        Voxel size for the distance map.
    reduction
        ``"mean"``, ``"sum"`` or ``"none"`` (``(N, C)``).

    References
    ----------
    Kervadec et al., "Boundary loss for highly unbalanced segmentation", MIDL 2019, eq. (5).

    Examples
    --------
    >>> labels = torch.zeros(1, 6, 6, dtype=torch.long)
    >>> labels[0, 2:4, 2:4] = 1
    >>> right = 10.0 * torch.nn.functional.one_hot(labels, 2).movedim(-1, 1).float()
    >>> bool(boundary_loss(right, labels) < boundary_loss(-right, labels))
    True
    """
    p, g = probabilities_and_target(
        logits, target, activation=activation, include_background=include_background
    )
    phi = signed_distance_map(g > 0.5, spacing).to(p.dtype)
    loss = (p * phi).mean(dim=tuple(range(2, p.ndim)))
    return reduce(loss, reduction)


@torch.no_grad()
def _distance_field(mask: torch.Tensor, spacing: Spacing) -> torch.Tensor:
    """Unsigned distance to the interface, ``d(m) + d(not m)``; 0 for an empty or full channel."""
    field = _edt(mask, spacing) + _edt(~mask, spacing)  # inf for an empty or full channel
    return field.masked_fill(_is_empty_or_full(mask), 0.0)


def hausdorff_dt_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    alpha: float = 2.0,
    activation: str | None = None,
    include_background: bool = False,
    spacing: Spacing = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Hausdorff-distance loss from distance transforms (Karimi and Salcudean 2019, "HD-DT").

    .. math:: L = \frac{1}{|\Omega|} \sum_{i \in \Omega} (p_i - g_i)^2\,
              \bigl(d_P(i)^\alpha + d_G(i)^\alpha\bigr)

    per (image, class), where :math:`d_G` and :math:`d_P` are the distances to the boundary of the
    target and of the thresholded prediction ``p > 0.5``: ``d = edt(m) + edt(not m)``, so both
    pixels next to an interface get 1. Errors far from either boundary, the ones that make the
    Hausdorff distance large, cost the most. The fields carry no gradient; an empty or full mask
    gets a zero field. Equals MONAI ``HausdorffDTLoss`` (also ``include_background=False`` by
    default, ``alpha = 2`` as in the paper).

    No ``ignore_index``: as for :func:`boundary_loss`, the distance maps need every voxel's label.

    Parameters
    ----------
    logits, target, activation, spacing, reduction
        As in :func:`boundary_loss`.
    alpha
        Exponent of the distances (2 in the paper).
    include_background
        Whether channel 0 enters the mean (default False, as MONAI).

    References
    ----------
    Karimi, Salcudean, "Reducing the Hausdorff Distance in Medical Image Segmentation with
    Convolutional Neural Networks", IEEE TMI 39(2), 2020, Sec. III-A, eq. (8).

    Examples
    --------
    >>> labels = torch.zeros(1, 6, 6, dtype=torch.long)
    >>> labels[0, 2:4, 2:4] = 1
    >>> right = 10.0 * torch.nn.functional.one_hot(labels, 2).movedim(-1, 1).float()
    >>> hausdorff_dt_loss(right, labels).item() < 1e-6
    True
    """
    check_range(alpha, "alpha", 0.0)
    p, g = probabilities_and_target(
        logits, target, activation=activation, include_background=include_background
    )
    distance = _distance_field(p.detach() > 0.5, spacing) ** alpha
    distance = distance + _distance_field(g > 0.5, spacing) ** alpha
    loss = ((p - g) ** 2 * distance.to(p.dtype)).mean(dim=tuple(range(2, p.ndim)))
    return reduce(loss, reduction)


class BoundaryLoss(LossModule):
    """Module twin of :func:`boundary_loss` (same keyword arguments)."""

    function = staticmethod(boundary_loss)


class HausdorffDTLoss(LossModule):
    """Module twin of :func:`hausdorff_dt_loss` (same keyword arguments)."""

    function = staticmethod(hausdorff_dt_loss)

"""Multi-scale attention loss: explicit supervision of spatial attention maps (Wang et al. 2019).

The 2.5D U-Net computes one attention map ``A_l = sigmoid(z_l)`` per decoder level ``l`` (at that
level's resolution) and returns its logit ``z_l``, as every net in the package returns logits. Each
map is compared with the foreground mask average-pooled to the same resolution, ``G_l^f``, and the
losses are averaged over the ``L`` levels:

    L_attention = (1 / L) * sum_l  l(sigmoid(z_l), G_l^f)

Average pooling (not nearest down-sampling) makes ``G_l^f`` the fraction of foreground inside each
coarse voxel: 1 inside the target, partial values on its border, 0 far away.

The notes leave ``l`` open. We default to the binary cross-entropy with the soft target ``G``,
``-[G log A + (1 - G) log(1 - A)]`` averaged over voxels, computed from the logit as
``softplus(z) - G z`` (never ``log`` of a rounded sigmoid, so a logit of +-1e4 gives the exact,
finite loss): it is smallest exactly at ``A = G``, and its gradient with respect to the logit is
``A - G``, which does not vanish when the sigmoid saturates. The alternatives show why this matters:

* ``"dice"``, the soft Dice loss (sums over the whole batch): once a map spreads over a large
  image the denominator is huge and the push back on background voxels tiny (about the target's
  share of the voxels), so a map can settle at 1 everywhere; against a soft target it is also
  smallest for a sharpened map, not for ``A = G``;
* ``"mse"``, the mean squared error: 0 exactly at ``A = G``, but its gradient with respect to the
  logit, ``2 (A - G) A (1 - A)``, vanishes where the map saturates at a wrong 0 or 1.

Reference: G. Wang, J. Shapey, W. Li et al., "Automatic Segmentation of Vestibular Schwannoma from
T2-Weighted MRI by Deep Spatial Attention with Hardness-Weighted Loss", MICCAI 2019, section 2.2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from course_lib.losses._module import LossModule
from course_lib.losses._validate import check_logits, upcast
from course_lib.losses.overlap import dice_loss

ATTENTION_LOSSES = ("dice", "bce", "mse")
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def pool_foreground(foreground: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Average-pool a full-resolution foreground mask ``(N, 1, *spatial)`` down to ``shape``.

    Each output voxel is the foreground fraction of the block of input voxels it covers; the
    pooling factor per axis is ``spatial[i] // shape[i]`` and must divide exactly (it does for the
    maps of a U-Net whose input fits its pooling).

    Examples
    --------
    >>> g = torch.zeros(1, 1, 1, 4, 4); g[..., :2, :1] = 1
    >>> pool_foreground(g, (1, 2, 2)).flatten().tolist()
    [0.5, 0.0, 0.0, 0.0]
    """
    spatial, shape = tuple(foreground.shape[2:]), tuple(int(s) for s in shape)
    if len(shape) != len(spatial) or any(
        s < 1 or full % s != 0 for full, s in zip(spatial, shape, strict=True)
    ):
        raise ValueError(
            f"shape must divide the foreground's spatial shape {spatial} axis by axis, got {shape}"
        )
    factors = tuple(full // s for full, s in zip(spatial, shape, strict=True))
    if all(f == 1 for f in factors):
        return foreground
    return _AVG_POOL[len(spatial)](foreground, kernel_size=factors, stride=factors)


def attention_loss(
    logits: Sequence[torch.Tensor],
    foreground: torch.Tensor,
    *,
    loss: str = "bce",
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
) -> torch.Tensor:
    """Multi-scale attention loss ``(1/L) sum_l l(sigmoid(z_l), avgpool(G, to z_l's shape))``.

    Takes the maps' logits ``z_l`` (before the sigmoid), like every loss of the package, and
    applies the sigmoid itself in a numerically stable way.

    No ``reduction``: the levels have different resolutions, and the loss is their mean, one
    scalar. No ``ignore_index``: the target is a foreground mask in [0, 1], not labels; pass
    ``label > 0`` with unannotated voxels set to 0 or 1 as they should count.

    Parameters
    ----------
    logits
        ``L`` attention logits ``z_l`` of shape ``(N, 1, *spatial_l)``, 2 or 3 spatial axes (as
        returned by :class:`course_lib.models.unet25d.UNet25D` with ``return_auxiliary=True``);
        the maps are ``A_l = sigmoid(z_l)``. Half precision is computed in float32.
    foreground
        Foreground mask at full resolution, ``(N, 1, *spatial)`` or ``(N, *spatial)``; bool, int
        or float in [0, 1] (for a label map pass ``label > 0``).
    loss
        ``"bce"``: mean of ``-[G log A + (1 - G) log(1 - A)]``, computed from the logits;
        ``"dice"``: ``1 - (2 sum(A G) + s_nr) / (sum A + sum G + s_dr)``, sums over the batch;
        ``"mse"``: mean of ``(A - G)^2``. See the module docstring for the choice.
    smooth_nr, smooth_dr
        Smoothing of the Dice form, as in :func:`~course_lib.losses.dice_loss`; keeps an empty
        map against an empty mask at loss 0, not NaN.

    Returns
    -------
    torch.Tensor
        A scalar on the logits' device, float32 for half-precision logits.

    Examples
    --------
    >>> g = torch.zeros(1, 1, 2, 4, 4); g[:, :, :, :2, :2] = 1
    >>> z = [torch.zeros(1, 1, 2, 4, 4), torch.zeros(1, 1, 1, 2, 2)]  # A = sigmoid(0) = 0.5
    >>> round(float(attention_loss(z, g)), 4)  # -log(0.5) = log 2 at every voxel
    0.6931
    >>> round(float(attention_loss(z, g, loss="mse")), 4)  # (0.5 - G)^2, G in {0, 1}
    0.25
    """
    if loss not in ATTENTION_LOSSES:
        raise ValueError(f"loss must be one of {ATTENTION_LOSSES}, got {loss!r}")
    if not isinstance(logits, Sequence) or len(logits) == 0:
        raise ValueError("logits must be a non-empty sequence of (N, 1, *spatial) attention logits")
    first = check_logits(logits[0], "logits[0]")
    if foreground.ndim == first.ndim - 1:
        foreground = foreground.unsqueeze(1)
    if foreground.ndim != first.ndim or foreground.shape[:2] != (first.shape[0], 1):
        raise ValueError(
            f"foreground must be (N, 1, *spatial) or (N, *spatial) with N = {first.shape[0]} and "
            f"{first.ndim - 2} spatial axes, got shape {tuple(foreground.shape)}"
        )
    foreground = foreground.to(first.device, upcast(first).dtype)
    if foreground.numel() and (foreground.min() < 0 or foreground.max() > 1):
        raise ValueError("foreground must hold values in [0, 1] (a mask, e.g. label > 0)")
    losses = []
    for level, z in enumerate(logits):
        z = upcast(check_logits(z, f"logits[{level}]"))
        if z.ndim != first.ndim or z.shape[:2] != first.shape[:2] or z.shape[1] != 1:
            raise ValueError(
                f"logits[{level}] must be (N, 1, *spatial) like the others, "
                f"got shape {tuple(z.shape)}"
            )
        g = pool_foreground(foreground, z.shape[2:]).to(z.dtype)
        if loss == "bce":
            losses.append(F.binary_cross_entropy_with_logits(z, g))
        elif loss == "dice":
            # Sums over the whole batch: a patch without target still counts the attention spent
            # on it (per item its loss would be ~1 whatever the map, with no gradient).
            losses.append(
                dice_loss(
                    z, g, activation="sigmoid", batch=True, smooth_nr=smooth_nr, smooth_dr=smooth_dr
                )
            )
        else:
            losses.append(F.mse_loss(torch.sigmoid(z), g))
    return torch.stack(losses).mean()


class AttentionLoss(LossModule):
    """Module twin of :func:`attention_loss`: ``AttentionLoss(**kw)(logits, foreground)``."""

    function = staticmethod(attention_loss)

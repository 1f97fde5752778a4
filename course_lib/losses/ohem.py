"""Online hard negative mining (OHEM) for segmentation cross-entropy.

When background pixels vastly outnumber the foreground, most of them are easy and their small
losses still swamp the mean. OHEM keeps every positive (foreground) pixel and only the hardest
negatives, those with the largest loss, a fixed ratio of them per positive (Shrivastava et al.
2016; the 3:1 ratio of SSD, Liu et al. 2016). The selection is a hard choice made without gradient;
the gradient then flows through the kept pixels only.
"""

from __future__ import annotations

import torch

from course_lib.losses._module import LossModule
from course_lib.losses._validate import (
    check_logits,
    check_range,
    require_label_map,
    safe_divide,
    target_to_one_hot,
)
from course_lib.losses.cross_entropy import cross_entropy
from course_lib.ops.checks import check_int


def ohem_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    neg_pos_ratio: float = 3.0,
    min_negatives: int = 0,
    ignore_index: int | None = None,
) -> torch.Tensor:
    r"""Cross-entropy over all positive pixels plus the hardest negative pixels of each image.

    Positives are pixels whose label is not 0 (background); negatives are background pixels. In
    each image the ``k = max(ceil(neg_pos_ratio * n_pos), min_negatives)`` negatives with the
    largest cross-entropy are kept (all of them if there are fewer), and the loss is the mean
    cross-entropy over the kept pixels of the whole batch. ``min_negatives`` keeps images without
    foreground from contributing nothing.

    No ``reduction``: the loss is one mean over the pixels kept in the whole batch; per-image means
    would weigh the images differently.

    Parameters
    ----------
    logits
        Raw scores ``(N, C, *spatial)``, ``C >= 2``.
    target
        Integer labels ``(N, *spatial)``, 0 = background.
    neg_pos_ratio
        Negatives kept per positive (SSD uses 3).
    min_negatives
        Negatives kept per image at least.
    ignore_index
        Label of pixels that are neither positive nor negative.

    References
    ----------
    Shrivastava, Gupta, Girshick, "Training Region-based Object Detectors with Online Hard Example
    Mining", CVPR 2016; Liu et al., "SSD", ECCV 2016, Sec. 2.2 ("Hard negative mining").

    Examples
    --------
    >>> logits = torch.zeros(1, 2, 1, 4)
    >>> logits[0, 1, 0] = torch.tensor([0.0, 3.0, -3.0, 1.0])  # foreground scores
    >>> labels = torch.tensor([[[1, 0, 0, 0]]])
    >>> kept = ohem_cross_entropy(logits, labels, neg_pos_ratio=1.0)  # pixel 0 and pixel 1
    >>> bool(torch.isclose(kept, cross_entropy(logits[..., :2], labels[..., :2])))
    True
    """
    logits = check_logits(logits)
    check_range(neg_pos_ratio, "neg_pos_ratio", 0.0)
    check_int("min_negatives", min_negatives, minimum=0)
    require_label_map(target, "ohem_cross_entropy")
    pixel_loss = cross_entropy(logits, target, ignore_index=ignore_index, reduction="none")
    one_hot, valid = target_to_one_hot(logits, target, ignore_index)
    background = one_hot[:, 0] > 0.5
    if valid is not None:
        positive, negative = ~background & valid[:, 0], background & valid[:, 0]
    else:
        positive, negative = ~background, background
    n = logits.shape[0]
    pixel_loss, positive, negative = (t.reshape(n, -1) for t in (pixel_loss, positive, negative))

    n_keep = torch.ceil(neg_pos_ratio * positive.sum(dim=1)).clamp_min(min_negatives)
    n_keep = torch.minimum(n_keep, negative.sum(dim=1))
    # Rank the negatives of each image by loss, hardest first; positives and ignored pixels last.
    hardness = pixel_loss.detach().masked_fill(~negative, float("-inf"))
    rank = hardness.argsort(dim=1, descending=True).argsort(dim=1)
    kept = positive | (negative & (rank < n_keep.unsqueeze(1)))
    kept = kept.to(pixel_loss.dtype)
    return safe_divide((pixel_loss * kept).sum(), kept.sum())


class OHEMCrossEntropyLoss(LossModule):
    """Module twin of :func:`ohem_cross_entropy` (same keyword arguments)."""

    function = staticmethod(ohem_cross_entropy)

"""Segmentation losses, one concept per module, each a function with a thin ``nn.Module`` twin.

One convention for all of them (``tests/test_losses_signatures.py`` checks every signature):

* the first argument is the network's raw output, ``logits (N, C, *spatial)`` (2D or 3D); the
  target is an integer label map ``(N, *spatial)`` or a one-hot / soft map ``(N, C, *spatial)``;
  bad shapes, dtypes and labels raise ``ValueError``. :func:`attention_loss` takes one logit map
  per decoder level (a list), and :func:`heatmap_mse_loss` regresses its logits directly
  (identity activation), but both take logits first;
* ``reduction`` (``"mean"``, ``"sum"``, ``"none"``) and ``ignore_index`` (label of voxels that do
  not count) on every loss, or a docstring line ``No ``reduction``: <why>``;
* smoothing is ``smooth_nr`` / ``smooth_dr`` (added to numerator and denominator, as MONAI);
* ``activation=None`` means softmax over the channels when ``C >= 2`` and sigmoid when ``C == 1``;
* ``DiceLoss(**kw)(logits, target)`` equals ``dice_loss(logits, target, **kw)``, and
  ``help(DiceLoss)`` shows the same keyword arguments.

=====================  =====================================================================
module                 losses
=====================  =====================================================================
``cross_entropy``      :func:`cross_entropy`, :func:`binary_cross_entropy`
``focal``              :func:`focal_loss`
``overlap``            :func:`dice_loss`, :func:`jaccard_loss`, :func:`tversky_loss`,
                       :func:`hardness_weighted_dice_loss`
``lovasz``             :func:`lovasz_hinge`, :func:`lovasz_softmax`, :func:`lovasz_grad`
``distance``           :func:`signed_distance_map`, :func:`boundary_loss`,
                       :func:`hausdorff_dt_loss`
``combined``           :func:`dice_ce_loss`, :func:`focal_dice_loss`,
                       :func:`bce_minus_log_jaccard`
``heatmap``            :func:`gaussian_heatmaps`, :func:`heatmap_mse_loss`
``ohem``               :func:`ohem_cross_entropy`
``attention``          :func:`attention_loss`, :func:`pool_foreground` (2.5D U-Net's
                       multi-scale attention supervision, chapter 08)
=====================  =====================================================================
"""

from course_lib.losses.attention import AttentionLoss, attention_loss, pool_foreground
from course_lib.losses.combined import (
    BCEMinusLogJaccardLoss,
    DiceCELoss,
    FocalDiceLoss,
    bce_minus_log_jaccard,
    dice_ce_loss,
    focal_dice_loss,
)
from course_lib.losses.cross_entropy import (
    BinaryCrossEntropyLoss,
    CrossEntropyLoss,
    binary_cross_entropy,
    cross_entropy,
)
from course_lib.losses.distance import (
    BoundaryLoss,
    HausdorffDTLoss,
    boundary_loss,
    hausdorff_dt_loss,
    signed_distance_map,
)
from course_lib.losses.focal import FocalLoss, focal_loss
from course_lib.losses.heatmap import HeatmapMSELoss, gaussian_heatmaps, heatmap_mse_loss
from course_lib.losses.lovasz import (
    LovaszHingeLoss,
    LovaszSoftmaxLoss,
    lovasz_grad,
    lovasz_hinge,
    lovasz_softmax,
)
from course_lib.losses.ohem import OHEMCrossEntropyLoss, ohem_cross_entropy
from course_lib.losses.overlap import (
    DiceLoss,
    HardnessWeightedDiceLoss,
    JaccardLoss,
    TverskyLoss,
    dice_loss,
    hardness_weighted_dice_loss,
    jaccard_loss,
    tversky_loss,
)

__all__ = [
    "AttentionLoss",
    "BCEMinusLogJaccardLoss",
    "BinaryCrossEntropyLoss",
    "BoundaryLoss",
    "CrossEntropyLoss",
    "DiceCELoss",
    "DiceLoss",
    "FocalDiceLoss",
    "FocalLoss",
    "HardnessWeightedDiceLoss",
    "HausdorffDTLoss",
    "HeatmapMSELoss",
    "JaccardLoss",
    "LovaszHingeLoss",
    "LovaszSoftmaxLoss",
    "OHEMCrossEntropyLoss",
    "TverskyLoss",
    "attention_loss",
    "bce_minus_log_jaccard",
    "binary_cross_entropy",
    "boundary_loss",
    "cross_entropy",
    "dice_ce_loss",
    "dice_loss",
    "focal_dice_loss",
    "focal_loss",
    "gaussian_heatmaps",
    "hardness_weighted_dice_loss",
    "hausdorff_dt_loss",
    "heatmap_mse_loss",
    "jaccard_loss",
    "lovasz_grad",
    "lovasz_hinge",
    "lovasz_softmax",
    "ohem_cross_entropy",
    "pool_foreground",
    "signed_distance_map",
    "tversky_loss",
]

"""Segmentation metrics: overlap, distances, surfaces, EM challenge metrics, instance matching.

One convention for all of them:

* arguments ``(pred, target)``: binary masks (bool or 0/1; threshold probabilities first) or, for
  the overlap metrics, integer label maps with ``num_classes``; instance maps for
  :func:`match_instances`;
* the trailing ``spatial_dims`` axes are spatial and any leading axes are a batch; results keep
  the batch shape and the device (:func:`match_instances` counts per image; its
  :meth:`InstanceMatch.total` sums them for a dataset's micro-averaged F1);
* empty masks: where a metric is undefined because of an empty mask (a ratio 0/0: Dice or IoU of
  two empty masks, precision without a prediction, recall without a target, the Rand error without
  a target cell; a distance between two empty surfaces), it returns ``empty_value``, NaN by
  default, so that ``torch.nanmean`` skips it rather than it counting as a perfect or a failed
  case. Where the formula is defined it is kept: one empty mask gives Dice 0 and HD ``inf``.

The distance transform and connected components live in :mod:`course_lib.ops` (the losses and
data use them too) and are re-exported here.
"""

from course_lib.metrics.em import pixel_error, rand_error, simple_point_warp, warping_error
from course_lib.metrics.instances import InstanceMatch, match_instances
from course_lib.metrics.overlap import confusion_counts, dice_score, iou_score, precision, recall
from course_lib.metrics.surface import (
    average_surface_distance,
    hausdorff_distance,
    mask_surface,
    surface_distances,
)
from course_lib.ops import connected_components, distance_transform_edt

__all__ = [
    "InstanceMatch",
    "average_surface_distance",
    "confusion_counts",
    "connected_components",
    "dice_score",
    "distance_transform_edt",
    "hausdorff_distance",
    "iou_score",
    "mask_surface",
    "match_instances",
    "pixel_error",
    "precision",
    "rand_error",
    "recall",
    "simple_point_warp",
    "surface_distances",
    "warping_error",
]

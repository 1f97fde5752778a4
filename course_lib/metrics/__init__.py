"""Segmentation metrics: overlap, distances, surfaces, EM challenge metrics, instance matching.

The pixel and surface metrics take binary masks (bool or 0/1; threshold probabilities first) or,
for the overlap metrics, integer label maps with ``num_classes``; the trailing ``spatial_dims``
axes are spatial and any leading axes are a batch; results keep the batch shape and the device.
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

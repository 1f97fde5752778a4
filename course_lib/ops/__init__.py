"""The low-level layer: primitives every other part of the package may import.

Nothing here imports anything else of ``course_lib`` (``tests/test_layers.py`` checks it), so
blocks, models, losses, metrics and data can all build on it without importing each other:

==========================  ====================================================================
module                      what
==========================  ====================================================================
``checks``                  :func:`check_int`, :func:`check_choice`, spatial axes, voxel spacing
``shapes``                  :func:`center_crop`
``distance_transform``      :func:`distance_transform_edt`, the exact Euclidean distance transform,
                            and :func:`distance_transform_at` (the same at a few points)
``components``              :func:`connected_components` of binary masks
==========================  ====================================================================
"""

from course_lib.ops.checks import (
    Spacing,
    check_choice,
    check_int,
    check_spatial_dims,
    kernel_tuple,
    resolve_spacing,
    resolve_spatial_dims,
)
from course_lib.ops.components import connected_components
from course_lib.ops.distance_transform import distance_transform_at, distance_transform_edt
from course_lib.ops.shapes import center_crop

__all__ = [
    "Spacing",
    "center_crop",
    "check_choice",
    "check_int",
    "check_spatial_dims",
    "connected_components",
    "distance_transform_at",
    "distance_transform_edt",
    "kernel_tuple",
    "resolve_spacing",
    "resolve_spatial_dims",
]

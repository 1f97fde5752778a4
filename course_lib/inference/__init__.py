"""Predicting whole images and volumes with nets trained on tiles and patches.

* :func:`overlap_tile_predict`: U-Net's overlap-tile strategy for valid-padding nets (chapter 01);
* :func:`sliding_window_predict`: overlapping windows blended with a Gaussian importance map, with
  test-time mirroring, as nnU-Net does it (chapters 02, 06, 08).
"""

from course_lib.inference.sliding_window import (
    importance_map,
    sliding_window_predict,
    window_starts,
)
from course_lib.inference.tiling import mirror_pad, overlap_tile_predict, tile_layout

__all__ = [
    "importance_map",
    "mirror_pad",
    "overlap_tile_predict",
    "sliding_window_predict",
    "tile_layout",
    "window_starts",
]

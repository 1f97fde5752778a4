"""Resampling to the target spacing, nnU-Net v2's ``resample_data_or_seg_to_shape``.

* Images: third-order spline (``order=3``), edge values repeated outside, output clipped to the
  input's range, no anti-aliasing. This is ``skimage.transform.resize(..., mode="edge",
  anti_aliasing=False)``, which is ``scipy.ndimage.zoom(..., grid_mode=True)`` plus the clip; we
  call scipy directly so scikit-image is not a dependency (a test checks the two agree).
* Label maps: every label's indicator is interpolated linearly (``order=1``) and each voxel takes
  the label with the largest score; exact ties go to the nearest-neighbour label when it is one of
  the tied labels, else to the smallest (batchgenerators' ``resize_segmentation``).
* Separate low-resolution axis: when the current (or else the target) spacing is anisotropic
  (largest / smallest > 3) and exactly one axis has the largest spacing, each slice is resized
  in-plane with the order above and the coarse axis is resampled with nearest neighbour
  (``order_z=0``), so no interpolation mixes slices 3 mm or more apart.

Arrays are NumPy here: resampling is part of preprocessing, which reads files and writes arrays
(the course's I/O edge), as in nnU-Net.

References
----------
Isensee et al., Nature Methods 2021, online methods ("resampling"); nnunetv2 2.8.1
``preprocessing/resampling/default_resampling.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
from scipy import ndimage

Vector: TypeAlias = Sequence[float] | np.ndarray
"""Spacings and shapes: a list, a tuple or a 1D NumPy array."""
ANISO_THRESHOLD = 3  # nnunetv2 configuration.py: a spacing ratio above 3 counts as anisotropic


def compute_new_shape(old_shape: Vector, old_spacing: Vector, new_spacing: Vector) -> np.ndarray:
    """``round(old_spacing / new_spacing * old_shape)`` per axis: the shape at the new spacing.

    Examples
    --------
    >>> compute_new_shape((20, 100, 100), (3.0, 0.8, 0.8), (1.5, 1.6, 1.6)).tolist()
    [40, 50, 50]
    """
    old_shape, old_spacing, new_spacing = (
        np.asarray(v, dtype=np.float64) for v in (old_shape, old_spacing, new_spacing)
    )
    if not len(old_shape) == len(old_spacing) == len(new_spacing):
        raise ValueError(
            "old_shape, old_spacing and new_spacing need one entry per axis, got "
            f"{len(old_shape)}, {len(old_spacing)} and {len(new_spacing)}"
        )
    return np.array(
        [
            int(round(float(i) / float(j) * float(k)))
            for i, j, k in zip(old_spacing, new_spacing, old_shape, strict=True)
        ]
    )


def separate_z_axis(
    current_spacing: Vector,
    new_spacing: Vector,
    threshold: float = ANISO_THRESHOLD,
) -> int | None:
    """The axis to resample separately (nearest neighbour), or ``None`` for plain 3D resampling.

    Examples
    --------
    >>> separate_z_axis((5.0, 1.0, 1.0), (2.0, 1.0, 1.0))
    0
    >>> separate_z_axis((1.0, 1.0, 1.0), (1.0, 4.0, 4.0)) is None  # two axes share the max
    True
    """
    for spacing in (np.asarray(current_spacing, float), np.asarray(new_spacing, float)):
        if spacing.max() / spacing.min() > threshold:
            coarsest = np.flatnonzero(spacing == spacing.max())
            return int(coarsest[0]) if len(coarsest) == 1 else None
    return None


def resize_image(image: np.ndarray, new_shape: Sequence[int], order: int = 3) -> np.ndarray:
    """Spline-resize one channel to ``new_shape`` (skimage's ``resize`` with ``mode="edge"``).

    Sample positions are the centres of the output voxels mapped into the input grid
    (``grid_mode=True``); the result is clipped to ``[image.min(), image.max()]`` so the cubic
    spline cannot overshoot. Returns float64.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != len(new_shape):
        raise ValueError(
            f"new_shape {tuple(new_shape)} must have one size per axis of {image.shape}"
        )
    if tuple(image.shape) == tuple(new_shape):
        return image.copy()
    factors = np.divide(image.shape, new_shape)
    out = ndimage.zoom(image, [1 / f for f in factors], order=order, mode="nearest", grid_mode=True)
    return np.clip(out, image.min(), image.max(), out=out)


def resize_segmentation(seg: np.ndarray, new_shape: Sequence[int], order: int = 1) -> np.ndarray:
    """Resize a label map: interpolate each label's indicator, keep the best-scoring label.

    Exact ties (e.g. a sample half-way between two labels) go to the nearest-neighbour label when
    it is one of the tied ones, else to the smallest tied label. Returns the input's dtype.
    """
    seg = np.asarray(seg)
    labels = np.unique(seg)
    if len(labels) == 1:
        return np.full(tuple(new_shape), labels[0], dtype=seg.dtype)
    scores = np.stack(
        [resize_image((seg == c).astype(np.float64), new_shape, order) for c in labels]
    )
    best = scores.max(axis=0)
    winner = np.argmax(scores, axis=0)  # the smallest label among exact ties
    nearest = resize_image(seg.astype(np.float64), new_shape, order=0)
    nearest_idx = np.searchsorted(labels, nearest.astype(seg.dtype))
    nearest_score = np.take_along_axis(scores, nearest_idx[None], axis=0)[0]
    n_tied = (scores == best).sum(axis=0)
    use_nearest = (n_tied > 1) & (nearest_score == best)
    winner = np.where(use_nearest, nearest_idx, winner)
    return labels[winner].astype(seg.dtype)


def _nearest_along(volume: np.ndarray, axis: int, new_size: int) -> np.ndarray:
    # Output voxel i samples input position (i + 0.5) * old/new - 0.5, rounded to the nearest
    # voxel and clamped (scipy's map_coordinates(order=0, mode="nearest"), as nnU-Net calls it).
    old = volume.shape[axis]
    pos = float(old) / new_size * (np.arange(new_size) + 0.5) - 0.5
    idx = np.clip(np.floor(pos + 0.5).astype(np.int64), 0, old - 1)
    return np.take(volume, idx, axis=axis)


def resample_to_shape(
    data: np.ndarray,
    new_shape: Vector,
    current_spacing: Vector,
    new_spacing: Vector,
    *,
    is_seg: bool = False,
    order: int | None = None,
) -> np.ndarray:
    """Resample ``(C, *spatial)`` data to ``new_shape``, nnU-Net's default resampling.

    Parameters
    ----------
    data
        Images (``is_seg=False``) or a label map with a leading channel axis.
    new_shape
        Target spatial shape (usually :func:`course_lib.nnunet.preprocessing.compute_new_shape`).
    current_spacing, new_spacing
        Only used to decide the separate low-resolution axis (:func:`separate_z_axis`).
    is_seg
        Label maps are resampled per label (:func:`resize_segmentation`).
    order
        Spline order in-plane; default 3 for images, 1 for label maps (nnU-Net's plans).

    Returns
    -------
    np.ndarray
        ``(C, *new_shape)`` with ``data``'s dtype.
    """
    data = np.asarray(data)
    new_shape = tuple(int(s) for s in np.asarray(new_shape))
    if data.ndim != len(new_shape) + 1 or len(current_spacing) != len(new_shape):
        raise ValueError(
            f"data must be (C, *spatial) with len(spatial) == len(new_shape) == len(spacing); got "
            f"data {data.shape}, new_shape {new_shape}, current_spacing {tuple(current_spacing)}"
        )
    if data.shape[1:] == new_shape:
        return data.copy()
    if order is None:
        order = 1 if is_seg else 3
    resize = resize_segmentation if is_seg else resize_image
    axis = separate_z_axis(current_spacing, new_spacing)
    out = np.zeros((data.shape[0], *new_shape), dtype=data.dtype)
    for c in range(data.shape[0]):
        if axis is None:
            out[c] = resize(data[c], new_shape, order)
            continue
        in_plane = tuple(s for i, s in enumerate(new_shape) if i != axis)
        slices = [
            resize(np.take(data[c], k, axis=axis), in_plane, order)
            for k in range(data.shape[axis + 1])
        ]
        stacked = np.stack(slices, axis=axis)
        out[c] = _nearest_along(stacked, axis, new_shape[axis])
    return out

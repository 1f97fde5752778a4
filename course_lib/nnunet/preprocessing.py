"""Preprocessing of one case, nnU-Net v2's ``DefaultPreprocessor``: transpose, crop, normalize,
resample.

Order (``run_case_npy``): cast to float32 -> transpose (coarsest axis first) -> crop to the
bounding box of the nonzero region (label voxels outside it become -1) -> normalize each channel
-> resample images (cubic spline) and labels (linear per label) to the configuration's spacing.
Normalization comes before resampling so the nonzero mask still matches the image.

Normalization schemes, chosen per channel from the ``channel_names`` of ``dataset.json``:

* ``CT``: clip to the 0.5 / 99.5 percentiles of the dataset's foreground intensities, subtract
  their mean, divide by their standard deviation (statistics from the fingerprint, so one global
  mapping for the whole dataset: CT values have a physical meaning);
* ``noNorm``, ``rescale_to_0_1``, ``rgb_to_0_1`` as named;
* anything else (T1, T2, MRI, ...): per-image z-score; when ``use_mask_for_norm`` is set the mean
  and std come from the nonzero region only and the outside stays 0.

NumPy arrays, as in nnU-Net: preprocessing sits at the course's I/O edge (files in, arrays out).

References
----------
Isensee et al., Nature Methods 2021, online methods; nnunetv2 2.8.1
``preprocessing/preprocessors/default_preprocessor.py``, ``preprocessing/cropping/cropping.py``,
``preprocessing/normalization/default_normalization_schemes.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from course_lib.nnunet.resampling import compute_new_shape, resample_to_shape

NONZERO_LABEL = -1  # label written outside the nonzero region by crop_to_nonzero

_SCHEMES = {
    "ct": "CTNormalization",
    "nonorm": "NoNormalization",
    "zscore": "ZScoreNormalization",
    "rescale_to_0_1": "RescaleTo01Normalization",
    "rgb_to_0_1": "RGBTo01Normalization",
}


def normalization_scheme_for_channel(channel_name: str) -> str:
    """nnU-Net's scheme for a ``channel_names`` entry (case-insensitive; default z-score).

    Examples
    --------
    >>> normalization_scheme_for_channel("ct"), normalization_scheme_for_channel("T2")
    ('CTNormalization', 'ZScoreNormalization')
    """
    return _SCHEMES.get(str(channel_name).lower(), "ZScoreNormalization")


def nonzero_mask(data: np.ndarray) -> np.ndarray:
    """Voxels where any channel of ``(C, *spatial)`` data is nonzero, enclosed holes filled."""
    return ndimage.binary_fill_holes(np.any(np.asarray(data) != 0, axis=0))


def crop_to_nonzero(
    data: np.ndarray, seg: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """Crop images (and labels) to the bounding box of :func:`nonzero_mask`.

    Background label voxels (0) outside the mask become :data:`NONZERO_LABEL` (-1), so
    normalization and training can tell "outside the body" from "background inside". Without
    ``seg``, the returned label map is 0 inside the mask and -1 outside (int8).

    Returns
    -------
    data, seg, bbox
        The cropped arrays and ``[[start, stop], ...]`` per spatial axis.
    """
    data = np.asarray(data)
    if data.ndim not in (3, 4):
        raise ValueError(f"data must be (C, *spatial) with 2 or 3 spatial axes, got {data.shape}")
    if seg is not None and np.shape(seg)[1:] != data.shape[1:]:
        raise ValueError(
            f"seg must have data's spatial shape {data.shape[1:]}, got {np.shape(seg)}"
        )
    mask = nonzero_mask(data)
    if mask.any():
        nz = np.nonzero(mask)
        bbox = [[int(ax.min()), int(ax.max()) + 1] for ax in nz]
    else:  # an all-zero image keeps its full extent
        bbox = [[0, s] for s in mask.shape]
    slicer = tuple(slice(a, b) for a, b in bbox)
    mask = mask[slicer][None]
    data = data[(slice(None), *slicer)]
    if seg is None:
        seg = np.where(mask, np.int8(0), np.int8(NONZERO_LABEL))
    else:
        seg = np.array(seg[(slice(None), *slicer)])
        seg[(seg == 0) & ~mask] = NONZERO_LABEL
    return data, seg, bbox


def normalize_channel(
    image: np.ndarray,
    scheme: str,
    *,
    seg: np.ndarray | None = None,
    use_mask_for_norm: bool = False,
    intensity_properties: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Normalize one channel with one of nnU-Net's schemes; returns float32.

    Parameters
    ----------
    image
        One channel, spatial axes only.
    scheme
        ``"CTNormalization"``, ``"ZScoreNormalization"``, ``"NoNormalization"``,
        ``"RescaleTo01Normalization"`` or ``"RGBTo01Normalization"``.
    seg
        The cropped label map (``-1`` outside the nonzero region); needed by z-score with the mask.
    use_mask_for_norm
        z-score only: statistics from ``seg >= 0`` voxels, outside left at 0.
    intensity_properties
        CT only: ``mean``, ``std``, ``percentile_00_5``, ``percentile_99_5`` of the fingerprint.

    Examples
    --------
    >>> x = np.array([0.0, 1.0, 2.0, 3.0])
    >>> [round(float(v), 3) for v in normalize_channel(x, "ZScoreNormalization")]
    [-1.342, -0.447, 0.447, 1.342]
    """
    eps = 1e-8
    image = np.array(image, dtype=np.float32)
    if scheme == "ZScoreNormalization":
        if use_mask_for_norm:
            if seg is None:
                raise ValueError(
                    "use_mask_for_norm=True needs seg (the nonzero region is seg >= 0)"
                )
            mask = np.asarray(seg) >= 0
            values = image[mask]
            image[mask] = (values - values.mean()) / max(values.std(), eps)
        else:
            image = (image - image.mean()) / max(image.std(), eps)
    elif scheme == "CTNormalization":
        needed = ("mean", "std", "percentile_00_5", "percentile_99_5")
        if intensity_properties is None or any(k not in intensity_properties for k in needed):
            raise ValueError(f"CTNormalization needs intensity_properties with {needed}")
        p = intensity_properties
        np.clip(image, p["percentile_00_5"], p["percentile_99_5"], out=image)
        image = (image - p["mean"]) / max(p["std"], eps)
    elif scheme == "RescaleTo01Normalization":
        image = (image - image.min()) / max(image.max() - image.min(), eps)
    elif scheme == "RGBTo01Normalization":
        if image.min() < 0 or image.max() > 255:
            raise ValueError("RGBTo01Normalization expects values in [0, 255]")
        image = image / 255
    elif scheme != "NoNormalization":
        raise ValueError(
            f"unknown normalization scheme {scheme!r}; expected one of {sorted(_SCHEMES.values())}"
        )
    return image.astype(np.float32, copy=False)


def preprocess_case(
    data: np.ndarray,
    seg: np.ndarray | None,
    spacing: Sequence[float],
    plans: Mapping[str, Any],
    configuration: str,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Preprocess one case for one configuration, as nnU-Net's ``run_case_npy``.

    Parameters
    ----------
    data
        ``(C, *spatial)`` images in the reader's axis order (see :mod:`course_lib.nnunet.raw`).
    seg
        ``(1, *spatial)`` labels, or ``None`` at inference time. Non-negative: an unlabelled voxel
        carries the dataset's ``ignore`` label id, as in nnU-Net's files, because ``-1`` marks
        background outside the cropped region in the output.
    spacing
        The case's spacing, reader's axis order.
    plans, configuration
        From :func:`course_lib.nnunet.plan_experiment`, e.g. ``"3d_fullres"`` or ``"2d"``.

    Returns
    -------
    data, seg, properties
        float32 images and int8/int16 labels at the target spacing, and what inference needs to
        undo the steps (``shape_before_cropping``, ``bbox_used_for_cropping``,
        ``shape_after_cropping_and_before_resampling``, ``spacing``).
    """
    if configuration not in plans.get("configurations", {}):
        raise ValueError(
            f"configuration {configuration!r} is not in the plans; available: "
            f"{sorted(plans.get('configurations', {}))}"
        )
    config = plans["configurations"][configuration]
    if "inherits_from" in config:
        config = {**plans["configurations"][config["inherits_from"]], **config}
    data = np.array(data, dtype=np.float32)  # a copy: normalisation writes into it
    if len(spacing) != data.ndim - 1:
        raise ValueError(
            f"spacing needs {data.ndim - 1} entries for data {data.shape}, got {spacing}"
        )
    forward = list(plans["transpose_forward"])
    data = data.transpose([0, *[i + 1 for i in forward]])
    if seg is not None:
        seg = np.asarray(seg)
        if (seg < 0).any():
            raise ValueError(
                "seg holds negative labels (course_lib's UNLABELED is -1); give unlabelled voxels "
                "the dataset's ignore label id (dataset.json's 'ignore'), as nnU-Net's files do: "
                "-1 marks background outside the crop in the output"
            )
        seg = seg.transpose([0, *[i + 1 for i in forward]])
    original_spacing = [float(spacing[i]) for i in forward]
    properties: dict[str, Any] = {
        "spacing": list(map(float, spacing)),
        "shape_before_cropping": data.shape[1:],
    }

    data, seg, bbox = crop_to_nonzero(data, seg)
    properties["bbox_used_for_cropping"] = bbox
    properties["shape_after_cropping_and_before_resampling"] = data.shape[1:]

    target = list(config["spacing"])
    if len(target) < data.ndim - 1:  # 2d: the out-of-plane axis keeps its spacing
        target = [original_spacing[0], *target]
    new_shape = compute_new_shape(data.shape[1:], original_spacing, target)

    intensity = plans.get("foreground_intensity_properties_per_channel", {})
    for c in range(data.shape[0]):
        data[c] = normalize_channel(
            data[c],
            config["normalization_schemes"][c],
            seg=seg[0],
            use_mask_for_norm=config["use_mask_for_norm"][c],
            intensity_properties=intensity.get(str(c), intensity.get(c)),
        )
    data = resample_to_shape(data, new_shape, original_spacing, target)
    seg = resample_to_shape(seg, new_shape, original_spacing, target, is_seg=True)
    seg = seg.astype(np.int16 if seg.max() > 127 else np.int8)
    return data, seg, properties

"""The dataset fingerprint: what nnU-Net measures before it plans anything.

Per training case (nnU-Net v2's ``DatasetFingerprintExtractor.analyze_case``): crop to the nonzero
region (:func:`course_lib.nnunet.preprocessing.crop_to_nonzero`), record the spacing, the shape
after cropping and how much of the volume the crop kept, and draw foreground intensities
(label > 0) for every channel. Dataset level: the statistics of all drawn intensities together
(``mean``, ``median``, ``std``, ``min``, ``max``, ``percentile_00_5``, ``percentile_99_5``); the CT
normalization uses them.

Sampling rule: every case contributes the same number of draws, ``int(1e8 // n_cases)``, WITH
replacement, from a ``np.random.RandomState(1234)`` created afresh per case; so cases weigh
equally however large their foreground. We draw the same indices nnU-Net draws but keep only how
often each voxel was drawn (``np.bincount``), which gives the same statistics without holding
1e8 numbers in memory.

References
----------
Isensee et al., Nature Methods 2021, Fig. 2 ("dataset fingerprint"); nnunetv2 2.8.1
``experiment_planning/dataset_fingerprint/fingerprint_extractor.py``.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> image = rng.normal(100, 10, size=(1, 4, 8, 8)).astype(np.float32)
>>> label = np.zeros((1, 4, 8, 8), np.int64); label[0, 1:3, 2:6, 2:6] = 1
>>> fp = fingerprint_from_arrays([image], [label], [(3.0, 1.0, 1.0)], num_samples=1000)
>>> fp["shapes_after_crop"], round(fp["median_relative_size_after_cropping"], 2)
([[4, 8, 8]], 1.0)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from course_lib.data.cases import UNLABELED
from course_lib.nnunet.preprocessing import crop_to_nonzero

NUM_FOREGROUND_SAMPLES = 10e7  # nnU-Net's num_foreground_voxels_for_intensitystats (whole dataset)
SAMPLING_SEED = 1234  # the RandomState seed nnU-Net uses for every case
_CHUNK = 4_000_000  # indices drawn per call (same stream as one big call, bounded memory)


def foreground_sample_counts(
    n_foreground: int, n_samples: int, rng: np.random.RandomState
) -> np.ndarray:
    """How often each of ``n_foreground`` voxels is drawn in ``n_samples`` draws with replacement.

    The draws are those of ``rng.choice(values, n_samples, replace=True)`` (which is
    ``rng.randint(0, n_foreground, n_samples)``), taken in chunks.
    """
    counts = np.zeros(n_foreground, dtype=np.int64)
    remaining = int(n_samples)
    while remaining > 0:
        n = min(remaining, _CHUNK)
        counts += np.bincount(rng.randint(0, n_foreground, size=n), minlength=n_foreground)
        remaining -= n
    return counts


def weighted_intensity_statistics(values: np.ndarray, counts: np.ndarray) -> dict[str, float]:
    """Statistics of the sample in which ``values[i]`` occurs ``counts[i]`` times.

    ``std`` is the population std (ddof 0); percentiles interpolate linearly between order
    statistics, as ``np.percentile`` does on the expanded sample.

    Examples
    --------
    >>> s = weighted_intensity_statistics(np.array([1.0, 2.0, 3.0]), np.array([1, 0, 3]))
    >>> s["mean"], s["median"], s["max"]
    (2.5, 3.0, 3.0)
    """
    keep = counts > 0
    values = np.asarray(values, dtype=np.float64)[keep]
    counts = np.asarray(counts)[keep]
    if values.size == 0:
        nan = float("nan")
        keys = ("mean", "median", "std", "min", "max", "percentile_99_5", "percentile_00_5")
        return dict.fromkeys(keys, nan)
    order = np.argsort(values, kind="stable")
    values, counts = values[order], counts[order]
    total = int(counts.sum())
    cum = np.cumsum(counts)

    def order_statistic(k: np.ndarray) -> np.ndarray:
        return values[np.searchsorted(cum, k, side="right")]

    def percentile(q: float) -> float:
        h = (total - 1) * q / 100
        lo = np.floor(h)
        a, b = order_statistic(np.array([lo, min(lo + 1, total - 1)]))
        return float(a + (h - lo) * (b - a))

    mean = float(np.dot(values, counts) / total)
    std = float(np.sqrt(np.dot(counts, (values - mean) ** 2) / total))
    return {
        "mean": mean,
        "median": percentile(50.0),
        "std": std,
        "min": float(values[0]),
        "max": float(values[-1]),
        "percentile_99_5": percentile(99.5),
        "percentile_00_5": percentile(0.5),
    }


def fingerprint_from_arrays(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    spacings: Sequence[Sequence[float]],
    *,
    num_samples: float = NUM_FOREGROUND_SAMPLES,
) -> dict[str, Any]:
    """The fingerprint of cases given as arrays (``dataset_fingerprint.json``'s content).

    Parameters
    ----------
    images
        Per case ``(C, *spatial)`` in the reader's axis order (z, y, x for the course's NIfTI).
    labels
        Per case ``(1, *spatial)`` or ``(*spatial)`` integer labels (> 0 is foreground). Unlabelled
        voxels (:data:`~course_lib.data.UNLABELED`, nnU-Net's ``ignore`` label) count as
        foreground, as nnU-Net counts its ignore label: it is the highest label id on disk, so
        ``label > 0`` holds there too.
    spacings
        Per case, in the same axis order.
    num_samples
        Foreground draws for the whole dataset (nnU-Net: 1e8); each case gets
        ``int(num_samples // n_cases)``.
    """
    n_cases = len(images)
    if n_cases == 0 or not n_cases == len(labels) == len(spacings):
        raise ValueError(
            "images, labels and spacings need one entry per case (at least one), got "
            f"{len(images)}, {len(labels)} and {len(spacings)}"
        )
    per_case = int(num_samples // n_cases)
    n_channels = np.asarray(images[0]).shape[0]
    pooled: list[tuple[list[np.ndarray], list[np.ndarray]]] = [([], []) for _ in range(n_channels)]
    shapes, ratios = [], []
    for image, label in zip(images, labels, strict=True):
        image = np.asarray(image, dtype=np.float32)
        label = np.asarray(label)
        label = label[None] if label.ndim == image.ndim - 1 else label
        label = np.where(label == UNLABELED, 1, label)  # ignore > 0 on disk: foreground to nnU-Net
        if image.shape[0] != n_channels or label.shape[1:] != image.shape[1:]:
            raise ValueError(
                f"every case needs {n_channels} channels and a label of its spatial shape; got "
                f"image {image.shape} and label {label.shape}"
            )
        cropped, seg, _ = crop_to_nonzero(image, label)
        foreground = seg[0] > 0
        rng = np.random.RandomState(SAMPLING_SEED)  # afresh per case, as nnU-Net
        for c in range(n_channels):
            values = cropped[c][foreground]
            if values.size:  # an empty foreground draws nothing (and uses no random numbers)
                pooled[c][0].append(values)
                pooled[c][1].append(foreground_sample_counts(values.size, per_case, rng))
        shapes.append([int(s) for s in cropped.shape[1:]])
        ratios.append(float(np.prod(cropped.shape[1:]) / np.prod(image.shape[1:])))
    stats = {}
    for c, (values, counts) in enumerate(pooled):
        if not values:
            raise ValueError(f"channel {c}: no case has any foreground voxel (label > 0)")
        stats[str(c)] = weighted_intensity_statistics(
            np.concatenate(values), np.concatenate(counts)
        )
    return {
        "spacings": [[float(s) for s in sp] for sp in spacings],
        "shapes_after_crop": shapes,
        "foreground_intensity_properties_per_channel": stats,
        "median_relative_size_after_cropping": float(np.median(ratios)),
    }


def extract_fingerprint(
    raw_dataset_dir: str | os.PathLike[str], *, num_samples: float = NUM_FOREGROUND_SAMPLES
) -> dict[str, Any]:
    """The fingerprint of an nnU-Net raw dataset folder (``imagesTr``, ``labelsTr``,
    ``dataset.json``), what ``nnUNetv2_extract_fingerprint`` writes.

    Returns
    -------
    dict
        ``spacings``, ``shapes_after_crop`` (per case, z/y/x order),
        ``foreground_intensity_properties_per_channel`` (``{"0": {"mean", "median", "std",
        "min", "max", "percentile_00_5", "percentile_99_5"}, ...}``) and
        ``median_relative_size_after_cropping``.
    """
    from course_lib.data.nifti import read_nnunet_raw

    cases = read_nnunet_raw(raw_dataset_dir)
    if not cases:
        raise ValueError(f"{os.fspath(raw_dataset_dir)!r} has no training cases in labelsTr")
    return fingerprint_from_arrays(
        [c.image.numpy() for c in cases],
        [c.label.numpy() for c in cases],
        [c.spacing for c in cases],
        num_samples=num_samples,
    )

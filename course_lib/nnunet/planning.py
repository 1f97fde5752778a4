"""Experiment planning: from a dataset fingerprint to nnU-Net's 2D, 3D and cascade configurations.

This is the default planner of nnU-Net v2 (``ExperimentPlanner``, plain U-Net, nnunetv2 2.8.1)
written as small functions, one heuristic each:

1. :func:`fullres_target_spacing` - median spacing, 10th percentile along a very coarse axis;
2. :func:`transpose_axes` - the coarsest axis goes first;
3. :func:`pool_and_conv_props` - how often each axis is halved and which kernels are 3 or 1;
4. :func:`feature_map_voxels` - the memory estimate (summed size of all feature maps);
5. :func:`plan_configuration` - initial patch, shrink until the estimate fits, batch size with the
   5 % cap and the floor of 2;
6. :func:`plan_experiment` - ``2d``, ``3d_fullres`` and, when the patch sees under a quarter of the
   median image, ``3d_lowres`` + ``3d_cascade_fullres``.

The result is a plain dict shaped like ``nnUNetPlans.json``, so it can be compared key by key with
the real planner (``tests/test_nnunet_planning.py`` does).

References
----------
Isensee et al., "nnU-Net: a self-configuring method for deep learning-based biomedical image
segmentation", Nature Methods 18, 2021 (arXiv:1809.10486 is the 2018 first version), and the
nnU-Net v2 source, ``experiment_planning/experiment_planners/default_experiment_planner.py``.

Examples
--------
>>> topo = pool_and_conv_props((3.0, 0.8, 0.8), (40, 160, 160))
>>> topo.patch_size, topo.num_pool_per_axis
((40, 160, 160), (3, 5, 5))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from course_lib.nnunet.preprocessing import normalization_scheme_for_channel
from course_lib.nnunet.resampling import ANISO_THRESHOLD, Vector, compute_new_shape

# --- constants of nnunetv2 2.8.1's ExperimentPlanner (names follow its attributes) -------------
BASE_NUM_FEATURES = 32  # features of the first stage, doubled per stage (the 2018 paper used 30)
MAX_FEATURES_3D = 320  # cap of the 3D nets
MAX_FEATURES_2D = 512  # cap of the 2D nets
FEATUREMAP_MIN_EDGE_LENGTH = 4  # stop pooling an axis once its feature map would drop below 4
REFERENCE_VAL_3D = 560_000_000  # feature-map voxels that fit an 8 GB GPU at batch size 2 (3D)
REFERENCE_VAL_2D = 85_000_000  # ... at batch size 12 (2D)
REFERENCE_GB = 8  # the GPU memory the reference values correspond to
REFERENCE_BS_3D = 2
REFERENCE_BS_2D = 12
MIN_BATCH_SIZE = 2  # nnU-Net never trains with a batch of 1
MAX_DATASET_COVERED = 0.05  # one batch may cover at most 5 % of the dataset's voxels
N_CONV_PER_STAGE = 2  # convs per encoder stage and per decoder stage
LOWRES_CREATION_THRESHOLD = 0.25  # cascade when the fullres patch covers < 25 % of the median image
LOWRES_SPACING_FACTOR = 1.03  # the lowres spacing grows by 3 % per search step (v1 used 1 %)
LOWRES_MIN_SIZE_RATIO = 2  # drop the lowres config unless it has >= 2x fewer voxels than fullres
INITIAL_PATCH_VOXELS_3D = 256**3  # the initial patch has as many voxels as a 256^3 cube ...
INITIAL_PATCH_VOXELS_2D = 2048**2  # ... or a 2048^2 square (2D), with the aspect ratio in mm

PLANS_NAME = "nnUNetPlans"
PREPROCESSOR_NAME = "DefaultPreprocessor"
NETWORK_CLASS_NAME = "dynamic_network_architectures.architectures.unet.PlainConvUNet"


@dataclass(frozen=True)
class Topology:
    """The U-Net shape :func:`pool_and_conv_props` derives from a spacing and a patch size."""

    num_pool_per_axis: tuple[int, ...]
    """How many times each axis is halved."""
    strides: tuple[tuple[int, ...], ...]
    """Stride per stage (stage 0 is all ones); ``n_stages = len(strides)``."""
    kernel_sizes: tuple[tuple[int, ...], ...]
    """Conv kernel per stage: 3 along axes with fine spacing, 1 along too-coarse axes."""
    patch_size: tuple[int, ...]
    """The patch padded up to a multiple of ``2**num_pool`` per axis."""
    divisible_by: tuple[int, ...]
    """``2**num_pool_per_axis``: the step by which the patch may change."""


def _check_spacing(spacing: Vector, name: str = "spacing") -> np.ndarray:
    arr = np.asarray(spacing, dtype=np.float64)
    if arr.ndim != 1 or arr.size not in (2, 3) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be 2 or 3 positive finite numbers, got {spacing!r}")
    return arr


def fullres_target_spacing(
    spacings: Sequence[Vector] | np.ndarray, shapes_after_crop: Sequence[Vector] | np.ndarray
) -> np.ndarray:
    """Target spacing of ``3d_fullres``: the per-axis median, with nnU-Net's anisotropy exception.

    Let ``w`` be the axis with the largest median spacing. If its median spacing is more than
    ``ANISO_THRESHOLD`` (3) times every other median spacing AND its median size (voxels after
    cropping) times 3 is below every other median size, the target along ``w`` is the 10th
    percentile of the spacings along ``w`` instead (raised to just above the largest other spacing
    if it would fall below it). Medians and percentiles interpolate linearly.

    Parameters
    ----------
    spacings, shapes_after_crop
        One row per case, in the reader's axis order (``dataset_fingerprint.json``).

    Examples
    --------
    >>> fullres_target_spacing([[5.0, 1, 1], [1.0, 1, 1], [5.0, 1, 1]], [[20, 200, 200]] * 3)
    array([1.8, 1. , 1. ])
    """
    sp = np.asarray(spacings, dtype=np.float64)
    sizes = np.asarray(shapes_after_crop, dtype=np.float64)
    if sp.ndim != 2 or sp.shape[1] not in (2, 3) or sp.shape != sizes.shape or len(sp) == 0:
        raise ValueError(
            "spacings and shapes_after_crop must be equal-shaped (n_cases, 2 or 3) tables, got "
            f"{sp.shape} and {sizes.shape}"
        )
    target = np.percentile(sp, 50, axis=0)
    target_size = np.percentile(sizes, 50, axis=0)
    worst = int(np.argmax(target))
    others = [i for i in range(len(target)) if i != worst]
    max_other_spacing = max(target[i] for i in others)
    aniso_spacing = target[worst] > ANISO_THRESHOLD * max_other_spacing
    aniso_voxels = target_size[worst] * ANISO_THRESHOLD < min(target_size[i] for i in others)
    if aniso_spacing and aniso_voxels:
        tenth = np.percentile(sp[:, worst], 10)
        if tenth < max_other_spacing:  # keep the coarse axis the coarsest one
            tenth = max(max_other_spacing, tenth) + 1e-5
        target[worst] = tenth
    return target


def transpose_axes(target_spacing: Vector) -> tuple[list[int], list[int]]:
    """``(transpose_forward, transpose_backward)``: move the coarsest axis first, keep the others.

    Examples
    --------
    >>> transpose_axes([0.8, 0.8, 3.0])
    ([2, 0, 1], [1, 2, 0])
    """
    target = _check_spacing(target_spacing, "target_spacing")
    worst = int(np.argmax(target))
    forward = [worst] + [i for i in range(len(target)) if i != worst]
    backward = [forward.index(i) for i in range(len(target))]
    return forward, backward


def pad_to_multiple(shape: Sequence[float], divisible_by: Sequence[int]) -> tuple[int, ...]:
    """Round every axis of ``shape`` UP to a multiple of ``divisible_by`` (unchanged if it is one).

    Examples
    --------
    >>> pad_to_multiple((121.5, 128, 33), (32, 32, 8))
    (128, 128, 40)
    """
    return tuple(int(math.ceil(s / d) * d) for s, d in zip(shape, divisible_by, strict=True))


def pool_and_conv_props(
    spacing: Vector,
    patch_size: Sequence[float],
    min_feature_map_size: int = FEATUREMAP_MIN_EDGE_LENGTH,
) -> Topology:
    """Pooling per axis and conv kernel sizes, nnU-Net's ``get_pool_and_conv_props``.

    Repeat while possible: the axes that may still be halved are those whose current feature map
    is at least ``2 * min_feature_map_size`` voxels AND whose current spacing is less than twice
    the finest current spacing among them (so a coarse axis waits until the fine axes have caught
    up in mm). A single remaining axis needs ``3 * min_feature_map_size`` voxels. Before each
    halving, every axis whose current spacing is within 2x of the finest gets kernel 3 (for good);
    the others keep kernel 1. The bottleneck gets all-3 kernels. The patch is finally padded up to a
    multiple of ``2**num_pool`` per axis.

    Examples
    --------
    >>> t = pool_and_conv_props((3.0, 0.8, 0.8), (40, 160, 160))
    >>> t.kernel_sizes[:2], t.strides[:3]
    (((1, 3, 3), (3, 3, 3)), ((1, 1, 1), (1, 2, 2), (2, 2, 2)))
    """
    spacing_arr = _check_spacing(spacing)
    if len(patch_size) != len(spacing_arr) or any(not p > 0 for p in patch_size):
        raise ValueError(
            f"patch_size must be {len(spacing_arr)} positive sizes (one per spacing axis), "
            f"got {patch_size!r}"
        )
    dim = len(spacing_arr)
    current_spacing = [float(s) for s in spacing_arr]
    current_size = [float(p) for p in patch_size]
    num_pool = [0] * dim
    kernel = [1] * dim
    strides: list[tuple[int, ...]] = [(1,) * dim]
    kernels: list[tuple[int, ...]] = []
    while True:
        axes = [i for i in range(dim) if current_size[i] >= 2 * min_feature_map_size]
        if not axes:
            break
        finest_valid = min(current_spacing[i] for i in axes)
        axes = [i for i in axes if current_spacing[i] / finest_valid < 2]
        if len(axes) == 1 and current_size[axes[0]] < 3 * min_feature_map_size:
            break
        finest = min(current_spacing)
        for d in range(dim):
            if current_spacing[d] / finest < 2:
                kernel[d] = 3  # once an axis is fine enough for 3-kernels it stays that way
        for d in axes:
            num_pool[d] += 1
            current_spacing[d] *= 2
            current_size[d] = math.ceil(current_size[d] / 2)
        strides.append(tuple(2 if d in axes else 1 for d in range(dim)))
        kernels.append(tuple(kernel))
    kernels.append((3,) * dim)  # bottleneck
    divisible_by = tuple(2**n for n in num_pool)
    return Topology(
        num_pool_per_axis=tuple(num_pool),
        strides=tuple(strides),
        kernel_sizes=tuple(kernels),
        patch_size=pad_to_multiple(patch_size, divisible_by),
        divisible_by=divisible_by,
    )


def features_per_stage(n_stages: int, dim: int) -> tuple[int, ...]:
    """``min(cap, 32 * 2**i)`` per stage; the cap is 320 in 3D and 512 in 2D.

    Examples
    --------
    >>> features_per_stage(6, 3)
    (32, 64, 128, 256, 320, 320)
    """
    cap = MAX_FEATURES_3D if dim == 3 else MAX_FEATURES_2D
    return tuple(min(cap, BASE_NUM_FEATURES * 2**i) for i in range(n_stages))


def feature_map_voxels(
    patch_size: Sequence[int],
    features: Sequence[int],
    strides: Sequence[Sequence[int]],
    num_classes: int,
    n_conv_per_stage: int = N_CONV_PER_STAGE,
) -> int:
    """nnU-Net's memory estimate: the summed element count of the net's feature maps, one sample.

    With ``x_s`` the feature-map size at stage ``s`` (``x_0`` = patch,
    ``x_s = x_{s-1} // stride_s``) and ``F_s`` its features, the plain U-Net stores
    ``n_conv * F_s * |x_s|`` per encoder stage and,
    per decoder stage (all but the bottleneck), ``n_conv * F_s * |x_s|`` for the convs plus
    ``F_s * |x_s|`` for the transposed conv; the full-resolution head adds ``num_classes * |x_0|``.
    This is ``PlainConvUNet.compute_conv_feature_map_size`` of dynamic-network-architectures
    (no deep-supervision heads counted); nnU-Net compares it with :data:`REFERENCE_VAL_3D`.

    Examples
    --------
    >>> feature_map_voxels((8, 8), (4, 8), ((1, 1), (2, 2)), num_classes=2)
    1664
    """
    if not (len(features) == len(strides) >= 1):
        raise ValueError(
            f"features and strides need one entry per stage, got {len(features)} and {len(strides)}"
        )
    sizes = []
    size = [int(p) for p in patch_size]
    for stride in strides:
        size = [s // k for s, k in zip(size, stride, strict=True)]
        sizes.append(math.prod(size))
    encoder = sum(n_conv_per_stage * f * v for f, v in zip(features, sizes, strict=True))
    decoder = sum(
        (n_conv_per_stage + 1) * f * v for f, v in zip(features[:-1], sizes[:-1], strict=True)
    )
    return int(encoder + decoder + num_classes * sizes[0])


def _round_half_even(x: float) -> int:
    # Python's round() rounds halves to even, as nnU-Net's planner (plain round()) does
    return int(round(float(x)))


def _architecture(topo: Topology, dim: int) -> dict[str, Any]:
    n_stages = len(topo.strides)
    conv = f"torch.nn.modules.conv.Conv{dim}d"
    norm = f"torch.nn.modules.instancenorm.InstanceNorm{dim}d"
    return {
        "network_class_name": NETWORK_CLASS_NAME,
        "arch_kwargs": {
            "n_stages": n_stages,
            "features_per_stage": list(features_per_stage(n_stages, dim)),
            "conv_op": conv,
            "kernel_sizes": [list(k) for k in topo.kernel_sizes],
            "strides": [list(s) for s in topo.strides],
            "n_conv_per_stage": [N_CONV_PER_STAGE] * n_stages,
            "n_conv_per_stage_decoder": [N_CONV_PER_STAGE] * (n_stages - 1),
            "conv_bias": True,
            "norm_op": norm,
            "norm_op_kwargs": {"eps": 1e-5, "affine": True},
            "dropout_op": None,
            "dropout_op_kwargs": None,
            "nonlin": "torch.nn.LeakyReLU",
            "nonlin_kwargs": {"inplace": True},
        },
        "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
    }


def _reference(dim: int, gpu_memory_target_gb: float) -> tuple[float, int]:
    """The memory reference (feature-map voxels) and its batch size, scaled to the GPU's memory."""
    if dim == 3:
        return REFERENCE_VAL_3D * gpu_memory_target_gb / REFERENCE_GB, REFERENCE_BS_3D
    return REFERENCE_VAL_2D * gpu_memory_target_gb / REFERENCE_GB, REFERENCE_BS_2D


def _shrink_to_budget(
    spacing_arr: np.ndarray, median: list[float], num_classes: int, gpu_memory_target_gb: float
) -> list[tuple[Topology, int]]:
    """Steps 1 and 2 of :func:`plan_configuration`: every topology tried, with its estimate."""
    dim = len(spacing_arr)
    inv = 1.0 / spacing_arr
    target_voxels = INITIAL_PATCH_VOXELS_3D if dim == 3 else INITIAL_PATCH_VOXELS_2D
    initial = [_round_half_even(v) for v in inv * (target_voxels / np.prod(inv)) ** (1 / dim)]
    initial_clipped = [min(p, m) for p, m in zip(initial, median, strict=True)]
    topo = pool_and_conv_props(spacing_arr, initial_clipped)

    def estimate(t: Topology) -> int:
        feats = features_per_stage(len(t.strides), dim)
        return feature_map_voxels(t.patch_size, feats, t.strides, num_classes)

    reference, ref_bs = _reference(dim, gpu_memory_target_gb)
    steps = [(topo, estimate(topo))]
    while steps[-1][1] / ref_bs * 2 > reference:
        ratios = [p / m for p, m in zip(topo.patch_size, median, strict=True)]
        axis = max(i for i in range(dim) if ratios[i] == max(ratios))  # last axis on ties
        # the step is the pooling multiple of the SMALLER patch (a trial step may pool less)
        trial = list(topo.patch_size)
        trial[axis] -= topo.divisible_by[axis]
        step = pool_and_conv_props(spacing_arr, trial).divisible_by[axis]
        shrunk = list(topo.patch_size)
        shrunk[axis] -= step
        topo = pool_and_conv_props(spacing_arr, shrunk)
        steps.append((topo, estimate(topo)))
    return steps


def patch_shrink_steps(
    spacing: Vector,
    median_shape: Sequence[float],
    *,
    num_classes: int,
    gpu_memory_target_gb: float = REFERENCE_GB,
) -> list[dict[str, Any]]:
    """The patches :func:`plan_configuration` tries before one fits the memory budget.

    One entry per step, the initial patch first and the planned one last: ``patch_size``,
    ``strides`` (per stage), ``estimate`` (:func:`feature_map_voxels`) and ``budget`` (the
    estimate must not exceed it: 560e6 in 3D, 6 x 85e6 in 2D at 8 GB).

    Examples
    --------
    >>> steps = patch_shrink_steps((1.0, 1.0, 1.0), (300, 300, 300), num_classes=2)
    >>> steps[0]["patch_size"], steps[-1]["patch_size"]
    ([256, 256, 256], [128, 128, 128])
    """
    spacing_arr = _check_spacing(spacing)
    median = [float(m) for m in median_shape]
    if len(median) != len(spacing_arr) or any(not m > 0 for m in median):
        raise ValueError(
            f"median_shape must be {len(spacing_arr)} positive sizes, got {median_shape!r}"
        )
    if num_classes < 2:
        raise ValueError(f"num_classes counts background too and must be >= 2, got {num_classes}")
    reference, ref_bs = _reference(len(spacing_arr), gpu_memory_target_gb)
    budget = reference * ref_bs / 2
    return [
        {
            "patch_size": list(t.patch_size),
            "strides": [list(s) for s in t.strides],
            "estimate": est,
            "budget": budget,
        }
        for t, est in _shrink_to_budget(spacing_arr, median, num_classes, gpu_memory_target_gb)
    ]


def plan_configuration(
    spacing: Vector,
    median_shape: Sequence[float],
    approximate_n_voxels_dataset: float,
    *,
    num_classes: int,
    normalization_schemes: Sequence[str],
    use_mask_for_norm: Sequence[bool],
    data_identifier: str,
    gpu_memory_target_gb: float = REFERENCE_GB,
) -> dict[str, Any]:
    """One configuration (``2d``, ``3d_fullres`` or ``3d_lowres``), nnU-Net's
    ``get_plans_for_configuration``.

    1. Initial patch: ``1/spacing`` scaled to 256^3 (2048^2 in 2D) voxels, rounded, clipped to the
       median image shape, padded up to the pooling multiple (:func:`pool_and_conv_props`).
    2. While ``feature_map_voxels / ref_bs * 2 > reference`` (reference 560e6 in 3D with
       ``ref_bs = 2``, 85e6 in 2D with ``ref_bs = 12``; scaled by ``gpu_memory_target_gb / 8``):
       shrink the axis with the largest ``patch / median_shape`` by one pooling multiple.
    3. ``batch = round(reference / estimate * ref_bs)``, capped so one batch covers at most 5 % of
       ``approximate_n_voxels_dataset``, and never below 2.
    """
    spacing_arr = _check_spacing(spacing)
    dim = len(spacing_arr)
    median = [float(m) for m in median_shape]
    if len(median) != dim or any(not m > 0 for m in median):
        raise ValueError(f"median_shape must be {dim} positive sizes, got {median_shape!r}")
    if num_classes < 2:
        raise ValueError(f"num_classes counts background too and must be >= 2, got {num_classes}")

    steps = _shrink_to_budget(spacing_arr, median, num_classes, gpu_memory_target_gb)
    topo, est = steps[-1]
    reference, ref_bs = _reference(dim, gpu_memory_target_gb)
    batch_size = _round_half_even(reference / est * ref_bs)
    cap = _round_half_even(
        approximate_n_voxels_dataset * MAX_DATASET_COVERED / math.prod(topo.patch_size)
    )
    batch_size = max(min(batch_size, cap), MIN_BATCH_SIZE)

    data_kwargs = {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None}
    seg_kwargs = {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None}
    prob_kwargs = {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None}
    return {
        "data_identifier": data_identifier,
        "preprocessor_name": PREPROCESSOR_NAME,
        "batch_size": int(batch_size),
        "patch_size": list(topo.patch_size),
        "median_image_size_in_voxels": median,
        "spacing": [float(s) for s in spacing_arr],
        "normalization_schemes": list(normalization_schemes),
        "use_mask_for_norm": [bool(u) for u in use_mask_for_norm],
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": data_kwargs,
        "resampling_fn_seg_kwargs": seg_kwargs,
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": prob_kwargs,
        "architecture": _architecture(topo, dim),
    }


def normalization_and_mask(
    channel_names: Mapping[str, str], median_relative_size_after_cropping: float
) -> tuple[list[str], list[bool]]:
    """Normalization scheme per channel and whether it uses the nonzero mask.

    The mask is used only when cropping to the nonzero region removed at least 25 % of the voxels
    (median crop ratio < 0.75), and then only by z-score (it leaves the outside at 0).

    Examples
    --------
    >>> normalization_and_mask({"0": "CT", "1": "T2"}, 0.5)
    (['CTNormalization', 'ZScoreNormalization'], [False, True])
    """
    schemes = [normalization_scheme_for_channel(n) for n in channel_names.values()]
    if median_relative_size_after_cropping < 0.75:
        masks = [s == "ZScoreNormalization" for s in schemes]
    else:
        masks = [False] * len(schemes)
    return schemes, masks


def plan_experiment(
    fingerprint: Mapping[str, Any],
    dataset_json: Mapping[str, Any],
    *,
    dataset_name: str = "Dataset",
    gpu_memory_target_gb: float = REFERENCE_GB,
) -> dict[str, Any]:
    """The plans (``nnUNetPlans.json``) nnU-Net v2's default planner makes from a fingerprint.

    Parameters
    ----------
    fingerprint
        What :func:`course_lib.nnunet.extract_fingerprint` returns (``dataset_fingerprint.json``).
    dataset_json
        The raw dataset's ``dataset.json`` (``channel_names``, ``labels``, ``numTraining``).

    Returns
    -------
    dict
        ``transpose_forward``/``transpose_backward`` and ``configurations`` with ``2d``, and for 3D
        data ``3d_fullres``, plus ``3d_lowres`` and ``3d_cascade_fullres`` when the fullres patch
        covers less than 25 % of the median image and a lowres stage at least halves it.
    """
    for key in ("spacings", "shapes_after_crop", "median_relative_size_after_cropping"):
        if key not in fingerprint:
            raise ValueError(f"fingerprint lacks {key!r}; got keys {sorted(fingerprint)}")
    for key in ("channel_names", "labels", "numTraining"):
        if key not in dataset_json:
            raise ValueError(f"dataset_json lacks {key!r}; got keys {sorted(dataset_json)}")
    spacings = np.asarray(fingerprint["spacings"], dtype=np.float64)
    shapes = np.asarray(fingerprint["shapes_after_crop"], dtype=np.float64)
    num_classes = len(dataset_json["labels"])
    n_training = int(dataset_json["numTraining"])
    schemes, masks = normalization_and_mask(
        dataset_json["channel_names"], float(fingerprint["median_relative_size_after_cropping"])
    )

    def plan(spacing: Vector, median: Sequence[float], n_voxels: float, name: str) -> dict:
        return plan_configuration(
            spacing,
            median,
            n_voxels,
            num_classes=num_classes,
            normalization_schemes=schemes,
            use_mask_for_norm=masks,
            data_identifier=f"{PLANS_NAME}_{name}",
            gpu_memory_target_gb=gpu_memory_target_gb,
        )

    fullres_spacing = fullres_target_spacing(spacings, shapes)
    forward, backward = transpose_axes(fullres_spacing)
    spacing_t = fullres_spacing[forward]
    new_shapes = [
        compute_new_shape(sh, sp, fullres_spacing) for sh, sp in zip(shapes, spacings, strict=True)
    ]
    median_t = np.median(new_shapes, axis=0)[forward]
    n_voxels_dataset = float(np.prod(median_t, dtype=np.float64) * n_training)

    configurations: dict[str, Any] = {}
    fullres = lowres = None
    if median_t[0] != 1:  # truly 3D data
        fullres = plan(spacing_t, list(median_t), n_voxels_dataset, "3d_fullres")
        lowres, lowres_median_voxels = _search_lowres(
            fullres, spacing_t, median_t, n_training, plan
        )
        if np.prod(median_t, dtype=np.float64) / lowres_median_voxels < LOWRES_MIN_SIZE_RATIO:
            lowres = None  # not worth a second stage (also the case when no search ran)
        fullres["batch_dice"] = lowres is not None
        if lowres is not None:
            lowres["batch_dice"] = False
            lowres["next_stage"] = "3d_cascade_fullres"

    plan_2d = plan(spacing_t[1:], list(median_t[1:]), n_voxels_dataset, "2d")
    plan_2d["batch_dice"] = True
    configurations["2d"] = plan_2d
    if lowres is not None:
        configurations["3d_lowres"] = lowres
    if fullres is not None:
        configurations["3d_fullres"] = fullres
    if lowres is not None:
        configurations["3d_cascade_fullres"] = {
            "inherits_from": "3d_fullres",
            "previous_stage": "3d_lowres",
        }

    return {
        "dataset_name": dataset_name,
        "plans_name": PLANS_NAME,
        "original_median_spacing_after_transp": [
            float(s) for s in np.median(spacings, axis=0)[forward]
        ],
        "original_median_shape_after_transp": [
            _round_half_even(s) for s in np.median(shapes, axis=0)[forward]
        ],
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": forward,
        "transpose_backward": backward,
        "configurations": configurations,
        "experiment_planner_used": "ExperimentPlanner",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": dict(
            fingerprint.get("foreground_intensity_properties_per_channel", {})
        ),
    }


def _search_lowres(
    fullres: dict[str, Any],
    spacing_t: np.ndarray,
    median_t: np.ndarray,
    n_training: int,
    plan: Callable[[Vector, Sequence[float], float, str], dict[str, Any]],
) -> tuple[dict[str, Any] | None, float]:
    """Grow the spacing by 3 % per step until the patch covers >= 25 % of the median image.

    Only the axes more than 2x finer than the coarsest grow while there are any (so anisotropic
    data first becomes isotropic); then all axes grow. Returns the lowres plan (``None`` if the
    fullres patch already sees enough) and the lowres median voxel count.
    """
    median_voxels = float(np.prod(median_t, dtype=np.float64))
    patch_voxels = float(math.prod(fullres["patch_size"]))
    lowres = None
    lowres_spacing = spacing_t.copy()
    while patch_voxels / median_voxels < LOWRES_CREATION_THRESHOLD:
        too_fine = lowres_spacing.max() / lowres_spacing > 2
        if np.any(too_fine):
            lowres_spacing[too_fine] *= LOWRES_SPACING_FACTOR
        else:
            lowres_spacing *= LOWRES_SPACING_FACTOR
        lowres_median = spacing_t / lowres_spacing * median_t
        median_voxels = float(np.prod(lowres_median, dtype=np.float64))
        lowres_median_rounded = [float(_round_half_even(m)) for m in lowres_median]
        lowres = plan(
            lowres_spacing, lowres_median_rounded, median_voxels * n_training, "3d_lowres"
        )
        patch_voxels = float(math.prod(lowres["patch_size"]))
    return lowres, median_voxels

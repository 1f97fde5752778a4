"""nnU-Net v2's self-configuring heuristics, one small module per step.

:mod:`~course_lib.nnunet.fingerprint` -> :mod:`~course_lib.nnunet.planning` ->
:mod:`~course_lib.nnunet.preprocessing` (+ :mod:`~course_lib.nnunet.resampling`) ->
:mod:`~course_lib.nnunet.network` -> :mod:`~course_lib.nnunet.training` (+
:mod:`~course_lib.nnunet.augmentation`) ->
:mod:`~course_lib.nnunet.inference` -> :mod:`~course_lib.nnunet.postprocessing`;
:func:`run_pipeline` runs them end to end. The planner reproduces nnunetv2 2.8.1's default
``ExperimentPlanner`` exactly (tests compare with plans made by the real nnunetv2).
"""

from course_lib.nnunet.augmentation import AugmentationParams, augment, augmentation_params
from course_lib.nnunet.fingerprint import extract_fingerprint, fingerprint_from_arrays
from course_lib.nnunet.inference import ensemble_probabilities, predict_case, predict_logits
from course_lib.nnunet.network import PlainConvUNet, build_network, deep_supervision_weights
from course_lib.nnunet.pipeline import PipelineResult, run_pipeline, train_network
from course_lib.nnunet.planning import (
    feature_map_voxels,
    fullres_target_spacing,
    plan_configuration,
    plan_experiment,
    pool_and_conv_props,
    transpose_axes,
)
from course_lib.nnunet.postprocessing import (
    apply_postprocessing,
    determine_postprocessing,
    keep_largest_component,
)
from course_lib.nnunet.preprocessing import crop_to_nonzero, normalize_channel, preprocess_case
from course_lib.nnunet.resampling import compute_new_shape, resample_to_shape
from course_lib.nnunet.training import deep_supervision_loss, kfold_splits, poly_lr, sample_batch

__all__ = [
    "AugmentationParams",
    "PipelineResult",
    "PlainConvUNet",
    "apply_postprocessing",
    "augment",
    "augmentation_params",
    "build_network",
    "compute_new_shape",
    "crop_to_nonzero",
    "deep_supervision_loss",
    "deep_supervision_weights",
    "determine_postprocessing",
    "ensemble_probabilities",
    "extract_fingerprint",
    "feature_map_voxels",
    "fingerprint_from_arrays",
    "fullres_target_spacing",
    "keep_largest_component",
    "kfold_splits",
    "normalize_channel",
    "plan_configuration",
    "plan_experiment",
    "poly_lr",
    "pool_and_conv_props",
    "predict_case",
    "predict_logits",
    "preprocess_case",
    "resample_to_shape",
    "run_pipeline",
    "sample_batch",
    "train_network",
    "transpose_axes",
]

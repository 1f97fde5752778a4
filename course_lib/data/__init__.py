"""The course's data: synthetic cells and volumes, U-Net weight maps, augmentation, NIfTI.

Nothing is downloaded. Every dataset is a pure function of its arguments and seed, generated with
vectorised torch code, and :func:`load_dataset` is the one call a chapter makes: it reads the
dataset from ``data/`` when it is there and valid, and generates (and writes) it otherwise.

Conventions
-----------
* 2D images are ``(N, 1, H, W)`` float32 in ``[0, 1]``; label maps are ``(N, H, W)`` int64.
* A 3D case is ``(C, D, H, W)`` with label ``(D, H, W)``; axis order is (z, y, x) = (slice, row,
  column), and ``spacing`` is given in millimetres in the same order. This is the order nnU-Net's
  SimpleITK reader returns; :mod:`course_lib.data.nifti` converts from and to NIfTI's (x, y, z).
* Unannotated voxels carry :data:`UNLABELED` (``-1``); the losses take ``ignore_index=-1``.
* What later chapters import instead of rewriting: :class:`PatchSampler` (random training
  patches with foreground oversampling) and :func:`zscore` / :func:`window` (intensity
  normalisation).
"""

from course_lib.data.augment import (
    elastic_deform_2d,
    elastic_displacement_2d,
    histogram_match,
    random_flip,
    random_gamma,
    random_rotate_scale,
    smooth_deform_3d,
    smooth_displacement_3d,
    warp,
)
from course_lib.data.datasets import DATASET_NAMES, data_root, dataset_is_valid, load_dataset
from course_lib.data.intensity import window, zscore
from course_lib.data.nifti import read_nifti, read_nnunet_raw, write_nifti, write_nnunet_raw
from course_lib.data.sampling import PatchSampler, patch_box
from course_lib.data.synthetic import (
    CT_LABELS,
    MR_LABELS,
    UNLABELED,
    CellImages,
    VolumeCase,
    make_cells,
    make_mr_multichannel,
    make_sparse_annotation,
    make_volumes,
    touching_fraction,
)
from course_lib.data.weight_maps import class_balance_weights, unet_weight_map

__all__ = [
    "CT_LABELS",
    "DATASET_NAMES",
    "MR_LABELS",
    "PatchSampler",
    "UNLABELED",
    "CellImages",
    "VolumeCase",
    "class_balance_weights",
    "data_root",
    "dataset_is_valid",
    "elastic_deform_2d",
    "elastic_displacement_2d",
    "histogram_match",
    "load_dataset",
    "make_cells",
    "make_mr_multichannel",
    "make_sparse_annotation",
    "make_volumes",
    "patch_box",
    "random_flip",
    "random_gamma",
    "random_rotate_scale",
    "read_nifti",
    "read_nnunet_raw",
    "smooth_deform_3d",
    "smooth_displacement_3d",
    "touching_fraction",
    "unet_weight_map",
    "warp",
    "window",
    "write_nifti",
    "write_nnunet_raw",
    "zscore",
]

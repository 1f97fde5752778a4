"""NIfTI files and nnU-Net v2's raw dataset layout.

Axis order
----------
NIfTI stores voxels in (i, j, k) = (x, y, z) order, and nibabel returns arrays that way. The
course works in (z, y, x) = (D, H, W), the order of torch's ``(N, C, D, H, W)`` and of the arrays
nnU-Net's default SimpleITK reader returns. So :func:`read_nifti` transposes nibabel's array and
reverses the voxel sizes, and :func:`write_nifti` does the opposite: a (D, H, W) array with
spacing (z, y, x) mm round-trips unchanged, and nnU-Net reads the spacing the course wrote.

nnU-Net v2 raw layout (``documentation/dataset_format.md``)::

    DatasetXXX_Name/
        dataset.json           channel_names, labels, numTraining, file_ending
        imagesTr/CASE_0000.nii.gz, CASE_0001.nii.gz, ...   one file per channel
        labelsTr/CASE.nii.gz                               integer labels, background 0
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast

import nibabel as nib
import numpy as np
import torch

from course_lib.atomic import atomic_path
from course_lib.data.synthetic import UNLABELED, VolumeCase

FILE_ENDING = ".nii.gz"
_DATASET_DIR = re.compile(r"^Dataset\d{3}_[A-Za-z0-9_-]+$")


def _as_numpy(array: np.ndarray | torch.Tensor) -> np.ndarray:
    return array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)


def _storage_dtype(array: np.ndarray) -> np.dtype:
    """Compact on-disk type: uint8/int16 labels when the values fit, float32 images."""
    if np.issubdtype(array.dtype, np.floating):
        return np.dtype(np.float32)
    if np.issubdtype(array.dtype, np.bool_):
        return np.dtype(np.uint8)
    lo, hi = (int(array.min()), int(array.max())) if array.size else (0, 0)
    for candidate in (np.uint8, np.int16, np.int32):
        info = np.iinfo(candidate)
        if info.min <= lo and hi <= info.max:
            return np.dtype(candidate)
    return np.dtype(np.int64)


def write_nifti(
    path: str | os.PathLike[str],
    array: np.ndarray | torch.Tensor,
    spacing: Sequence[float],
) -> Path:
    """Write a ``(D, H, W)`` array with voxel size ``spacing`` (z, y, x) in mm, atomically.

    Floats are stored as float32; integer maps as the smallest of uint8/int16/int32 that holds
    them. The affine is diagonal (no rotation, origin 0), units millimetres.

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "case.nii.gz"
    >>> _ = write_nifti(p, np.zeros((4, 5, 6), np.float32), (3.0, 0.8, 0.8))
    >>> arr, sp = read_nifti(p)
    >>> arr.shape, sp
    ((4, 5, 6), (3.0, 0.8, 0.8))
    """
    data = _as_numpy(array)
    if data.ndim != 3:
        raise ValueError(f"array must be 3D (D, H, W), got shape {data.shape}")
    if len(spacing) != 3 or not all(float(s) > 0 for s in spacing):
        raise ValueError(f"spacing must be three positive mm values (z, y, x), got {spacing!r}")
    if not str(path).endswith((".nii", ".nii.gz")):
        raise ValueError(f"path must end in .nii or .nii.gz, got {str(path)!r}")
    data = data.astype(_storage_dtype(data), copy=False)
    sz, sy, sx = (float(s) for s in spacing)
    image = nib.Nifti1Image(np.ascontiguousarray(data.transpose(2, 1, 0)), np.diag([sx, sy, sz, 1]))
    image.header.set_xyzt_units("mm")
    with atomic_path(path) as tmp:
        nib.save(image, tmp)
    return Path(path)


def read_nifti(path: str | os.PathLike[str]) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Read a 3D NIfTI file as a ``(D, H, W)`` array and its spacing (z, y, x) in mm.

    Returns
    -------
    (ndarray, tuple of float)
        The array in the file's stored dtype, transposed from NIfTI's (x, y, z) order, and the
        voxel sizes from the header, reversed to match.
    """
    if not Path(path).is_file():
        raise ValueError(f"no NIfTI file at {str(path)!r}")
    image = cast(nib.Nifti1Image, nib.load(path))
    if len(image.shape) != 3:
        raise ValueError(f"expected a 3D NIfTI image, {str(path)!r} has shape {image.shape}")
    data = np.asanyarray(image.dataobj).transpose(2, 1, 0)
    zooms = image.header.get_zooms()[:3]
    # the header stores float32; round so that 0.8 comes back as 0.8, not 0.800000011920929
    sz, sy, sx = (round(float(z), 6) for z in (zooms[2], zooms[1], zooms[0]))
    return np.ascontiguousarray(data), (sz, sy, sx)


def write_nnunet_raw(
    dataset_dir: str | os.PathLike[str],
    cases: Sequence[VolumeCase],
    *,
    labels: Mapping[str, int],
) -> Path:
    """Write ``cases`` as an nnU-Net v2 raw dataset (``imagesTr``, ``labelsTr``, ``dataset.json``).

    Every case must have the same channels. Cases whose label holds :data:`UNLABELED` are written
    with nnU-Net's ``ignore`` label (one above the highest class), which nnU-Net v2 leaves out of
    its loss, as the 3D U-Net paper does.

    Parameters
    ----------
    dataset_dir : path
        Folder named ``DatasetXXX_Name`` (three digits), usually under ``$nnUNet_raw``.
    cases : sequence of VolumeCase
        Images ``(C, D, H, W)``, labels ``(D, H, W)``, spacing (z, y, x) mm.
    labels : mapping
        Class names to ids, background 0 and consecutive, e.g. :data:`CT_LABELS`.

    Returns
    -------
    Path
        ``dataset_dir``. Each file is written atomically; ``dataset.json`` last, so a folder with a
        ``dataset.json`` is complete.
    """
    root = Path(dataset_dir)
    if not _DATASET_DIR.match(root.name):
        raise ValueError(
            f"dataset_dir must be named DatasetXXX_Name (three digits), got {root.name!r}"
        )
    if not cases:
        raise ValueError("cases must hold at least one case")
    ids = sorted(labels.values())
    if labels.get("background") != 0 or ids != list(range(len(ids))):
        raise ValueError(f"labels must map background to 0 and use ids 0..K, got {dict(labels)!r}")
    channels = cases[0].channel_names
    names = [c.case_id for c in cases]
    if len(set(names)) != len(names):
        raise ValueError(f"case ids must be unique, got {names}")
    json_labels = dict(labels)
    ignore = len(ids)
    for case in cases:
        if case.channel_names != channels or case.image.shape[0] != len(channels):
            raise ValueError(
                f"every case needs channels {channels}; {case.case_id} has {case.channel_names} "
                f"and {case.image.shape[0]} image channels"
            )
        label = _as_numpy(case.label)
        if (label == UNLABELED).any():
            json_labels["ignore"] = ignore
            label = np.where(label == UNLABELED, ignore, label)
        if label.min() < 0 or label.max() > ignore:
            raise ValueError(f"{case.case_id}: label values must be in 0..{len(ids) - 1}")
        for c in range(len(channels)):
            write_nifti(
                root / "imagesTr" / f"{case.case_id}_{c:04d}{FILE_ENDING}",
                case.image[c],
                case.spacing,
            )
        write_nifti(root / "labelsTr" / f"{case.case_id}{FILE_ENDING}", label, case.spacing)
    description = {
        "channel_names": {str(i): name for i, name in enumerate(channels)},
        "labels": json_labels,
        "numTraining": len(cases),
        "file_ending": FILE_ENDING,
        "name": root.name.split("_", 1)[1],
        "description": "Synthetic course data (course_lib.data); axis order (z, y, x).",
    }
    with atomic_path(root / "dataset.json") as tmp:
        tmp.write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    return root


def read_nnunet_raw(dataset_dir: str | os.PathLike[str]) -> list[VolumeCase]:
    """Read the training cases of an nnU-Net v2 raw dataset written by :func:`write_nnunet_raw`.

    Returns cases with ``image`` float32 ``(C, D, H, W)`` and ``label`` int64 ``(D, H, W)`` (the
    ``ignore`` label, if any, comes back as :data:`UNLABELED`).
    """
    root = Path(dataset_dir)
    meta_path = root / "dataset.json"
    if not meta_path.is_file():
        raise ValueError(f"{str(root)!r} has no dataset.json: not a complete nnU-Net raw dataset")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    ending = meta["file_ending"]
    channels = tuple(meta["channel_names"][str(i)] for i in range(len(meta["channel_names"])))
    ignore = meta["labels"].get("ignore")
    cases = []
    for label_path in sorted((root / "labelsTr").glob(f"*{ending}")):
        case_id = label_path.name[: -len(ending)]
        label, spacing = read_nifti(label_path)
        label = label.astype(np.int64)
        if ignore is not None:
            label[label == ignore] = UNLABELED
        images = [
            read_nifti(root / "imagesTr" / f"{case_id}_{c:04d}{ending}")[0]
            for c in range(len(channels))
        ]
        cases.append(
            VolumeCase(
                case_id=case_id,
                image=torch.from_numpy(np.stack(images).astype(np.float32)),
                label=torch.from_numpy(label),
                spacing=spacing,
                channel_names=channels,
            )
        )
    return cases

"""What the synthetic generators return: 2D cell images and 3D cases, and their label values.

Examples
--------
>>> CT_LABELS["lesion"], UNLABELED
(2, -1)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

UNLABELED = -1
"""Label value of voxels nobody annotated; losses skip them with ``ignore_index=-1``."""

CT_LABELS = {"background": 0, "organ": 1, "lesion": 2}
"""Classes of :func:`make_volumes`, CT and MR modality alike (the form of nnU-Net's ``labels``)."""

MR_LABELS = {"background": 0, "target": 1}
"""Classes of :func:`make_mr_multichannel` (its single small target; not of MR-modality
:func:`make_volumes`, which uses :data:`CT_LABELS`)."""


@dataclass(frozen=True)
class CellImages:
    """A batch of 2D cell images with their annotations.

    Attributes
    ----------
    images : Tensor
        ``(N, 1, H, W)`` float32 in ``[0, 1]`` (not standardised; chapters normalise as they like).
    instances : Tensor
        ``(N, H, W)`` int64: 0 background, ``1..K`` one id per cell (ids are per image).
    masks : Tensor
        ``(N, H, W)`` int64 semantic target. ``"phase"``: 1 cell, 0 background, where the thin
        borders between touching cells are background (U-Net paper). ``"em"``: 1 membrane (the
        target class), 0 cell interior.
    style : str
        ``"phase"`` or ``"em"``.
    """

    images: torch.Tensor
    instances: torch.Tensor
    masks: torch.Tensor
    style: str

    def __len__(self) -> int:
        return self.images.shape[0]


@dataclass(frozen=True)
class VolumeCase:
    """One 3D case, in (z, y, x) = (D, H, W) axis order.

    Attributes
    ----------
    case_id : str
        Name used for file names (``"ct_000"``).
    image : Tensor
        ``(C, D, H, W)`` float32: Hounsfield units for CT, arbitrary units for MR.
    label : Tensor
        ``(D, H, W)`` int64 class map (see :data:`CT_LABELS`, :data:`MR_LABELS`); may hold
        :data:`UNLABELED` for sparsely annotated cases.
    spacing : tuple of float
        Voxel size in millimetres, ``(z, y, x)`` like the array axes.
    channel_names : tuple of str
        One name per channel, e.g. ``("CT",)`` or ``("T1", "T2")``.
    dense_label : Tensor or None
        The complete annotation when ``label`` is sparse, for evaluation; else ``None``.
    """

    case_id: str
    image: torch.Tensor
    label: torch.Tensor
    spacing: tuple[float, float, float]
    channel_names: tuple[str, ...]
    dense_label: torch.Tensor | None = field(default=None)

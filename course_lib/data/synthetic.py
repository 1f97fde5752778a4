"""Synthetic microscopy cells and CT/MR-like volumes, made to show what the chapters teach.

The course downloads nothing, so its data has to carry the difficulties the papers solve:

* **cells** (U-Net, Ronneberger et al. 2015): many cells per image, a good fraction touching and
  separated only by a 2-pixel background border, as in the paper's Fig. 3; phase-contrast look
  (dark textured interiors, bright halos, blur, noise, uneven illumination). An EM-like style packs
  cells densely; their membranes are the target class (ISBI 2012 challenge).
* **volumes** (V-Net, nnU-Net, 3D U-Net): a smooth irregular organ (a few percent of the voxels)
  holding a small lesion (well under one percent), CT intensities in Hounsfield units or MR-like
  intensities under a bias field; shape and spacing vary across cases, slices are thick.
* **multi-channel MR** (2.5D U-Net, Wang et al. 2019): T1-like and T2-like channels at
  0.4 x 0.4 x 1.5 mm with a small low-contrast target that only both channels together give away.
* **sparse annotation** (3D U-Net, Cicek et al. 2016): a few orthogonal slices labelled, the rest
  :data:`UNLABELED`.

One module per thing made: :mod:`~course_lib.data.cells`, :mod:`~course_lib.data.volumes`
(CT/MR-like and two-channel MR), :mod:`~course_lib.data.sparse`, and the containers and label
values in :mod:`~course_lib.data.cases`; this module gathers them.

Every generator is a pure function of its arguments and ``seed``: case ``i`` depends only on
``(seed, i)``, so the first cases of a large set equal a small set made with the same seed. Pixel
work is vectorised torch on the CPU (the same numbers on every machine); only the placement of a
few dozen cells loops in Python.
"""

from course_lib.data.cases import CT_LABELS, MR_LABELS, UNLABELED, CellImages, VolumeCase
from course_lib.data.cells import CELL_STYLES, make_cells, touching_fraction
from course_lib.data.sparse import make_sparse_annotation
from course_lib.data.volumes import MODALITIES, make_mr_multichannel, make_volumes

__all__ = [
    "CELL_STYLES",
    "CT_LABELS",
    "MODALITIES",
    "MR_LABELS",
    "UNLABELED",
    "CellImages",
    "VolumeCase",
    "make_cells",
    "make_mr_multichannel",
    "make_sparse_annotation",
    "make_volumes",
    "touching_fraction",
]

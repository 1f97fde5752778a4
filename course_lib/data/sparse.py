"""Sparse annotation (3D U-Net, Cicek et al. 2016): a few orthogonal slices labelled, the rest
:data:`~course_lib.data.cases.UNLABELED`."""

from __future__ import annotations

import torch

from course_lib.data.cases import UNLABELED
from course_lib.ops.checks import check_int


def make_sparse_annotation(
    label: torch.Tensor, n_slices_per_axis: int | tuple[int, int, int], *, seed: int
) -> torch.Tensor:
    """Keep the labels of a few orthogonal slices; mark every other voxel :data:`UNLABELED`.

    As in the 3D U-Net paper, an annotator labels some xy, xz and yz slices of a volume; the
    network learns from these alone (weight 0 for unlabelled voxels in the loss) and predicts
    densely. Slices are drawn among those that contain foreground when there are enough.

    Parameters
    ----------
    label : Tensor
        ``(D, H, W)`` integer label map.
    n_slices_per_axis : int or (int, int, int)
        Slices kept along D, H and W.
    seed : int
        Which slices are drawn.

    Returns
    -------
    Tensor
        Same shape and dtype as ``label``; kept slices copied, all else :data:`UNLABELED`.

    References
    ----------
    Cicek et al. (2016), 3D U-Net: learning dense volumetric segmentation from sparse annotation,
    MICCAI, Sec. 2-3.

    Examples
    --------
    >>> dense = torch.zeros(8, 8, 8, dtype=torch.long)
    >>> sparse = make_sparse_annotation(dense, 1, seed=0)
    >>> int((sparse != UNLABELED).sum())  # three orthogonal 8 x 8 slices, overlaps counted once
    169
    """
    check_int("seed", seed, minimum=0)
    if not isinstance(label, torch.Tensor) or label.ndim != 3 or label.dtype.is_floating_point:
        raise ValueError(
            "label must be an integer (D, H, W) tensor, got "
            f"{getattr(label, 'shape', type(label))} {getattr(label, 'dtype', '')}"
        )
    counts = (n_slices_per_axis,) * 3 if isinstance(n_slices_per_axis, int) else n_slices_per_axis
    if len(counts) != 3 or any(
        not isinstance(c, int) or c < 0 or c > s for c, s in zip(counts, label.shape, strict=False)
    ):
        raise ValueError(
            f"n_slices_per_axis must be an int or three ints in [0, size of the axis] for shape "
            f"{tuple(label.shape)}, got {n_slices_per_axis!r}"
        )
    gen = torch.Generator().manual_seed(seed)
    keep = torch.zeros(label.shape, dtype=torch.bool, device=label.device)
    foreground = label > 0
    for axis, count in enumerate(counts):
        other = [a for a in range(3) if a != axis]
        has_fg = foreground.any(dim=other[1]).any(dim=other[0]).cpu()
        pool = torch.nonzero(has_fg).flatten() if int(has_fg.sum()) >= count else None
        if pool is None:
            pool = torch.arange(label.shape[axis])
        chosen = pool[torch.randperm(pool.numel(), generator=gen)[:count]]
        index: list[slice | torch.Tensor] = [slice(None)] * 3
        index[axis] = chosen.to(label.device)
        keep[tuple(index)] = True
    return torch.where(keep, label, torch.full_like(label, UNLABELED))

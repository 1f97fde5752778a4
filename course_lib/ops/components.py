"""Connected components of binary masks, in torch (on the masks' device).

Each voxel starts as its own tree, named by its flat index + 1. Each round, every tree hooks its
root under the largest root found among the neighbours of its voxels, then every voxel's pointer
jumps to its root (pointer jumping, after Shiloach & Vishkin 1982), so trees merge fast even along
long thin shapes. When no root moves, each component is one tree; labels are renumbered 1..K.
"""

from __future__ import annotations

from typing import Literal

import torch

from course_lib.ops.checks import resolve_spatial_dims


def _max_with_neighbours(x: torch.Tensor, axis: int) -> torch.Tensor:
    """Max of each entry and its two neighbours along ``axis`` (zero beyond the border)."""
    n = x.shape[axis]
    zero = torch.zeros_like(x.narrow(axis, 0, 1))
    before = torch.cat([zero, x.narrow(axis, 0, n - 1)], axis)
    after = torch.cat([x.narrow(axis, 1, n - 1), zero], axis)
    return torch.maximum(x, torch.maximum(before, after))


def connected_components(
    mask: torch.Tensor,
    *,
    connectivity: Literal["face", "full"] = "face",
    spatial_dims: int | None = None,
) -> torch.Tensor:
    """Label the connected components of ``mask``: 0 outside, 1..K inside, per item.

    Parameters
    ----------
    mask : Tensor
        Nonzero means inside; shape ``(*batch, *spatial)``.
    connectivity : {"face", "full"}
        Neighbours sharing a face (4 in 2D, 6 in 3D; ``scipy.ndimage.label``'s default) or also
        an edge or corner (8 in 2D, 26 in 3D; ``skimage.measure.label``'s default).
    spatial_dims : int, optional
        Number of trailing spatial axes; default all.

    Returns
    -------
    Tensor
        int64 labels of the shape of ``mask``; the components of each item are numbered from 1 in
        the order of their last voxel.

    Examples
    --------
    >>> connected_components(torch.tensor([[1, 0, 1], [0, 1, 1]]))
    tensor([[1, 0, 2],
            [0, 2, 2]])
    >>> connected_components(torch.tensor([[1, 0], [0, 1]]), connectivity="full")
    tensor([[1, 0],
            [0, 1]])
    """
    if connectivity not in ("face", "full"):
        raise ValueError(f'connectivity must be "face" or "full", got {connectivity!r}')
    spatial_dims = resolve_spatial_dims(mask.ndim, None, spatial_dims)
    axes = range(mask.ndim - spatial_dims, mask.ndim)
    inside = mask != 0
    index = torch.arange(1, mask.numel() + 1, device=mask.device).view(mask.shape)
    parent = torch.cat([index.new_zeros(1), torch.where(inside, index, 0).view(-1)])
    while True:
        roots = parent[index]  # a voxel outside the mask has root 0
        if connectivity == "full":  # the max over a 3×3(×3) box is separable
            largest = roots
            for axis in axes:
                largest = _max_with_neighbours(largest, axis)
        else:
            largest = torch.stack([_max_with_neighbours(roots, a) for a in axes]).amax(0)
        largest = torch.where(inside, largest, 0)
        hooked = parent.scatter_reduce(0, roots.view(-1), largest.view(-1), "amax")
        while True:  # pointer jumping: every voxel points straight at its root
            jumped = hooked[hooked]
            if torch.equal(jumped, hooked):
                break
            hooked = jumped
        if torch.equal(hooked, parent):
            break
        parent = hooked
    labels = parent[index]
    items = labels.reshape(-1, *mask.shape[mask.ndim - spatial_dims :])
    renumbered = torch.empty_like(items)
    for i, item in enumerate(items):
        values, inverse = torch.unique(item, return_inverse=True)
        renumbered[i] = inverse + int(values[0] != 0)  # background, where present, stays 0
    return renumbered.view(mask.shape)

"""Surface distances: Hausdorff distance, HD95 (two conventions) and average surface distance.

All of them compare the *surfaces* of two masks: the voxels of a mask that have a face neighbour
outside it (the mask minus its erosion with face connectivity; the image border counts as
background, as in medpy and MONAI). Each surface voxel of one mask needs its distance to the
nearest surface voxel of the other, found exactly in one of two ways, by the masks' device:

* **on a GPU** (any device but the CPU), the distance transform of the other surface, so
  everything stays on the device. As a shortcut, distances up to ``BAND`` voxels come from a
  distance transform limited to a band around each surface (a few shifted minima per axis); the
  few surface voxels farther away get the exact transform evaluated at them alone
  (:func:`~course_lib.ops.distance_transform.distance_transform_at`);
* **on the CPU**, a k-d tree of the other surface's voxels (SciPy's ``cKDTree``; Bentley,
  "Multidimensional binary search trees used for associative searching", CACM 18(9), 1975).
  Its cost grows with the number of surface voxels, ``O(n log n)``, where a transform's grows
  with the volume, and a compiled tree beats tensor passes on a CPU (several times, at 256³).

Both give the same distances (the tests compare them).

Empty masks follow the package's policy (:mod:`course_lib.metrics`): both empty is undefined and
gives ``empty_value`` (NaN by default; chapter 04 passes 0, "nothing is misplaced"); exactly one
empty gives ``inf``, directed distances included (the distance to an empty set is an infimum over
nothing). medpy raises and MONAI returns NaN or inf there.
"""

from __future__ import annotations

import math
from types import EllipsisType
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial import cKDTree

from course_lib.metrics._checks import binary_pair
from course_lib.ops.checks import Spacing, resolve_spacing, resolve_spatial_dims
from course_lib.ops.distance_transform import distance_transform_at

BAND = 8
"""Voxels per axis of the banded distance transform; farther surface voxels take the exact route."""


def mask_surface(mask: torch.Tensor, *, spatial_dims: int | None = None) -> torch.Tensor:
    """The surface voxels of ``mask``: inside, with at least one face neighbour outside.

    ``surface = mask ∧ ¬erode(mask)``, erosion with the face-connected cross (connectivity 1),
    voxels outside the image counting as background (so a mask touching the border has surface
    there). ``spatial_dims`` trailing axes are spatial (default: all); returns a bool tensor.

    Examples
    --------
    >>> mask_surface(torch.ones(3, 4)).int()
    tensor([[1, 1, 1, 1],
            [1, 0, 0, 1],
            [1, 1, 1, 1]], dtype=torch.int32)
    """
    spatial_dims = resolve_spatial_dims(mask.ndim, None, spatial_dims)
    inside = mask if mask.dtype == torch.bool else mask != 0
    padded = F.pad(inside.to(torch.uint8), [1, 1] * spatial_dims).bool()
    axes = range(mask.ndim - spatial_dims, mask.ndim)

    def neighbour(axis: int, offset: int) -> torch.Tensor:
        # the padded mask shifted by offset - 1 along one axis, cut back to the mask's shape
        view = padded
        for a in axes:
            view = view.narrow(a, offset if a == axis else 1, mask.shape[a])
        return view

    eroded = inside.clone()
    for axis in axes:
        eroded &= neighbour(axis, 0) & neighbour(axis, 2)
    return inside & ~eroded


def _bounding_box(union: torch.Tensor) -> tuple[slice, ...] | None:
    """The smallest box holding every True voxel of ``union`` as slices; None if there is none.

    Cropping both masks to the box of their union is exact for surface distances: no surface
    voxel is cut, and outside the box both masks are background, which is what the erosion
    assumes beyond the border.
    """
    flags = union.view(torch.uint8)  # the same bytes: a max over them runs ~10x faster than any()
    box = []
    for axis in range(union.ndim):
        others = [a for a in range(union.ndim) if a != axis]
        hit = (flags.amax(dim=others) if others else flags).nonzero()
        if len(hit) == 0:
            return None
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)


def surface_distances(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    spacing: Spacing = None,
    spatial_dims: int | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The two directed sets of surface distances, for every item of a batch.

    For item ``i``: ``(d(pred→target), d(target→pred))``, 1D tensors holding, for each surface
    voxel of one mask, the distance (in units of ``spacing``) to the nearest surface voxel of the
    other. An empty mask has an empty set, and the other direction is all ``inf``.

    Parameters
    ----------
    pred, target : Tensor
        Binary masks (bool or 0/1) of the same shape ``(*batch, *spatial)``.
    spacing : float or sequence of float, optional
        Voxel size per spatial axis (e.g. mm); default 1.
    spatial_dims : int, optional
        Number of trailing spatial axes; default ``len(spacing)`` if a sequence, else all axes.

    Returns
    -------
    list of (Tensor, Tensor)
        One pair per item, in the row-major order of the batch axes.

    Examples
    --------
    >>> square = torch.zeros(5, 5, dtype=torch.bool)
    >>> square[1:4, 1:4] = True
    >>> dot = torch.zeros(5, 5, dtype=torch.bool)
    >>> dot[2, 2] = True
    >>> d_dot_to_square, d_square_to_dot = surface_distances(dot, square)[0]
    >>> d_dot_to_square, d_square_to_dot.max()
    (tensor([1.]), tensor(1.4142))
    """
    pred, target = binary_pair(pred, target)
    spatial_dims = resolve_spatial_dims(pred.ndim, spacing, spatial_dims)
    spatial = pred.shape[pred.ndim - spatial_dims :]
    union = (pred | target).reshape(-1, *spatial).any(0)
    window = _bounding_box(union)
    if window is None:
        empty = torch.empty(0, device=pred.device)
        return [(empty, empty)] * (pred.numel() // union.numel())
    box: tuple[EllipsisType | slice, ...] = (..., *window)  # the same box for every item
    both = torch.stack([pred[box], target[box]]).reshape(2, -1, *union[window].shape)
    surfaces = mask_surface(both, spatial_dims=spatial_dims)
    steps = resolve_spacing(spacing, spatial_dims)
    nearest = _nearest_by_tree if surfaces.device.type == "cpu" else _nearest_by_transform
    return nearest(surfaces, steps)


def _nearest_by_tree(
    surfaces: torch.Tensor, steps: tuple[float, ...]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The distance pairs of :func:`surface_distances` from k-d trees (CPU tensors).

    ``surfaces`` is ``(2, items, *spatial)``: the two masks' surfaces. Each surface's voxel
    coordinates, scaled to ``steps``, become the points of a tree; the other surface's voxels
    query it for their nearest point, with as many workers as torch has threads.
    """
    scale = np.asarray(steps)
    pairs = []
    for item in range(surfaces.shape[1]):
        a, b = (surfaces[k, item].nonzero().numpy() * scale for k in (0, 1))
        pairs.append((_tree_distances(a, b), _tree_distances(b, a)))
    return pairs


def _tree_distances(points: np.ndarray, sites: np.ndarray) -> torch.Tensor:
    """Distance from each of ``points`` to the nearest of ``sites`` (inf when there is none)."""
    if len(points) == 0 or len(sites) == 0:
        return torch.full((len(points),), torch.inf)
    # midpoint splits, nodes not shrunk to their points: SciPy's defaults buy faster queries with
    # a slower build, and on voxel coordinates the build lost more than the queries gained
    tree = cKDTree(sites, balanced_tree=False, compact_nodes=False)
    distances, _ = tree.query(points, workers=torch.get_num_threads())
    return torch.from_numpy(distances).to(torch.float32)  # float32, as on a GPU


def _nearest_by_transform(
    surfaces: torch.Tensor, steps: tuple[float, ...]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The distance pairs of :func:`surface_distances` from distance transforms, on any device:
    the banded transform, then the exact one at the surface voxels beyond the band."""
    near = _banded_squared_distance(surfaces, steps).sqrt()  # exact up to BAND·min(steps)
    return [
        (
            _directed(surfaces[0, i], surfaces[1, i], near[1, i], steps),
            _directed(surfaces[1, i], surfaces[0, i], near[0, i], steps),
        )
        for i in range(surfaces.shape[1])
    ]


def _banded_squared_distance(sites: torch.Tensor, steps: tuple[float, ...]) -> torch.Tensor:
    """Squared distance to the nearest ``True`` voxel within ``±BAND`` voxels on every axis.

    Separable like the full transform, but each 1D pass is a minimum over ``2·BAND + 1`` shifted
    copies. Exact wherever the result is at most ``BAND·min(steps)`` (the nearest site then lies
    inside the box); larger or ``inf`` means "farther than that".
    """
    d2 = torch.where(sites, 0.0, torch.inf)
    shifted = torch.empty_like(d2)  # reused: fresh memory for every shift costs more than the math
    for axis, step in zip(range(sites.ndim - len(steps), sites.ndim), steps, strict=True):
        n = d2.shape[axis]
        out = d2.clone()
        for k in range(1, min(BAND, n - 1) + 1):
            for src, dst in ((k, 0), (0, k)):  # the site k voxels after, then k voxels before
                view, candidate = out.narrow(axis, dst, n - k), shifted.narrow(axis, dst, n - k)
                torch.add(d2.narrow(axis, src, n - k), (k * step) ** 2, out=candidate)
                torch.minimum(view, candidate, out=view)
        d2 = out
    return d2


def _directed(
    source: torch.Tensor, target: torch.Tensor, near: torch.Tensor, steps: tuple[float, ...]
) -> torch.Tensor:
    """Distance from each surface voxel of ``source`` to the surface ``target`` (bool masks)."""
    d = near[source]
    far = d > BAND * min(steps)
    if not bool(far.any()) or not bool(target.any()):
        return d  # all within the band, or no target surface at all (inf)
    points, sites = source.nonzero()[far], target.nonzero()
    # Every far voxel has a site within `bound` of it (a sample of the sites gives that bound), so
    # sites outside the far voxels' box grown by `bound` are nobody's nearest: crop them away.
    scale = torch.tensor(steps, device=d.device, dtype=torch.float64)
    sample = sites[:: max(1, len(sites) // 1024)]
    bound = torch.cdist(points * scale, sample * scale).amin(1).max()
    reach = (bound / scale).ceil().long() + 1
    low = (points.amin(0) - reach).clamp(min=0)
    high = torch.minimum(points.amax(0) + reach + 1, torch.tensor(target.shape, device=d.device))
    box = tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))
    d[far] = distance_transform_at(~target[box], points - low, steps)
    return d


def _percentile(d: torch.Tensor, percentile: float | None) -> torch.Tensor:
    if percentile is None:
        return d.max()
    return torch.quantile(d, percentile / 100)  # linear interpolation, as numpy and MONAI


def _empty_rule(d_pt: torch.Tensor, d_tp: torch.Tensor, empty_value: float) -> torch.Tensor | None:
    """``empty_value`` when both masks are empty, inf when exactly one is, None otherwise."""
    if d_pt.numel() == 0 and d_tp.numel() == 0:
        return torch.tensor(float(empty_value), device=d_pt.device)
    if d_pt.numel() == 0 or d_tp.numel() == 0:
        return torch.tensor(torch.inf, device=d_pt.device)
    return None


def hausdorff_distance(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    percentile: float | None = None,
    spacing: Spacing = None,
    directed: bool = False,
    mode: Literal["max", "pooled"] = "max",
    spatial_dims: int | None = None,
    empty_value: float = math.nan,
) -> torch.Tensor:
    """Hausdorff distance between the surfaces of two masks, or a percentile of it (HD95).

    With ``d(a, B) = min_b ‖(a − b)·spacing‖`` over surface voxels, the directed distance is
    ``h(A, B) = max_a d(a, B)`` and the Hausdorff distance ``HD = max(h(A, B), h(B, A))``
    (Huttenlocher et al., "Comparing images using the Hausdorff distance", IEEE TPAMI 15(9), 1993).
    A percentile replaces each max to be robust to a few outlier voxels; two conventions exist:

    * ``mode="max"`` (default, MONAI): ``max(P_q{d(a, B)}, P_q{d(b, A)})``;
    * ``mode="pooled"`` (medpy ``hd95``): ``P_q`` of both directed sets concatenated.

    They agree for ``percentile=None``. Percentiles interpolate linearly (numpy's default).

    Parameters
    ----------
    pred, target : Tensor
        Binary masks (bool or 0/1) of the same shape ``(*batch, *spatial)``, e.g. ``(N, C, H, W)``
        one-hot masks with ``spatial_dims=2``.
    percentile : float, optional
        In [0, 100]; ``95`` gives HD95. None: the plain maximum.
    spacing : float or sequence of float, optional
        Voxel size per spatial axis (e.g. mm), so the result is in mm; default 1 (voxels).
    directed : bool
        Only ``h(pred, target)``: how far the prediction strays from the target.
    mode : {"max", "pooled"}
        How the percentile combines the two directions (ignored when ``directed``).
    spatial_dims : int, optional
        Number of trailing spatial axes; default ``len(spacing)`` if a sequence, else all axes.
    empty_value : float
        The value where both masks are empty (undefined); NaN by default, so ``nanmean`` skips it.

    Returns
    -------
    Tensor
        float32, shape ``batch``, on the masks' device. Both masks empty: ``empty_value``; one
        empty: inf.

    Examples
    --------
    >>> a = torch.zeros(8, 8, dtype=torch.bool)
    >>> a[2:5, 2:5] = True
    >>> hausdorff_distance(a, a.roll(3, dims=1), spacing=(1.0, 0.5))
    tensor(1.5000)
    """
    if percentile is not None and not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be None or in [0, 100], got {percentile!r}")
    if mode not in ("max", "pooled"):
        raise ValueError(f'mode must be "max" or "pooled", got {mode!r}')
    out = []
    for d_pt, d_tp in surface_distances(pred, target, spacing=spacing, spatial_dims=spatial_dims):
        value = _empty_rule(d_pt, d_tp, empty_value)
        if value is None:
            if directed:
                value = _percentile(d_pt, percentile)
            elif mode == "pooled":
                value = _percentile(torch.cat([d_pt, d_tp]), percentile)
            else:
                value = torch.maximum(_percentile(d_pt, percentile), _percentile(d_tp, percentile))
        out.append(value)
    return _batched(out, pred.shape, spacing, spatial_dims)


def average_surface_distance(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    spacing: Spacing = None,
    symmetric: bool = True,
    spatial_dims: int | None = None,
    empty_value: float = math.nan,
) -> torch.Tensor:
    """Average (symmetric) surface distance, ASSD: the mean of both directed sets pooled.

    ``ASSD = (Σ_a d(a, B) + Σ_b d(b, A)) / (|∂A| + |∂B|)``, as medpy 0.5 ``assd`` and MONAI
    ``compute_average_surface_distance(symmetric=True)``; not the mean of the two directed means
    (medpy up to 0.4), which weighs a small surface as much as a large one. ``symmetric=False``:
    the mean of ``d(a, B)`` over the prediction's surface only (medpy ``asd``).
    Same inputs, units and empty-mask rule (``empty_value``) as :func:`hausdorff_distance`.

    Examples
    --------
    >>> a = torch.zeros(8, 8, dtype=torch.bool)
    >>> a[2:5, 2:5] = True
    >>> average_surface_distance(a, a.roll(1, dims=0))
    tensor(0.5000)
    """
    out = []
    for d_pt, d_tp in surface_distances(pred, target, spacing=spacing, spatial_dims=spatial_dims):
        value = _empty_rule(d_pt, d_tp, empty_value)
        if value is None:
            value = torch.cat([d_pt, d_tp]).mean() if symmetric else d_pt.mean()
        out.append(value)
    return _batched(out, pred.shape, spacing, spatial_dims)


def _batched(
    values: list[torch.Tensor], shape: torch.Size, spacing: Spacing, spatial_dims: int | None
) -> torch.Tensor:
    """One value per item, back in the batch shape of the inputs, as float32."""
    batch_shape = shape[: len(shape) - resolve_spatial_dims(len(shape), spacing, spatial_dims)]
    return torch.stack(values).to(torch.float32).reshape(batch_shape)

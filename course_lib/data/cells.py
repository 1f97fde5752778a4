"""Synthetic microscopy cells: phase-contrast-like touching cells and EM-like membranes.

Many cells per image, a good fraction touching and separated only by a 2-pixel background
border, as in the U-Net paper's Fig. 3 (Ronneberger et al. 2015); phase-contrast look (dark
textured interiors, bright halos, blur, noise, uneven illumination). An EM-like style packs cells
densely; their membranes are the target class (ISBI 2012 challenge). Image ``i`` depends only on
``(seed, i)``.
"""

from __future__ import annotations

import math
import random

import torch
import torch.nn.functional as F

from course_lib.data._fields import case_seed, gaussian_blur, smooth_field
from course_lib.data.cases import CellImages
from course_lib.ops.checks import check_int

CELL_STYLES = ("phase", "em")
# Brightness of the gap between two touching cells above the cells (images in [0, 1], noise
# std 0.03): a faint line, as in phase-contrast microscopy, not the bright halo of a free edge.
_GAP_CONTRAST = 0.12


def _neighbour_differs(instances: torch.Tensor, width: int) -> torch.Tensor:
    """Pixels of a cell with a *different* cell within ``width`` pixels (chessboard distance)."""
    k = 2 * width + 1
    lab = instances.unsqueeze(1).float()
    big = float(instances.max().item() + 1)
    highest = F.max_pool2d(lab, k, stride=1, padding=width)
    lowest = -F.max_pool2d(-torch.where(lab > 0, lab, big), k, stride=1, padding=width)
    differs = (highest != lab) | (lowest != lab)
    return differs.squeeze(1) & (instances > 0)


def _relabel(instances: torch.Tensor, min_area: int) -> torch.Tensor:
    """Drop cells smaller than ``min_area`` pixels and number the rest ``1..K`` (one image)."""
    counts = torch.bincount(instances.flatten())
    keep = counts >= min_area
    keep[0] = False
    new_id = torch.zeros_like(counts)
    new_id[keep] = torch.arange(1, int(keep.sum()) + 1)
    return new_id[instances]


def _place_cells(
    size: int, rng: random.Random, n_cells: int, radius: tuple[float, float], touching: float
) -> tuple[list[tuple[float, float]], list[float]]:
    """Cell centres and radii; with probability ``touching`` a cell goes against an earlier one."""
    centres: list[tuple[float, float]] = []
    radii: list[float] = []
    for _ in range(40 * n_cells):
        if len(centres) == n_cells:
            break
        r = rng.uniform(*radius)
        if centres and rng.random() < touching:
            j = rng.randrange(len(centres))
            angle = rng.uniform(0, 2 * math.pi)
            # overlap a little so the partition below cuts a shared border
            d = (radii[j] + r) * rng.uniform(0.8, 0.92)
            cy, cx = centres[j][0] + d * math.sin(angle), centres[j][1] + d * math.cos(angle)
        else:
            cy, cx = rng.uniform(0, size), rng.uniform(0, size)
        if not (0.3 * r <= cy <= size - 0.3 * r and 0.3 * r <= cx <= size - 0.3 * r):
            continue
        # too much overlap would hide a cell behind its neighbour
        if all(
            math.dist((cy, cx), c) >= 0.75 * (r + rc) for c, rc in zip(centres, radii, strict=True)
        ):
            centres.append((cy, cx))
            radii.append(r)
    return centres, radii


def _cell_partition(
    size: int, centres: list[tuple[float, float]], radii: list[float], gen: torch.Generator
) -> torch.Tensor:
    """Instance map of star-shaped cells; where two overlap, the nearer one (relative to its
    radius) wins, which cuts a natural shared border between touching cells."""
    k = len(centres)
    if k == 0:
        return torch.zeros(size, size, dtype=torch.int64)
    c = torch.tensor(centres, dtype=torch.float32)  # (K, 2)
    r = torch.tensor(radii, dtype=torch.float32)
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    dy, dx = yy[None] - c[:, 0, None, None], xx[None] - c[:, 1, None, None]
    # elongated, irregular outline: ellipse (axis ratio 0.65-1) + low harmonics of the angle
    orient = torch.rand(k, generator=gen) * math.pi
    ratio = 0.65 + 0.35 * torch.rand(k, generator=gen)
    cos_o, sin_o = orient.cos()[:, None, None], orient.sin()[:, None, None]
    u, v = dx * cos_o + dy * sin_o, (-dx * sin_o + dy * cos_o) / ratio[:, None, None]
    theta = torch.atan2(v, u)
    outline = torch.ones_like(theta)
    for m in (2, 3, 5):
        amp = 0.1 * torch.rand(k, 1, 1, generator=gen)
        phase = 2 * math.pi * torch.rand(k, 1, 1, generator=gen)
        outline = outline + amp * torch.cos(m * theta + phase)
    rho = torch.sqrt(u**2 + v**2) / (r[:, None, None] * ratio.sqrt()[:, None, None] * outline)
    best, owner = rho.min(dim=0)
    return torch.where(best < 1, owner + 1, 0)


def _phase_appearance(
    raw: torch.Tensor, instances: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    """Phase-contrast-like image: dark textured cells, bright halos around each cluster of cells,
    and only a faint line where two cells touch (so the annotated gap is hard to see)."""
    size = instances.shape[-1]
    cluster = (raw > 0).float()[None, None]  # cells with the gaps between touching ones
    cell_level = 0.22 + 0.16 * torch.rand(int(raw.max()) + 1, generator=gen)  # per-cell darkness
    image = 0.55 + 0.08 * smooth_field((size, size), 3, gen)  # uneven illumination
    texture = 0.05 * gaussian_blur(torch.randn(1, 1, size, size, generator=gen), 1.5)
    gap = ((raw > 0) & (instances == 0))[None, None]
    inside = cell_level[raw][None, None] + texture + _GAP_CONTRAST * gap
    image = torch.where(cluster > 0, inside, image)
    halo = gaussian_blur(cluster, 2.0) * (1 - cluster)  # light scattered just outside
    image = image + (0.4 + 0.3 * torch.rand(1, generator=gen)) * halo
    image = gaussian_blur(image, 1.0)  # optics blur the 2-pixel gaps further
    image = image + 0.03 * torch.randn(image.shape, generator=gen)
    return image.clamp(0, 1)[0]


def _phase_cells(
    size: int, gen: torch.Generator, rng: random.Random, touching: float
) -> tuple[torch.Tensor, torch.Tensor]:
    # cell radius scales with the image: 128 px images hold 20-30 cells of radius 7-14 px
    scale = size / 128
    n_cells = int(rng.uniform(20, 30) * scale**2)
    centres, radii = _place_cells(size, rng, n_cells, (7 * scale, 14 * scale), touching)
    raw = _cell_partition(size, centres, radii, gen)
    # a 1-pixel rim on each side of a shared border becomes background: a 2-pixel gap
    instances = torch.where(_neighbour_differs(raw[None], 1)[0], 0, raw)
    instances = _relabel(instances, min_area=int(12 * scale**2))
    return instances, _phase_appearance(raw, instances, gen)


def _em_cells(size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Densely packed cells: a Voronoi partition on a smoothly warped grid, membranes 2-3 px."""
    spacing = 16.0  # mean cell diameter in pixels
    n_side = max(2, round(size / spacing))
    jy, jx = torch.meshgrid(torch.arange(n_side), torch.arange(n_side), indexing="ij")
    seeds = torch.stack([jy, jx], -1).reshape(-1, 2).float() + 0.5
    seeds = (seeds + 0.35 * torch.randn(seeds.shape, generator=gen)) * (size / n_side)
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    warp_y = 4.0 * smooth_field((size, size), 4, gen)[0, 0]
    warp_x = 4.0 * smooth_field((size, size), 4, gen)[0, 0]
    pos = torch.stack([yy + warp_y, xx + warp_x], -1).reshape(-1, 2)
    owner = torch.cdist(pos, seeds).argmin(1).reshape(size, size) + 1
    membrane = _neighbour_differs(owner[None], 1)[0]
    instances = _relabel(torch.where(membrane, 0, owner), min_area=8)
    membrane = instances == 0
    # appearance: light cytoplasm, dark membranes, dark organelles as distractors
    image = 0.62 + 0.06 * smooth_field((size, size), 5, gen)[0, 0]
    image = image + 0.06 * gaussian_blur(torch.randn(1, 1, size, size, generator=gen), 1.0)[0, 0]
    blobs = gaussian_blur((torch.rand(1, 1, size, size, generator=gen) < 0.004).float(), 1.5)
    image = image - 2.5 * blobs[0, 0]
    image = torch.where(membrane, 0.18 + 0.05 * torch.rand(size, size, generator=gen), image)
    image = gaussian_blur(image[None, None], 0.8)[0]
    image = image + 0.04 * torch.randn(image.shape, generator=gen)
    return instances, image.clamp(0, 1)


def make_cells(
    n: int, size: int, *, seed: int, style: str = "phase", touching: float = 0.6
) -> CellImages:
    """Synthetic cell images with instance labels and semantic masks.

    ``"phase"`` imitates the U-Net paper's phase-contrast / DIC cell-tracking data: 20-30 cells per
    128 x 128 px (cell count grows with the area), radius 7-14 px (scaled with ``size``),
    irregular elongated outlines; cells put against each other share a border that is turned into
    a 2-pixel background gap, so a plain cross-entropy tends to merge them. ``"em"`` imitates the
    ISBI 2012 EM stacks: cells fill the image and the membranes between them (2-3 px) are the
    target class.

    Parameters
    ----------
    n : int
        Number of images.
    size : int
        Side of the square images in pixels (at least 32).
    seed : int
        Image ``i`` depends only on ``(seed, i)``.
    style : {"phase", "em"}
    touching : float
        For ``"phase"``: probability that a new cell is placed against an existing one. With the
        default 0.6 about three quarters of the cells touch another (:func:`touching_fraction`),
        since each such placement makes two cells touch.

    Returns
    -------
    CellImages
        images ``(n, 1, size, size)`` float32 in [0, 1], instances and masks ``(n, size, size)``.

    References
    ----------
    Ronneberger, Fischer, Brox (2015), U-Net, MICCAI, Sec. 3 and Fig. 3.

    Examples
    --------
    >>> cells = make_cells(2, 64, seed=0)
    >>> cells.images.shape, cells.masks.dtype
    (torch.Size([2, 1, 64, 64]), torch.int64)
    """
    check_int("n", n)
    check_int("size", size, minimum=32)
    check_int("seed", seed, minimum=0)
    if style not in CELL_STYLES:
        raise ValueError(f"style must be one of {CELL_STYLES}, got {style!r}")
    if not 0.0 <= touching <= 1.0:
        raise ValueError(f"touching must be a probability in [0, 1], got {touching!r}")
    images, instances = [], []
    for i in range(n):
        s = case_seed(seed, i)
        gen = torch.Generator().manual_seed(s)
        if style == "phase":
            inst, img = _phase_cells(size, gen, random.Random(s), touching)
        else:
            inst, img = _em_cells(size, gen)
        images.append(img)
        instances.append(inst)
    inst_t = torch.stack(instances)
    masks = (inst_t > 0).long() if style == "phase" else (inst_t == 0).long()
    return CellImages(torch.stack(images).float(), inst_t, masks, style)


def touching_fraction(instances: torch.Tensor, gap: int = 2) -> float:
    """Fraction of cells that have another cell within ``gap`` pixels (over a whole batch).

    Parameters
    ----------
    instances : Tensor
        ``(N, H, W)`` or ``(H, W)`` instance map, 0 background.
    gap : int
        Widest background border (pixels) between two cells that still counts as touching.

    Examples
    --------
    >>> lab = torch.zeros(1, 8, 12, dtype=torch.long)
    >>> lab[0, 2:6, 1:5], lab[0, 2:6, 7:11] = 1, 2  # 2-pixel gap
    >>> touching_fraction(lab)
    1.0
    """
    if instances.ndim == 2:
        instances = instances[None]
    if instances.ndim != 3 or instances.dtype.is_floating_point:
        raise ValueError(
            f"instances must be an integer (N, H, W) or (H, W) map, got {tuple(instances.shape)} "
            f"{instances.dtype}"
        )
    near = _neighbour_differs(
        instances, gap + 1
    )  # a gap of `gap` pixels: the other cell is gap + 1 away
    # count cells per image: offset ids so that cell ids of different images do not collide
    offset = instances.flatten(1).max(1).values.cumsum(0) - instances.flatten(1).max(1).values
    ids = torch.where(instances > 0, instances + offset[:, None, None], 0)
    n_cells = int((torch.bincount(ids.flatten()) > 0)[1:].sum())
    n_touch = int(torch.unique(ids[near]).numel())
    return n_touch / n_cells if n_cells else 0.0

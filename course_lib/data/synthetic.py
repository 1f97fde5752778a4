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

Every generator is a pure function of its arguments and ``seed``: case ``i`` depends only on
``(seed, i)``, so the first cases of a large set equal a small set made with the same seed. Pixel
work is vectorised torch on the CPU (the same numbers on every machine); only the placement of a
few dozen cells loops in Python.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from course_lib.ops.checks import check_int

UNLABELED = -1
"""Label value of voxels nobody annotated; losses skip them with ``ignore_index=-1``."""

CT_LABELS = {"background": 0, "organ": 1, "lesion": 2}
"""Classes of :func:`make_volumes`, CT and MR modality alike (the form of nnU-Net's ``labels``)."""

MR_LABELS = {"background": 0, "target": 1}
"""Classes of :func:`make_mr_multichannel` (its single small target; not of MR-modality
:func:`make_volumes`, which uses :data:`CT_LABELS`)."""

CELL_STYLES = ("phase", "em")
MODALITIES = ("ct", "mr")

# Hounsfield units of the tissues the CT-like volumes contain (textbook values).
HU_AIR, HU_FAT, HU_SOFT_TISSUE, HU_BONE = -1000.0, -100.0, 40.0, 700.0
# Contrast-enhanced organ parenchyma: 90-130 HU; a hypodense lesion sits 35-60 HU below it.
HU_ORGAN_RANGE, HU_LESION_DROP_RANGE = (90.0, 130.0), (35.0, 60.0)
# Brightness of the gap between two touching cells above the cells (images in [0, 1], noise
# std 0.03): a faint line, as in phase-contrast microscopy, not the bright halo of a free edge.
_GAP_CONTRAST = 0.12


# ----------------------------------------------------------------------------------------------
# Containers
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# Small shared helpers
# ----------------------------------------------------------------------------------------------
def _case_seed(seed: int, index: int) -> int:
    """Seed of item ``index``: items depend on ``(seed, index)`` only, not on how many are made."""
    return (seed * 1_000_003 + index * 7_919 + 12_345) % (2**63 - 1)


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def _gaussian_blur(x: torch.Tensor, sigma: float | tuple[float, ...]) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, C, *spatial)`` (2D or 3D) with replicate padding.

    ``sigma`` is in pixels, one value or one per spatial axis (0 leaves that axis alone).
    """
    nd = x.ndim - 2
    sigmas = (float(sigma),) * nd if isinstance(sigma, (int, float)) else tuple(sigma)
    if len(sigmas) != nd:
        raise ValueError(f"sigma needs {nd} values for a {nd}D input, got {sigma!r}")
    n, c = x.shape[:2]
    out = x.reshape(n * c, 1, *x.shape[2:])
    conv = F.conv2d if nd == 2 else F.conv3d
    for axis, s in enumerate(sigmas):
        if s <= 0:
            continue
        k = _gaussian_kernel(s).to(x)
        r = (k.numel() - 1) // 2
        shape = [1, 1] + [1] * nd
        shape[2 + axis] = k.numel()
        pad = [0, 0] * nd
        pad[2 * (nd - 1 - axis)] = pad[2 * (nd - 1 - axis) + 1] = r
        out = conv(F.pad(out, pad, mode="replicate"), k.reshape(shape))
    return out.reshape(x.shape)


def _smooth_field(
    shape: tuple[int, ...], coarse: int, gen: torch.Generator, n: int = 1
) -> torch.Tensor:
    """``(n, 1, *shape)`` random field, smooth on the scale ``shape / coarse``, std about 1."""
    grid = torch.randn(n, 1, *([coarse] * len(shape)), generator=gen)
    mode = "bicubic" if len(shape) == 2 else "trilinear"
    return F.interpolate(grid, size=shape, mode=mode, align_corners=True)


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


# ----------------------------------------------------------------------------------------------
# 2D cells
# ----------------------------------------------------------------------------------------------
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
    image = 0.55 + 0.08 * _smooth_field((size, size), 3, gen)  # uneven illumination
    texture = 0.05 * _gaussian_blur(torch.randn(1, 1, size, size, generator=gen), 1.5)
    gap = ((raw > 0) & (instances == 0))[None, None]
    inside = cell_level[raw][None, None] + texture + _GAP_CONTRAST * gap
    image = torch.where(cluster > 0, inside, image)
    halo = _gaussian_blur(cluster, 2.0) * (1 - cluster)  # light scattered just outside
    image = image + (0.4 + 0.3 * torch.rand(1, generator=gen)) * halo
    image = _gaussian_blur(image, 1.0)  # optics blur the 2-pixel gaps further
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
    warp_y = 4.0 * _smooth_field((size, size), 4, gen)[0, 0]
    warp_x = 4.0 * _smooth_field((size, size), 4, gen)[0, 0]
    pos = torch.stack([yy + warp_y, xx + warp_x], -1).reshape(-1, 2)
    owner = torch.cdist(pos, seeds).argmin(1).reshape(size, size) + 1
    membrane = _neighbour_differs(owner[None], 1)[0]
    instances = _relabel(torch.where(membrane, 0, owner), min_area=8)
    membrane = instances == 0
    # appearance: light cytoplasm, dark membranes, dark organelles as distractors
    image = 0.62 + 0.06 * _smooth_field((size, size), 5, gen)[0, 0]
    image = image + 0.06 * _gaussian_blur(torch.randn(1, 1, size, size, generator=gen), 1.0)[0, 0]
    blobs = _gaussian_blur((torch.rand(1, 1, size, size, generator=gen) < 0.004).float(), 1.5)
    image = image - 2.5 * blobs[0, 0]
    image = torch.where(membrane, 0.18 + 0.05 * torch.rand(size, size, generator=gen), image)
    image = _gaussian_blur(image[None, None], 0.8)[0]
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
        s = _case_seed(seed, i)
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


# ----------------------------------------------------------------------------------------------
# 3D volumes
# ----------------------------------------------------------------------------------------------
def _check_shape(name: str, shape: object) -> tuple[int, int, int]:
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) != 3
        or not all(isinstance(s, int) and s >= 8 for s in shape)
    ):
        raise ValueError(f"{name} must be three ints >= 8 (D, H, W), got {shape!r}")
    return (shape[0], shape[1], shape[2])


def _check_range(name: str, value: object) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2 or not 0 < value[0] <= value[1]:
        raise ValueError(f"{name} must be a (low, high) pair with 0 < low <= high, got {value!r}")
    return float(value[0]), float(value[1])


def _uniform(gen: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(1, generator=gen))


def _mm_grid(shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> torch.Tensor:
    """``(3, D, H, W)`` voxel-centre coordinates in mm, origin at the volume's centre."""
    axes = [(torch.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing, strict=True)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"))


def _blob(
    grid: torch.Tensor,
    centre: torch.Tensor,
    radii: torch.Tensor,
    gen: torch.Generator,
    roughness: float,
) -> torch.Tensor:
    """Smooth irregular blob: an ellipsoid whose surface is pushed in and out by a smooth field."""
    rel = (grid - centre[:, None, None, None]) / radii[:, None, None, None]
    rho = rel.pow(2).sum(0).sqrt()
    bumps = _smooth_field(tuple(grid.shape[1:]), 4, gen)[0, 0]
    return rho < 1 + roughness * bumps


def _organ_and_lesion(
    grid: torch.Tensor, spacing: tuple[float, float, float], gen: torch.Generator
) -> torch.Tensor:
    """Label map: organ (a few % of the voxels, irregular), lesion inside it (~0.1-0.4 %)."""
    shape = tuple(grid.shape[1:])
    extent = torch.tensor([n * s for n, s in zip(shape, spacing, strict=True)])
    total_mm3 = float(extent.prod())
    organ_frac = _uniform(gen, 0.03, 0.06)
    aspect = torch.tensor([1.0, _uniform(gen, 0.7, 1.0), _uniform(gen, 0.7, 1.0)])
    r0 = (organ_frac * total_mm3 / (4 / 3 * math.pi * float(aspect.prod()))) ** (1 / 3)
    radii = torch.minimum(r0 * aspect, 0.36 * extent)
    centre = (torch.rand(3, generator=gen) - 0.5) * 0.3 * extent
    organ = _blob(grid, centre, radii, gen, roughness=0.3)
    for _ in range(2):  # lobes: smaller blobs bulging out of the main one
        direction = torch.randn(3, generator=gen)
        lobe_centre = centre + 0.6 * radii * direction / direction.norm()
        organ |= _blob(grid, lobe_centre, radii * _uniform(gen, 0.45, 0.65), gen, 0.3)
    # lesion: isotropic in mm, at least one voxel wide, centred on a voxel deep inside the organ
    lesion_frac = _uniform(gen, 0.001, 0.003)
    r_les = max((lesion_frac * total_mm3 / (4 / 3 * math.pi)) ** (1 / 3), 0.6 * max(spacing))
    offset = (torch.rand(3, generator=gen) - 0.5) * 0.6 * torch.clamp(radii - r_les, min=0)
    step = torch.tensor(spacing)
    centre_les = torch.round((centre + offset) / step + (torch.tensor(shape) - 1) / 2)
    centre_les = (centre_les - (torch.tensor(shape) - 1) / 2) * step
    lesion = _blob(grid, centre_les, torch.full((3,), r_les), gen, roughness=0.1)
    centre_voxel = tuple(
        int(v) for v in torch.round(centre_les / step + (torch.tensor(shape) - 1) / 2)
    )
    lesion[centre_voxel] = True
    organ = organ | lesion
    return organ.long() + lesion.long()


def _body(
    grid: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Body outline (elliptic cylinder along z), its fat rim, and a spine-like bone."""
    _, y, x = grid
    ey, ex = float(y.abs().max()), float(x.abs().max())
    wobble = 0.04 * _smooth_field(tuple(grid.shape[1:]), 3, gen)[0, 0]
    rho = torch.sqrt((y / (0.92 * ey)) ** 2 + (x / (0.95 * ex)) ** 2)
    body = rho < 1 + wobble
    fat = body & (rho > 0.86 + wobble)
    bone = ((y - 0.7 * ey) / (0.12 * ey)) ** 2 + (x / (0.12 * ex)) ** 2 < 1
    return body, fat, bone & body


def _ct_image(label: torch.Tensor, grid: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    body, fat, bone = _body(grid, gen)
    organ_hu = _uniform(gen, *HU_ORGAN_RANGE)
    lesion_hu = organ_hu - _uniform(gen, *HU_LESION_DROP_RANGE)
    image = torch.full(label.shape, HU_AIR)
    image[body] = HU_SOFT_TISSUE
    image[fat] = HU_FAT
    image[bone] = HU_BONE
    image[label == 1] = organ_hu
    image[label == 2] = lesion_hu
    image = _gaussian_blur(image[None, None], 0.7)[0, 0]  # partial-volume effect
    texture = 10.0 * _smooth_field(tuple(label.shape), 8, gen)[0, 0]
    noise = _uniform(gen, 12.0, 22.0) * torch.randn(label.shape, generator=gen)
    return torch.where(body, image + texture, image) + noise


def _mr_image(label: torch.Tensor, grid: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """T1-like intensities (fat bright, bone dark), multiplicative bias field, Rician noise."""
    body, fat, bone = _body(grid, gen)
    image = torch.zeros(label.shape)
    image[body] = 0.45
    image[fat] = 0.9
    image[bone] = 0.12
    image[label == 1] = _uniform(gen, 0.55, 0.62)
    image[label == 2] = _uniform(gen, 0.36, 0.42)
    image = _gaussian_blur(image[None, None], 0.7)[0, 0]
    bias = torch.exp(0.25 * _smooth_field(tuple(label.shape), 3, gen)[0, 0])
    sigma = 0.04
    real = image * bias + sigma * torch.randn(label.shape, generator=gen)
    imag = sigma * torch.randn(label.shape, generator=gen)
    return 1000.0 * torch.sqrt(real**2 + imag**2)  # magnitude image, arbitrary units


def make_volumes(
    n: int,
    *,
    seed: int,
    modality: str = "ct",
    shape: tuple[int, int, int] = (32, 64, 64),
    inplane_spacing: tuple[float, float] = (0.6, 1.0),
    slice_spacing: tuple[float, float] = (1.0, 5.0),
    shape_jitter: float = 0.2,
) -> list[VolumeCase]:
    """Organ-with-lesion volumes, CT-like (HU) or MR-like, varying shape and anisotropic spacing.

    Each case has a body (soft tissue, fat rim, a spine-like bone, air outside), a smooth irregular
    lobed organ (2-8 % of the voxels) and a hypodense lesion inside it (0.1-0.4 %): the imbalance
    V-Net's Dice loss answers. Label 0 background, 1 organ, 2 lesion (:data:`CT_LABELS`).

    Parameters
    ----------
    n : int
        Number of cases.
    seed : int
        Case ``i`` depends only on ``(seed, i)``.
    modality : {"ct", "mr"}
        For one seed both modalities share the geometry (shapes, spacings, labels).
        ``"ct"``: Hounsfield units (air -1000, fat -100, soft tissue 40, contrast-enhanced organ
        90-130, lesion 35-60 below it, bone 700; noise std 12-22 HU). ``"mr"``: T1-like arbitrary
        units (0-1000) with a smooth multiplicative bias field and Rician noise.
    shape : (int, int, int)
        Typical ``(D, H, W)``; each axis is scaled by a random factor in ``1 +- shape_jitter``.
    inplane_spacing, slice_spacing : (float, float)
        Ranges (mm) of the y/x spacing (shared by both in-plane axes) and the z spacing.
    shape_jitter : float
        Relative variation of the shape across cases (0 keeps ``shape``).

    Returns
    -------
    list of VolumeCase
        ``image`` ``(1, D, H, W)`` float32, ``label`` ``(D, H, W)`` int64, ``spacing`` (z, y, x) mm.

    References
    ----------
    Milletari, Navab, Ahmadi (2016), V-Net, 3DV, Sec. 4 (prostate MRI, strong imbalance).

    Examples
    --------
    >>> case = make_volumes(1, seed=0, shape=(16, 32, 32), shape_jitter=0.0)[0]
    >>> case.image.shape, case.label.unique().tolist()
    (torch.Size([1, 16, 32, 32]), [0, 1, 2])
    """
    check_int("n", n)
    check_int("seed", seed, minimum=0)
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    shape = _check_shape("shape", shape)
    inplane = _check_range("inplane_spacing", inplane_spacing)
    slices = _check_range("slice_spacing", slice_spacing)
    if not 0 <= shape_jitter < 0.5:
        raise ValueError(f"shape_jitter must be in [0, 0.5), got {shape_jitter!r}")
    cases = []
    for i in range(n):
        gen = torch.Generator().manual_seed(_case_seed(seed, i))
        d, h, w = (
            max(8, round(s * _uniform(gen, 1 - shape_jitter, 1 + shape_jitter))) for s in shape
        )
        case_shape = (d, h, w)
        s_xy = round(_uniform(gen, *inplane), 3)
        spacing = (round(_uniform(gen, *slices), 3), s_xy, s_xy)
        grid = _mm_grid(case_shape, spacing)
        label = _organ_and_lesion(grid, spacing, gen)
        make_image = _ct_image if modality == "ct" else _mr_image
        image = make_image(label, grid, gen)
        cases.append(
            VolumeCase(
                case_id=f"{modality}_{i:03d}",
                image=image[None].float(),
                label=label,
                spacing=spacing,
                channel_names=("CT",) if modality == "ct" else ("T1",),
            )
        )
    return cases


def _segment_distance(grid: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distance (mm) of every voxel to the segment from ``a`` to ``b``."""
    ab = b - a
    rel = grid - a[:, None, None, None]
    t = ((rel * ab[:, None, None, None]).sum(0) / ab.dot(ab)).clamp(0, 1)
    return (rel - t * ab[:, None, None, None]).pow(2).sum(0).sqrt()


def make_mr_multichannel(
    n: int,
    *,
    seed: int,
    shape: tuple[int, int, int] = (32, 64, 64),
    spacing: tuple[float, float, float] = (1.5, 0.4, 0.4),
    slice_jitter: float = 0.25,
) -> list[VolumeCase]:
    """Two-channel MR-like cases (T1-like, T2-like) with a small low-contrast target.

    Anisotropic like the vestibular-schwannoma MRI of Wang et al. (in-plane 0.4 mm, slices 1.5 mm;
    the number of slices varies by ``+- slice_jitter``). The target (label 1, 0.3-0.8 % of the
    voxels) is slightly bright in both channels; enhancing vessels are equally bright in T1 but
    dark in T2 (flow void), and fluid is bright in T2 but dark in T1. So neither channel alone
    separates the target from its look-alikes; both together do.

    Returns
    -------
    list of VolumeCase
        ``image`` ``(2, D, H, W)`` float32 (channels ``("T1", "T2")``), ``label`` ``(D, H, W)``
        with 0 background, 1 target (:data:`MR_LABELS`).

    References
    ----------
    Wang et al. (2019), Automatic segmentation of vestibular schwannoma from T2-weighted MRI by deep
    spatial attention with hardness-weighted loss, MICCAI; Dolz et al. (2018), two-pathway U-Net.

    Examples
    --------
    >>> case = make_mr_multichannel(1, seed=0, shape=(16, 48, 48))[0]
    >>> case.image.shape[0], case.spacing
    (2, (1.5, 0.4, 0.4))
    """
    check_int("n", n)
    check_int("seed", seed, minimum=0)
    shape = _check_shape("shape", shape)
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(f"spacing must be three positive mm values (z, y, x), got {spacing!r}")
    spacing = (float(spacing[0]), float(spacing[1]), float(spacing[2]))
    if not 0 <= slice_jitter < 0.5:
        raise ValueError(f"slice_jitter must be in [0, 0.5), got {slice_jitter!r}")
    cases = []
    for i in range(n):
        gen = torch.Generator().manual_seed(_case_seed(seed, i) + 1)
        depth = max(8, round(shape[0] * _uniform(gen, 1 - slice_jitter, 1 + slice_jitter)))
        case_shape = (depth, shape[1], shape[2])
        grid = _mm_grid(case_shape, spacing)
        extent = torch.tensor([n_ * s for n_, s in zip(case_shape, spacing, strict=True)])
        total_mm3 = float(extent.prod())
        r_t = (_uniform(gen, 0.003, 0.008) * total_mm3 / (4 / 3 * math.pi)) ** (1 / 3)
        r_t = min(r_t, 0.3 * float(extent.min()))
        centre = (torch.rand(3, generator=gen) - 0.5) * 0.4 * extent
        target = _blob(grid, centre, torch.full((3,), r_t), gen, roughness=0.15)
        # fluid pocket next to the target, vessels crossing the field
        side = torch.randn(3, generator=gen)
        side = side / side.norm() * 1.6 * r_t
        fluid = _blob(grid, centre + side, torch.full((3,), 1.2 * r_t), gen, 0.2) & ~target
        vessels = torch.zeros(case_shape, dtype=torch.bool)
        for _ in range(3):
            a, b = (torch.rand(2, 3, generator=gen) - 0.5) * extent
            vessels |= _segment_distance(grid, a, b) < _uniform(gen, 0.8, 1.5)
        vessels &= ~target
        tissue_t1, tissue_t2 = 0.45, 0.45
        t1 = torch.full(case_shape, tissue_t1)
        t2 = torch.full(case_shape, tissue_t2)
        t1[fluid], t2[fluid] = 0.2, 0.9
        t1[vessels], t2[vessels] = 0.62, 0.15
        t1[target] = tissue_t1 + _uniform(gen, 0.12, 0.17)  # low contrast, like the vessels
        t2[target] = tissue_t2 + _uniform(gen, 0.1, 0.15)
        image = torch.stack([t1, t2])[None]
        image = image + 0.06 * _smooth_field(case_shape, 6, gen, n=2).transpose(0, 1)
        image = _gaussian_blur(image, (0.3, 0.8, 0.8))[0]
        bias = torch.exp(0.2 * _smooth_field(case_shape, 3, gen)[0])
        image = image * bias + 0.05 * torch.randn(image.shape, generator=gen)
        cases.append(
            VolumeCase(
                case_id=f"mr2ch_{i:03d}",
                image=(1000.0 * image.clamp(min=0)).float(),
                label=target.long(),
                spacing=spacing,
                channel_names=("T1", "T2"),
            )
        )
    return cases


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

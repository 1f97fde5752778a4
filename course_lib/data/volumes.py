"""Synthetic CT/MR-like volumes and the two-channel MR of the 2.5D U-Net chapter.

* **volumes** (V-Net, nnU-Net, 3D U-Net): a smooth irregular organ (a few percent of the voxels)
  holding a small lesion (well under one percent), CT intensities in Hounsfield units or MR-like
  intensities under a bias field; shape and spacing vary across cases, slices are thick.
* **multi-channel MR** (2.5D U-Net, Wang et al. 2019): T1-like and T2-like channels at
  0.4 x 0.4 x 1.5 mm with a small low-contrast target that only both channels together give away.

Case ``i`` depends only on ``(seed, i)``.
"""

from __future__ import annotations

import math

import torch

from course_lib.data._fields import case_seed, gaussian_blur, smooth_field
from course_lib.data.cases import VolumeCase
from course_lib.ops.checks import check_int

MODALITIES = ("ct", "mr")

# Hounsfield units of the tissues the CT-like volumes contain (textbook values).
HU_AIR, HU_FAT, HU_SOFT_TISSUE, HU_BONE = -1000.0, -100.0, 40.0, 700.0
# Contrast-enhanced organ parenchyma: 90-130 HU; a hypodense lesion sits 35-60 HU below it.
HU_ORGAN_RANGE, HU_LESION_DROP_RANGE = (90.0, 130.0), (35.0, 60.0)


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
    bumps = smooth_field(tuple(grid.shape[1:]), 4, gen)[0, 0]
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
    wobble = 0.04 * smooth_field(tuple(grid.shape[1:]), 3, gen)[0, 0]
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
    image = gaussian_blur(image[None, None], 0.7)[0, 0]  # partial-volume effect
    texture = 10.0 * smooth_field(tuple(label.shape), 8, gen)[0, 0]
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
    image = gaussian_blur(image[None, None], 0.7)[0, 0]
    bias = torch.exp(0.25 * smooth_field(tuple(label.shape), 3, gen)[0, 0])
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
        gen = torch.Generator().manual_seed(case_seed(seed, i))
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
        gen = torch.Generator().manual_seed(case_seed(seed, i) + 1)
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
        image = image + 0.06 * smooth_field(case_shape, 6, gen, n=2).transpose(0, 1)
        image = gaussian_blur(image, (0.3, 0.8, 0.8))[0]
        bias = torch.exp(0.2 * smooth_field(case_shape, 3, gen)[0])
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

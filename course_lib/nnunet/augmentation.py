"""nnU-Net v2's training-time augmentation: the spatial and gamma transforms, and mirroring.

One call, :func:`augment`, runs nnU-Net v2's steps in v2's order on a batch, image and label
together, on the batch's device, with v2's probabilities (``get_training_transforms``):

1. **dummy 2D** for anisotropic 3D patches (``max(patch) / patch[0] > 3``): the first spatial
   axis is folded into the channels, so the spatial transform below acts in-plane only and the
   same way on every slice of a sample;
2. **spatial transform**, per sample: rotation with p = 0.2 (3D: about all three axes, +-30 deg;
   dummy 2D: in-plane, +-180 deg; 2D: +-180 deg, or +-15 deg for patches more than 1.5x longer
   than wide), scaling with p = 0.2 (one factor in (0.7, 1.4) for all axes), elastic
   deformation with p = 0 (**off in v2**; the 2018 paper's trainer applied it with p = 0.2 and
   scaling (0.85, 1.25), v1's later ``nnUNetTrainerV2`` already switched it off). The label
   goes through the same warp as one-hot channels, interpolated linearly and turned back by
   argmax, as v2 does, so it stays in its label set;
3. **gamma** on the inverted image with p = 0.1, then on the image with p = 0.3: gamma from
   (0.7, 1) or (1, 1.5) with 50 % each, the mean and standard deviation of each channel kept;
4. **mirroring** along every allowed axis (all of them) with p = 0.5 each.

The transforms themselves are those of :mod:`course_lib.data.augment` (rotation and scaling,
elastic fields, gamma, flips); this module adds v2's probabilities, ranges, order and the dummy-2D
folding. Left out: v2's intensity transforms between steps 2 and 3 (Gaussian noise p = 0.1,
blur p = 0.2, brightness and contrast p = 0.15 each, simulated low resolution p = 0.25) and the
larger initial patch v2 crops so that a rotated patch has no empty corners (here the border
voxels are repeated instead).

Random draws come from ``generator`` (a CPU ``torch.Generator``, or the global one), so a seed
gives the same augmentation on the CPU and on a GPU.

References
----------
Isensee et al., Nature Methods 2021, online methods "data augmentation"; nnunetv2 2.8.1
``training/nnUNetTrainer/nnUNetTrainer.py`` (``get_training_transforms``,
``configure_rotation_dummyDA_mirroring_and_inital_patch_size``); batchgeneratorsv2 0.3.6.

Examples
--------
>>> params = augmentation_params((32, 56))
>>> params.rotation_deg, params.dummy_2d, params.mirror_axes
((15.0,), False, (0, 1))
>>> image, label = torch.rand(2, 1, 32, 56), torch.randint(0, 3, (2, 32, 56))
>>> out, out_label = augment(image, label, params, generator=torch.Generator().manual_seed(0))
>>> out.shape, set(out_label.unique().tolist()) <= {0, 1, 2}
(torch.Size([2, 1, 32, 56]), True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch

from course_lib.data.augment import (
    elastic_deform_2d,
    random_flip,
    random_gamma,
    random_rotate_scale,
    smooth_deform_3d,
)

ANISO_THRESHOLD = 3.0  # dummy 2D when max(patch) / patch[0] > 3 (nnunetv2 configuration.py)
P_ELASTIC_V1 = 0.2  # the 2018 trainer (v1 default_3D_augmentation_params["p_eldef"]); v2: 0

Range = tuple[float, float]


@dataclass(frozen=True)
class AugmentationParams:
    """nnU-Net v2's augmentation settings for one configuration (see :func:`augmentation_params`).

    ``rotation_deg`` holds the largest rotation in degrees: one value for 2D and dummy-2D patches,
    one per axis (z, y, x) for 3D patches. Probabilities are per sample (``p_mirror`` per axis).
    """

    rotation_deg: tuple[float, ...]
    dummy_2d: bool
    mirror_axes: tuple[int, ...]
    p_rotation: float = 0.2
    p_scaling: float = 0.2
    scaling: Range = (0.7, 1.4)
    p_elastic: float = 0.0
    p_gamma_inverted: float = 0.1
    p_gamma: float = 0.3
    gamma: Range = (0.7, 1.5)
    p_mirror: float = 0.5

    def __post_init__(self) -> None:
        for name in ("p_rotation", "p_scaling", "p_elastic", "p_gamma_inverted", "p_gamma"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
        if not 0 <= self.p_mirror <= 1:
            raise ValueError(f"p_mirror must be a probability in [0, 1], got {self.p_mirror!r}")
        for name in ("scaling", "gamma"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must be (lo, hi) with 0 < lo <= hi, got {(lo, hi)!r}")
        if any(a < 0 for a in self.rotation_deg) or len(self.rotation_deg) not in (1, 3):
            raise ValueError(
                f"rotation_deg must be 1 (2D) or 3 (3D) angles >= 0, got {self.rotation_deg!r}"
            )

    def replace(self, **changes: object) -> AugmentationParams:
        """A copy with some fields changed, e.g. ``params.replace(p_elastic=P_ELASTIC_V1)``."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def augmentation_params(patch_size: Sequence[int]) -> AugmentationParams:
    """v2's rotation range, dummy-2D switch and mirror axes for a planned patch.

    * 2D: +-180 deg, or +-15 deg if ``max(patch) / min(patch) > 1.5``; mirror axes (0, 1).
    * 3D: dummy 2D if ``max(patch) / patch[0] > 3``, then +-180 deg in-plane; else +-30 deg about
      each axis; mirror axes (0, 1, 2).

    Examples
    --------
    >>> augmentation_params((20, 160, 160)).dummy_2d, augmentation_params((64, 96, 96)).rotation_deg
    (True, (30.0, 30.0, 30.0))
    """
    patch = tuple(int(s) for s in patch_size)
    if len(patch) not in (2, 3) or min(patch) < 1:
        raise ValueError(f"patch_size must be 2 or 3 positive sizes, got {tuple(patch_size)!r}")
    if len(patch) == 2:
        angle = 15.0 if max(patch) / min(patch) > 1.5 else 180.0
        return AugmentationParams(rotation_deg=(angle,), dummy_2d=False, mirror_axes=(0, 1))
    if max(patch) / patch[0] > ANISO_THRESHOLD:
        return AugmentationParams(rotation_deg=(180.0,), dummy_2d=True, mirror_axes=(0, 1, 2))
    return AugmentationParams(rotation_deg=(30.0,) * 3, dummy_2d=False, mirror_axes=(0, 1, 2))


def _coin(p: float, n: int, generator: torch.Generator | None) -> list[bool]:
    """``n`` independent draws that are True with probability ``p``."""
    return (torch.rand(n, generator=generator) < p).tolist()


def _warp_sample(
    image: torch.Tensor,
    label: torch.Tensor,
    params: AugmentationParams,
    transforms: tuple[bool, bool, bool],
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step 2 on one sample ``(1, C, *spatial)``: elastic, then rotation and scaling.

    The label travels as one-hot channels beside the image (linear interpolation) and comes back
    by argmax over its values, so image and label see the same warp.
    """
    elastic, rotate, scale = transforms
    spatial = image.shape[2:]
    values = torch.unique(label)
    work = torch.float64 if image.dtype == torch.float64 else torch.float32
    one_hot = (label[:, None] == values.view(1, -1, *([1] * len(spatial)))).to(work)
    stack = torch.cat([image.to(work), one_hot], dim=1)
    if params.dummy_2d:  # fold z into the channels: a 2D transform, the same on every slice
        stack = stack.reshape(1, -1, *spatial[1:])
    nd = stack.ndim - 2
    if (nd == 2) != (len(params.rotation_deg) == 1):
        raise ValueError(
            f"rotation_deg {params.rotation_deg!r} does not fit {nd}D patches "
            "(1 angle for 2D and dummy 2D, 3 for 3D)"
        )
    if elastic:
        if nd == 2:
            stack, _ = elastic_deform_2d(stack, generator=generator, image_mode="bilinear")
        else:
            stack, _ = smooth_deform_3d(stack, generator=generator)
    if rotate or scale:
        angle = params.rotation_deg[0] if nd == 2 else params.rotation_deg
        no_angle = 0.0 if nd == 2 else (0.0, 0.0, 0.0)
        stack, _ = random_rotate_scale(
            stack,
            max_angle=angle if rotate else no_angle,  # type: ignore[arg-type]
            scale=params.scaling if scale else (1.0, 1.0),
            generator=generator,
        )
    stack = stack.reshape(1, -1, *spatial)
    c = image.shape[1]
    # argmax over the one-hot channels, as a running maximum (faster than argmax along dim 1)
    best, index = stack[:, c], torch.zeros_like(label, dtype=torch.long)
    for k in range(1, len(values)):
        higher = stack[:, c + k] > best
        best, index = torch.where(higher, stack[:, c + k], best), index.masked_fill(higher, k)
    return stack[:, :c].to(image.dtype), values[index]


def _gamma(
    image: torch.Tensor,
    params: AugmentationParams,
    p: float,
    invert: bool,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Step 3: gamma on samples drawn with probability ``p``, channel mean and std retained."""
    lo, hi = params.gamma
    out = []
    for i, chosen in enumerate(_coin(p, image.shape[0], generator)):
        x = image[i : i + 1]
        if chosen:
            low_half = hi <= 1 or (lo < 1 and bool(torch.rand(1, generator=generator) < 0.5))
            span = (lo, min(hi, 1.0)) if low_half else (max(lo, 1.0), hi)
            sign = -1.0 if invert else 1.0
            flat = (sign * x).flatten(2)
            mean, std = flat.mean(-1, keepdim=True), flat.std(-1, keepdim=True)
            g = random_gamma(sign * x, span, generator=generator).flatten(2)
            g = (g - g.mean(-1, keepdim=True)) / g.std(-1, keepdim=True).clamp_min(1e-8)
            x = (sign * (g * std + mean)).reshape(x.shape)
        out.append(x)
    return torch.cat(out)


def augment(
    image: torch.Tensor,
    label: torch.Tensor,
    params: AugmentationParams,
    *,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """nnU-Net v2's training augmentation of a batch, image and label together.

    Parameters
    ----------
    image : Tensor
        ``(N, C, H, W)`` or ``(N, C, D, H, W)`` floating point, on any device.
    label : Tensor
        ``(N, *spatial)`` integer label map (any values, e.g. -1 for "outside").
    params : AugmentationParams
        From :func:`augmentation_params` (v2's defaults) or changed with ``params.replace``.
    generator : torch.Generator, optional
        CPU generator for every random draw.

    Returns
    -------
    (Tensor, Tensor)
        Image (same shape, dtype, device) and label (same shape and dtype, values from the input
        label's set).
    """
    if not isinstance(image, torch.Tensor) or not image.dtype.is_floating_point:
        raise ValueError(f"image must be a floating-point tensor, got {type(image).__name__}")
    if image.ndim not in (4, 5):
        raise ValueError(f"image must be (N, C, H, W) or (N, C, D, H, W), got {tuple(image.shape)}")
    if not isinstance(label, torch.Tensor) or label.dtype.is_floating_point:
        raise ValueError(f"label must be an integer tensor, got {getattr(label, 'dtype', label)}")
    if tuple(label.shape) != (image.shape[0], *image.shape[2:]):
        raise ValueError(
            f"label must have shape (N, *spatial) = {(image.shape[0], *image.shape[2:])} to "
            f"match image {tuple(image.shape)}, got {tuple(label.shape)}"
        )
    if params.dummy_2d and image.ndim != 5:
        raise ValueError("dummy_2d needs 3D patches (N, C, D, H, W)")
    n = image.shape[0]
    elastic, rotate, scale = (
        _coin(p, n, generator) for p in (params.p_elastic, params.p_rotation, params.p_scaling)
    )
    images, labels = [], []
    for i in range(n):
        x, y = image[i : i + 1], label[i : i + 1]
        if elastic[i] or rotate[i] or scale[i]:
            x, y = _warp_sample(x, y, params, (elastic[i], rotate[i], scale[i]), generator)
        images.append(x)
        labels.append(y)
    out, out_label = torch.cat(images), torch.cat(labels)
    out = _gamma(out, params, params.p_gamma_inverted, True, generator)
    out = _gamma(out, params, params.p_gamma, False, generator)
    out, flipped = random_flip(
        out, out_label, axes=params.mirror_axes, p=params.p_mirror, generator=generator
    )
    return out, cast(torch.Tensor, flipped)

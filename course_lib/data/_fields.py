"""Smooth random fields and Gaussian blurs, the texture of every synthetic image."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def gaussian_blur(x: torch.Tensor, sigma: float | tuple[float, ...]) -> torch.Tensor:
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


def smooth_field(
    shape: tuple[int, ...], coarse: int, gen: torch.Generator, n: int = 1
) -> torch.Tensor:
    """``(n, 1, *shape)`` random field, smooth on the scale ``shape / coarse``, std about 1."""
    grid = torch.randn(n, 1, *([coarse] * len(shape)), generator=gen)
    mode = "bicubic" if len(shape) == 2 else "trilinear"
    return F.interpolate(grid, size=shape, mode=mode, align_corners=True)


def case_seed(seed: int, index: int) -> int:
    """Seed of item ``index``: items depend on ``(seed, index)`` only, not on how many are made."""
    return (seed * 1_000_003 + index * 7_919 + 12_345) % (2**63 - 1)

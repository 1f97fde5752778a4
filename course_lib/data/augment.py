"""Data augmentation on torch tensors: batched, on the inputs' device, image and label together.

Every spatial transform is a displacement field ``u`` (in voxels) and one call to :func:`warp`,
which samples ``image(x + u(x))`` with linear interpolation and ``label(x + u(x))`` with nearest
neighbour, so label values are never mixed. Images are ``(N, C, *spatial)``, labels
``(N, *spatial)`` integer maps (``UNLABELED`` = -1 survives), displacements ``(N, ndim, *spatial)``
with components in array-axis order ((dy, dx) or (dz, dy, dx)).

Random draws (a few numbers per sample) come from ``generator`` (a CPU ``torch.Generator``, or the
global one when ``None``) and are moved to the inputs' device, so the same seed gives the same
augmentation on the CPU and on a GPU.

* U-Net (Ronneberger et al. 2015, Sec. 3.1): random displacements on a coarse 3 x 3 grid, std
  10 px, bicubic interpolation of the field -> :func:`elastic_deform_2d`.
* 3D U-Net (Cicek et al. 2016) / V-Net (Milletari et al. 2016): smooth dense deformation from
  random control-point vectors and B-spline interpolation -> :func:`smooth_deform_3d`.
* nnU-Net: rotation and scaling, gamma, mirroring -> :func:`random_rotate_scale`,
  :func:`random_gamma`, :func:`random_flip`.
* V-Net: histogram matching of intensities to another case -> :func:`histogram_match`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from course_lib.ops.checks import check_int

Range = tuple[float, float]


# ----------------------------------------------------------------------------------------------
# Checks and the one warping routine
# ----------------------------------------------------------------------------------------------
def _check_image(image: torch.Tensor, dims: tuple[int, ...] = (2, 3)) -> int:
    if not isinstance(image, torch.Tensor) or not image.dtype.is_floating_point:
        raise ValueError(
            f"image must be a floating-point tensor, got {getattr(image, 'dtype', type(image))}"
        )
    nd = image.ndim - 2
    if nd not in dims:
        names = " or ".join("(N, C, H, W)" if d == 2 else "(N, C, D, H, W)" for d in dims)
        raise ValueError(f"image must be {names}, got shape {tuple(image.shape)}")
    return nd


def _check_label(label: torch.Tensor | None, image: torch.Tensor) -> None:
    if label is None:
        return
    expected = (image.shape[0], *image.shape[2:])
    if not isinstance(label, torch.Tensor) or label.dtype.is_floating_point:
        raise ValueError(f"label must be an integer tensor, got {getattr(label, 'dtype', label)}")
    if tuple(label.shape) != expected:
        raise ValueError(
            f"label must have shape (N, *spatial) = {expected} to match image "
            f"{tuple(image.shape)}, got {tuple(label.shape)}"
        )


def _per_axis(name: str, value: float | Sequence[float], nd: int) -> tuple[float, ...]:
    values = (float(value),) * nd if isinstance(value, (int, float)) else tuple(value)
    if len(values) != nd or any(v < 0 for v in values):
        raise ValueError(f"{name} must be >= 0, one value or {nd} values, got {value!r}")
    return tuple(float(v) for v in values)


def _check_range(name: str, value: Range, low: float = 0.0) -> Range:
    if len(value) != 2 or not low < value[0] <= value[1]:
        raise ValueError(f"{name} must be a pair (lo, hi) with {low} < lo <= hi, got {value!r}")
    return float(value[0]), float(value[1])


def _rand(gen: torch.Generator | None, *shape: int, like: torch.Tensor) -> torch.Tensor:
    """Uniform [0, 1) numbers from ``gen`` (CPU), moved to the device and dtype of ``like``."""
    return torch.rand(*shape, generator=gen).to(device=like.device, dtype=like.dtype)


def _randn(gen: torch.Generator | None, *shape: int, like: torch.Tensor) -> torch.Tensor:
    return torch.randn(*shape, generator=gen).to(device=like.device, dtype=like.dtype)


def warp(
    image: torch.Tensor,
    label: torch.Tensor | None,
    displacement: torch.Tensor,
    *,
    image_mode: str = "bilinear",
    padding_mode: str = "border",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Resample image and label at ``x + displacement(x)`` (voxel units).

    Parameters
    ----------
    image : Tensor
        ``(N, C, *spatial)`` float, 2D or 3D.
    label : Tensor or None
        ``(N, *spatial)`` integer map, resampled by nearest neighbour.
    displacement : Tensor
        ``(N, ndim, *spatial)``, components in array-axis order, in voxels.
    image_mode : {"bilinear", "bicubic", "nearest"}
        Interpolation of the image ("bilinear" is trilinear in 3D; "bicubic" is 2D only).
    padding_mode : {"border", "zeros", "reflection"}
        Values taken for positions outside the image (as in ``torch.nn.functional.grid_sample``).

    Returns
    -------
    (Tensor, Tensor or None)
        Warped image (same dtype) and label (same dtype). A zero displacement returns the inputs
        unchanged (up to float rounding for the image, exactly for the label).

    Examples
    --------
    >>> img, lab = torch.rand(1, 1, 5, 5), torch.randint(0, 3, (1, 5, 5))
    >>> out, out_lab = warp(img, lab, torch.zeros(1, 2, 5, 5))
    >>> torch.allclose(out, img, atol=1e-6), torch.equal(out_lab, lab)
    (True, True)
    """
    nd = _check_image(image)
    _check_label(label, image)
    expected = (image.shape[0], nd, *image.shape[2:])
    if tuple(displacement.shape) != expected:
        raise ValueError(
            f"displacement must have shape (N, ndim, *spatial) = {expected}, got "
            f"{tuple(displacement.shape)}"
        )
    if min(image.shape[2:]) < 2:
        raise ValueError(f"every spatial axis needs >= 2 voxels, got {tuple(image.shape[2:])}")
    # sample in float32 (float64 stays float64): half-precision coordinates would be off by
    # fractions of a pixel on a large image
    work = torch.float64 if image.dtype == torch.float64 else torch.float32
    spatial = image.shape[2:]
    axes = [torch.arange(s, device=image.device, dtype=work) for s in spatial]
    identity = torch.stack(torch.meshgrid(*axes, indexing="ij"))  # (ndim, *spatial)
    position = identity + displacement.to(device=image.device, dtype=work)
    # grid_sample wants coordinates in [-1, 1] (align_corners=True: -1 and 1 are voxel centres of
    # the first and last voxel), ordered (x, y[, z]), i.e. reversed axis order
    sizes = torch.tensor(spatial, device=image.device, dtype=work)
    norm = 2 * position / (sizes - 1).view(1, nd, *([1] * nd)) - 1
    grid = norm.flip(1).movedim(1, -1)
    out = F.grid_sample(
        image.to(work), grid, mode=image_mode, padding_mode=padding_mode, align_corners=True
    ).to(image.dtype)
    out_label = None
    if label is not None:
        sampled = F.grid_sample(
            label[:, None].to(work),
            grid,
            mode="nearest",
            # reflection could land between two labels' voxels; border replicates one of them
            padding_mode="border" if padding_mode == "reflection" else padding_mode,
            align_corners=True,
        )
        out_label = sampled[:, 0].round().to(label.dtype)
    return out, out_label


# ----------------------------------------------------------------------------------------------
# Elastic deformations
# ----------------------------------------------------------------------------------------------
def elastic_displacement_2d(
    n: int,
    shape: tuple[int, int],
    *,
    grid: int = 3,
    std: float = 10.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """U-Net's displacement field: ``N(0, std^2)`` vectors on a coarse grid, bicubically upsampled.

    Returns
    -------
    Tensor
        ``(n, 2, H, W)`` float32 displacements in pixels, (dy, dx).

    References
    ----------
    Ronneberger et al. (2015), U-Net, Sec. 3.1: "random displacement vectors on a coarse 3 by 3
    grid ... sampled from a Gaussian distribution with 10 pixels standard deviation. Per-pixel
    displacements are then computed using bicubic interpolation."

    Examples
    --------
    >>> elastic_displacement_2d(2, (64, 48), generator=torch.Generator().manual_seed(0)).shape
    torch.Size([2, 2, 64, 48])
    """
    check_int("grid (control points per axis)", grid, minimum=2)
    if not std >= 0:
        raise ValueError(f"std must be >= 0 (pixels), got {std!r}")
    coarse = std * torch.randn(n, 2, grid, grid, generator=generator)
    field = F.interpolate(coarse, size=tuple(shape), mode="bicubic", align_corners=True)
    return field.to(device) if device is not None else field


def elastic_deform_2d(
    image: torch.Tensor,
    label: torch.Tensor | None = None,
    *,
    grid: int = 3,
    std: float = 10.0,
    generator: torch.Generator | None = None,
    image_mode: str = "bicubic",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """U-Net elastic deformation of a batch ``(N, C, H, W)`` and its label ``(N, H, W)``.

    One random field per sample (:func:`elastic_displacement_2d`), applied by :func:`warp`; the
    image is resampled bicubically, the label by nearest neighbour.

    Examples
    --------
    >>> img = torch.rand(2, 1, 32, 32)
    >>> lab = (img[:, 0] > 0.5).long()
    >>> out, out_lab = elastic_deform_2d(img, lab, generator=torch.Generator().manual_seed(0))
    >>> out.shape, set(out_lab.unique().tolist()) <= {0, 1}
    (torch.Size([2, 1, 32, 32]), True)
    """
    _check_image(image, dims=(2,))
    field = elastic_displacement_2d(
        image.shape[0], (image.shape[2], image.shape[3]), grid=grid, std=std, generator=generator
    )
    return warp(image, label, field.to(image.device), image_mode=image_mode)


def _bspline_matrix(size: int, n_control: int) -> torch.Tensor:
    """``(size, n_control)`` cubic B-spline weights of the control points at every voxel.

    The control grid has one point beyond each end of the axis, so the interpolated field is a
    full cubic B-spline (weights of a voxel sum to 1) everywhere inside the volume.
    """
    t = torch.linspace(1.0, n_control - 2.0, size)[:, None] - torch.arange(n_control)[None]
    u = t.abs()
    near = 2 / 3 - u**2 + u**3 / 2
    far = (2 - u).clamp(min=0) ** 3 / 6
    return torch.where(u < 1, near, far)


def smooth_displacement_3d(
    n: int,
    shape: tuple[int, int, int],
    *,
    control_points: int | tuple[int, int, int] = 6,
    std: float | tuple[float, float, float] = 4.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Smooth dense 3D displacement: random control-point vectors, cubic B-spline interpolation.

    ``u(x) = sum_k c_k B(x / h - k)`` with ``c_k ~ N(0, std^2)`` per component and ``B`` the cubic
    B-spline, computed as three small matrix products (one per axis), so the cost is linear in the
    number of voxels.

    Parameters
    ----------
    n : int
        Number of fields.
    shape : (int, int, int)
        ``(D, H, W)``.
    control_points : int or three ints
        Control points per axis (>= 4); fewer points give smoother, larger-scale deformations.
    std : float or three floats
        Standard deviation (voxels) of the control-point displacements per component
        ``(dz, dy, dx)``; 0 for the slice axis keeps the deformation in-plane (nnU-Net's choice
        for anisotropic data).

    Returns
    -------
    Tensor
        ``(n, 3, D, H, W)`` float32 displacements in voxels.

    References
    ----------
    Cicek et al. (2016), 3D U-Net, Sec. 3 ("smooth dense deformation field ... random vectors ...
    normal distribution ... B-spline interpolation"); Rueckert et al. (1999), free-form
    deformations with B-splines.

    Examples
    --------
    >>> smooth_displacement_3d(1, (8, 16, 16), generator=torch.Generator().manual_seed(0)).shape
    torch.Size([1, 3, 8, 16, 16])
    """
    counts = (control_points,) * 3 if isinstance(control_points, int) else tuple(control_points)
    if len(counts) != 3 or any(not isinstance(c, int) or c < 4 for c in counts):
        raise ValueError(f"control_points must be an int >= 4 or three of them, got {counts!r}")
    stds = torch.tensor(_per_axis("std", std, 3))
    coef = torch.randn(n, 3, *counts, generator=generator) * stds.view(1, 3, 1, 1, 1)
    bz, by, bx = (_bspline_matrix(s, c) for s, c in zip(shape, counts, strict=True))
    if device is not None:
        coef, bz, by, bx = (t.to(device) for t in (coef, bz, by, bx))
    # separable: contract one control axis at a time (small matrices, no 6D intermediate)
    field = torch.einsum("ncijk,wk->ncijw", coef, bx)
    field = torch.einsum("ncijw,hj->ncihw", field, by)
    return torch.einsum("ncihw,di->ncdhw", field, bz).contiguous()


def smooth_deform_3d(
    image: torch.Tensor,
    label: torch.Tensor | None = None,
    *,
    control_points: int | tuple[int, int, int] = 6,
    std: float | tuple[float, float, float] = 4.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Smooth dense (B-spline) deformation of ``(N, C, D, H, W)`` volumes and their labels.

    See :func:`smooth_displacement_3d` for the field; the image is resampled trilinearly, the
    label by nearest neighbour, on the inputs' device.

    Examples
    --------
    >>> vol = torch.rand(1, 1, 8, 16, 16)
    >>> out, _ = smooth_deform_3d(vol, std=0.0)
    >>> torch.allclose(out, vol, atol=1e-5)
    True
    """
    _check_image(image, dims=(3,))
    field = smooth_displacement_3d(
        image.shape[0],
        (image.shape[2], image.shape[3], image.shape[4]),
        control_points=control_points,
        std=std,
        generator=generator,
        device=image.device,
    )
    return warp(image, label, field)


# ----------------------------------------------------------------------------------------------
# Rotation and scaling
# ----------------------------------------------------------------------------------------------
def _rotation(angle: torch.Tensor, axis: int) -> torch.Tensor:
    """``(N, 3, 3)`` rotation by ``angle`` about array axis ``axis`` (0 = z, 1 = y, 2 = x)."""
    c, s = angle.cos(), angle.sin()
    r = torch.eye(3, dtype=angle.dtype, device=angle.device).repeat(angle.shape[0], 1, 1)
    i, j = [a for a in range(3) if a != axis]
    r[:, i, i], r[:, i, j], r[:, j, i], r[:, j, j] = c, -s, s, c
    return r


def random_rotate_scale(
    image: torch.Tensor,
    label: torch.Tensor | None = None,
    *,
    max_angle: float | tuple[float, float, float] = 15.0,
    scale: Range = (0.85, 1.25),
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Random rotation about the centre and isotropic scaling, one draw per sample.

    Parameters
    ----------
    max_angle : float or (float, float, float)
        Largest rotation in degrees, drawn uniformly in ``[-max_angle, max_angle]``. 2D: one angle
        in the image plane. 3D: angles about the z, y and x axes (a tuple sets them apart; use
        ``(a, 0, 0)`` to rotate in-plane only, as nnU-Net does for anisotropic data).
    scale : (float, float)
        Zoom factor range; > 1 enlarges the content (nnU-Net default 0.7-1.4; here 0.85-1.25).

    Angles and scales act in voxel units, so on anisotropic volumes only in-plane rotation keeps
    shapes undistorted.

    Examples
    --------
    >>> img = torch.rand(2, 1, 16, 16)
    >>> out, _ = random_rotate_scale(img, max_angle=0.0, scale=(1.0, 1.0))
    >>> torch.allclose(out, img, atol=1e-5)
    True
    """
    nd = _check_image(image)
    _check_label(label, image)
    lo, hi = _check_range("scale", scale)
    n = image.shape[0]
    spatial = image.shape[2:]
    dtype = image.dtype if image.dtype == torch.float64 else torch.float32
    proto = torch.empty(0, dtype=dtype, device=image.device)
    zoom = lo + (hi - lo) * _rand(generator, n, like=proto)
    if nd == 2:
        if not isinstance(max_angle, (int, float)):
            raise ValueError(
                f"max_angle must be one number (degrees) for 2D images, got {max_angle!r}"
            )
        (limit,) = _per_axis("max_angle", max_angle, 1)
        angle = math.radians(limit) * (2 * _rand(generator, n, like=proto) - 1)
        matrix = _rotation(angle, 0)[:, 1:, 1:]
    else:
        limits = _per_axis("max_angle", max_angle, 3)
        matrix = torch.eye(3, dtype=dtype, device=image.device).repeat(n, 1, 1)
        for axis, limit in enumerate(limits):
            angle = math.radians(limit) * (2 * _rand(generator, n, like=proto) - 1)
            matrix = matrix @ _rotation(angle, axis)
    # sample at c + R (x - c) / zoom: the content turns by R^-1 and grows by zoom
    matrix = matrix / zoom.view(n, 1, 1)
    axes = [torch.arange(s, device=image.device, dtype=dtype) for s in spatial]
    identity = torch.stack(torch.meshgrid(*axes, indexing="ij"))
    centre = torch.tensor([(s - 1) / 2 for s in spatial], device=image.device, dtype=dtype)
    rel = (identity - centre.view(nd, *([1] * nd))).reshape(nd, -1)
    position = (matrix @ rel).reshape(n, nd, *spatial) + centre.view(1, nd, *([1] * nd))
    return warp(image, label, position - identity)


# ----------------------------------------------------------------------------------------------
# Intensity and mirroring
# ----------------------------------------------------------------------------------------------
def random_gamma(
    image: torch.Tensor,
    gamma: Range = (0.7, 1.5),
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Gamma augmentation ``g(x) = x^gamma`` on each sample and channel rescaled to [0, 1].

    Each ``(sample, channel)`` is min-max scaled to [0, 1], raised to a random ``gamma`` drawn
    uniformly from the range, and scaled back to its original range (nnU-Net's recipe), so the
    intensity range is kept and only the curve changes. Labels are unaffected.

    Examples
    --------
    >>> img = torch.linspace(0, 1, 5).view(1, 1, 1, 5)
    >>> random_gamma(img, (2.0, 2.0)).flatten().tolist()
    [0.0, 0.0625, 0.25, 0.5625, 1.0]
    """
    _check_image(image)
    lo, hi = _check_range("gamma", gamma)
    n, c = image.shape[:2]
    g = lo + (hi - lo) * _rand(generator, n, c, like=image)
    flat = image.flatten(2)
    vmin = flat.amin(-1, keepdim=True)
    span = (flat.amax(-1, keepdim=True) - vmin).clamp(min=torch.finfo(image.dtype).tiny)
    out = ((flat - vmin) / span).clamp(0, 1) ** g[..., None] * span + vmin
    return out.reshape(image.shape)


def random_flip(
    image: torch.Tensor,
    label: torch.Tensor | None = None,
    *,
    axes: Sequence[int] | None = None,
    p: float = 0.5,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mirror each sample along each spatial axis with probability ``p`` (independently).

    Parameters
    ----------
    axes : sequence of int, optional
        Spatial axes that may be mirrored, counted from 0 = first spatial axis; default all.

    Examples
    --------
    >>> img = torch.arange(4.0).view(1, 1, 1, 4)
    >>> random_flip(img, p=1.0)[0].flatten().tolist()
    [3.0, 2.0, 1.0, 0.0]
    """
    nd = _check_image(image)
    _check_label(label, image)
    if not 0 <= p <= 1:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
    axes = tuple(range(nd)) if axes is None else tuple(axes)
    if any(a not in range(nd) for a in axes):
        raise ValueError(f"axes must be spatial axes in 0..{nd - 1}, got {axes!r}")
    n = image.shape[0]
    for axis in axes:
        flip = torch.rand(n, generator=generator).to(image.device) < p
        view = (n,) + (1,) * (image.ndim - 1)
        image = torch.where(flip.view(view), image.flip(2 + axis), image)
        if label is not None:
            label = torch.where(flip.view(view[:-1]), label.flip(1 + axis), label)
    return image, label


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation like ``numpy.interp`` (``xp`` increasing), on any device."""
    idx = torch.searchsorted(xp, x).clamp(1, xp.numel() - 1)
    x0, x1, f0, f1 = xp[idx - 1], xp[idx], fp[idx - 1], fp[idx]
    t = ((x - x0) / (x1 - x0).clamp(min=torch.finfo(x.dtype).tiny)).clamp(0, 1)
    return f0 + t * (f1 - f0)


def _match_one(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Map ``source``'s values so its empirical CDF follows ``reference``'s (flat tensors)."""
    values, inverse, counts = torch.unique(source, return_inverse=True, return_counts=True)
    ref_values, ref_counts = torch.unique(reference, return_counts=True)
    dtype = torch.float64
    src_cdf = counts.cumsum(0).to(dtype) / source.numel()
    ref_cdf = ref_counts.cumsum(0).to(dtype) / reference.numel()
    mapped = _interp(src_cdf, ref_cdf, ref_values.to(dtype))
    return mapped[inverse].to(source.dtype)


def histogram_match(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """V-Net's histogram matching: give a volume the intensity distribution of another.

    Every ``(sample, channel)`` of ``source`` is mapped through ``F_ref^-1(F_src(v))``, with ``F``
    the empirical cumulative distributions, interpolated linearly between the reference's
    distinct values (the method of ``skimage.exposure.match_histograms``). The order of
    intensities is kept, and the output's quantiles are the reference's.

    Parameters
    ----------
    source : Tensor
        ``(N, C, *spatial)`` float.
    reference : Tensor
        ``(N, C, *spatial_ref)`` or ``(1, C, *spatial_ref)``: one reference per sample, or one for
        all. Its spatial shape may differ from the source's (another case).

    Returns
    -------
    Tensor
        Same shape, dtype and device as ``source``.

    References
    ----------
    Milletari, Navab, Ahmadi (2016), V-Net, Sec. 4: "the intensity distribution of the data is
    adapted to the one of other randomly chosen scans used during training".

    Examples
    --------
    >>> src = torch.tensor([[[0.0, 1.0, 2.0, 3.0]]])
    >>> ref = torch.tensor([[[10.0, 20.0, 30.0, 40.0]]])
    >>> histogram_match(src, ref).flatten().tolist()
    [10.0, 20.0, 30.0, 40.0]
    """
    for name, t in (("source", source), ("reference", reference)):
        if not isinstance(t, torch.Tensor) or not t.dtype.is_floating_point or t.ndim < 3:
            raise ValueError(
                f"{name} must be a float (N, C, *spatial) tensor, got "
                f"{getattr(t, 'shape', type(t))} {getattr(t, 'dtype', '')}"
            )
    n, c = source.shape[:2]
    if reference.shape[1] != c or reference.shape[0] not in (1, n):
        raise ValueError(
            f"reference must be (N or 1, C={c}, ...) for source {tuple(source.shape)}, got "
            f"{tuple(reference.shape)}"
        )
    out = torch.empty_like(source)
    for i in range(n):
        for ch in range(c):
            ref = reference[i if reference.shape[0] == n else 0, ch].flatten()
            out[i, ch] = _match_one(source[i, ch].flatten(), ref).view(source.shape[2:])
    return out

"""Sliding-window inference: predict a whole image or volume with a net trained on patches.

A net trained on ``patch_size`` patches sees the volume through overlapping windows. Each window's
output is weighted by an importance map (a Gaussian that trusts the window centre more than its
borders, where the net saw less context), the weighted outputs are summed into a preallocated
volume, and the sum is divided by the summed weights::

    prediction(x) = sum_w m(x - start_w) * f(window_w)(x) / sum_w m(x - start_w)

Window placement follows nnU-Net v2 (``compute_steps_for_sliding_window``): per axis
``n = ceil((size - patch) / (step_fraction * patch)) + 1`` windows, spread evenly from ``0`` to
``size - patch`` and rounded to integers, with ``step_fraction = 1 - overlap``. The Gaussian map
and its floor follow MONAI's ``compute_importance_map`` (the shared reference recommends matching
MONAI there), so for the same windows the two give the same result.

Where the two libraries place windows differently
--------------------------------------------------
MONAI's ``sliding_window_inference`` steps by ``int(patch * (1 - overlap))`` from 0 and moves only
the *last* window back so that it ends at the border; nnU-Net spreads its windows evenly. They
coincide when ``size - patch`` is a multiple of the step (160 voxels, patch 64, overlap 0.5: both
start windows at 0, 32, 64, 96) and differ otherwise (21 voxels, patch 8, overlap 0.5: nnU-Net
``[0, 3, 6, 10, 13]``, MONAI ``[0, 4, 8, 12, 13]``, whose last two windows overlap 7 voxels).

References
----------
Isensee et al., "nnU-Net", Nature Methods 18 (2021), and nnU-Net v2
``inference/sliding_window_prediction.py``; MONAI ``monai.inferers.sliding_window_inference``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from course_lib.ops.checks import check_int

IMPORTANCE_MODES = ("gaussian", "constant")
GAUSSIAN_FLOOR = 1e-3
"""Smallest Gaussian weight (MONAI's ``compute_importance_map`` floor): border voxels of a window
still count a little, so a voxel covered only by window borders is never divided by ~0."""


def window_starts(size: int, patch: int, overlap: float = 0.5) -> list[int]:
    """Start indices of the windows along one axis, placed as nnU-Net v2 places them.

    ``n = ceil((size - patch) / ((1 - overlap) * patch)) + 1`` windows, their starts spread evenly
    over ``[0, size - patch]`` and rounded half to even (as ``numpy.round``).

    Parameters
    ----------
    size
        Length of the (padded) axis; at least ``patch``.
    patch
        Window length along the axis.
    overlap
        Fraction of a window shared with its neighbour at most, in ``[0, 1)``.

    Examples
    --------
    >>> window_starts(160, 64, 0.5)
    [0, 32, 64, 96]
    >>> window_starts(21, 8, 0.5)
    [0, 3, 6, 10, 13]
    """
    if patch < 1 or size < patch:
        raise ValueError(f"need 1 <= patch <= size, got patch={patch}, size={size}")
    _check_overlap(overlap)
    target_step = (1.0 - overlap) * patch
    n = math.ceil((size - patch) / target_step) + 1
    if n == 1:
        return [0]
    step = (size - patch) / (n - 1)
    return [round(step * i) for i in range(n)]


def importance_map(
    patch_size: Sequence[int],
    importance: str = "gaussian",
    sigma_scale: float = 0.125,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Weight of each voxel of a window when overlapping windows are blended.

    ``"gaussian"``: the separable product over axes of ``exp(-x^2 / (2 sigma_d^2))`` with
    ``x = i - (p_d - 1) / 2`` and ``sigma_d = sigma_scale * p_d``, floored at
    ``max(min, 1e-3)`` (MONAI's ``compute_importance_map``; nnU-Net uses the same sigma, centred at
    ``p // 2``). ``"constant"``: all ones.

    Parameters
    ----------
    patch_size
        Window shape (spatial axes only).
    importance
        ``"gaussian"`` or ``"constant"``.
    sigma_scale
        Gaussian width as a fraction of the window side (nnU-Net and MONAI: 1/8).

    Examples
    --------
    >>> m = importance_map((5,))
    >>> [round(v, 4) for v in m.tolist()]
    [0.006, 0.278, 1.0, 0.278, 0.006]
    """
    patch_size = _check_patch_size(patch_size)
    if importance not in IMPORTANCE_MODES:
        raise ValueError(f"importance must be one of {IMPORTANCE_MODES}, got {importance!r}")
    if importance == "constant":
        return torch.ones(patch_size, device=device, dtype=dtype)
    if not sigma_scale > 0:
        raise ValueError(f"sigma_scale must be > 0, got {sigma_scale!r}")
    weights = torch.ones((), device=device, dtype=torch.float64)
    for axis, p in enumerate(patch_size):
        x = torch.arange(p, device=device, dtype=torch.float64) - (p - 1) / 2
        profile = torch.exp(-(x**2) / (2 * (sigma_scale * p) ** 2))
        shape = [1] * len(patch_size)
        shape[axis] = p
        weights = weights * profile.reshape(shape)
    weights = weights.clamp_min(max(weights.min().item(), GAUSSIAN_FLOOR))
    return weights.to(dtype)


def sliding_window_predict(
    model: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    patch_size: Sequence[int],
    *,
    overlap: float = 0.5,
    batch_size: int = 4,
    mirror_axes: Sequence[int] = (),
    device: torch.device | str | None = None,
    output_device: torch.device | str | None = None,
    importance: str = "gaussian",
    sigma_scale: float = 0.125,
) -> torch.Tensor:
    """Predict a whole image or volume window by window, blending overlaps with an importance map.

    An input smaller than the window along an axis is zero-padded (half before, half after) and the
    output cropped back, as nnU-Net and MONAI do. With ``mirror_axes`` every window is also run
    flipped along each non-empty subset of those axes and the logits are averaged (nnU-Net's
    test-time mirroring: 8 passes for 3 axes). Windows go to ``device`` in batches of
    ``batch_size``; besides the input, only the output (``N x K`` float64 volumes), one float64
    weight volume and the returned copy are allocated at full size, all on ``output_device``, so a
    volume too big for the GPU can be predicted there with its output kept in CPU memory.

    Accumulation is in float64 (twice the memory of MONAI's float32 buffer), so an identity model
    returns its input exactly. The model is called under ``torch.no_grad()`` and as it is: put it
    in ``eval()`` mode first.

    The arguments up to ``output_device`` are those of
    :func:`~course_lib.inference.tiling.overlap_tile_predict`, with the same defaults.

    Parameters
    ----------
    model
        Maps a batch ``(B, C, *patch_size)`` to ``(B, K, *patch_size)`` (same-padding net).
    image
        ``(N, C, *spatial)`` with ``len(spatial) == len(patch_size)`` (1D, 2D or 3D).
    patch_size
        Window shape, e.g. the training patch.
    overlap
        Fraction in ``[0, 1)`` of a window its neighbour shares (nnU-Net: 0.5, MONAI default 0.25).
    batch_size
        Windows per model call.
    mirror_axes
        Spatial axes (0-based, ``0`` is the first spatial axis) for test-time mirroring.
    device
        Where the model runs; default: :func:`model_device`.
    output_device
        Where the output is accumulated; default: the device of ``image``.
    importance
        ``"gaussian"`` or ``"constant"`` (see :func:`importance_map`).
    sigma_scale
        Gaussian sigma as a fraction of the window side.

    Returns
    -------
    torch.Tensor
        ``(N, K, *spatial)`` blended logits, float32 (float64 if the model returns float64).

    Examples
    --------
    >>> x = torch.randn(1, 1, 40, 30)
    >>> y = sliding_window_predict(torch.nn.Identity(), x, (16, 16), mirror_axes=(0, 1))
    >>> bool(torch.equal(x, y))
    True
    """
    patch_size = _check_patch_size(patch_size)
    _check_overlap(overlap)
    dims = len(patch_size)
    if not isinstance(image, torch.Tensor) or image.ndim != dims + 2:
        got = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(
            f"image must be a tensor (N, C, *spatial) with {dims} spatial axes to match "
            f"patch_size={patch_size}, got {got}"
        )
    check_int("batch_size", batch_size)
    mirror_axes = check_mirror_axes(mirror_axes, dims)
    device = torch.device(device) if device is not None else model_device(model, image)
    output_device = torch.device(output_device) if output_device is not None else image.device

    padded, crop = _pad_to_patch(image, patch_size)
    spatial = padded.shape[2:]
    starts = [window_starts(s, p, overlap) for s, p in zip(spatial, patch_size, strict=True)]
    windows = [
        (n, tuple(slice(s, s + p) for s, p in zip(corner, patch_size, strict=True)))
        for n in range(padded.shape[0])
        for corner in itertools.product(*starts)
    ]
    flips = mirror_flips(mirror_axes)
    weight = importance_map(
        patch_size, importance, sigma_scale, device=output_device, dtype=torch.float64
    )
    weight_sum = torch.zeros(spatial, device=output_device, dtype=torch.float64)
    out: torch.Tensor | None = None
    out_dtype = torch.float32

    with torch.no_grad():
        for first in range(0, len(windows), batch_size):
            chunk = windows[first : first + batch_size]
            batch = torch.stack([padded[n][(slice(None), *sl)] for n, sl in chunk]).to(device)
            pred, pred_dtype = _mirrored_prediction(model, batch, flips)
            pred = pred.to(output_device)
            if out is None:
                out = torch.zeros(
                    (padded.shape[0], pred.shape[1], *spatial),
                    device=output_device,
                    dtype=torch.float64,
                )
                out_dtype = torch.promote_types(pred_dtype, torch.float32)
            for (n, sl), window_pred in zip(chunk, pred, strict=True):
                # in place, in float64: no temporary window of weighted predictions
                out[n][(slice(None), *sl)].addcmul_(window_pred, weight)
                if n == 0:  # the same windows cover every item: count their weights once
                    weight_sum[sl] += weight
    assert out is not None  # at least one window exists
    out /= weight_sum
    return out[(slice(None), slice(None), *crop)].to(out_dtype)


def _mirrored_prediction(
    model: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor, flips: list[list[int]]
) -> tuple[torch.Tensor, torch.dtype]:
    """Model output averaged over the flips (undone), and the model's output dtype.

    Without mirroring, the output as the model gave it (the float64 accumulation converts it);
    with mirroring, the average in float64.
    """
    if flips == [[]]:
        pred = model(batch)
        _check_prediction(pred, batch)
        return pred, pred.dtype
    total: torch.Tensor | None = None
    for dims in flips:
        pred = model(batch.flip(dims) if dims else batch)
        _check_prediction(pred, batch)
        pred = pred.flip(dims) if dims else pred
        # float64 sums of float32 values are exact, and len(flips) is a power of two: identical
        # passes average to themselves exactly
        total = pred.double() if total is None else total + pred
    assert total is not None
    return total / len(flips), pred.dtype


def _check_prediction(pred: object, batch: torch.Tensor) -> None:
    """Raise ``ValueError`` unless the model's output is ``(B, K, *patch)`` for ``batch``."""
    if not isinstance(pred, torch.Tensor) or pred.ndim != batch.ndim:
        raise ValueError(
            f"model must return a tensor (B, K, *patch); for input {tuple(batch.shape)} it "
            f"returned {getattr(pred, 'shape', type(pred).__name__)}"
        )
    if pred.shape[0] != batch.shape[0] or pred.shape[2:] != batch.shape[2:]:
        raise ValueError(
            f"model output {tuple(pred.shape)} must keep the batch and spatial shape of its "
            f"input {tuple(batch.shape)}; for valid-padding nets use overlap-tile inference"
        )


def _pad_to_patch(
    volume: torch.Tensor, patch_size: tuple[int, ...]
) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """Zero-pad spatial axes shorter than the patch (half before, half after); crop to undo it."""
    before = [max(p - s, 0) // 2 for s, p in zip(volume.shape[2:], patch_size, strict=True)]
    after = [
        max(p - s, 0) - b for s, p, b in zip(volume.shape[2:], patch_size, before, strict=True)
    ]
    crop = tuple(slice(b, b + s) for b, s in zip(before, volume.shape[2:], strict=True))
    if not any(before) and not any(after):
        return volume, crop
    pads = [
        n for pair in zip(reversed(before), reversed(after), strict=True) for n in pair
    ]  # last axis first
    return F.pad(volume, pads), crop


def model_device(model: Callable[..., torch.Tensor], image: torch.Tensor) -> torch.device:
    """Where ``model`` runs: the device of its parameters, else (a function, a parameter-free
    module) the device of ``image``. Inference moves the windows or tiles there.

    >>> model_device(torch.nn.Identity(), torch.zeros(1)).type
    'cpu'
    """
    if isinstance(model, torch.nn.Module):
        for parameter in model.parameters():
            return parameter.device
    return image.device


def mirror_flips(mirror_axes: Sequence[int]) -> list[list[int]]:
    """The tensor axes to flip for test-time mirroring: every subset of the spatial
    ``mirror_axes``, shifted past ``(N, C)``, the empty one (no flip) first.

    >>> mirror_flips((0, 1))
    [[], [2], [3], [2, 3]]
    """
    return [
        [a + 2 for a in subset]
        for k in range(len(mirror_axes) + 1)
        for subset in itertools.combinations(mirror_axes, k)
    ]


def check_mirror_axes(mirror_axes: Sequence[int], dims: int) -> tuple[int, ...]:
    """``mirror_axes`` as a tuple of distinct spatial axes in ``range(dims)``, else ValueError.

    >>> check_mirror_axes([0, 2], 3)
    (0, 2)
    """
    axes = tuple(mirror_axes)
    if len(set(axes)) != len(axes) or any(
        not isinstance(a, int) or isinstance(a, bool) or not 0 <= a < dims for a in axes
    ):
        raise ValueError(
            f"mirror_axes must be distinct spatial axes in range({dims}), got {axes!r}"
        )
    return axes


def _check_patch_size(patch_size: Sequence[int]) -> tuple[int, ...]:
    patch = tuple(patch_size)
    if not 1 <= len(patch) <= 3 or any(
        not isinstance(p, int) or isinstance(p, bool) or p < 1 for p in patch
    ):
        raise ValueError(f"patch_size must be 1 to 3 positive ints, got {patch_size!r}")
    return patch


def _check_overlap(overlap: float) -> None:
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap!r}")

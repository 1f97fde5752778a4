"""Intensity normalisation: what a net's input should look like, whatever the scanner produced.

Two schemes cover the course's data, as they cover nnU-Net's (Isensee et al., Nature Methods
2021, online methods "intensity normalization"):

* **z-score** (MR, microscopy, anything without absolute units): subtract the mean and divide by
  the standard deviation, per channel of one case, so every case and sequence has mean 0, std 1;
* **window** (CT, whose Hounsfield units are absolute): clip to an intensity window that keeps the
  tissue contrast of interest and map it linearly to a fixed range, the same for every case.

nnU-Net's exact variants (CT statistics from the training foreground, percentile clipping) are in
:func:`course_lib.nnunet.normalize_channel`; these are the plain forms the chapters use.

Examples
--------
>>> import torch
>>> z = zscore(torch.tensor([[1.0, 2.0, 3.0]]))
>>> z
tensor([[-1.,  0.,  1.]])
>>> window(torch.tensor([-1000.0, 50.0, 2000.0]), (-200.0, 300.0))
tensor([-1.,  0.,  1.])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def zscore(image: torch.Tensor, *, per_channel: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """``(x - mean) / std`` of one case ``(C, *spatial)``, per channel or over all of it.

    The standard deviation is the sample one (``torch.std``, Bessel's correction), floored at
    ``eps`` so that a constant channel maps to 0 instead of NaN.

    Parameters
    ----------
    image : Tensor
        ``(C, *spatial)``, floating.
    per_channel : bool
        Statistics of each channel on its own (nnU-Net's ``ZScoreNormalization``; sequences of a
        multi-parametric MR have unrelated scales), or of the whole tensor.

    Examples
    --------
    >>> x = torch.stack([torch.arange(4.0), 100 + 10 * torch.arange(4.0)])
    >>> torch.allclose(zscore(x)[0], zscore(x)[1])  # each channel on its own scale
    True
    """
    if not isinstance(image, torch.Tensor) or not image.is_floating_point() or image.ndim < 2:
        raise ValueError(
            "image must be a floating tensor (C, *spatial), got "
            f"{getattr(image, 'dtype', type(image).__name__)} of shape "
            f"{tuple(getattr(image, 'shape', ()))}"
        )
    dims = tuple(range(1, image.ndim)) if per_channel else tuple(range(image.ndim))
    mean = image.mean(dim=dims, keepdim=True)
    return (image - mean) / image.std(dim=dims, keepdim=True).clamp_min(eps)


def window(
    image: torch.Tensor,
    window: Sequence[float],
    out_range: Sequence[float] = (-1.0, 1.0),
) -> torch.Tensor:
    """Clip to ``window = (low, high)`` and map it linearly onto ``out_range``.

    ``y = out_low + (clip(x, low, high) - low) * (out_high - out_low) / (high - low)``. For CT,
    e.g. ``(-200, 300)`` HU keeps soft tissue and lesions apart and flattens air, fat and bone.

    Examples
    --------
    >>> window(torch.tensor([-200.0, 50.0, 300.0]), (-200.0, 300.0), out_range=(-2.0, 2.0))
    tensor([-2.,  0.,  2.])
    """
    low, high = (float(v) for v in window)
    out_low, out_high = (float(v) for v in out_range)
    if not high > low or not out_high > out_low:
        raise ValueError(
            f"window and out_range must be (low, high) with low < high, got {tuple(window)} and "
            f"{tuple(out_range)}"
        )
    return out_low + (image.clamp(low, high) - low) * ((out_high - out_low) / (high - low))

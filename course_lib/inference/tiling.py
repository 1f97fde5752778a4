"""Overlap-tile inference (Ronneberger et al. 2015, Sec. 2 and Fig. 2) for images of any size.

A valid-padding U-Net predicts a smaller map (the yellow box of the paper's Fig. 2) than the tile it
sees (the blue box): the missing border is the context each output pixel needs. To segment a whole
image, the image is mirror-padded by that context ("the missing input data is extrapolated by
mirroring the input image") and cut into input tiles whose outputs lie side by side.

One subtlety the paper does not spell out: max-pooling makes the net equivariant only to shifts by
multiples of ``2**depth`` (the spacing of valid input sizes). Output tiles of the paper's net are
388 pixels wide, not a multiple of 16, so tiles placed exactly 388 apart would see shifted pooling
grids. Here tiles step by the output size rounded down to that multiple (384), their outputs
overlap by a few pixels with identical values, and the stitched map equals the whole mirror-padded
image's prediction to float tolerance: no seams.

Same-padding nets have no such context margin; for them :func:`overlap_tile_predict` falls back to
:func:`~course_lib.inference.sliding_window.sliding_window_predict` with overlapping windows.

Examples
--------
>>> import torch
>>> from course_lib.models.unet import UNet
>>> net = UNet(1, 2, base_channels=4, depth=2).eval()
>>> overlap_tile_predict(net, torch.zeros(1, 1, 50, 70), (76, 76)).shape
torch.Size([1, 2, 50, 70])
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.inference.sliding_window import (
    check_mirror_axes,
    mirror_flips,
    model_device,
    sliding_window_predict,
)
from course_lib.ops.checks import check_int


class ValidNet(Protocol):
    """What overlap-tiling needs to know about a net: its input/output sizes (as ``UNet`` has)."""

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]: ...

    def valid_input_shape(self, min_shape: Sequence[int]) -> tuple[int, ...]: ...


@dataclass(frozen=True)
class TileLayout:
    """Where the tiles of overlap-tile inference lie (per spatial axis; padded-image coordinates).

    Tile ``k`` reads input ``[corner, corner + tile_in)`` of the padded image and predicts image
    pixels ``[corner, corner + tile_out)`` (the padded image is shifted by ``margin``).
    """

    image_shape: tuple[int, ...]
    """Spatial shape of the image to segment."""
    tile_in: tuple[int, ...]
    """Input tile (the paper's blue box)."""
    tile_out: tuple[int, ...]
    """Output tile (the yellow box)."""
    margin: tuple[int, ...]
    """Context on each side: ``(tile_in - tile_out) / 2``, mirrored in at the image border."""
    stride: tuple[int, ...]
    """Step between tiles: ``tile_out`` rounded down to a multiple of the valid-size spacing."""
    padded_shape: tuple[int, ...]
    """Spatial shape of the mirror-padded image all tiles are cut from."""
    corners: tuple[tuple[int, ...], ...]
    """Start of every tile in the padded image (equal to its output's start in the image)."""


def tile_layout(
    model: ValidNet, image_shape: Sequence[int], patch_size: Sequence[int] | None = None
) -> TileLayout:
    """Plan overlap-tile inference of a valid-padding ``model`` on an image of ``image_shape``.

    ``model`` must have ``output_shape(input_shape)`` and ``valid_input_shape(min_shape)``, as
    :class:`~course_lib.models.unet.UNet` has. ``patch_size`` is the input tile (the blue box); by
    default the smallest valid tile whose output covers the whole image (a single tile).
    """
    image_shape = tuple(image_shape)
    if patch_size is None:
        probe = model.valid_input_shape(image_shape)
        context = [i - o for i, o in zip(probe, model.output_shape(probe), strict=True)]
        patch_size = model.valid_input_shape(
            [s + c for s, c in zip(image_shape, context, strict=True)]
        )
    tile_in = tuple(patch_size)
    if len(tile_in) != len(image_shape):
        raise ValueError(f"patch_size {tile_in} needs one entry per image axis {image_shape}")
    tile_out = tuple(model.output_shape(tile_in))  # raises for an invalid tile
    # valid input sizes are spaced by the product of the pooling factors: shifting by that
    # spacing moves every pooling grid by whole cells, so tiles must start on multiples of it
    spacing = [
        n - t
        for n, t in zip(model.valid_input_shape([t + 1 for t in tile_in]), tile_in, strict=True)
    ]
    stride = tuple(o // g * g for o, g in zip(tile_out, spacing, strict=True))
    if not all(stride):
        raise ValueError(
            f"patch_size {tile_in} gives output tiles {tile_out}, narrower than the valid-size "
            f"spacing {tuple(spacing)}: use a larger patch_size"
        )
    counts = [
        max(1, math.ceil((s - o) / st) + 1)
        for s, o, st in zip(image_shape, tile_out, stride, strict=True)
    ]
    margin = tuple((i - o) // 2 for i, o in zip(tile_in, tile_out, strict=True))
    padded = tuple((n - 1) * st + i for n, st, i in zip(counts, stride, tile_in, strict=True))
    starts = [[k * st for k in range(n)] for n, st in zip(counts, stride, strict=True)]
    return TileLayout(
        image_shape, tile_in, tile_out, margin, stride, padded, tuple(itertools.product(*starts))
    )


def mirror_pad(x: Tensor, before: Sequence[int], after: Sequence[int]) -> Tensor:
    """Pad the trailing spatial axes of ``x`` by mirroring (reflection without repeating the edge).

    Pads wider than the image are reached by reflecting repeatedly, giving the same result as
    ``numpy.pad(mode="reflect")``; a single reflection can add at most ``size - 1`` pixels.
    """
    before, after = list(before), list(after)
    sizes = x.shape[x.ndim - len(before) :]
    if any(s < 2 for s, b, a in zip(sizes, before, after, strict=True) if b or a):
        raise ValueError(f"cannot mirror-pad an axis of size 1 (spatial shape {tuple(sizes)})")
    while any(before) or any(after):
        # reflect by at most size - 1 per round, so that every round's edge is a mirror axis of
        # the periodic reflection (period 2 * (size - 1)) that numpy's "reflect" produces
        now_b = [min(b, s - 1) for b, s in zip(before, sizes, strict=True)]
        now_a = [min(a, s - 1) for a, s in zip(after, sizes, strict=True)]
        pads = [n for b, a in zip(reversed(now_b), reversed(now_a), strict=True) for n in (b, a)]
        x = F.pad(x, pads, mode="reflect")  # F.pad lists the last axis first
        before = [b - n for b, n in zip(before, now_b, strict=True)]
        after = [a - n for a, n in zip(after, now_a, strict=True)]
    return x


def overlap_tile_predict(
    model: nn.Module,
    image: Tensor,
    patch_size: Sequence[int] | None = None,
    *,
    overlap: float = 0.5,
    batch_size: int = 4,
    mirror_axes: Sequence[int] = (),
    device: torch.device | str | None = None,
    output_device: torch.device | str | None = None,
) -> Tensor:
    """Predict a whole image (or volume) of any size with a valid-padding net, tile by tile.

    The image is mirror-padded by the net's context (:func:`mirror_pad`), cut into input tiles laid
    out by :func:`tile_layout`, and the output tiles are written side by side: the result equals the
    net's prediction on the whole mirror-padded image. Call ``model.eval()`` first (dropout,
    batch norm); the model runs under ``torch.no_grad()`` on ``device``, tiles in batches of
    ``batch_size``, and the result lands on ``output_device``.

    A model whose output is as large as its input (``padding="same"``, or a model without an
    ``output_shape`` method) goes to
    :func:`~course_lib.inference.sliding_window.sliding_window_predict` instead, with
    ``patch_size`` as window (default: the whole image) and the given ``overlap``. The two share
    their arguments and defaults.

    Parameters
    ----------
    model : nn.Module
        A net with ``output_shape`` / ``valid_input_shape`` methods, e.g. ``UNet``.
    image : Tensor
        ``(N, C, *spatial)``, 2D or 3D.
    patch_size : sequence of int, optional
        The input tile, the paper's blue box (a valid input size of the net); default: one tile
        for the whole image.
    overlap : float
        Window overlap of the sliding-window fallback (valid nets need none: their tiles abut).
    batch_size : int
        Tiles per forward pass.
    mirror_axes : sequence of int
        Spatial axes for test-time mirroring: the prediction is averaged over the image flipped
        along every subset of them (nnU-Net's mirroring; 4 passes for 2 axes).
    device, output_device
        Where the model runs (default: :func:`~course_lib.inference.sliding_window.model_device`)
        and where the result is assembled (default: the image's device).

    Returns
    -------
    Tensor
        Logits ``(N, num_classes, *spatial)``, as large as the image.
    """
    if not isinstance(image, Tensor) or image.ndim not in (4, 5):
        got = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise ValueError(
            f"image must be a tensor (N, C, *spatial) with 2 or 3 spatial axes, got {got}"
        )
    check_int("batch_size", batch_size)
    spatial = tuple(image.shape[2:])
    mirror_axes = check_mirror_axes(mirror_axes, len(spatial))
    options: dict[str, Any] = dict(
        overlap=overlap,
        batch_size=batch_size,
        mirror_axes=mirror_axes,
        device=device,
        output_device=output_device,
    )
    if not hasattr(model, "output_shape"):
        return sliding_window_predict(model, image, patch_size or spatial, **options)
    layout = tile_layout(cast(ValidNet, model), spatial, patch_size)
    if layout.tile_out == layout.tile_in:  # same padding: no context to mirror in
        window = (
            cast(ValidNet, model).valid_input_shape(spatial)
            if patch_size is None
            else layout.tile_in
        )
        return sliding_window_predict(model, image, window, **options)
    device = torch.device(device) if device is not None else model_device(model, image)
    output_device = torch.device(output_device) if output_device is not None else image.device
    flips = mirror_flips(mirror_axes)
    total: Tensor | None = None
    for dims in flips:  # test-time mirroring: predict the flipped image, flip the result back
        pred = _tiled(model, image.flip(dims) if dims else image, layout, batch_size, device)
        pred = (pred.flip(dims) if dims else pred).to(output_device)
        total = pred if total is None else total + pred
    assert total is not None
    return total / len(flips) if len(flips) > 1 else total


def _tiled(
    model: nn.Module, image: Tensor, layout: TileLayout, batch_size: int, device: torch.device
) -> Tensor:
    """Overlap-tile prediction of ``image`` with the tiles of ``layout`` (see above)."""
    spatial = tuple(image.shape[2:])
    after = [p - m - s for p, m, s in zip(layout.padded_shape, layout.margin, spatial, strict=True)]
    padded = mirror_pad(image, layout.margin, after)
    out_shape = [c + o for c, o in zip(layout.corners[-1], layout.tile_out, strict=True)]
    out: Tensor | None = None
    tiles = [(n, corner) for n in range(image.shape[0]) for corner in layout.corners]
    with torch.no_grad():
        for first in range(0, len(tiles), batch_size):
            chunk = tiles[first : first + batch_size]
            batch = torch.stack([padded[n][_box(c, layout.tile_in)] for n, c in chunk])
            pred = model(batch.to(device)).to(image.device)
            if out is None:
                out = pred.new_empty((image.shape[0], pred.shape[1], *out_shape))
            for (n, corner), tile in zip(chunk, pred, strict=True):
                # neighbouring output tiles overlap by stride < tile_out pixels of equal value
                out[n][_box(corner, layout.tile_out)] = tile
    assert out is not None
    return out[(slice(None), *_box([0] * len(spatial), spatial))]


def _box(corner: Sequence[int], shape: Sequence[int]) -> tuple[slice, ...]:
    """Index of a box in a ``(C, *spatial)`` tensor: all channels, ``shape`` from ``corner``."""
    return (slice(None), *(slice(c, c + s) for c, s in zip(corner, shape, strict=True)))

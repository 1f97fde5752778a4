"""Which input sizes an encoder-decoder accepts, and what size comes out (U-Net, 3D U-Net).

Ronneberger et al. (2015, Sec. 2): "To allow a seamless tiling of the output segmentation map, it is
important to select the input tile size such that all 2x2 max-pooling operations are applied to a
layer with an even x- and y-size." With unpadded ("valid") 3x3 convolutions each two-conv block
trims 4 pixels, so one axis of size ``s`` goes through the net as

    contracting, per level:  s -> (s - block_loss) / 2    (must be a whole number)
    bottom:                  s -> s - block_loss
    expanding, per level:    s -> 2 s - up_loss - block_loss

``block_loss`` is 4 for two valid 3x3 convs and 0 for padded ("same") ones; ``up_loss`` is 0 for the
2x2 up-convolution. A 572 input gives 388 (paper, Fig. 1); the 3D U-Net's 132 x 132 x 116 gives
44 x 44 x 28 (Cicek et al. 2016). Valid sizes are spaced ``2**depth`` apart: shifting the input by
that much shifts every pooling grid by whole cells, which is what makes overlap-tiling exact.

Examples
--------
>>> output_shape((572, 572), depth=4, block_loss=4)
(388, 388)
>>> valid_input_shape((500, 500), depth=4, block_loss=4)
(508, 508)
"""

from __future__ import annotations

from collections.abc import Sequence


def _output_size(size: int, depth: int, block_loss: int, up_loss: int) -> int | None:
    """Output size along one axis, or ``None`` if ``size`` is not a valid input size."""
    s = size
    for _ in range(depth):
        s -= block_loss
        if s <= 0 or s % 2:
            return None  # a 2x2 max-pool needs an even size
        s //= 2
    s -= block_loss  # the bottom block
    for _ in range(depth):
        s = 2 * s - up_loss - block_loss
    return s if s > 0 else None


def _valid_sizes_near(size: int, depth: int, block_loss: int, up_loss: int) -> str:
    lower = next(
        (n for n in range(size, 0, -1) if _output_size(n, depth, block_loss, up_loss)), None
    )
    upper = _valid_input_size(size, depth, block_loss, up_loss)
    return f"{lower} or {upper}" if lower else f"{upper}"


def _valid_input_size(min_size: int, depth: int, block_loss: int, up_loss: int) -> int:
    n = max(1, min_size)
    while _output_size(n, depth, block_loss, up_loss) is None:
        n += 1  # valid sizes are 2**depth apart, so this loop is short
    return n


def _check_shape(name: str, shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(shape)
    if not shape or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(f"{name} must be a sequence of positive ints, got {shape!r}")
    return shape


def output_shape(
    input_shape: Sequence[int], depth: int, *, block_loss: int, up_loss: int = 0
) -> tuple[int, ...]:
    """Spatial output shape of a U-Net for a spatial input shape (see the module docstring).

    Raises
    ------
    ValueError
        If some axis is not a valid input size; the message names the nearest valid sizes.
    """
    out = []
    for axis, size in enumerate(_check_shape("input_shape", input_shape)):
        result = _output_size(size, depth, block_loss, up_loss)
        if result is None:
            raise ValueError(
                f"input size {size} on spatial axis {axis} does not go through a depth-{depth} "
                f"U-Net (every max-pool needs an even size); nearest valid sizes: "
                f"{_valid_sizes_near(size, depth, block_loss, up_loss)}"
            )
        out.append(result)
    return tuple(out)


def valid_input_shape(
    min_shape: Sequence[int], depth: int, *, block_loss: int, up_loss: int = 0
) -> tuple[int, ...]:
    """The smallest valid input shape that is at least ``min_shape`` on every axis."""
    return tuple(
        _valid_input_size(s, depth, block_loss, up_loss)
        for s in _check_shape("min_shape", min_shape)
    )

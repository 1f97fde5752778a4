"""Argument checks every layer of the package shares: ints, choices, spatial axes, voxel spacing.

Each raises ``ValueError`` naming the argument, what was expected and what came, so that a
learner's typo is reported where it was made and never turns into a silently wrong number.

Examples
--------
>>> check_int("depth", 4)
4
>>> check_int("depth", 0)
Traceback (most recent call last):
...
ValueError: depth must be a positive int, got 0
>>> check_choice("norm", "group", (None, "batch", "instance"))
Traceback (most recent call last):
...
ValueError: norm must be one of (None, 'batch', 'instance'), got 'group'
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real

Spacing = float | Sequence[float] | None
"""Voxel size: one number for every axis, one per spatial axis, or ``None`` (1 everywhere)."""


def check_int(name: str, value: object, minimum: int = 1, maximum: int | None = None) -> int:
    """Return ``value`` if it is an int (not a bool) in ``[minimum, maximum]``, else raise.

    The message says "a positive int" for ``minimum=1``, "a non-negative int" for 0.

    >>> check_int("growth_rate", 3, minimum=2, maximum=4)
    3
    """
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    if ok and maximum is not None:
        ok = value <= maximum  # type: ignore[operator]
    if not ok:
        if maximum is not None:
            wanted = f"an int in [{minimum}, {maximum}]"
        else:
            wanted = {1: "a positive int", 0: "a non-negative int"}.get(
                minimum, f"an int >= {minimum}"
            )
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return value  # type: ignore[return-value]


def check_choice(name: str, value: object, choices: Sequence[object]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``.

    >>> check_choice("padding", "same", ("valid", "same"))
    """
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def check_spatial_dims(spatial_dims: object) -> int:
    """Return ``spatial_dims`` if it is 2 or 3 (images or volumes), else raise ``ValueError``.

    >>> check_spatial_dims(3)
    3
    """
    if spatial_dims not in (2, 3) or isinstance(spatial_dims, bool):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    return spatial_dims


def kernel_tuple(kernel_size: int | Sequence[int], spatial_dims: int) -> tuple[int, ...]:
    """A kernel size as one positive odd int per spatial axis (a single int applies to all).

    Odd sizes keep ``"same"`` padding symmetric (``k // 2`` on each side).

    >>> kernel_tuple(3, 3), kernel_tuple((1, 3, 3), 3)
    ((3, 3, 3), (1, 3, 3))
    """
    kernel = (kernel_size,) * spatial_dims if isinstance(kernel_size, int) else tuple(kernel_size)
    if len(kernel) != spatial_dims or any(
        not isinstance(k, int) or k < 1 or k % 2 == 0 for k in kernel
    ):
        raise ValueError(
            f"kernel_size must be a positive odd int or {spatial_dims} of them, got {kernel_size!r}"
        )
    return kernel


def resolve_spatial_dims(ndim: int, spacing: Spacing, spatial_dims: int | None) -> int:
    """How many trailing axes are spatial (the course's rule for every metric and distance map).

    ``spatial_dims`` when given; otherwise ``len(spacing)`` when spacing is a sequence; otherwise
    every axis is spatial (as in SciPy). Raises ``ValueError`` when these disagree.

    >>> resolve_spatial_dims(4, (1.0, 0.5), None)
    2
    """
    from_spacing = len(spacing) if isinstance(spacing, Sequence) else None
    if spatial_dims is None:
        spatial_dims = from_spacing if from_spacing is not None else ndim
    if not isinstance(spatial_dims, int) or not 1 <= spatial_dims <= ndim:
        raise ValueError(
            f"spatial_dims must be an int from 1 to the input's {ndim} axes, got {spatial_dims!r}"
        )
    if from_spacing is not None and from_spacing != spatial_dims:
        raise ValueError(
            f"spacing must give one value per spatial axis ({spatial_dims}), got {from_spacing}"
        )
    return spatial_dims


def resolve_spacing(spacing: Spacing, spatial_dims: int) -> tuple[float, ...]:
    """One positive voxel size per spatial axis (a scalar applies to every axis; None means 1).

    >>> resolve_spacing(0.5, 2)
    (0.5, 0.5)
    """
    if spacing is None:
        return (1.0,) * spatial_dims
    values = tuple(spacing) if isinstance(spacing, Sequence) else (spacing,) * spatial_dims
    if any(not isinstance(s, Real) or not float(s) > 0 for s in values):
        raise ValueError(f"spacing must be positive numbers, got {spacing!r}")
    return tuple(float(s) for s in values)

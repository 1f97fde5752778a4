"""Exact Euclidean distance transform in torch, on the device of its input (CPU or CUDA).

The squared Euclidean distance is separable: ``d²(x) = min_y Σ_a (x_a − y_a)² s_a²`` can be
computed one axis at a time, each pass taking the lower envelope of parabolas
``f(j) + (i − j)² s²`` along every line of that axis (Felzenszwalb & Huttenlocher 2012). Here
every line of an axis is processed at once: the loop runs over the positions of one line (its
length), while all lines of the whole batch advance together as tensor operations.
"""

from __future__ import annotations

import torch

from course_lib.ops.checks import Spacing, resolve_spacing, resolve_spatial_dims


def _nearest_zero_along_first(mask: torch.Tensor, step: float) -> torch.Tensor:
    """Squared distance along axis 0 to the nearest zero of ``mask`` (inf when the line has none).

    The first pass needs no envelope: the nearest zero above is a running maximum of the zero
    positions, the nearest below the same on the flipped line.
    """
    n = mask.shape[0]
    pos = torch.arange(n, device=mask.device).view(-1, *[1] * (mask.ndim - 1))
    never = torch.full_like(pos, -2 * n)  # far enough that a missing zero stays missing
    above = _running_max(torch.where(mask, never, pos))
    below = n - 1 - _running_max(torch.where(mask.flip(0), never, pos)).flip(0)
    gap = torch.minimum(pos - above, below - pos).to(torch.float64)
    return torch.where(gap > n, torch.inf, (gap * step) ** 2)


def _running_max(x: torch.Tensor) -> torch.Tensor:
    """``x.cummax(0).values``, one row at a time over all lines at once (``cummax`` along the
    first axis walks each line on its own, several times slower on the CPU)."""
    out = x.contiguous().clone()
    for i in range(1, len(out)):
        torch.maximum(out[i - 1], out[i], out=out[i])
    return out


def _lower_envelope(f: torch.Tensor, step: float) -> torch.Tensor:
    """``d(i) = min_j f(j) + ((i − j)·step)²`` along axis 0 of ``f`` (shape: n, lines).

    Felzenszwalb & Huttenlocher's algorithm, one position ``q`` at a time for all lines at once.
    Each line keeps a stack of the parabolas on its lower envelope: for each, its site ``x_j``,
    ``g_j = f(j) + x_j²`` (the parabola is ``g_j − 2·x·x_j + x²``, so two of them cross where a
    linear equation says) and the ``start`` from which it is the lowest. A new parabola pops those
    it hides, then is pushed. Infinite ``f`` (no zero seen yet) adds no parabola. float64, because
    the crossings of far-apart parabolas lose about ``n²·eps`` absolute precision.
    """
    n, lines = f.shape
    x = torch.arange(n, device=f.device, dtype=f.dtype) * step
    g = f + x[:, None] ** 2
    finite = torch.isfinite(f)
    every = torch.arange(lines, device=f.device)
    # Slot k of line l is row k·lines + l of (x_j, g_j, start). Every slot starts as a sentinel:
    # g = inf puts any real parabola's crossing with it at -inf (the first parabola of a line then
    # starts at -inf), and start = NaN compares False, so the empty stack never pops.
    stack = torch.tensor([0.0, torch.inf, torch.nan], dtype=f.dtype, device=f.device)
    stack = stack.repeat(n * lines, 1)
    top = torch.full((lines,), -1, dtype=torch.long, device=f.device)  # -1: empty stack
    for q in range(n):
        gq, xq, new = g[q], x[q], finite[q]
        xs, gs, start = stack.index_select(0, top.clamp(min=0) * lines + every).unbind(-1)
        cross = (gq - gs) / (2 * (xq - xs))  # where parabola q meets the top of the stack
        popped = (new & (cross <= start)).nonzero().squeeze(1)
        while popped.numel():  # only the lines that popped go round again
            top[popped] -= 1
            xs, gs, start = stack.index_select(0, top[popped] * lines + popped).unbind(-1)
            cross[popped] = c = (gq[popped] - gs) / (2 * (xq - xs))
            popped = popped[c <= start]
        top += new
        pushed = every if bool(new.all()) else new.nonzero().squeeze(1)
        row = torch.stack([xq.expand(len(pushed)), gq[pushed], cross[pushed]], -1)
        stack.index_copy_(0, top[pushed] * lines + pushed, row)
    # Evaluate: the parabola of x is the last one on its line's stack that starts before x.
    stack = stack.view(n, lines, 3).transpose(0, 1).contiguous()  # (lines, slot, 3)
    slot = torch.arange(n, device=f.device)
    starts = torch.where((slot >= 1) & (slot <= top[:, None]), stack[..., 2], torch.inf)
    which = torch.searchsorted(starts[:, 1:].contiguous(), x.expand(lines, n).contiguous())
    site = stack.gather(1, which[..., None].expand(lines, n, 3))
    return (site[..., 1] - 2 * x * site[..., 0] + x**2).T  # inf where a line had no zero


def distance_transform_edt(
    mask: torch.Tensor, spacing: Spacing = None, *, spatial_dims: int | None = None
) -> torch.Tensor:
    """Distance of every nonzero voxel to the nearest zero voxel, in units of ``spacing``.

    ``d(x) = min { ‖(x − y)·s‖₂ : mask(y) = 0 }`` for nonzero ``x``, and 0 where ``mask`` is zero:
    the convention of ``scipy.ndimage.distance_transform_edt``, computed exactly by the separable
    lower-envelope algorithm (Felzenszwalb & Huttenlocher, "Distance transforms of sampled
    functions", Theory of Computing 8, 2012, section 2) on the input's device.

    Parameters
    ----------
    mask : Tensor
        Any dtype; nonzero means "inside". Shape ``(*batch, *spatial)``: the trailing
        ``spatial_dims`` axes are spatial, the leading ones are independent items (for example one
        mask per instance, or ``(N, C)``).
    spacing : float or sequence of float, optional
        Voxel size per spatial axis (e.g. mm), or one value for all; default 1.
    spatial_dims : int, optional
        Number of trailing spatial axes. Default: ``len(spacing)`` if spacing is a sequence, else
        every axis (SciPy's convention).

    Returns
    -------
    Tensor
        float32, the shape of ``mask``. An item with no zero voxel at all is ``inf`` everywhere
        (SciPy returns arbitrary large values there).

    Examples
    --------
    >>> m = torch.tensor([[0, 1, 1, 1, 1]])
    >>> distance_transform_edt(m)
    tensor([[0., 1., 2., 3., 4.]])

    Distance to the nearest pixel of each instance of a label map, for all instances at once:

    >>> labels = torch.tensor([[1, 0, 0, 2]])
    >>> ids = torch.tensor([1, 2])
    >>> distance_transform_edt(labels != ids[:, None, None], spatial_dims=2)
    tensor([[[0., 1., 2., 3.]],
    <BLANKLINE>
            [[3., 2., 1., 0.]]])
    """
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.ndim == 0 or mask.numel() == 0:
        raise ValueError(f"mask must have at least one axis and one voxel, got shape {mask.shape}")
    spatial_dims = resolve_spatial_dims(mask.ndim, spacing, spatial_dims)
    steps = resolve_spacing(spacing, spatial_dims)
    inside = mask != 0
    axes = list(range(mask.ndim - spatial_dims, mask.ndim))
    # The first pass is a cheap scan; give it the longest axis, since the envelope passes loop
    # over the length of their axis.
    first = max(axes, key=lambda a: mask.shape[a])
    d2 = _nearest_zero_along_first(inside.movedim(first, 0), steps[first - axes[0]])
    d2 = d2.movedim(0, first)
    for axis in axes:
        if axis != first:
            lines = d2.movedim(axis, 0)
            f = lines.reshape(lines.shape[0], -1)
            # a line with no zero anywhere stays inf: skip it (most lines, for thin surfaces)
            alive = torch.isfinite(f).any(0)
            env = torch.full_like(f, torch.inf)
            env[:, alive] = _lower_envelope(f[:, alive], steps[axis - axes[0]])
            d2 = env.reshape(lines.shape).movedim(0, axis)
    return d2.sqrt().to(torch.float32).contiguous()


def distance_transform_at(
    mask: torch.Tensor, points: torch.Tensor, spacing: Spacing = None
) -> torch.Tensor:
    """:func:`distance_transform_edt` of ``mask`` read at ``points`` only, computed for them alone.

    The same separable passes, cut down to what the points need: the cheap first pass over the
    whole mask along the axis where the points take the fewest distinct values, the envelope
    passes of the middle axes only on the planes across that axis through the points, and the
    last pass only at the points, as a minimum over their lines. For a few points of a large mask
    this costs a fraction of the full transform (:mod:`course_lib.metrics.surface` uses it for
    surface voxels far from the other surface).

    Parameters
    ----------
    mask : Tensor
        One mask, every axis spatial; nonzero means "inside".
    points : Tensor
        ``(k, mask.ndim)`` integer coordinates.
    spacing : float or sequence of float, optional
        Voxel size per axis, or one value for all; default 1.

    Returns
    -------
    Tensor
        ``(k,)`` float32 distances, 0 at zero voxels and ``inf`` when ``mask`` has no zero.

    Examples
    --------
    >>> m = torch.tensor([[0, 1, 1], [1, 1, 1]])
    >>> distance_transform_at(m, torch.tensor([[1, 2], [0, 0]]), (1.0, 2.0))
    tensor([4.1231, 0.0000])
    """
    if not isinstance(mask, torch.Tensor) or mask.ndim == 0 or mask.numel() == 0:
        raise ValueError(f"mask must be a tensor with at least one voxel, got {mask!r}")
    if points.ndim != 2 or points.shape[1] != mask.ndim or points.is_floating_point():
        raise ValueError(
            f"points must be (k, {mask.ndim}) integer coordinates, got {tuple(points.shape)} "
            f"{points.dtype}"
        )
    steps = resolve_spacing(spacing, mask.ndim)
    # the planes are cut across the axis where the points take the fewest distinct values
    last = min(range(mask.ndim), key=lambda a: len(points[:, a].unique()))
    order = [a for a in range(mask.ndim) if a != last] + [last]
    mask, points, steps = mask.permute(order), points[:, order], tuple(steps[a] for a in order)
    inside = (mask != 0).movedim(-1, 0).contiguous()  # the scan runs fastest along axis 0
    f = _nearest_zero_along_first(inside, steps[-1]).movedim(0, -1)
    if mask.ndim == 1:
        return f[points[:, 0]].sqrt().to(torch.float32)
    planes, plane_of = points[:, -1].unique(return_inverse=True)
    g = f[..., planes]  # the planes through the points' last coordinates
    for axis in range(1, mask.ndim - 1):
        lines = g.movedim(axis, 0)
        flat = lines.reshape(lines.shape[0], -1)
        alive = torch.isfinite(flat).any(0)  # a line without a zero stays inf
        env = torch.full_like(flat, torch.inf)
        env[:, alive] = _lower_envelope(flat[:, alive], steps[axis])
        g = env.reshape(lines.shape).movedim(0, axis)
    column = g[(slice(None), *points[:, 1:-1].T, plane_of)]  # (n0, k): the points' lines
    y0 = torch.arange(mask.shape[0], device=mask.device, dtype=column.dtype) * steps[0]
    d2 = (column + (points[:, 0].to(column.dtype) * steps[0] - y0[:, None]) ** 2).amin(0)
    return d2.sqrt().to(torch.float32)

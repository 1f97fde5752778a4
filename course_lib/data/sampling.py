"""Random training patches of whole cases: one sampler for every chapter that trains on patches.

A net for volumes trains on patches: a random case, a random box of ``patch_size`` voxels inside
it, repeated ``batch_size`` times. When the foreground is rare, uniform boxes rarely contain any;
nnU-Net therefore forces a fraction of every batch (one third) to be centred on a random
foreground voxel ("oversampling", Isensee et al., Nature Methods 2021, online methods), and the
2.5D U-Net chapter centres half of its patches on the target. :class:`PatchSampler` does both:

* item ``j`` of a batch is forced when ``j >= round(batch_size * (1 - foreground_fraction))``
  (nnU-Net's rule: the *last* items of each batch, a fixed number per batch);
* a forced item is centred on a voxel drawn uniformly from the case's foreground
  (``label > 0``, unannotated ``-1`` excluded), the box shifted to lie inside the case;
* any other item has its corner drawn uniformly, so that every voxel can be seen.

A sampler is a function of the step number (``sampler(step) -> (images, labels)``), which is what
:func:`course_lib.training.fit` accepts as ``batches``: its draws come from a generator seeded by
``(seed, step)``, so a batch is a pure function of the step (resumable, and the same under any
number of threads).

Examples
--------
>>> import torch
>>> image, label = torch.randn(1, 8, 16, 16), torch.zeros(8, 16, 16, dtype=torch.long)
>>> label[4, 8, 8] = 1  # one foreground voxel
>>> sampler = PatchSampler([image], [label], (4, 8, 8), batch_size=2, foreground_fraction=0.5)
>>> x, y = sampler(1)
>>> tuple(x.shape), tuple(y.shape), int(y[1].sum())  # the second item is forced: it holds it
((2, 1, 4, 8, 8), (2, 4, 8, 8), 1)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from course_lib.ops.checks import check_int


def patch_box(
    shape: Sequence[int],
    patch_size: Sequence[int],
    generator: torch.Generator,
    *,
    centre: Sequence[int] | None = None,
) -> tuple[slice, ...]:
    """A box of ``patch_size`` inside ``shape``: a uniform corner, or around ``centre``.

    Around a centre the box starts at ``centre - patch // 2``, shifted (clamped) to lie inside.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> patch_box((10, 10), (4, 4), g, centre=(0, 9))
    (slice(0, 4, None), slice(6, 10, None))
    """
    if len(patch_size) != len(shape) or any(p > s for p, s in zip(patch_size, shape, strict=True)):
        raise ValueError(
            f"patch_size {tuple(patch_size)} must have one size per axis of {tuple(shape)} and "
            "fit inside it"
        )
    if centre is None:
        starts = [
            int(torch.randint(s - p + 1, (1,), generator=generator))
            for s, p in zip(shape, patch_size, strict=True)
        ]
    else:
        starts = [
            min(max(int(c) - p // 2, 0), s - p)
            for c, p, s in zip(centre, patch_size, shape, strict=True)
        ]
    return tuple(slice(a, a + p) for a, p in zip(starts, patch_size, strict=True))


class PatchSampler:
    """``sampler(step) -> (images (B, C, *patch), labels (B, *patch))``: random patches of cases.

    Parameters
    ----------
    images : sequence of Tensor
        One ``(C, *spatial)`` image per case (2D or 3D), already normalised.
    labels : sequence of Tensor
        One ``(*spatial)`` integer label map per case (``-1`` for unannotated voxels is allowed).
    patch_size : sequence of int
        The box, at most the case's size along every axis.
    batch_size : int
        Patches per batch.
    foreground_fraction : float
        Fraction of every batch centred on a foreground voxel (nnU-Net: 0.33; 0: all uniform).
        A case without foreground gives a uniform patch instead.
    seed : int
        Seed of the draws; step ``k`` uses a generator seeded with ``(seed, k)``.

    See the module docstring for how items are drawn.
    """

    def __init__(
        self,
        images: Sequence[torch.Tensor],
        labels: Sequence[torch.Tensor],
        patch_size: Sequence[int],
        *,
        batch_size: int,
        foreground_fraction: float = 0.0,
        seed: int = 0,
    ) -> None:
        if len(images) != len(labels) or not images:
            raise ValueError(
                f"images and labels must be non-empty and of one length, got {len(images)} and "
                f"{len(labels)}"
            )
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            if image.ndim != label.ndim + 1 or image.shape[1:] != label.shape:
                raise ValueError(
                    f"case {i}: image must be (C, *spatial) and label (*spatial) of the same "
                    f"spatial shape, got {tuple(image.shape)} and {tuple(label.shape)}"
                )
        if not 0.0 <= foreground_fraction <= 1.0:
            raise ValueError(f"foreground_fraction must be in [0, 1], got {foreground_fraction!r}")
        self.images, self.labels = list(images), list(labels)
        self.patch_size = tuple(int(p) for p in patch_size)
        for label in self.labels:
            patch_box(label.shape, self.patch_size, torch.Generator(), centre=[0] * label.ndim)
        self.batch_size = check_int("batch_size", batch_size)
        self.foreground_fraction = foreground_fraction
        self.seed = check_int("seed", seed, minimum=0)
        self._foreground = [torch.nonzero(label > 0).cpu() for label in self.labels]

    def forced(self) -> list[bool]:
        """Which items of a batch are centred on foreground (the last ones, nnU-Net's rule).

        >>> PatchSampler([torch.zeros(1, 4)], [torch.zeros(4)], (2,), batch_size=3,
        ...              foreground_fraction=0.33).forced()
        [False, False, True]
        """
        first = round(self.batch_size * (1 - self.foreground_fraction))
        return [j >= first for j in range(self.batch_size)]

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        # modulo 2**63: runtime.seed() gives 63-bit seeds under COURSE_SEED, which would overflow
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + int(step)) % 2**63)
        xs, ys = [], []
        for forced in self.forced():
            i = int(torch.randint(len(self.images), (1,), generator=generator))
            voxels = self._foreground[i]
            centre = None
            if forced and len(voxels):
                centre = voxels[int(torch.randint(len(voxels), (1,), generator=generator))].tolist()
            box = patch_box(self.labels[i].shape, self.patch_size, generator, centre=centre)
            xs.append(self.images[i][(slice(None), *box)])
            ys.append(self.labels[i][box])
        return torch.stack(xs), torch.stack(ys)

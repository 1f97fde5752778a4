"""nnU-Net v2's training scheme: splits, patch sampling, loss with deep supervision, SGD + poly.

* 5-fold cross-validation over the sorted case ids, shuffled with seed 12345 (scikit-learn's
  ``KFold(5, shuffle=True, random_state=12345)``, reproduced here without scikit-learn);
* patches: one third of each batch is forced to contain foreground (oversampling 0.33), the rest
  is placed uniformly; parts outside the image are padded (image 0, label 0);
* loss: Dice (softmax, background excluded, smooth 1e-5, batch Dice per plan) + cross-entropy,
  summed over the deep-supervision outputs with weights 1/2^i (lowest resolution 0), normalized;
* optimizer: SGD, lr 1e-2, momentum 0.99, Nesterov, weight decay 3e-5; learning rate
  ``1e-2 * (1 - epoch / max_epochs) ** 0.9`` (the 2018 paper used Adam 3e-4 with
  reduce-on-plateau); gradient norm clipped at 12.

Augmentation here is mirroring only (nnU-Net adds rotation, scaling, noise, blur, brightness,
contrast, low resolution and gamma; see the chapter).

References
----------
Isensee et al., Nature Methods 2021, online methods "training"; nnunetv2 2.8.1
``training/nnUNetTrainer/nnUNetTrainer.py``, ``training/dataloading/data_loader.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from course_lib.losses import dice_ce_loss
from course_lib.nnunet.network import deep_supervision_weights

INITIAL_LR = 1e-2
MOMENTUM = 0.99
WEIGHT_DECAY = 3e-5
POLY_EXPONENT = 0.9
GRAD_CLIP_NORM = 12.0
OVERSAMPLE_FOREGROUND = 0.33
SPLIT_SEED = 12345
DICE_SMOOTH = 1e-5


def kfold_splits(
    case_ids: Sequence[str], n_splits: int = 5, seed: int = SPLIT_SEED
) -> list[dict[str, list[str]]]:
    """nnU-Net's ``splits_final.json``: ``[{"train": [...], "val": [...]}, ...]``.

    The sorted ids are shuffled with ``np.random.RandomState(seed)``; fold ``k`` validates on the
    ``k``-th consecutive chunk (the first ``n % n_splits`` chunks one larger), as scikit-learn's
    ``KFold(n_splits, shuffle=True, random_state=seed)``. Both lists come back in sorted order.

    Examples
    --------
    >>> [s["val"] for s in kfold_splits([f"c{i}" for i in range(7)])]
    [['c3', 'c6'], ['c0', 'c4'], ['c1'], ['c5'], ['c2']]
    """
    keys = sorted(case_ids)
    if not 2 <= n_splits <= len(keys):
        raise ValueError(f"n_splits must be in [2, n_cases={len(keys)}], got {n_splits}")
    order = np.arange(len(keys))
    np.random.RandomState(seed).shuffle(order)
    sizes = [len(keys) // n_splits + (k < len(keys) % n_splits) for k in range(n_splits)]
    splits, start = [], 0
    for size in sizes:
        val = set(order[start : start + size].tolist())
        start += size
        splits.append(
            {
                "train": [k for i, k in enumerate(keys) if i not in val],
                "val": [k for i, k in enumerate(keys) if i in val],
            }
        )
    return splits


def poly_lr(epoch: int, max_epochs: int, initial_lr: float = INITIAL_LR) -> float:
    """``initial_lr * (1 - epoch / max_epochs) ** 0.9``, set at the start of each epoch.

    Examples
    --------
    >>> poly_lr(0, 1000), round(poly_lr(500, 1000), 6)
    (0.01, 0.005359)
    """
    if not 0 <= epoch <= max_epochs:
        raise ValueError(f"epoch must be in [0, max_epochs={max_epochs}], got {epoch}")
    return initial_lr * (1 - epoch / max_epochs) ** POLY_EXPONENT


def make_optimizer(net: torch.nn.Module, lr: float = INITIAL_LR) -> torch.optim.SGD:
    """SGD with Nesterov momentum 0.99 and weight decay 3e-5, nnU-Net's optimizer."""
    return torch.optim.SGD(
        net.parameters(), lr=lr, momentum=MOMENTUM, nesterov=True, weight_decay=WEIGHT_DECAY
    )


def forced_foreground(batch_size: int, oversample: float = OVERSAMPLE_FOREGROUND) -> list[bool]:
    """Which samples of a batch must contain foreground: ``j >= round(B * (1 - 0.33))``.

    Examples
    --------
    >>> forced_foreground(2), forced_foreground(5)
    ([False, True], [False, False, False, True, True])
    """
    return [j >= round(batch_size * (1 - oversample)) for j in range(batch_size)]


def sample_patch(
    data: torch.Tensor,
    seg: torch.Tensor,
    patch_size: Sequence[int],
    *,
    force_foreground: bool,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop one ``(C, *patch_size)`` image patch and its ``(*patch_size)`` labels from a case.

    A forced patch is centred on a random voxel of a random foreground class present in the case;
    otherwise the patch corner is uniform (the patch may stick out by up to half its size where
    the case is smaller). Outside the case the image is 0 and the label 0.
    """
    spatial = seg.shape
    patch = [int(p) for p in patch_size]
    if len(patch) != len(spatial) or data.shape[1:] != spatial:
        raise ValueError(
            f"data (C, *spatial) and seg (*spatial) must match and patch_size have "
            f"{len(spatial)} axes; got {tuple(data.shape)}, {tuple(spatial)}, {patch}"
        )

    def randint(low: int, high: int) -> int:
        return int(torch.randint(low, high + 1, (1,), generator=generator))

    classes = [int(c) for c in torch.unique(seg) if c > 0]
    if force_foreground and classes:
        cls = classes[randint(0, len(classes) - 1)]
        voxels = torch.nonzero(seg == cls)
        centre = voxels[randint(0, len(voxels) - 1)].tolist()
        lower = [c - p // 2 for c, p in zip(centre, patch, strict=True)]
    else:
        # like nnU-Net, allow half of any missing extent outside the image on both sides
        lower = []
        for s, p in zip(spatial, patch, strict=True):
            need = max(p - s, 0)
            lower.append(randint(-need // 2, s + need // 2 - p + (need % 2)))
    # pad so that every requested voxel exists, then crop
    pads = []
    for low, s, p in zip(lower, spatial, patch, strict=True):
        pads.append((max(-low, 0), max(low + p - s, 0)))
    flat = [v for pair in reversed(pads) for v in pair]
    data_p = torch.nn.functional.pad(data, flat)
    seg_p = torch.nn.functional.pad(seg, flat)
    sl = tuple(
        slice(low + before, low + before + p)
        for low, (before, _), p in zip(lower, pads, patch, strict=True)
    )
    return data_p[(slice(None), *sl)], seg_p[sl]


def sample_batch(
    cases: Sequence[tuple[torch.Tensor, torch.Tensor]],
    batch_size: int,
    patch_size: Sequence[int],
    generator: torch.Generator,
    mirror_axes: Sequence[int] = (),
) -> tuple[torch.Tensor, torch.Tensor]:
    """A training batch: random cases, foreground oversampling, random mirroring per sample."""
    images, labels = [], []
    for force in forced_foreground(batch_size):
        data, seg = cases[int(torch.randint(len(cases), (1,), generator=generator))]
        x, y = sample_patch(data, seg, patch_size, force_foreground=force, generator=generator)
        flips = [a for a in mirror_axes if torch.rand(1, generator=generator) < 0.5]
        if flips:
            x, y = x.flip([a + 1 for a in flips]), y.flip(flips)
        images.append(x)
        labels.append(y)
    return torch.stack(images), torch.stack(labels).long()


def deep_supervision_loss(
    outputs: torch.Tensor | tuple[torch.Tensor, Sequence[torch.Tensor]],
    target: torch.Tensor,
    *,
    batch_dice: bool = False,
    loss_fn: Callable[..., torch.Tensor] | None = None,
) -> torch.Tensor:
    """nnU-Net's ``DC_and_CE_loss`` over all deep-supervision outputs, weighted 1/2^i.

    ``outputs`` is ``(logits, auxiliary)`` as ``net(x, return_auxiliary=True)`` returns it (the
    coarser outputs finest first). Each output ``i`` is compared with the target downsampled to its
    size (nearest-exact); the lowest-resolution output has weight 0. A single tensor output is a
    plain Dice + CE.
    """
    if loss_fn is None:

        def loss_fn(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return dice_ce_loss(
                logits,
                labels,
                include_background=False,
                batch=batch_dice,
                smooth_nr=DICE_SMOOTH,
                smooth_dr=DICE_SMOOTH,
            )

    if isinstance(outputs, torch.Tensor):
        return loss_fn(outputs, target)
    logits, auxiliary = outputs
    every = [logits, *auxiliary]
    weights = deep_supervision_weights(len(every))
    total = logits.new_zeros(())
    for w, out in zip(weights.tolist(), every, strict=True):
        if w == 0:
            continue
        down = torch.nn.functional.interpolate(
            target[:, None].float(), size=out.shape[2:], mode="nearest-exact"
        )[:, 0].long()
        total = total + w * loss_fn(out, down)
    return total

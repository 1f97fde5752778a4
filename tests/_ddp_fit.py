"""Training runs that tests/test_training_distributed.py makes twice: under torchrun, and alone.

``torchrun --standalone --nproc_per_node=2 tests/_ddp_fit.py OUT.json`` trains data-parallel on 2
CPU processes (gloo); the test imports :func:`runs` and calls it in its own process (one process,
the whole batch). Both make the same three runs from the same seeds:

- ``uninterrupted``: 6 SGD steps (with momentum: the optimizer has a state to resume),
  validation every 3 and a checkpoint at the end;
- ``resumed``: 3 steps with a checkpoint, then a fresh model and optimizer resumed to step 6;
- the final weights of each, as one flat list.

The net has no batch norm and the loss is a mean over samples, so 2 processes with half the
batch each take the steps of 1 process with the whole batch. (SGD, not Adam: Adam divides by the
gradients' running size, which turns rounding differences in near-zero gradients into visible
differences in the steps.)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from course_lib import distributed, runtime
from course_lib.training import fit

BATCH = 4
"""The global batch: 2 samples per process under torchrun with 2 processes."""


def _batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = runtime.generator(1000 + step)
    x = torch.randn(BATCH, 1, 8, 8, generator=gen, dtype=torch.float64)
    y = (x[:, 0] > 0.3).long()
    return x, y


def _net() -> nn.Module:
    # float64: rounding stays far below the tolerance of the comparison
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1)).double()


def _run(checkpoint: Path, stop_at: int | None) -> tuple[dict, list[float]]:
    runtime.seed_everything(7)
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    common = dict(val_batches=[_batch(-1)], val_every=3, checkpoint=checkpoint, progress=False)
    if stop_at is not None:  # interrupted, then a new process would start from scratch
        fit(model, _batch, F.cross_entropy, opt, iterations=stop_at, **common)
        runtime.seed_everything(99)  # a different initialisation: the checkpoint must replace it
        model = _net()
        opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    seen: list[int] = []  # the batch size each training forward pass of this process got
    model.register_forward_pre_hook(
        lambda _, args: seen.append(args[0].shape[0]) if model.training else None
    )
    history = fit(model, _batch, F.cross_entropy, opt, iterations=6, resume=True, **common)
    weights = torch.cat([p.detach().flatten() for p in model.parameters()]).tolist()
    return {**history.to_dict(), "batch_seen": sorted(set(seen))}, weights


def runs(folder: Path) -> dict:
    """The two runs' histories and final weights, and the world size they ran with."""
    uninterrupted, w_uninterrupted = _run(folder / "uninterrupted.pt", None)
    resumed, w_resumed = _run(folder / "resumed.pt", 3)
    return {
        "world": distributed.rank_and_world()[1],
        "uninterrupted": uninterrupted,
        "resumed": resumed,
        "weights": {"uninterrupted": w_uninterrupted, "resumed": w_resumed},
    }


if __name__ == "__main__":
    rank = int(os.environ.get("RANK", "0"))
    # every process checkpoints into one folder (rank 0 writes, the others read on resume)
    folder = Path(sys.argv[1]).parent / "checkpoints"
    folder.mkdir(exist_ok=True)
    result = runs(folder)
    if rank == 0:
        Path(sys.argv[1]).write_text(json.dumps(result))
    elif not (folder / "resumed.pt").exists():
        raise SystemExit("rank 0's checkpoint is missing on rank > 0")

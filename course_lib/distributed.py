"""Data-parallel training with PyTorch's own engine: what :func:`course_lib.training.fit` needs.

``torchrun --nproc_per_node=N script.py`` starts N copies of a training script and tells each, in
environment variables, who it is (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``) and where to meet
(``MASTER_ADDR``, ``MASTER_PORT``). :func:`init_from_environment` joins that group (NCCL between
GPUs, gloo between CPU processes); from then on, the copies run the same steps in lock-step:

1. every process builds the same model from the same seed, and ``DistributedDataParallel``
   broadcasts rank 0's weights once, so they start equal;
2. every process draws the same *global* batch and trains on its own share of it
   (:func:`batch_share`: rank ``r`` of ``N`` takes the ``r``-th of ``N`` equal slices along the
   batch axis);
3. the backward pass averages the gradients over the processes (an all-reduce, overlapped with
   the backward computation), so every optimizer step is the same on every process: with a loss
   that is a mean over samples, N processes with batch B take the steps one process takes with
   batch N·B (Goyal et al., "Accurate, Large Minibatch SGD", 2017, section 2; PyTorch's
   ``DistributedDataParallel``, Li et al., VLDB 2020);
4. one process (rank 0) logs, validates and writes checkpoints; the others wait for it where they
   need its result.

Drawing the whole global batch on every process keeps the course's batch streams (a list, a
``DataLoader``, a ``step -> batch`` function) unchanged and the runs reproducible; a large real
pipeline would rather load only its share (``torch.utils.data.DistributedSampler``).

Batch-norm layers see only their process's share: their statistics then differ from a one-process
run with the whole batch (``nn.SyncBatchNorm.convert_sync_batchnorm`` on GPUs fixes that), while
instance norm (nnU-Net's choice) is per sample anyway.

Examples
--------
Outside torchrun nothing changes: one process, rank 0 of 1.

>>> import torch
>>> init_from_environment(torch.device("cpu"))
False
>>> rank_and_world()
(0, 1)
>>> batch_share((torch.arange(4), torch.arange(4)), rank=1, world=2)
(tensor([2, 3]), tensor([2, 3]))
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

WORLD_SIZE_ENV = "WORLD_SIZE"
"""Set by torchrun: the number of processes."""
LOCAL_RANK_ENV = "LOCAL_RANK"
"""Set by torchrun: this process's index on its machine (its GPU's index)."""


def launched_by_torchrun() -> bool:
    """Whether this process is one of several that torchrun started (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get(WORLD_SIZE_ENV, "1")) > 1


def local_device() -> torch.device:
    """The GPU of this process under torchrun (``cuda:LOCAL_RANK``), else ``cuda`` or the CPU."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    if launched_by_torchrun():
        return torch.device("cuda", int(os.environ.get(LOCAL_RANK_ENV, "0")))
    return torch.device("cuda")


def init_from_environment(device: torch.device) -> bool:
    """Join the process group torchrun set up, once; whether this run is data-parallel.

    The backend follows the device: NCCL for CUDA, gloo for the CPU. A second call (a second
    :func:`~course_lib.training.fit` in the same script) finds the group already joined.

    Raises
    ------
    RuntimeError
        If torch was built without ``torch.distributed``.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    if not launched_by_torchrun():
        return False
    if not dist.is_available():
        raise RuntimeError("this torch build has no torch.distributed: cannot train data-parallel")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=10))
    return True


def rank_and_world() -> tuple[int, int]:
    """``(rank, world size)`` of this process: ``(0, 1)`` when not data-parallel."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def batch_share(batch: tuple[Tensor, ...], rank: int, world: int) -> tuple[Tensor, ...]:
    """Rank ``rank``'s slice of every tensor of ``batch``: the ``rank``-th of ``world`` equal
    slices along axis 0.

    Raises
    ------
    ValueError
        If a tensor's batch size is not a multiple of ``world`` (the processes' shares would
        differ, and the averaged gradient would not be the whole batch's).
    """
    if world == 1:
        return batch
    shares = []
    for i, t in enumerate(batch):
        n = t.shape[0] if t.ndim else 0
        if n == 0 or n % world:
            raise ValueError(
                f"batch tensor {i} has batch size {n}, which {world} processes cannot share "
                f"equally: make the global batch size a multiple of {world}"
            )
        size = n // world
        shares.append(t[rank * size : (rank + 1) * size])
    return tuple(shares)


def mean_over_ranks(value: float, device: torch.device) -> float:
    """The mean of ``value`` over all processes (every process gets it); ``value`` alone when not
    data-parallel."""
    if rank_and_world()[1] == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def from_rank_zero(obj: Any) -> Any:
    """Rank 0's ``obj`` on every process (pickled, so any picklable value); ``obj`` itself when
    not data-parallel."""
    if rank_and_world()[1] == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    """Wait until every process gets here (e.g. until rank 0 has written a checkpoint)."""
    if rank_and_world()[1] > 1:
        dist.barrier()

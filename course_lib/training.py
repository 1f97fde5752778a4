"""One small training loop for every chapter: :func:`fit`.

What every step does, one named function each (read :func:`fit` top to bottom):

1. :func:`draw_batch`: the batch of this step ``(input, *targets)``, on the model's device;
2. :func:`train_step`: forward pass under :func:`course_lib.runtime.autocast` (mixed precision on
   CUDA, a no-op on the CPU; targets larger than the output, as for valid-padding nets, are
   centre-cropped to it), ``loss = loss_fn(output, *targets)``, backward pass, optimizer step (and
   scheduler step);
3. :func:`end_of_step`: record the loss; every ``val_every`` steps the loss and each metric on the
   validation batches; every ``checkpoint_every`` steps and at the end, model, optimizer and
   history written atomically.

Keeping the three apart is what lets a data-parallel run change only what each needs. The same
script started with ``torchrun --nproc_per_node=N script.py`` (one process per GPU, or N CPU
processes) trains data-parallel with no change to the call: every process draws its own share of
each batch, runs the same step on its ``DistributedDataParallel``-wrapped model (gradients
averaged over the processes), and rank 0 alone shows progress, validates and writes the
checkpoint. See :mod:`course_lib.distributed`.

Examples
--------
>>> import torch
>>> from torch import nn
>>> model = nn.Conv2d(1, 2, 3, padding=1)
>>> batches = [(torch.randn(2, 1, 8, 8), torch.randint(0, 2, (2, 8, 8)))]
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> history = fit(model, batches, nn.functional.cross_entropy, opt, iterations=5, progress=False)
>>> len(history.train_loss)
5
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from course_lib import distributed, runtime
from course_lib.atomic import atomic_path
from course_lib.ops.checks import check_int
from course_lib.ops.shapes import center_crop

Output = Tensor | tuple[Tensor, list[Tensor]]
"""What a model returns: logits, or with ``return_auxiliary=True`` ``(logits, auxiliary outputs)``
(deep-supervision logits or attention-map logits, finest first): the package's convention."""
Batch = tuple[Tensor, ...]
"""``(input, *targets)``: e.g. ``(image, labels)`` or ``(image, labels, weight_map)``."""
LossFn = Callable[..., Tensor]
"""``loss_fn(output, *targets) -> scalar tensor``."""
MetricFn = Callable[..., float | Tensor]
"""``metric(output, *targets) -> number``, averaged over the validation batches."""


@dataclass
class History:
    """What :func:`fit` measured: one training loss per step, validation values every few steps."""

    train_loss: list[float] = field(default_factory=list)
    """Training loss of every optimizer step, in order (step ``i`` is ``train_loss[i - 1]``)."""
    val_steps: list[int] = field(default_factory=list)
    """Steps after which the validation ran."""
    val: dict[str, list[float]] = field(default_factory=dict)
    """``"loss"`` and each metric, one value per entry of ``val_steps``."""
    seconds: float = 0.0
    """Wall time spent in training steps (validation and checkpoints excluded)."""

    @property
    def steps(self) -> int:
        """Optimizer steps taken so far."""
        return len(self.train_loss)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers (what a checkpoint stores)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        """Inverse of :meth:`to_dict`."""
        return cls(
            train_loss=[float(v) for v in data["train_loss"]],
            val_steps=[int(v) for v in data["val_steps"]],
            val={k: [float(v) for v in vs] for k, vs in data["val"].items()},
            seconds=float(data["seconds"]),
        )


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    history: History | None = None,
    scheduler: Any = None,
) -> None:
    """Write model, optimizer, scheduler and history to ``path`` atomically (temp file, rename).

    An interrupted write leaves the previous checkpoint intact: the new file only replaces the old
    one, in one ``os.replace``, once it is complete.
    """
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "history": (history or History()).to_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
) -> History:
    """Restore what :func:`save_checkpoint` wrote (``weights_only=True``: no pickled code runs).

    Returns the stored :class:`History`; loads the optimizer and scheduler states when given.
    """
    device = next(model.parameters()).device
    state = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(state["model"])
    if optimizer is not None and state["optimizer"] is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"].cpu())
    return History.from_dict(state["history"])


def _batch_stream(batches: Iterable[Batch] | Callable[[int], Batch], start: int) -> Iterator[Batch]:
    """Endless batches after ``start`` steps: ``batches(step)``, or passes over the iterable.

    On resume, a sized iterable continues where the interrupted pass stopped (a shuffling
    ``DataLoader`` reshuffles, so only a list or an unshuffled loader repeats the same batches).
    """
    if callable(batches) and not hasattr(batches, "__iter__"):
        step = start
        while True:
            step += 1
            yield batches(step)
    skip = start % len(batches) if isinstance(batches, Sized) and len(batches) else 0
    while True:
        empty = True
        for batch in batches:
            empty = False
            if skip:
                skip -= 1
                continue
            yield batch
        if empty:
            raise ValueError("batches is empty: expected at least one (input, *targets) batch")


def _to_device(batch: Batch, device: torch.device) -> Batch:
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise ValueError(
            "every batch must be a tuple (input, *targets) of at least 2 tensors, "
            f"got {type(batch).__name__} {batch!r:.60}"
        )
    return tuple(t.to(device, non_blocking=True) for t in batch)


def _at_least_float32(t: Tensor) -> Tensor:
    return t.float() if t.is_floating_point() and t.element_size() < 4 else t


def _as_float(output: Output) -> Output:
    # the loss in float32 at least: softmax and log of half-precision logits lose too much (a
    # float64 model keeps float64)
    if isinstance(output, tuple):
        logits, auxiliary = output
        return _at_least_float32(logits), [_at_least_float32(a) for a in auxiliary]
    return _at_least_float32(output)


def _crop_targets(output: Output, targets: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """Centre-crop every target whose trailing axes are larger than the output's spatial shape.

    With auxiliary outputs ``(logits, auxiliary)`` the logits count.
    """
    spatial = (output[0] if isinstance(output, tuple) else output).shape[2:]
    cropped = []
    for t in targets:
        have = t.shape[t.ndim - len(spatial) :]
        cropped.append(center_crop(t, spatial) if t.ndim >= len(spatial) and have != spatial else t)
    return tuple(cropped)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterable[Batch],
    loss_fn: LossFn | None = None,
    metrics: Mapping[str, MetricFn] | None = None,
    *,
    predict: Callable[[nn.Module, Tensor], Tensor] | None = None,
    amp: bool | None = None,
) -> dict[str, float]:
    """Mean loss and metrics over ``batches`` in eval mode (dropout off, batch-norm stats fixed).

    ``predict(model, input)`` replaces ``model(input)``, e.g. overlap-tile prediction of images.
    """
    device = next(model.parameters()).device
    amp = device.type == "cuda" if amp is None else amp
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    n = 0
    for batch in batches:
        x, *raw_targets = _to_device(batch, device)
        with runtime.autocast(device, enabled=amp):
            output = model(x) if predict is None else predict(model, x)
        output = _as_float(output)
        targets = _crop_targets(output, tuple(raw_targets))
        values = {name: fn(output, *targets) for name, fn in (metrics or {}).items()}
        if loss_fn is not None:
            values = {"loss": loss_fn(output, *targets), **values}
        for name, value in values.items():
            sums[name] = sums.get(name, 0.0) + float(value)
        n += 1
    model.train(was_training)
    if n == 0:
        raise ValueError("val_batches is empty: expected at least one (input, *targets) batch")
    return {name: total / n for name, total in sums.items()}


def draw_batch(
    stream: Iterator[Batch], device: torch.device, rank: int = 0, world: int = 1
) -> Batch:
    """Step 1 of :func:`fit`: the next ``(input, *targets)`` batch, moved to ``device``; in a
    data-parallel run of ``world`` processes, process ``rank``'s share of it
    (:func:`course_lib.distributed.batch_share`).

    Examples
    --------
    >>> stream = iter([(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2))])
    >>> x, y = draw_batch(stream, torch.device("cpu"))
    >>> x.shape, y.shape
    (torch.Size([1, 1, 2, 2]), torch.Size([1, 2, 2]))
    """
    return distributed.batch_share(_to_device(next(stream), device), rank, world)


def train_step(
    model: nn.Module,
    batch: Batch,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    *,
    amp: bool,
    auxiliary: bool = False,
    clip_grad_norm: float | None = None,
    scheduler: Any = None,
) -> float:
    """Step 2 of :func:`fit`: forward, loss, backward, optimizer (and scheduler) step; the loss.

    Mini-batch stochastic gradient descent: ``θ ← θ − lr · ∇θ loss_fn(model(x), y)`` (or what
    ``optimizer`` makes of the gradient). The forward pass runs under
    :func:`course_lib.runtime.autocast`; ``scaler`` scales the loss so that float16 gradients do
    not underflow (Micikevicius et al., "Mixed Precision Training", ICLR 2018) and is a no-op when
    disabled. With ``clip_grad_norm`` the gradients' global norm is clipped to it (Pascanu et al.
    2013), after unscaling. With ``auxiliary`` the model is called with ``return_auxiliary=True``
    and ``loss_fn`` gets ``(logits, auxiliary outputs)``.

    Examples
    --------
    >>> model = nn.Conv2d(1, 2, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> scaler = torch.amp.GradScaler("cpu", enabled=False)
    >>> batch = (torch.ones(1, 1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    >>> first = train_step(model, batch, nn.functional.cross_entropy, opt, scaler, amp=False)
    >>> second = train_step(model, batch, nn.functional.cross_entropy, opt, scaler, amp=False)
    >>> second < first
    True
    """
    x, *targets = batch
    device = x.device
    with runtime.autocast(device, enabled=amp):
        output = _as_float(model(x, return_auxiliary=True) if auxiliary else model(x))
    loss = loss_fn(output, *_crop_targets(output, tuple(targets)))
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if clip_grad_norm is not None:
        scaler.unscale_(optimizer)  # clip the true gradients, not the loss-scaled ones
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    if scheduler is not None:
        scheduler.step()
    return loss.item()


@dataclass
class _Schedule:
    """When :func:`end_of_step` validates and checkpoints (what :func:`fit` was asked for)."""

    iterations: int
    val_every: int
    val_batches: Iterable[Batch] | None
    val_loss_fn: LossFn | None
    metrics: Mapping[str, MetricFn] | None
    predict: Callable[[nn.Module, Tensor], Tensor] | None
    amp: bool
    checkpoint: str | os.PathLike | None
    checkpoint_every: int | None
    scheduler: Any


def end_of_step(
    step: int,
    loss: float,
    seconds: float,
    history: History,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: _Schedule,
) -> None:
    """Step 3 of :func:`fit`: record the loss; validate and write a checkpoint when due.

    Validation runs every ``val_every`` steps and after the last one (see :func:`evaluate`); the
    checkpoint is written every ``checkpoint_every`` steps and after the last one. In a
    data-parallel run, rank 0 validates (the others get its values, so every process returns the
    same history) and writes the checkpoint while the others wait.
    """
    history.train_loss.append(loss)
    history.seconds += seconds
    last = step == schedule.iterations
    rank = distributed.rank_and_world()[0]
    if schedule.val_batches is not None and (step % schedule.val_every == 0 or last):
        values = None
        if rank == 0:
            values = evaluate(
                model,
                schedule.val_batches,
                schedule.val_loss_fn,
                schedule.metrics,
                predict=schedule.predict,
                amp=schedule.amp,
            )
        history.val_steps.append(step)
        for name, value in distributed.from_rank_zero(values).items():
            history.val.setdefault(name, []).append(value)
    every = schedule.checkpoint_every
    if schedule.checkpoint is not None and (last or (every and step % every == 0)):
        if rank == 0:
            save_checkpoint(schedule.checkpoint, model, optimizer, history, schedule.scheduler)
        distributed.barrier()


def fit(
    model: nn.Module,
    batches: Iterable[Batch] | Callable[[int], Batch],
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    *,
    iterations: int | None = None,
    epochs: int | None = None,
    scheduler: Any = None,
    clip_grad_norm: float | None = None,
    auxiliary: bool = False,
    val_batches: Iterable[Batch] | None = None,
    metrics: Mapping[str, MetricFn] | None = None,
    val_every: int | None = None,
    val_loss: bool = True,
    predict: Callable[[nn.Module, Tensor], Tensor] | None = None,
    amp: bool | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    progress: bool = True,
) -> History:
    """Train ``model`` for a number of optimizer steps and return the :class:`History`.

    Parameters
    ----------
    model : nn.Module
        The net; it stays on its device, and batches are moved there.
    batches : iterable of batches, or callable ``step -> batch``
        Each batch is a tuple ``(input, *targets)``. An iterable (a list, a ``DataLoader``) is
        passed over again and again; a callable gets the 1-based step number, which makes
        on-the-fly sampling deterministic and resumable.
    loss_fn : callable
        ``loss_fn(output, *targets) -> scalar``. Targets with larger spatial axes than the output
        (valid-padding nets) are centre-cropped to the output first, so a data pipeline may yield
        input-sized labels and weight maps.
    optimizer : torch.optim.Optimizer
        Built on ``model.parameters()``.
    iterations, epochs : int
        How long to train: ``iterations`` optimizer steps, or ``epochs`` passes over a sized
        iterable (``epochs * len(batches)`` steps). Give exactly one.
    scheduler : optional
        A learning-rate scheduler, stepped after every optimizer step.
    clip_grad_norm : float, optional
        Clip the gradients' global norm to this before each step (nnU-Net uses 12).
    auxiliary : bool
        Train on auxiliary outputs too: call ``model(x, return_auxiliary=True)`` and give
        ``loss_fn`` the pair ``(logits, auxiliary)`` (deep supervision, attention logits).
        Validation calls the model plainly, so such a ``loss_fn`` must also take the logits alone
        or ``val_loss`` be off.
    val_batches : iterable of batches, optional
        Validation data, evaluated every ``val_every`` steps and after the last step.
    metrics : mapping name -> callable, optional
        ``metric(output, *targets) -> number``, averaged over ``val_batches``.
    val_every : int, optional
        Steps between validations (default: about 10 validations per run).
    val_loss : bool
        Also compute ``loss_fn`` on the validation batches (turn off when they carry other
        targets than the training batches, e.g. instance maps for a metric).
    predict : callable, optional
        ``predict(model, input) -> output`` used for validation instead of ``model(input)``.
    amp : bool, optional
        Mixed precision (default: on for CUDA, off elsewhere; see ``runtime.autocast``).
    checkpoint : path, optional
        Where to save model, optimizer, scheduler and history (atomically), every
        ``checkpoint_every`` steps (default: only at the end) and after the last step.
    resume : bool
        Continue from ``checkpoint`` if it exists: weights, optimizer, history and step count.
    progress : bool
        Show a tqdm progress bar with the running loss (rank 0 only, in a data-parallel run).

    Returns
    -------
    History
        Training loss per step, validation loss and metrics at ``history.val_steps``. In a
        data-parallel run (the script started by ``torchrun``), the training loss is the mean over
        the processes, and every process returns the same history.

    Notes
    -----
    Under ``torchrun --nproc_per_node=N`` (see :mod:`course_lib.distributed`), each batch that
    ``batches`` yields is the global batch: each of the N processes trains on its ``1/N`` of it, so
    the batch size must be a multiple of N. With a loss that averages over samples and no batch
    norm, the run takes the same steps as one process given the same batches (up to float
    rounding in the averaging of gradients).
    """
    if (iterations is None) == (epochs is None):
        raise ValueError(f"give exactly one of iterations and epochs, got {iterations=}, {epochs=}")
    if epochs is not None:
        if not isinstance(batches, Sized):
            raise ValueError("epochs needs a sized iterable of batches (a list or a DataLoader)")
        iterations = epochs * len(batches)
    iterations = check_int("the number of steps (iterations, or epochs * len(batches))", iterations)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path")
    if clip_grad_norm is not None and not clip_grad_norm > 0:
        raise ValueError(f"clip_grad_norm must be positive, got {clip_grad_norm!r}")
    device = next(model.parameters()).device
    amp = device.type == "cuda" if amp is None else amp
    # loss scaling keeps float16 gradients from underflowing; it is a no-op when disabled
    scaler = torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda")
    schedule = _Schedule(
        iterations=iterations,
        val_every=val_every or max(1, math.ceil(iterations / 10)),
        val_batches=val_batches,
        val_loss_fn=loss_fn if val_loss else None,
        metrics=metrics,
        predict=predict,
        amp=amp,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        scheduler=scheduler,
    )

    parallel = distributed.init_from_environment(device)
    rank, world = distributed.rank_and_world()
    history = History()
    if resume and Path(checkpoint).exists():  # type: ignore[arg-type]
        history = load_checkpoint(checkpoint, model, optimizer, scheduler)  # type: ignore[arg-type]
    stream = _batch_stream(batches, start=history.steps)
    # DistributedDataParallel: rank 0's weights to all at the start, gradients averaged in backward
    net = (
        nn.parallel.DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None
        )
        if parallel
        else model
    )
    net.train()
    bar = tqdm(
        range(history.steps + 1, iterations + 1),
        disable=not progress or rank != 0,
        desc="training",
        leave=False,
    )
    for step in bar:
        tic = time.perf_counter()
        batch = draw_batch(stream, device, rank, world)
        loss = train_step(
            net,
            batch,
            loss_fn,
            optimizer,
            scaler,
            amp=amp,
            auxiliary=auxiliary,
            clip_grad_norm=clip_grad_norm,
            scheduler=scheduler,
        )
        loss = distributed.mean_over_ranks(loss, device)
        end_of_step(step, loss, time.perf_counter() - tic, history, model, optimizer, schedule)
        bar.set_postfix(loss=f"{loss:.4f}")
    bar.close()
    return history

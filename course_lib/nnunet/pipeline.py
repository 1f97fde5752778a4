"""nnU-Net end to end on a raw dataset folder: fingerprint, plan, preprocess, train one fold,
predict its validation cases, decide post-processing, evaluate.

Everything nnU-Net decides comes from the modules of this package; the pipeline only adds the
course's size knobs: ``iterations`` (nnU-Net: 1000 epochs x 250), ``features_scale`` (a narrower
net than the planned 32, 64, ... features) and an optional smaller ``patch_size``, so the same
steps run in minutes on a CPU and for real on a GPU.

Examples
--------
See ``notebooks/06_nnunet.ipynb``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from course_lib import runtime
from course_lib.data.cases import VolumeCase
from course_lib.data.nifti import read_nnunet_raw
from course_lib.nnunet.augmentation import augment, augmentation_params
from course_lib.nnunet.fingerprint import NUM_FOREGROUND_SAMPLES, extract_fingerprint
from course_lib.nnunet.inference import predict_case
from course_lib.nnunet.network import PlainConvUNet, build_network
from course_lib.nnunet.planning import plan_experiment
from course_lib.nnunet.postprocessing import apply_postprocessing, determine_postprocessing
from course_lib.nnunet.preprocessing import preprocess_case
from course_lib.nnunet.training import (
    GRAD_CLIP_NORM,
    deep_supervision_loss,
    kfold_splits,
    make_optimizer,
    poly_lr,
    sample_batch,
)
from course_lib.ops.checks import check_int
from course_lib.training import fit


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` produced, step by step."""

    fingerprint: dict[str, Any]
    plans: dict[str, Any]
    configuration: str
    splits: list[dict[str, list[str]]]
    fold: int
    net: PlainConvUNet
    train_loss: list[float] = field(default_factory=list)
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    """Validation predictions after post-processing, raw geometry (z, y, x)."""
    references: dict[str, np.ndarray] = field(default_factory=dict)
    postprocessing: dict[str, Any] = field(default_factory=dict)
    dice: dict[str, list[float]] = field(default_factory=dict)
    """Per-class foreground Dice on the validation fold: ``"raw"`` and ``"postprocessed"``."""
    seconds: dict[str, float] = field(default_factory=dict)


def train_network(
    net: PlainConvUNet,
    cases: Sequence[tuple[torch.Tensor, torch.Tensor]],
    *,
    iterations: int,
    batch_size: int,
    patch_size: Sequence[int],
    batch_dice: bool,
    seed: int = 0,
    augmentation: bool = True,
) -> list[float]:
    """Step 3: nnU-Net's training step, repeated: sample a batch, augment it, deep-supervised
    Dice + CE, SGD with Nesterov momentum, gradients clipped at norm 12, poly learning rate (one
    "epoch" per step here, so the schedule spans the run). Returns the loss per step.

    ``augmentation=True`` applies nnU-Net v2's augmentation (:func:`augment` with
    :func:`augmentation_params` of the patch) on the net's device; ``False`` mirrors only.
    """
    check_int("iterations", iterations)
    optimizer = make_optimizer(net)
    # poly_lr(step) / initial lr, as a factor of the optimizer's initial learning rate
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: poly_lr(step, iterations, initial_lr=1.0)
    )
    generator = torch.Generator().manual_seed(seed)
    params = augmentation_params(patch_size)
    device = next(net.parameters()).device

    def batch(_step: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not augmentation:
            return sample_batch(cases, batch_size, patch_size, generator, params.mirror_axes)
        x, y = sample_batch(cases, batch_size, patch_size, generator)
        return augment(x.to(device), y.to(device), params, generator=generator)

    def loss_fn(outputs: tuple[torch.Tensor, list[torch.Tensor]], y: torch.Tensor) -> torch.Tensor:
        return deep_supervision_loss(outputs, y, batch_dice=batch_dice)

    history = fit(
        net,
        batch,
        loss_fn,
        optimizer,
        iterations=iterations,
        scheduler=scheduler,
        clip_grad_norm=GRAD_CLIP_NORM,
        auxiliary=True,
        progress=False,
    )
    return history.train_loss


def _two_d_cases(
    cases: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    # the 2D configuration trains on single slices: every slice is a "case" of its own
    return [(d[:, k], s[k]) for d, s in cases for k in range(s.shape[0])]


def fingerprint_and_plan(
    root: Path, num_samples: float
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Step 1: the dataset fingerprint, the ``dataset.json`` and nnU-Net's plans from them."""
    fingerprint = extract_fingerprint(root, num_samples=num_samples)
    dataset_json = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    plans = plan_experiment(fingerprint, dataset_json, dataset_name=root.name)
    return fingerprint, dataset_json, plans


def preprocess_training_cases(
    raw_cases: dict[str, VolumeCase], case_ids: Sequence[str], plans: dict[str, Any], config: str
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Step 2: crop, resample and normalise the training cases of the fold as the plan says.

    Labels outside the nonzero region (``-1`` after cropping) count as background for training.
    """
    cases = []
    for case_id in case_ids:
        c = raw_cases[case_id]
        data, seg, _ = preprocess_case(
            c.image.numpy(), c.label.numpy()[None], c.spacing, plans, config
        )
        seg = np.maximum(seg[0], 0)
        cases.append((torch.from_numpy(data), torch.from_numpy(seg.astype(np.int64))))
    return cases


def validate_fold(
    net: PlainConvUNet,
    raw_cases: dict[str, VolumeCase],
    case_ids: Sequence[str],
    plans: dict[str, Any],
    config: str,
    num_classes: int,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """Step 4: predict the fold's validation cases, decide post-processing on them, apply it.

    Returns the post-processed predictions and the references (raw geometry) and the decision.
    """
    raw_preds: dict[str, np.ndarray] = {}
    refs: dict[str, np.ndarray] = {}
    for case_id in case_ids:
        c = raw_cases[case_id]
        raw_preds[case_id], _ = predict_case([net], c.image.numpy(), c.spacing, plans, config)
        refs[case_id] = c.label.numpy()
    preds_t = [torch.from_numpy(raw_preds[k].astype(np.int64)) for k in refs]
    refs_t = [torch.from_numpy(refs[k]) for k in refs]
    decision = determine_postprocessing(preds_t, refs_t, num_classes)
    final = {
        k: apply_postprocessing(p, decision, num_classes).numpy().astype(np.uint8)
        for k, p in zip(refs, preds_t, strict=True)
    }
    return final, refs, decision


def run_pipeline(
    raw_dataset_dir: str | os.PathLike[str],
    *,
    configuration: str = "3d_fullres",
    fold: int = 0,
    iterations: int = 250,
    features_scale: float = 1.0,
    patch_size: Sequence[int] | None = None,
    batch_size: int | None = None,
    num_samples: float = NUM_FOREGROUND_SAMPLES,
    device: torch.device | str | None = None,
    seed: int = 0,
    augmentation: bool = True,
) -> PipelineResult:
    """Run nnU-Net's steps on one raw dataset for one configuration and one fold.

    The steps, one function each: :func:`fingerprint_and_plan`, :func:`preprocess_training_cases`,
    :func:`train_network`, :func:`validate_fold`; their wall times are in ``result.seconds``.

    Parameters
    ----------
    raw_dataset_dir
        An nnU-Net v2 raw dataset (``imagesTr``, ``labelsTr``, ``dataset.json``).
    configuration
        ``"2d"``, ``"3d_fullres"`` or ``"3d_lowres"`` (whichever the plans contain).
    fold
        Which of the 5 cross-validation folds to train and validate.
    iterations
        Optimizer steps (nnU-Net: 250 per epoch x 1000 epochs).
    features_scale
        Width of the net relative to the plan (1.0 = nnU-Net's 32, 64, ... features).
    patch_size, batch_size
        Override the planned patch and batch (default: the plan's).
    num_samples, device, seed
        Fingerprint intensity samples; where to train (default: the course's device); seed of the
        patch sampling and of the net's initialization.
    augmentation
        nnU-Net v2's training augmentation (default) or mirroring only (``False``).
    """
    root = Path(raw_dataset_dir)
    seconds = {}
    tic = time.perf_counter()
    fingerprint, dataset_json, plans = fingerprint_and_plan(root, num_samples)
    seconds["fingerprint_and_plan"] = time.perf_counter() - tic
    if configuration not in plans["configurations"]:
        raise ValueError(
            f"configuration {configuration!r} was not planned; plans have "
            f"{sorted(plans['configurations'])}"
        )
    config = plans["configurations"][configuration]
    num_classes = len(dataset_json["labels"])

    tic = time.perf_counter()
    raw_cases = {c.case_id: c for c in read_nnunet_raw(root)}
    splits = kfold_splits(list(raw_cases))
    if not 0 <= fold < len(splits):
        raise ValueError(f"fold must be in [0, {len(splits)}), got {fold}")
    train_cases = preprocess_training_cases(raw_cases, splits[fold]["train"], plans, configuration)
    seconds["preprocess"] = time.perf_counter() - tic

    tic = time.perf_counter()
    dev = torch.device(device) if device is not None else runtime.device()
    torch.manual_seed(seed)
    in_channels = train_cases[0][0].shape[0]
    net = build_network(
        plans, configuration, in_channels, num_classes, features_scale=features_scale
    )
    net = net.to(dev)
    patch = list(patch_size) if patch_size is not None else list(config["patch_size"])
    if configuration == "2d":
        train_cases = _two_d_cases(train_cases)
    losses = train_network(
        net,
        train_cases,
        iterations=iterations,
        batch_size=batch_size or config["batch_size"],
        patch_size=patch,
        batch_dice=config["batch_dice"],
        seed=seed,
        augmentation=augmentation,
    )
    seconds["train"] = time.perf_counter() - tic

    tic = time.perf_counter()
    run_plans = plans
    if patch_size is not None:  # predict with the patch the net was trained on
        run_plans = json.loads(json.dumps(plans))
        run_plans["configurations"][configuration]["patch_size"] = patch
    final, refs, decision = validate_fold(
        net, raw_cases, splits[fold]["val"], run_plans, configuration, num_classes
    )
    seconds["infer_and_postprocess"] = time.perf_counter() - tic
    return PipelineResult(
        fingerprint=fingerprint,
        plans=plans,
        configuration=configuration,
        splits=splits,
        fold=fold,
        net=net,
        train_loss=losses,
        predictions=final,
        references=refs,
        postprocessing=decision,
        dice={"raw": decision["dice_before"], "postprocessed": decision["dice_after"]},
        seconds=seconds,
    )

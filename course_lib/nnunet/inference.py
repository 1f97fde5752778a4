"""Inference as nnU-Net v2 runs it: preprocess, sliding window with Gaussian weighting and test-time
mirroring, average the folds' logits, resample back, undo the crop and the transpose.

* Sliding window: windows of the training patch, half-patch overlap (step 0.5), each window's
  logits weighted by a Gaussian (sigma = patch / 8) so window borders count less
  (:func:`course_lib.inference.sliding_window.sliding_window_predict`).
* Mirroring: every non-empty subset of the mirror axes is also predicted flipped and the logits
  are averaged (8 passes in 3D, 4 in 2D).
* Folds: the five cross-validation nets' logits are averaged.
* Configurations (2D, 3D, cascade) are ensembled on softmax probabilities instead
  (:func:`ensemble_probabilities`), as ``nnUNetv2_ensemble`` does with the saved ``.npz`` files.

References
----------
Isensee et al., Nature Methods 2021, online methods "inference"; nnunetv2 2.8.1
``inference/predict_from_raw_data.py``, ``inference/export_prediction.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from course_lib.inference.sliding_window import sliding_window_predict
from course_lib.nnunet.network import PlainConvUNet
from course_lib.nnunet.preprocessing import preprocess_case
from course_lib.nnunet.resampling import resample_to_shape


def predict_logits(
    nets: Sequence[PlainConvUNet],
    data: torch.Tensor,
    patch_size: Sequence[int],
    *,
    mirror_axes: Sequence[int] = (),
) -> torch.Tensor:
    """Logits ``(K, *spatial)`` for preprocessed ``data`` ``(C, *spatial)``, averaged over ``nets``.

    A 2D net on 3D data predicts slice by slice along the first axis. Nets run in eval mode (and
    return only their full-resolution logits, since nothing asks for auxiliary outputs).
    """
    if not nets:
        raise ValueError("nets must hold at least one network")
    two_d = len(patch_size) == data.ndim - 2
    volume = data.transpose(0, 1) if two_d else data[None]  # slices become the batch
    total = torch.zeros(())
    for net in nets:
        was_training = net.training
        net.eval()
        logits = sliding_window_predict(
            net, volume, patch_size, overlap=0.5, importance="gaussian", mirror_axes=mirror_axes
        )
        net.train(was_training)
        total = total + (logits.transpose(0, 1) if two_d else logits[0])
    return total / len(nets)


def predict_case(
    nets: Sequence[PlainConvUNet],
    image: np.ndarray,
    spacing: Sequence[float],
    plans: Mapping[str, Any],
    configuration: str,
    *,
    mirror_axes: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Segment one raw case ``(C, *spatial)`` (reader's axis order) with one configuration.

    Returns
    -------
    seg, probabilities
        The label map in the raw case's geometry and the softmax probabilities ``(K, *spatial)``
        (background 1 outside the cropped region), as nnU-Net's ``--save_probabilities`` exports.
    """
    config = plans["configurations"][configuration]
    if "inherits_from" in config:
        config = {**plans["configurations"][config["inherits_from"]], **config}
    data, _, props = preprocess_case(image, None, spacing, plans, configuration)
    patch = config["patch_size"]
    axes = tuple(range(len(patch))) if mirror_axes is None else tuple(mirror_axes)
    device = next(nets[0].parameters()).device
    logits = predict_logits(nets, torch.from_numpy(data).to(device), patch, mirror_axes=axes)

    forward = list(plans["transpose_forward"])
    original = [float(spacing[i]) for i in forward]
    target = list(config["spacing"])
    if len(target) < len(original):
        target = [original[0], *target]
    cropped_shape = props["shape_after_cropping_and_before_resampling"]
    logits_np = logits.float().cpu().numpy()  # export: back to NumPy for resampling and writing
    logits_np = resample_to_shape(logits_np, cropped_shape, target, original, order=1)
    probs = torch.from_numpy(logits_np).softmax(0).numpy()

    full = np.zeros((probs.shape[0], *props["shape_before_cropping"]), np.float32)
    full[0] = 1.0
    box = tuple(slice(a, b) for a, b in props["bbox_used_for_cropping"])
    full[(slice(None), *box)] = probs
    backward = [0, *[i + 1 for i in plans["transpose_backward"]]]
    full = full.transpose(backward)
    return full.argmax(0).astype(np.uint8), full


def ensemble_probabilities(probabilities: Sequence[np.ndarray]) -> np.ndarray:
    """Average softmax probabilities ``(K, *spatial)`` of several configurations, then argmax.

    Examples
    --------
    >>> a = np.array([[0.6, 0.2], [0.4, 0.8]]); b = np.array([[0.3, 0.9], [0.7, 0.1]])
    >>> ensemble_probabilities([a, b]).tolist()
    [1, 0]
    """
    if not probabilities:
        raise ValueError("probabilities must hold at least one array")
    return np.mean(np.stack(probabilities), axis=0).argmax(0)

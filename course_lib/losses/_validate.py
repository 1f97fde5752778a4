"""Shared input checks and conversions for every loss: shapes, dtypes, label ranges, activations.

Every loss takes raw logits ``(N, C, *spatial)`` with 2 or 3 spatial dimensions and a target that is
either an integer label map ``(N, *spatial)`` (``(N, 1, *spatial)`` is accepted too) or a one-hot /
soft map ``(N, C, *spatial)`` with values in [0, 1]. With a single channel (a sigmoid net) the label
map holds 0/1 and is the foreground mask itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from course_lib.ops.checks import check_choice

ACTIVATIONS = ("softmax", "sigmoid", "none")
REDUCTIONS = ("mean", "sum", "none")


def check_logits(logits: object, name: str = "logits") -> torch.Tensor:
    """Raise ``ValueError`` unless ``logits`` is a float ``(N, C, *spatial)`` tensor, 2D or 3D."""
    if not isinstance(logits, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise ValueError(
            f"{name} must be a floating tensor of raw scores, got dtype {logits.dtype}"
        )
    if logits.ndim not in (4, 5):
        raise ValueError(
            f"{name} must have shape (N, C, H, W) or (N, C, D, H, W), got {tuple(logits.shape)}"
        )
    if logits.shape[1] < 1 or logits.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(logits.shape)}")
    return logits


def check_range(value: float, name: str, low: float, high: float = float("inf")) -> None:
    """Raise ``ValueError`` unless ``low <= value <= high``."""
    if not (isinstance(value, (int, float)) and low <= value <= high):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")


def upcast(x: torch.Tensor) -> torch.Tensor:
    """Half-precision scores (autocast) to float32, so sums and logs are taken at full precision."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def require_label_map(target: object, name: str) -> None:
    """Raise ``ValueError`` unless ``target`` is an integer (or boolean) label map tensor."""
    if not isinstance(target, torch.Tensor) or target.is_floating_point():
        raise ValueError(f"{name} needs an integer label map as target, not one-hot / soft maps")


def spatial_map(x: torch.Tensor, logits: torch.Tensor, name: str) -> torch.Tensor:
    """``x`` as ``(N, *spatial)`` of the logits (a channel axis of 1 dropped), else ValueError."""
    n, _, *spatial = logits.shape
    if x.ndim == logits.ndim and x.shape[1] == 1:
        x = x[:, 0]
    if tuple(x.shape) != (n, *spatial):
        raise ValueError(
            f"{name} must have shape (N, *spatial) = {(n, *spatial)} (or with a channel of 1), "
            f"got {tuple(x.shape)}"
        )
    return x


def target_to_one_hot(
    logits: torch.Tensor, target: object, ignore_index: int | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Turn ``target`` into a float map shaped like ``logits`` and a mask of the valid voxels.

    Parameters
    ----------
    logits
        Raw scores ``(N, C, *spatial)``, already checked.
    target
        Integer labels ``(N, *spatial)`` or ``(N, 1, *spatial)`` with values in ``[0, C)`` (in
        {0, 1} when ``C == 1``) or equal to ``ignore_index``; or a floating one-hot / soft map
        ``(N, C, *spatial)`` with values in [0, 1].
    ignore_index
        Label of unannotated voxels (the course data uses -1). Only label maps can carry it.

    Returns
    -------
    one_hot, valid
        ``one_hot`` has the dtype and shape of ``logits``; ``valid`` is a boolean
        ``(N, 1, *spatial)`` mask of the voxels that count, or ``None`` when every voxel counts.
    """
    if not isinstance(target, torch.Tensor):
        raise ValueError(f"target must be a torch.Tensor, got {type(target).__name__}")
    c = logits.shape[1]
    if target.device != logits.device:
        raise ValueError(f"target is on {target.device} but logits are on {logits.device}")
    if target.is_floating_point():
        if tuple(target.shape) != tuple(logits.shape):
            raise ValueError(
                f"a floating (one-hot or soft) target must have the logits' shape "
                f"{tuple(logits.shape)}, got {tuple(target.shape)}; pass integer labels "
                f"(N, *spatial) for a label map"
            )
        if ignore_index is not None:
            raise ValueError("ignore_index needs an integer label map as target, got a float map")
        if bool(((target < 0) | (target > 1)).any()):
            raise ValueError("a one-hot / soft target must hold values in [0, 1]")
        return target.to(logits.dtype), None

    target, valid = label_map(logits, target, ignore_index)
    if c == 1:
        one_hot = target.unsqueeze(1).to(logits.dtype)
    else:
        # A 1 scattered into zeros at each voxel's class: one write of the map (a comparison with
        # the class indices writes a boolean map first, then converts it)
        one_hot = torch.zeros_like(logits).scatter_(1, target.unsqueeze(1).long(), 1.0)
    return one_hot, valid


def label_map(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Check an integer label map against ``logits``: ``(N, *spatial)`` labels and valid mask.

    ``target`` is ``(N, *spatial)`` or ``(N, 1, *spatial)``, integer or boolean, on the logits'
    device. Returns the labels as they were (booleans as
    ``long``), with ``ignore_index`` voxels set to 0, and the ``(N, 1, *spatial)`` mask of the
    voxels that count, or ``None`` when every voxel counts. Labels outside ``[0, C)`` (``{0, 1}``
    when ``C == 1``) raise ``ValueError``.
    """
    c = logits.shape[1]
    if target.device != logits.device:
        raise ValueError(f"target is on {target.device} but logits are on {logits.device}")
    if target.dtype == torch.bool:
        target = target.long()
    target = spatial_map(target, logits, "an integer label map (target)")
    valid = None
    if ignore_index is not None:
        valid = target != ignore_index
        target = torch.where(valid, target, torch.zeros_like(target))
    n_labels = max(c, 2)
    low, high = torch.aminmax(target)  # one pass over the labels, one device sync
    if low < 0 or high >= n_labels:
        outside = (target < 0) | (target >= n_labels)
        raise ValueError(
            f"target labels must lie in [0, {n_labels - 1}] for {c} channel(s)"
            + (f" or equal ignore_index={ignore_index}" if ignore_index is not None else "")
            + f"; found {torch.unique(target[outside])[:5].tolist()}"
        )
    return target, None if valid is None else valid.unsqueeze(1)


def resolve_activation(activation: str | None, logits: torch.Tensor) -> str:
    """The package's one rule for the default activation: ``None`` means softmax over the channels
    when there are ``C >= 2`` (one class per pixel) and sigmoid when ``C == 1`` (a binary net)."""
    if activation is None:
        return "sigmoid" if logits.shape[1] == 1 else "softmax"
    check_choice("activation", activation, ACTIVATIONS)
    return activation


def activate(logits: torch.Tensor, activation: str | None) -> torch.Tensor:
    """Probabilities from logits: softmax over channels, sigmoid per channel, or none (as given);
    ``None`` chooses by the channel count (:func:`resolve_activation`)."""
    activation = resolve_activation(activation, logits)
    if activation == "softmax":
        if logits.shape[1] == 1:
            raise ValueError(
                "activation='softmax' over a single channel always gives 1; use "
                "activation='sigmoid' for a one-channel (binary) net"
            )
        return logits.softmax(dim=1)
    if activation == "sigmoid":
        return logits.sigmoid()
    return logits


def class_vector(
    values: float | Sequence[float] | torch.Tensor, name: str, logits: torch.Tensor
) -> torch.Tensor:
    """A per-class weight given as a sequence or tensor of length C, on the logits' device."""
    vec = torch.as_tensor(values, dtype=logits.dtype, device=logits.device)
    if vec.ndim != 1 or vec.shape[0] != logits.shape[1]:
        raise ValueError(
            f"{name} must hold one value per class ({logits.shape[1]}), got shape "
            f"{tuple(vec.shape)}"
        )
    return vec


def check_pixel_weight(pixel_weight: object, logits: torch.Tensor) -> torch.Tensor:
    """A per-voxel weight map ``(N, *spatial)`` (or with a channel of 1) as ``(N, 1, *spatial)``."""
    if not isinstance(pixel_weight, torch.Tensor) or not pixel_weight.is_floating_point():
        raise ValueError("pixel_weight must be a floating tensor of shape (N, *spatial)")
    return spatial_map(pixel_weight, logits, "pixel_weight").unsqueeze(1).to(logits.dtype)


def reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """Mean, sum or no reduction of a per-item loss."""
    check_choice("reduction", reduction, REDUCTIONS)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def safe_divide(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """``numerator / denominator`` that gives 0 (and a zero gradient) where both are 0.

    Used where everything may be ignored: the numerator is then an empty sum, and clamping the
    denominator away from 0 keeps both the value and its gradient finite (``torch.where`` would not:
    its unused branch still back-propagates ``0 / 0``).
    """
    return numerator / denominator.clamp_min(torch.finfo(denominator.dtype).tiny)

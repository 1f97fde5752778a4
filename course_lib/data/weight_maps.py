"""The U-Net weight map: class balance plus a strong weight on the thin gaps between cells.

Ronneberger et al. (2015), Sec. 3, Eq. 2:

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))

``d1`` and ``d2`` are the distances to the nearest and the second-nearest cell. The border term
is large only where two cells come close, i.e. on the background gaps between touching cells,
which forces the network to learn those gaps; ``w_c`` balances the class frequencies.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from course_lib.ops.distance_transform import distance_transform_edt


def _check_instances(instance_labels: torch.Tensor) -> torch.Tensor:
    if not isinstance(instance_labels, torch.Tensor):
        raise ValueError(
            f"instance_labels must be a torch.Tensor, got {type(instance_labels).__name__}"
        )
    if instance_labels.ndim not in (2, 3) or instance_labels.dtype.is_floating_point:
        raise ValueError(
            "instance_labels must be an integer (N, H, W) or (H, W) map (0 background, 1..K "
            f"cells), got shape {tuple(instance_labels.shape)} and dtype {instance_labels.dtype}"
        )
    if bool((instance_labels < 0).any()):
        raise ValueError("instance_labels must be >= 0 (0 background, 1..K cells)")
    return instance_labels


def class_balance_weights(mask: torch.Tensor) -> torch.Tensor:
    """Per-pixel ``w_c`` that balances background and foreground of each image.

    ``w_c = (1 / f_c) / max_k (1 / f_k)``, ``f_c`` the fraction of pixels of class ``c`` in the
    image: the rarer class weighs 1 and the other ``f_rare / f_common`` (the convention of the
    MATLAB port by Guerrero-Pena; it keeps ``w_c <= 1`` so that ``w0`` sets the border scale). An
    image with a single class gets weight 1 everywhere.

    Parameters
    ----------
    mask : Tensor
        ``(N, H, W)`` or ``(H, W)`` binary map (nonzero = foreground).

    Returns
    -------
    Tensor
        float32 weights, the shape of ``mask``.

    Examples
    --------
    >>> m = torch.zeros(8, 12, dtype=torch.long)
    >>> m[2:6, 1:5] = m[2:6, 7:11] = 1
    >>> [round(w, 4) for w in class_balance_weights(m).unique().tolist()]
    [0.5, 1.0]
    """
    fg = (mask > 0).flatten(-2).float()
    f_fg = fg.mean(-1, keepdim=True)
    f_bg = 1 - f_fg
    # inverse frequencies normalised by the largest; a missing class never appears, so its weight
    # does not matter (set to 1 to avoid dividing by zero)
    inv = torch.stack([1 / f_bg, 1 / f_fg], -1)
    inv = torch.where(torch.isfinite(inv), inv, 0.0)
    weights = inv / inv.amax(-1, keepdim=True)
    weights = torch.where(inv > 0, weights, 1.0)
    w = torch.where(fg > 0, weights[..., 1], weights[..., 0])
    return w.reshape(mask.shape)


def _border_term(instances: torch.Tensor, w0: float, sigma: float) -> torch.Tensor:
    """``w0 exp(-(d1 + d2)^2 / (2 sigma^2))`` of one ``(H, W)`` instance map, on background only."""
    ids = torch.unique(instances)
    ids = ids[ids > 0]
    if ids.numel() < 2:  # no second cell: d2 is infinite and the term vanishes
        return torch.zeros(instances.shape, dtype=torch.float32, device=instances.device)
    # d_k(x) = distance to the nearest pixel of cell k, all cells as one batch
    dist = distance_transform_edt(instances[None] != ids[:, None, None], spatial_dims=2)
    d1, d2 = torch.topk(dist, 2, dim=0, largest=False).values
    border = w0 * torch.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
    return torch.where(instances == 0, border, 0.0)


def unet_weight_map(
    instance_labels: torch.Tensor,
    *,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weights: str | Sequence[float] | None = "balanced",
) -> torch.Tensor:
    """U-Net's pixel-wise loss weight ``w = w_c + w0 exp(-(d1 + d2)^2 / (2 sigma^2))``.

    Parameters
    ----------
    instance_labels : Tensor
        ``(N, H, W)`` or ``(H, W)`` integer map: 0 background, ``1..K`` one id per cell. Touching
        cells must carry different ids (separated by background gaps as in the paper).
    w0 : float
        Height of the border term (paper: 10).
    sigma : float
        Width of the border term in pixels (paper: about 5).
    class_weights : "balanced", (w_background, w_cell) or None
        ``"balanced"``: :func:`class_balance_weights` per image; a pair: fixed weights; ``None``:
        ``w_c = 1``.

    Returns
    -------
    Tensor
        float32, the shape and device of ``instance_labels``. The border term is added on
        background pixels only; it vanishes when an image has fewer than two cells.

    References
    ----------
    Ronneberger, Fischer, Brox (2015), U-Net: Convolutional networks for biomedical image
    segmentation, MICCAI, Sec. 3, Eq. 2.

    Examples
    --------
    Two 4 x 4 cells with a 2-pixel gap: a gap pixel has d1 = 1, d2 = 2.

    >>> lab = torch.zeros(8, 12, dtype=torch.long)
    >>> lab[2:6, 1:5], lab[2:6, 7:11] = 1, 2
    >>> w = unet_weight_map(lab, class_weights=None)
    >>> round(float(w[3, 5]), 4)  # 1 + 10 exp(-9 / 50)
    9.3527
    """
    labels = _check_instances(instance_labels)
    if not w0 >= 0 or not sigma > 0:
        raise ValueError(f"need w0 >= 0 and sigma > 0, got w0={w0!r}, sigma={sigma!r}")
    batch = labels[None] if labels.ndim == 2 else labels
    if class_weights == "balanced":
        w_c = class_balance_weights(batch)
    elif class_weights is None:
        w_c = torch.ones(batch.shape, dtype=torch.float32, device=batch.device)
    elif isinstance(class_weights, Sequence) and not isinstance(class_weights, str):
        if len(class_weights) != 2:
            raise ValueError(
                f"class_weights must be 'balanced', None or (w_background, w_cell), got "
                f"{class_weights!r}"
            )
        table = torch.tensor([float(c) for c in class_weights], device=batch.device)
        w_c = table[(batch > 0).long()]
    else:
        raise ValueError(
            f"class_weights must be 'balanced', None or (w_background, w_cell), got "
            f"{class_weights!r}"
        )
    # one image at a time (each has its own number of cells); the cells of an image are a batch
    border = torch.stack([_border_term(image, w0, sigma) for image in batch])
    weights = w_c + border
    return weights[0] if labels.ndim == 2 else weights

"""TernausNet (Iglovikov and Shvets 2018, "TernausNet: U-Net with VGG11 Encoder Pre-Trained on
ImageNet for Image Segmentation", arXiv:1801.05746): a U-Net whose encoder is a VGG11.

The notes' summary, which the chapter checks: a network "initialized with pre-trained weights
usually shows better performance than those trained from scratch on a small dataset". The net of
the paper's Fig. 1, read top to bottom (``w = 64``, the VGG11 width):

* encoder: VGG11's convolutional part, 8 convs 3x3 + ReLU and 5 max-pools (channels w, 2w, 4w, 4w,
  8w, 8w, 8w, 8w); the output before every pool is a skip connection;
* centre: "a single convolutional layer of 512 channels that serves as a bottleneck", then a 3x3
  transposed convolution with stride 2 that doubles the size and halves the channels;
* decoder: per level concatenate the skip, a 3x3 conv, a transposed conv (stride 2, kernel 3);
  the last level ends with a conv to ``w / 2`` channels and a 1x1 conv to the output (logits);
* loss :func:`~course_lib.losses.bce_minus_log_jaccard`; at inference a pixel is foreground when
  its probability reaches :data:`THRESHOLD` = 0.3 (Sec. III-B).

Weights. :class:`VGG11Encoder` keeps torchvision's ``vgg11().features`` layout (conv ``i`` of the
``features`` ``nn.Sequential`` at the same index), so the encoder's state dict has torchvision's
keys ``features.0.weight``, ``features.0.bias``, ``features.3.weight``, ... and the model's own keys
are those with the prefix ``encoder.``. :func:`load_vgg11_weights` copies a torchvision VGG11 state
dict (ImageNet weights, or any encoder trained in the course) into the model and reports which keys
it used. The package never downloads: :func:`find_vgg11_weights` only looks for a file torchvision
already put in the torch hub cache (Colab: ``torchvision.models.vgg11(weights="DEFAULT")`` once).

Examples
--------
>>> import torch
>>> net = TernausNet(1, 1, base_channels=8)
>>> net(torch.zeros(1, 1, 64, 64)).shape
torch.Size([1, 1, 64, 64])
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from course_lib.blocks.conv import init_gaussian_
from course_lib.blocks.upsampling import transposed_conv_up
from course_lib.ops.checks import check_int

THRESHOLD = 0.3
"""Probability from which a pixel counts as foreground (Iglovikov and Shvets, Sec. III-B)."""

VGG11_LAYOUT = (1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M")
"""torchvision's VGG configuration "A" (Simonyan and Zisserman 2015, Table 1) in units of the
width: each number is a 3x3 conv + ReLU with that many times ``width`` channels, "M" a 2x2 pool."""

VGG11_WIDTH = 64
"""Width of the real VGG11: ImageNet weights only fit an encoder of this width."""

VGG11_WEIGHTS_FILE = "vgg11-8a719046.pth"
"""File name torchvision gives the ImageNet VGG11 weights (``VGG11_Weights.IMAGENET1K_V1``)."""


class VGG11Encoder(nn.Module):
    """VGG11's convolutional part, ``features`` laid out exactly as torchvision's ``vgg11``.

    ``forward`` returns the five skip maps (the ReLU output before every pool, widths ``w, 2w, 4w,
    8w, 8w`` at scales 1, 1/2, ..., 1/16) and the last pooled map (scale 1/32).
    """

    def __init__(self, in_channels: int = 3, width: int = VGG11_WIDTH) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for item in VGG11_LAYOUT:
            if isinstance(item, str):  # "M"
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, item * width, 3, padding=1), nn.ReLU(inplace=True)]
                channels = item * width
        self.features = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        """``(skips, pooled)``: the maps before each of the 5 pools, and the last pool's output."""
        skips = []
        for layer in self.features:
            if isinstance(layer, nn.MaxPool2d):
                skips.append(x)
            x = layer(x)
        return skips, x


class _DecoderBlock(nn.Sequential):
    """3x3 conv + ReLU, then a 3x3 transposed conv with stride 2 (doubles the size) + ReLU."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, mid_channels, 3, padding=1),
            nn.ReLU(inplace=True),
            transposed_conv_up(mid_channels, out_channels, kernel_size=3),
            nn.ReLU(inplace=True),
        )


class TernausNet(nn.Module):
    """U-Net with a VGG11 encoder (module docstring); input sides must be multiples of 32.

    Parameters
    ----------
    in_channels : int
        3 for RGB (ImageNet weights); 1 for gray images (the loader sums the RGB kernels).
    num_classes : int
        Output channels (logits); 1 in the paper (a binary sigmoid output).
    base_channels : int
        Width of the first VGG layer (level 1), even; 64 is VGG11 (ImageNet weights fit only
        then). The decoder's narrowest level has ``base_channels / 2`` channels (32 in the paper).
        The depth is VGG11's: 5 poolings.
    """

    def __init__(
        self, in_channels: int, num_classes: int, base_channels: int = VGG11_WIDTH
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("num_classes", num_classes),
            ("base_channels", base_channels),
        ):
            check_int(name, value)
        if base_channels % 2:
            raise ValueError(
                f"base_channels must be even (the decoder ends with half), got {base_channels}"
            )
        self.in_channels, self.base_channels = in_channels, base_channels
        w = base_channels
        self.encoder = VGG11Encoder(in_channels, w)
        # after the encoder's 5th pool: the 512-channel bottleneck conv (8w), then up to the
        # deepest skip's scale
        self.center = _DecoderBlock(8 * w, 8 * w, 4 * w)
        # (up-sampled channels + skip channels) -> conv -> transposed conv, deepest level first
        self.decoder = nn.ModuleList(
            [
                _DecoderBlock(4 * w + 8 * w, 8 * w, 4 * w),
                _DecoderBlock(4 * w + 8 * w, 8 * w, 2 * w),
                _DecoderBlock(2 * w + 4 * w, 4 * w, w),
                _DecoderBlock(w + 2 * w, 2 * w, w // 2),
            ]
        )
        self.last = nn.Sequential(
            nn.Conv2d(w // 2 + w, w // 2, 3, padding=1), nn.ReLU(inplace=True)
        )
        self.head = nn.Conv2d(w // 2, num_classes, kernel_size=1)
        init_gaussian_(self)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, num_classes, H, W)`` for ``(N, in_channels, H, W)``, H and W % 32 == 0."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must have shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        if x.shape[2] % 32 or x.shape[3] % 32:
            raise ValueError(
                f"H and W must be multiples of 32 (five 2x2 poolings), got {tuple(x.shape[2:])}"
            )
        skips, x = self.encoder(x)
        x = self.center(x)
        for block, skip in zip(self.decoder, skips[:0:-1], strict=True):
            x = block(torch.cat([x, skip], dim=1))
        return self.head(self.last(torch.cat([x, skips[0]], dim=1)))


def predict_mask(logits: Tensor, threshold: float = THRESHOLD) -> Tensor:
    """Binary mask ``sigmoid(logits) >= threshold`` (TernausNet's inference rule, threshold 0.3).

    >>> predict_mask(torch.tensor([-1.0, 0.0]))  # sigmoid: 0.27, 0.5
    tensor([False,  True])
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be a probability in (0, 1), got {threshold!r}")
    return torch.sigmoid(logits) >= threshold


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_vgg11_weights` did, key by key (torchvision key names)."""

    loaded: tuple[str, ...]
    """Keys copied into ``model.encoder.features``."""
    adapted: tuple[str, ...]
    """Loaded keys changed on the way (RGB kernels summed for a 1-channel input)."""
    ignored: tuple[str, ...]
    """Keys of the file the encoder has no place for (e.g. VGG's ``classifier.*``)."""

    def __str__(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors: {', '.join(self.loaded)}"]
        if self.adapted:
            lines.append(f"adapted (RGB kernels summed for gray input): {', '.join(self.adapted)}")
        if self.ignored:
            lines.append(f"ignored {len(self.ignored)} keys: {', '.join(self.ignored)}")
        return "\n".join(lines)


def load_vgg11_weights(
    model: TernausNet, path_or_state_dict: str | os.PathLike[str] | Mapping[str, Tensor]
) -> LoadReport:
    """Copy a torchvision-layout VGG11 state dict into ``model.encoder`` (never downloads).

    Parameters
    ----------
    model : TernausNet
        Its encoder receives the weights; the decoder keeps its own.
    path_or_state_dict : path or mapping
        A file written by ``torch.save(vgg11.state_dict())`` (torchvision's ImageNet file is one;
        read with ``weights_only=True``), or such a mapping, e.g. ``other.encoder.state_dict()``.
        Keys ``features.<i>.weight`` / ``.bias``; other keys (``classifier.*``) are ignored.

    Returns
    -------
    LoadReport
        Which keys were loaded, adapted and ignored.

    Raises
    ------
    ValueError
        If a key of the encoder is missing, or a tensor's shape does not match (e.g. ImageNet
        weights into an encoder whose ``base_channels`` is not 64); nothing is copied then.

    Notes
    -----
    A gray image is an RGB image with R = G = B, on which a 3-channel kernel acts like its sum over
    the channels: so for ``in_channels=1`` the first conv's ImageNet kernels are summed over RGB.
    """
    if isinstance(path_or_state_dict, (str, os.PathLike)):
        state = torch.load(path_or_state_dict, map_location="cpu", weights_only=True)
    else:
        state = path_or_state_dict
    if not isinstance(state, Mapping):
        raise ValueError(
            f"expected a VGG11 state dict (a mapping of tensors), got {type(state).__name__}"
        )
    target = model.encoder.features.state_dict()
    wanted = {f"features.{key}": value for key, value in target.items()}
    missing = [key for key in wanted if key not in state]
    if missing:
        raise ValueError(
            f"the state dict lacks {len(missing)} of the {len(wanted)} VGG11 encoder keys "
            f"({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}); expected "
            f"torchvision's vgg11 layout (features.0.weight, features.0.bias, features.3.weight, "
            f"...), got keys {', '.join(list(state)[:4])}{', ...' if len(state) > 4 else ''}"
        )
    sources, adapted, mismatched = {}, [], []
    for key, dst in wanted.items():
        src = state[key]
        if key == "features.0.weight" and dst.shape[1] == 1 and src.ndim == 4 and src.shape[1] == 3:
            src = src.sum(dim=1, keepdim=True)
            adapted.append(key)
        if tuple(src.shape) != tuple(dst.shape):
            mismatched.append(f"{key}: model {tuple(dst.shape)}, weights {tuple(src.shape)}")
        sources[key] = src
    if mismatched:
        raise ValueError(
            f"shape mismatch for {len(mismatched)} keys ({'; '.join(mismatched[:3])}). "
            f"The model has base_channels={model.base_channels} and in_channels="
            f"{model.in_channels}; ImageNet VGG11 weights need base_channels={VGG11_WIDTH} and "
            "in_channels 3 or 1"
        )
    with torch.no_grad():
        for key, src in sources.items():
            target[key.removeprefix("features.")].copy_(src)
    ignored = tuple(key for key in state if key not in wanted)
    return LoadReport(loaded=tuple(wanted), adapted=tuple(adapted), ignored=ignored)


def find_vgg11_weights(folder: str | os.PathLike[str] | None = None) -> Path | None:
    """The ImageNet VGG11 file torchvision stored locally, or ``None`` (nothing is downloaded).

    Looks for :data:`VGG11_WEIGHTS_FILE` in ``folder`` (default: torch hub's ``checkpoints``
    folder, where ``torchvision.models.vgg11(weights="DEFAULT")`` saves it).
    """
    folder = Path(torch.hub.get_dir()) / "checkpoints" if folder is None else Path(folder)
    path = folder / VGG11_WEIGHTS_FILE
    return path if path.is_file() else None

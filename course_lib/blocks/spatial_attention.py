"""Spatial attention module of the 2.5D U-Net (Wang et al., MICCAI 2019, section 2.2).

A spatial attention map is a single-channel image of attention coefficients in [0, 1], one per
voxel. The module computes it from the decoder features ``x`` (``N_l`` channels) of one level:

    z = conv2(relu(conv1(x)))      conv1: N_l -> N_l / 2 channels, conv2: -> 1 channel
    A = sigmoid(z)
    y = x * A + x = x * (1 + A)   (multiply, then the residual connection)

The residual connection keeps the features flowing where ``A`` is near 0, so an untrained or wrong
attention map cannot switch a region off; it can only emphasise (up to twice) where it attends.
The map's logit ``z`` is returned next to the features, as every output of the package is a logit:
the multi-scale attention loss (:func:`course_lib.losses.attention.attention_loss`) applies the
sigmoid itself, stably, and a plot draws ``torch.sigmoid(z)``, the map ``A``.

Reference: G. Wang, J. Shapey, W. Li et al., "Automatic Segmentation of Vestibular Schwannoma from
T2-Weighted MRI by Deep Spatial Attention with Hardness-Weighted Loss", MICCAI 2019, pp. 264-272.
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib.blocks.conv import conv_layer
from course_lib.ops.checks import check_int, check_spatial_dims, kernel_tuple


class SpatialAttention(nn.Module):
    """Spatial attention: ``y = x * (1 + A)`` with ``A = sigmoid(z)``, ``z = conv(relu(conv(x)))``.

    Parameters
    ----------
    channels
        ``N_l``, the channels of the features it attends over (at least 2: the hidden layer has
        ``N_l // 2``).
    kernel_size
        Kernel of both convolutions, an odd int or one per spatial axis; ``"same"`` padding keeps
        the map at the features' resolution. The paper does not fix it in the notes; the 2.5D U-Net
        passes its level's kernel, ``(1, 3, 3)`` in the 2D levels and ``(3, 3, 3)`` in the 3D ones.
    spatial_dims
        2 for ``(N, C, H, W)`` features, 3 for ``(N, C, D, H, W)``.

    Returns (from ``forward``)
    --------------------------
    (y, z)
        ``y`` has the shape of ``x``; ``z`` is the map's logit ``(N, 1, *spatial)``, the map
        ``A = torch.sigmoid(z)`` with values in [0, 1].

    Examples
    --------
    >>> sa = SpatialAttention(8, kernel_size=(1, 3, 3))
    >>> y, z = sa(torch.randn(2, 8, 4, 16, 16))
    >>> tuple(y.shape), tuple(z.shape)
    ((2, 8, 4, 16, 16), (2, 1, 4, 16, 16))
    """

    def __init__(
        self, channels: int, kernel_size: int | tuple[int, ...] = 3, spatial_dims: int = 3
    ) -> None:
        super().__init__()
        check_int("channels (the hidden layer has channels // 2)", channels, minimum=2)
        kernel = kernel_tuple(kernel_size, check_spatial_dims(spatial_dims))
        padding = tuple(k // 2 for k in kernel)
        conv = conv_layer(spatial_dims)
        self.conv1 = conv(channels, channels // 2, kernel, padding=padding)
        self.conv2 = conv(channels // 2, 1, kernel, padding=padding)
        self.spatial_dims = spatial_dims

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != self.spatial_dims + 2 or x.shape[1] != self.conv1.in_channels:
            raise ValueError(
                f"x must be (N, {self.conv1.in_channels}, *{self.spatial_dims} spatial axes), "
                f"got shape {tuple(x.shape)}"
            )
        logit = self.conv2(torch.relu(self.conv1(x)))
        return x * (1 + torch.sigmoid(logit)), logit

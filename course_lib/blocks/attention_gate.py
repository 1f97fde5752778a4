"""Attention gate of Attention U-Net (Oktay et al. 2018, "Attention U-Net: Learning Where to Look
for the Pancreas", MIDL), applied to a skip connection.

A plain U-Net concatenates the whole encoder feature map ``x`` (the skip) to the decoder. The gate
first scales every pixel of ``x`` by an attention coefficient ``alpha`` in (0, 1) computed from
``x`` and a gating signal ``g`` from the decoder, which carries coarser, more semantic context
(Sec. 2, eqs. 1-2):

    q     = psi(relu(W_x x + W_g g + b_g)) + b_psi       W_x, W_g: 1x1 convs to F_int channels
    alpha = sigmoid(q)                                   psi: 1x1 conv to one channel
    y     = alpha * x                                    (every channel of x, same alpha)

So background regions of the skip can be switched off where the decoder "knows" there is nothing
to segment. The output has the shape of ``x``.

We differ from the paper in one place: the paper takes ``g`` from the coarser level and brings ``x``
down to it with a strided ``W_x``, then resamples ``alpha`` up; here ``g`` is the decoder's
up-sampled feature map, already on the skip's grid (as MONAI's ``AttentionUnet`` does), so no
resampling is needed and valid-padding U-Nets stay exact.

Examples
--------
>>> import torch
>>> gate = AttentionGate(skip_channels=8, gating_channels=16)
>>> gate(torch.randn(1, 8, 12, 12), torch.randn(1, 16, 12, 12)).shape
torch.Size([1, 8, 12, 12])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from course_lib.blocks.conv import conv_layer
from course_lib.ops.checks import check_int


class AttentionGate(nn.Module):
    """``y = x * sigmoid(psi(relu(W_x x + W_g g)))`` (module docstring).

    Parameters
    ----------
    skip_channels : int
        ``F_l``, channels of the skip ``x``.
    gating_channels : int
        ``F_g``, channels of the gating signal ``g``.
    inter_channels : int, optional
        ``F_int``, width of the additive attention (default ``max(1, skip_channels // 2)``).
    spatial_dims : {2, 3}
        2D images or 3D volumes.
    """

    def __init__(
        self,
        skip_channels: int,
        gating_channels: int,
        inter_channels: int | None = None,
        *,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        inter = max(1, skip_channels // 2) if inter_channels is None else inter_channels
        for name, value in (
            ("skip_channels", skip_channels),
            ("gating_channels", gating_channels),
            ("inter_channels", inter),
        ):
            check_int(name, value)
        conv = conv_layer(spatial_dims)
        self.spatial_dims = spatial_dims
        self.theta_x = conv(skip_channels, inter, 1, bias=False)  # W_x (eq. 1 has no bias here)
        self.phi_g = conv(gating_channels, inter, 1)  # W_g and b_g
        self.psi = conv(inter, 1, 1)  # psi and b_psi

    def coefficients(self, x: Tensor, g: Tensor) -> Tensor:
        """The attention coefficients ``alpha``, shape ``(N, 1, *spatial)``, values in (0, 1)."""
        for name, t, channels in (
            ("x", x, self.theta_x.in_channels),
            ("g", g, self.phi_g.in_channels),
        ):
            if t.ndim != self.spatial_dims + 2 or t.shape[1] != channels:
                raise ValueError(
                    f"{name} must have shape (N, {channels}, *{self.spatial_dims} spatial axes), "
                    f"got {tuple(t.shape)}"
                )
        if x.shape[0] != g.shape[0] or x.shape[2:] != g.shape[2:]:
            raise ValueError(
                "x and g must have the same batch size and spatial shape (g on the skip's grid), "
                f"got {tuple(x.shape)} and {tuple(g.shape)}"
            )
        return torch.sigmoid(self.psi(torch.relu(self.theta_x(x) + self.phi_g(g))))

    def forward(self, x: Tensor, g: Tensor) -> Tensor:
        """The skip ``x`` with every pixel scaled by its attention coefficient."""
        return x * self.coefficients(x, g)

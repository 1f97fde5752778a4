"""3D U-Net (Cicek, Abdulkadir, Lienkamp, Brox and Ronneberger 2016, "3D U-Net: Learning Dense
Volumetric Segmentation from Sparse Annotation", MICCAI).

The U-Net of Ronneberger et al. with every operation in 3D, plus two changes (paper, Sec. 2):

* **channels double before pooling**: each analysis block ends with twice the channels it started
  with (32 -> 64, 64 -> 128, 128 -> 256, and 256 -> 512 at the bottom), "to avoid bottlenecks"
  (Szegedy et al. 2016, Inception-v3, principle 1): the 2x2x2 max-pooling keeps one voxel in 8,
  so the features a coarser level receives are ``channels * voxels / 8``; doubling before the
  pooling sends twice as many features down as the original U-Net, which doubles after it;
* **batch normalisation before each ReLU**, for faster convergence.

The synthesis path has 2x2x2 up-convolutions that keep the channel count (512 -> 512), the
concatenation with the centre-cropped analysis features (512 + 256 = 768), and two 3x3x3
convolutions (768 -> 256 -> 256); a 1x1x1 convolution gives the class logits. Convolutions are
unpadded ("valid"): a 132 x 132 x 116 tile gives a 44 x 44 x 28 output (Sec. 2).

The class configures :class:`~course_lib.models.unet.UNet` (forward pass, shapes, initialisation):
its analysis path and bottom use :func:`analysis_block`, and its up-convolutions keep the channel
count (``up_channels="keep"``) where U-Net's halve it. ``base_channels`` means what it means in
U-Net, the channels a level-1 block ends with: 64 in the paper (its first convolution has 32).

Parameter count. With 3 input channels and 3 classes the paper's net has 19,069,955 parameters.
That number counts, for every 3x3x3 convolution, its weights and one bias per output channel; for
every up-convolution its weights only (no bias); the 1x1x1 head with its bias; and nothing for
batch norm. This package follows PyTorch practice instead: a convolution followed by batch norm
has no bias (the norm subtracts the mean, which cancels any bias), and the norm's shift ``beta``
takes its place; batch norm also has a scale ``gamma``, and the up-convolutions carry a bias. So
``UNet3D(3, 3)`` has 19,073,187 trainable parameters = 19,069,955 + 2,336 (``gamma``, one per
conv output channel) + 896 (up-convolution biases). :func:`paper_parameter_count` counts the
paper's way (every parameter except norm scales and up-convolution biases) and gives 19,069,955.

Examples
--------
>>> import torch
>>> net = UNet3D(1, 2, base_channels=4, depth=1)
>>> net.output_shape((20, 20, 20))
(4, 4, 4)
>>> net(torch.zeros(1, 1, 20, 20, 20)).shape
torch.Size([1, 2, 4, 4, 4])
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib.blocks.conv import DoubleConv
from course_lib.models.unet import UNet

PAPER_PARAMETERS = 19_069_955
"""Parameters of the paper's net (3 input channels, 3 classes), counted as the paper counts them."""


def analysis_block(
    in_channels: int, out_channels: int, *, spatial_dims: int, padding: str, norm: str | None
) -> DoubleConv:
    """Two conv-norm-ReLU, the first reaching half of ``out_channels``: the width doubles inside.

    >>> block = analysis_block(3, 64, spatial_dims=3, padding="valid", norm="batch")
    >>> block[0][0].out_channels, block[1][0].out_channels
    (32, 64)
    """
    return DoubleConv(
        in_channels,
        out_channels,
        mid_channels=out_channels // 2,
        spatial_dims=spatial_dims,
        padding=padding,
        norm=norm,
    )


class UNet3D(UNet):
    """The 3D U-Net of Cicek et al. (2016), see the module docstring.

    Parameters
    ----------
    in_channels : int
        Channels of the input volume (3 in the paper: the microscope's colour channels).
    num_classes : int
        Output channels (logits); 3 in the paper (inside the tubule, tubule, background).
    base_channels : int
        Channels of level 1, as in :class:`~course_lib.models.unet.UNet`: 64 in the paper. Analysis
        level ``i`` ends with ``base_channels * 2**i`` channels (its first convolution reaches
        half of that) and the bottom with ``base_channels * 2**depth``.
    depth : int
        Number of max-pooling steps, 3 in the paper.
    padding : {"valid", "same"}
        Unpadded convolutions (the paper) or zero-padded ones that keep the size.
    norm : {"batch", "instance", None}
        Normalisation after every 3x3x3 convolution; batch norm in the paper.
    dropout : float
        Dropout after the bottom block (the paper has none).

    Examples
    --------
    >>> UNet3D(3, 3).output_shape((132, 132, 116))
    (44, 44, 28)
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        base_channels: int = 64,
        depth: int = 3,
        *,
        padding: str = "valid",
        norm: str | None = "batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__(
            in_channels,
            num_classes,
            base_channels,
            depth,
            padding=padding,
            spatial_dims=3,
            norm=norm,
            dropout=dropout,
            encoder_block=analysis_block,
            # The synthesis path differs from U-Net's: the up-convolution keeps the channel count of
            # the level below (architecture figure: 512 -> 512, then 512 + 256 = 768 -> 256 -> 256).
            block=DoubleConv,
            up_channels="keep",
        )


def paper_parameter_count(model: nn.Module) -> int:
    """Parameters counted as Cicek et al. count them (19,069,955 for ``UNet3D(3, 3)``).

    Every parameter except the scales ``gamma`` of the normalisation layers and the biases of the
    up-convolutions (transposed convolutions): a norm's shift ``beta`` stands for the bias of the
    convolution in front of it, which the paper counts. For a net without normalisation this is
    the plain count minus the up-convolution biases. See the module docstring.

    >>> paper_parameter_count(UNet3D(3, 3)) == PAPER_PARAMETERS
    True
    """
    norms = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
    modules = list(model.modules())
    scales = [m.weight for m in modules if isinstance(m, norms)]
    up_biases = [m.bias for m in modules if isinstance(m, nn.modules.conv._ConvTransposeNd)]
    excluded = sum(p.numel() for p in scales + up_biases if isinstance(p, torch.Tensor))
    return sum(p.numel() for p in model.parameters()) - excluded

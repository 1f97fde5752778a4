"""Building blocks the models share: conv blocks, attention, re-weighting, up-sampling.

A *block factory* ``block(c_in, c_out, *, spatial_dims, padding, norm)`` builds one U-Net level's
feature block, so :class:`~course_lib.models.UNet` takes :class:`DoubleConv` (the paper's),
:class:`ResidualBlock`, :class:`DenseBlock` or ``se_block(...)`` without a class per combination.
"""

from course_lib.blocks.attention_gate import AttentionGate
from course_lib.blocks.conv import ConvNormAct, DoubleConv, init_gaussian_
from course_lib.blocks.dense import DenseBlock
from course_lib.blocks.residual import ResidualBlock
from course_lib.blocks.se import SqueezeExcitation, se_block
from course_lib.blocks.spatial_attention import SpatialAttention
from course_lib.blocks.upsampling import checkerboard_amplitude, transposed_conv_up

__all__ = [
    "AttentionGate",
    "ConvNormAct",
    "DenseBlock",
    "DoubleConv",
    "ResidualBlock",
    "SpatialAttention",
    "SqueezeExcitation",
    "checkerboard_amplitude",
    "init_gaussian_",
    "se_block",
    "transposed_conv_up",
]

"""Segmentation networks of the course, one paper per file.

=====================  ====================================================  =======
class                  paper                                                 chapter
=====================  ====================================================  =======
:class:`UNet`          Ronneberger et al. 2015, U-Net                        01, 05
:class:`VNet`          Milletari et al. 2016, V-Net                          02
:class:`UNet3D`        Cicek et al. 2016, 3D U-Net                           07
:class:`UNet25D`       Wang et al. 2019, 2.5D U-Net with spatial attention   08
:class:`TwoPathwayUNet`  two-pathway U-Net of the notes (in-/through-plane)  08
=====================  ====================================================  =======
"""

from course_lib.models._shapes import output_shape, valid_input_shape
from course_lib.models.two_pathway import TwoPathwayUNet, single_pathway_unet
from course_lib.models.unet import UNet, shape_table
from course_lib.models.unet3d import UNet3D, paper_parameter_count
from course_lib.models.unet25d import UNet25D
from course_lib.models.vnet import VNet

__all__ = [
    "TwoPathwayUNet",
    "UNet",
    "UNet25D",
    "UNet3D",
    "VNet",
    "output_shape",
    "paper_parameter_count",
    "shape_table",
    "single_pathway_unet",
    "valid_input_shape",
]

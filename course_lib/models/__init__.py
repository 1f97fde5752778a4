"""Segmentation networks of the course, one paper per file.

* :class:`UNet`: Ronneberger et al. 2015, U-Net (chapters 01 and 05);
* :class:`VNet`: Milletari et al. 2016, V-Net (chapter 02);
* :class:`TernausNet`: Iglovikov and Shvets 2018, U-Net with a VGG11 encoder (chapter 05);
* :class:`UNet3D`: Cicek et al. 2016, 3D U-Net (chapter 07);
* :class:`UNet25D`: Wang et al. 2019, 2.5D U-Net with spatial attention (chapter 08);
* :class:`TwoPathwayUNet`: the notes' two-pathway U-Net, in-plane and through-plane (chapter 08).
"""

from course_lib.models._shapes import output_shape, valid_input_shape
from course_lib.models.ternausnet import TernausNet, load_vgg11_weights, predict_mask
from course_lib.models.two_pathway import TwoPathwayUNet, single_pathway_unet
from course_lib.models.unet import UNet, shape_table
from course_lib.models.unet3d import UNet3D, paper_parameter_count
from course_lib.models.unet25d import UNet25D
from course_lib.models.vnet import VNet

__all__ = [
    "TernausNet",
    "TwoPathwayUNet",
    "UNet",
    "UNet25D",
    "UNet3D",
    "VNet",
    "load_vgg11_weights",
    "output_shape",
    "paper_parameter_count",
    "predict_mask",
    "shape_table",
    "single_pathway_unet",
    "valid_input_shape",
]

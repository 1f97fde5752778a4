"""Interactive widgets of the course; each factory returns an :class:`InteractiveFigure`.

* :func:`threshold_explorer`: threshold a probability map, watch mask and Dice (chapter 00);
* :func:`loss_explorer`: loss and gradient against prediction, target and size (chapter 03);
* :func:`volume_viewer`: slices of a volume with label and prediction overlays (chapter 02).
"""

from course_lib.widgets._base import InteractiveFigure
from course_lib.widgets.loss_explorer import loss_explorer
from course_lib.widgets.threshold_explorer import threshold_explorer
from course_lib.widgets.volume_viewer import volume_viewer

__all__ = ["InteractiveFigure", "loss_explorer", "threshold_explorer", "volume_viewer"]

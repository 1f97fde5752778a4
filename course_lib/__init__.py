"""course_lib: the companion package of the segmentation-networks course.

Every chapter notebook computes through this package: models, losses, metrics, synthetic data,
inference helpers, the training loop and the widgets. Sub-packages are imported on use
(``from course_lib import losses``), so ``import course_lib`` stays fast.
"""

from course_lib._version import __version__

__all__ = ["__version__"]

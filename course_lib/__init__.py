"""course_lib: the companion package of the segmentation-networks course.

Every chapter notebook computes through this package: models, losses, metrics, synthetic data,
inference helpers, the training loop and the widgets. Sub-packages are imported on use
(``from course_lib import losses``), so ``import course_lib`` stays fast.
"""

import sys

from course_lib._version import __version__

__all__ = ["__version__"]


def _draw_figures_inline_in_jupyter() -> None:
    # course_lib returns matplotlib Figures built without pyplot, so nothing is shown twice. In a
    # Jupyter kernel the inline backend draws them, but only once its module is loaded (pyplot
    # loads it lazily, on the first pyplot figure), so load it here.
    if "ipykernel" in sys.modules:
        import matplotlib

        if matplotlib.get_backend() == "module://matplotlib_inline.backend_inline":
            import matplotlib_inline.backend_inline  # noqa: F401


_draw_figures_inline_in_jupyter()

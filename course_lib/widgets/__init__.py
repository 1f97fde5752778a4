"""Interactive widgets of the course; each factory returns an :class:`InteractiveFigure`."""

from course_lib.widgets._base import InteractiveFigure

__all__ = ["InteractiveFigure"]

"""The single place the package version lives (pyproject.toml reads it from here)."""

__version__ = "0.2.0"

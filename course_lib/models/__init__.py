"""Segmentation networks of the course, one paper per file."""

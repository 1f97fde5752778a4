"""Shared test set-up: fixture notebooks are data for the conventions test, not chapters to run."""

collect_ignore_glob = ["fixtures/*"]

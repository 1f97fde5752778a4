"""Shared test set-up.

Fixture notebooks are data for the conventions test, not chapters to run; the nnU-Net reference
datasets and the course_lib wheel of the Colab-layout runs are made once per test process and
shared by the tests that need them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _colab import build_wheel_site
from _nnunet_fixtures import load_json, make_fixtures

collect_ignore_glob = ["fixtures/*"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Chapters first: they are the longest tests, so the workers start them while the unit tests
    fill the gaps (``--dist worksteal`` hands out the rest as workers free up)."""
    items.sort(key=lambda item: item.path.name != "test_chapters.py")


@pytest.fixture(scope="session")
def wheel_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """course_lib installed from a fresh wheel into a folder of its own (tests/_colab.py)."""
    return build_wheel_site(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def nnunet_raw_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The raw NIfTI datasets of ``tests/fixtures/nnunet/datasets.json``, in nnU-Net's layout."""
    root = tmp_path_factory.mktemp("nnunet_raw")
    make = make_fixtures()
    for name, entry in load_json("datasets.json").items():
        make.write_raw(root, name, entry["spec"])
    return root

"""Shared by the nnU-Net tests: the reference fixtures and the script that made them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np

FIXTURES = Path(__file__).parent / "fixtures" / "nnunet"


def load_json(name: str) -> object:
    """A fixture file made by ``make_fixtures.py`` (with nnunetv2 2.8.1)."""
    return json.loads((FIXTURES / name).read_text())


def make_fixtures() -> ModuleType:
    """``tests/fixtures/nnunet/make_fixtures.py`` as a module (dataset writers, planner inputs)."""
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_plans_match(ours: dict, expected: dict, rtol: float = 1e-9) -> None:
    """Integers and names exactly, spacings and medians to ``rtol`` relative."""
    assert ours["transpose_forward"] == expected["transpose_forward"]
    assert ours["transpose_backward"] == expected["transpose_backward"]
    assert sorted(ours["configurations"]) == sorted(expected["configurations"])
    for name, exp in expected["configurations"].items():
        got = ours["configurations"][name]
        for key, value in exp.items():
            if key in ("spacing", "median_image_size_in_voxels"):
                np.testing.assert_allclose(got[key], value, rtol=rtol, err_msg=f"{name}.{key}")
            elif key == "architecture":
                arch = got["architecture"]["arch_kwargs"]
                for k, v in value.items():
                    assert arch[k] == v, f"{name}.architecture.{k}: {arch[k]} != {v}"
            else:
                assert got[key] == value, f"{name}.{key}: {got[key]} != {value}"

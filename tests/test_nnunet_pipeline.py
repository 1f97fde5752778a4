"""End to end on a tiny raw dataset: every step runs and hands the next what it needs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _nnunet_fixtures import make_fixtures

from course_lib.nnunet import run_pipeline


@pytest.fixture(scope="module")
def raw_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    make = make_fixtures()
    small = {
        "seed": 7,
        "n": 5,
        "channels": ["T1"],
        "shape": (10, 24, 24),
        "z": (1.0, 1.2),
        "xy": (1.0, 1.1),
        "outside": 0.0,
    }
    return make.write_raw(tmp_path_factory.mktemp("raw"), "Dataset990_Tiny", small)


@pytest.mark.parametrize("configuration", ["3d_fullres", "2d"])
def test_pipeline_runs_end_to_end(raw_dataset: Path, configuration: str) -> None:
    result = run_pipeline(
        raw_dataset,
        configuration=configuration,
        iterations=3,
        features_scale=0.125,
        num_samples=1000,
        device="cpu",
    )
    assert len(result.train_loss) == 3 and np.isfinite(result.train_loss).all()
    assert len(result.splits) == 5
    val = result.splits[0]["val"]
    assert sorted(result.predictions) == sorted(val)
    for case_id in val:
        assert result.predictions[case_id].shape == result.references[case_id].shape
    assert len(result.dice["raw"]) == 2  # organ and lesion
    with pytest.raises(ValueError, match="was not planned"):
        run_pipeline(raw_dataset, configuration="3d_lowres", iterations=1, num_samples=100)

"""Inference: the preprocessing is undone exactly (crop, transpose), folds average logits,
configurations average probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.nnunet.fingerprint import fingerprint_from_arrays
from course_lib.nnunet.inference import ensemble_probabilities, predict_case, predict_logits
from course_lib.nnunet.planning import plan_experiment


class Oracle(torch.nn.Module):
    """Logits that segment ``x > 0.5`` (class 1) perfectly; ``scale`` tells folds apart."""

    def __init__(self, scale: float = 20.0) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fg = self.scale * (x[:, :1] - 0.5)
        return torch.cat([-fg, fg], dim=1)


def _case() -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    rng = np.random.default_rng(0)
    label = np.zeros((10, 12, 6), np.int64)
    label[3:7, 4:9, 2:5] = 1
    image = np.where(label == 1, 1.0, 0.2)[None].astype(np.float32)
    image[:, :2] = 0  # zero slab: cropped away
    label[:2] = 0
    image[:, 2:] += rng.uniform(0, 0.01, image[:, 2:].shape).astype(np.float32)
    return image, label, (1.0, 1.0, 3.2)  # coarse last axis: transposed to the front


def _plans(image: np.ndarray, label: np.ndarray, spacing: tuple[float, ...]) -> dict:
    fp = fingerprint_from_arrays(
        [image, image], [label, label], [spacing, spacing], num_samples=100
    )
    dataset_json = {
        "channel_names": {"0": "noNorm"},
        "labels": {"background": 0, "fg": 1},
        "numTraining": 2,
    }
    return plan_experiment(fp, dataset_json)


@pytest.mark.parametrize("configuration", ["3d_fullres", "2d"])
def test_oracle_prediction_comes_back_in_raw_geometry(configuration: str) -> None:
    image, label, spacing = _case()
    plans = _plans(image, label, spacing)
    assert plans["transpose_forward"] == [2, 0, 1]
    seg, probs = predict_case([Oracle()], image, spacing, plans, configuration)
    assert seg.shape == label.shape and probs.shape == (2, *label.shape)
    np.testing.assert_array_equal(seg, label)
    assert (probs[0, :2] == 1).all()  # outside the crop: background with certainty
    np.testing.assert_allclose(probs.sum(0), 1, atol=1e-6)


def test_folds_average_logits() -> None:
    data = torch.rand(1, 8, 8, 8)
    a, b = Oracle(2.0), Oracle(6.0)
    mean = predict_logits([a, b], data, (8, 8, 8))
    torch.testing.assert_close(mean, predict_logits([Oracle(4.0)], data, (8, 8, 8)))
    assert a.training  # restored afterwards
    with pytest.raises(ValueError):
        predict_logits([], data, (8, 8, 8))


def test_ensemble_averages_probabilities_not_votes() -> None:
    confident = np.array([[0.95], [0.05]])
    unsure = np.array([[0.45], [0.55]])
    assert ensemble_probabilities([confident, unsure, unsure]).tolist() == [0]
    with pytest.raises(ValueError):
        ensemble_probabilities([])

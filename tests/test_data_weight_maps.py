"""U-Net weight map: the two-squares toy, an independent SciPy computation, edge cases, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.data import class_balance_weights, make_cells, unet_weight_map


def two_squares() -> torch.Tensor:
    """Two 4 x 4 cells in an 8 x 12 image with a 2-pixel gap (columns 5-6)."""
    lab = torch.zeros(8, 12, dtype=torch.long)
    lab[2:6, 1:5], lab[2:6, 7:11] = 1, 2
    return lab


def reference_weight_map(instances: np.ndarray, w0: float, sigma: float) -> np.ndarray:
    """Independent computation: SciPy EDT per cell, sort, border term on background, + w_c."""
    ndimage = pytest.importorskip("scipy.ndimage")
    ids = [i for i in np.unique(instances) if i > 0]
    fg = instances > 0
    freq = np.array([(~fg).mean(), fg.mean()])
    inv = np.where(freq > 0, 1 / np.where(freq > 0, freq, 1), 0)
    w_class = np.where(inv > 0, inv / inv.max(), 1.0)
    w = np.where(fg, w_class[1], w_class[0])
    if len(ids) >= 2:
        dist = np.stack([ndimage.distance_transform_edt(instances != i) for i in ids])
        dist.sort(axis=0)
        border = w0 * np.exp(-((dist[0] + dist[1]) ** 2) / (2 * sigma**2))
        w = w + np.where(fg, 0.0, border)
    return w


def test_two_squares_match_the_worked_example():
    w = unet_weight_map(two_squares(), class_weights=None) - 1  # border term alone
    expected_row = [2.7804, 0, 0, 0, 0, 8.3527, 8.3527, 0, 0, 0, 0, 2.7804]
    assert w[3].tolist() == pytest.approx(expected_row, abs=1e-4)
    # a gap pixel: d1 = 1, d2 = 2 -> 10 exp(-9 / 50)
    assert float(w[3, 5]) == pytest.approx(10 * math.exp(-9 / 50), rel=1e-6)
    # inverse-frequency class weights: cells (32 of 96 px) 1.0, background 0.5
    wc = class_balance_weights(two_squares())
    assert wc.unique().tolist() == pytest.approx([0.5, 1.0])
    assert float(unet_weight_map(two_squares())[3, 5]) == pytest.approx(0.5 + 8.3527, abs=1e-4)


def test_matches_an_independent_scipy_computation():
    cells = make_cells(2, 64, seed=5)
    ours = unet_weight_map(cells.instances, w0=10.0, sigma=5.0)
    for image, w in zip(cells.instances, ours, strict=True):
        ref = reference_weight_map(image.numpy(), 10.0, 5.0)
        np.testing.assert_allclose(w.numpy(), ref, rtol=1e-5, atol=1e-5)


@settings(max_examples=15, deadline=None)
@given(gap=st.integers(1, 6), w0=st.floats(0.5, 20), sigma=st.floats(1, 10))
def test_border_term_on_a_gap_of_any_width(gap, w0, sigma):
    lab = torch.zeros(10, 14 + gap, dtype=torch.long)
    lab[2:8, 1:7], lab[2:8, 7 + gap : 13 + gap] = 1, 2
    w = unet_weight_map(lab, w0=w0, sigma=sigma)
    np.testing.assert_allclose(
        w.numpy(), reference_weight_map(lab.numpy(), w0, sigma), rtol=1e-5, atol=1e-6
    )
    # every gap pixel between the cells has d1 + d2 = gap + 1
    border = unet_weight_map(lab, w0=w0, sigma=sigma, class_weights=None)[5, 7 : 7 + gap] - 1
    expected = w0 * math.exp(-((gap + 1) ** 2) / (2 * sigma**2))
    assert border.tolist() == pytest.approx([expected] * gap, rel=1e-5, abs=1e-6)


def test_zero_or_one_cell_leaves_only_class_weights():
    empty = torch.zeros(2, 6, 6, dtype=torch.long)
    assert torch.equal(unet_weight_map(empty), torch.ones(2, 6, 6))
    one = torch.zeros(6, 6, dtype=torch.long)
    one[1:3, 1:3] = 1
    w = unet_weight_map(one)
    assert torch.equal(w, class_balance_weights(one))
    assert torch.isfinite(w).all()


def test_batch_equals_images_one_by_one_and_keeps_device_dtype():
    cells = make_cells(3, 48, seed=1)
    batch = unet_weight_map(cells.instances)
    single = torch.stack([unet_weight_map(i) for i in cells.instances])
    assert torch.equal(batch, single)
    assert batch.dtype == torch.float32 and batch.device == cells.instances.device
    # large on the gaps between touching cells, small elsewhere
    gaps = batch[(cells.masks == 0) & (batch > 5)]
    assert gaps.numel() > 0 and float(batch.max()) <= 10 + 1


def test_class_weight_options():
    lab = two_squares()
    fixed = unet_weight_map(lab, class_weights=(0.2, 3.0), w0=0.0)
    assert fixed.unique().tolist() == pytest.approx([0.2, 3.0])
    assert torch.equal(unet_weight_map(lab, class_weights=None, w0=0.0), torch.ones(8, 12))


@pytest.mark.parametrize(
    ("labels", "kwargs", "match"),
    [
        (torch.zeros(4, 4), {}, "instance_labels"),
        (torch.zeros(1, 1, 4, 4, dtype=torch.long), {}, "instance_labels"),
        (-torch.ones(4, 4, dtype=torch.long), {}, ">= 0"),
        (torch.zeros(4, 4, dtype=torch.long), {"sigma": 0.0}, "sigma"),
        (torch.zeros(4, 4, dtype=torch.long), {"class_weights": "inverse"}, "class_weights"),
        (torch.zeros(4, 4, dtype=torch.long), {"class_weights": (1.0,)}, "class_weights"),
        ([[0, 1]], {}, "torch.Tensor"),
    ],
)
def test_bad_input_raises(labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        unet_weight_map(labels, **kwargs)

"""EM challenge metrics: pixel, Rand and warping error on hand cases, properties and a reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from course_lib.metrics import pixel_error, rand_error, simple_point_warp, warping_error
from course_lib.metrics.em import _neighbourhood_codes, _simple_point_table

FACE = ndimage.generate_binary_structure(2, 1)
FULL = ndimage.generate_binary_structure(2, 2)


def _cells(size: int = 24) -> torch.Tensor:
    """A membrane grid: four square cells (1) separated by 2-pixel membranes (0)."""
    mask = torch.ones(size, size, dtype=torch.bool)
    mask[:, size // 2 - 1 : size // 2 + 1] = False
    mask[size // 2 - 1 : size // 2 + 1, :] = False
    mask[[0, -1], :] = mask[:, [0, -1]] = False
    return mask


def _topology(mask: np.ndarray) -> tuple[int, int]:
    """Cells (4-connected foreground) and membrane pieces (8-connected background, border incl.)."""
    padded = np.pad(mask, 1)
    return ndimage.label(padded, FACE)[1], ndimage.label(~padded, FULL)[1]


def _fiji_rand_error(pred: np.ndarray, target: np.ndarray) -> float:
    """The ISBI 2012 formula written independently, with a dense contingency table."""
    true_cells, _ = ndimage.label(target, FACE)
    pred_cells, _ = ndimage.label(pred, FACE)
    inside = true_cells > 0
    table = np.zeros((true_cells.max() + 1, pred_cells.max() + 1))
    np.add.at(table, (true_cells[inside], pred_cells[inside]), 1)
    n = table.sum()
    singletons = table[:, 0].sum()
    sum_p2 = (table[:, 1:] ** 2).sum() + singletons
    sum_s2 = (table[:, 1:].sum(0) ** 2).sum() + singletons
    sum_t2 = (table.sum(1) ** 2).sum()
    return 1 - (sum_p2 / n**2) / (0.5 * sum_s2 / n**2 + 0.5 * sum_t2 / n**2)


def test_pixel_error_hand_value_and_batch():
    target = _cells()
    pred = target.clone()
    pred[5, :4] = ~pred[5, :4]
    assert pixel_error(pred, target).item() == pytest.approx(4 / 576)
    assert pixel_error(torch.stack([pred, target]), torch.stack([target, target])).tolist() == [
        pytest.approx(4 / 576),
        0.0,
    ]


def test_rand_error_perfect_split_and_merge():
    target = _cells()
    assert rand_error(target, target).item() == 0.0
    merged = target.clone()
    merged[2:10, 11:13] = True  # joins the two upper cells
    # 4 equal cells of n/4 pixels: merging two gives sum_s2 = 2·(1/4)² + (1/2)² = 3/8, sum_p2 =
    # sum_t2 = 1/4 plus the joining pixels, which lie on target membrane and are not counted.
    assert rand_error(merged, target).item() == pytest.approx(1 - 0.25 / (0.5 * 0.375 + 0.125))
    split = target.clone()
    split[5, :] = False  # cuts both upper cells in two; the cut pixels are singletons
    expected = _fiji_rand_error(split.numpy(), target.numpy())
    assert rand_error(split, target).item() == pytest.approx(expected, rel=1e-6)
    assert expected > 0


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.4, 0.8))
def test_rand_error_matches_an_independent_implementation(seed, density):
    gen = torch.Generator().manual_seed(seed)
    pred = torch.rand(20, 20, generator=gen) < density
    target = torch.rand(20, 20, generator=gen) < density
    expected = _fiji_rand_error(pred.numpy(), target.numpy())
    assert rand_error(pred, target).item() == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_rand_error_without_target_cells_is_nan():
    assert rand_error(torch.ones(4, 4), torch.zeros(4, 4)).isnan()


def test_simple_point_table_known_entries():
    table = _simple_point_table()
    assert not table[0]  # isolated pixel: removing it deletes a cell
    assert not table[255]  # interior pixel: removing it punches a hole
    assert table[0b00000010]  # one face neighbour: the tip of a cell
    assert not table[0b00000001]  # one corner neighbour only: not 4-connected to it
    assert not table[0b00100010]  # neighbours above and below only: the pixel bridges them


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_flipping_a_simple_pixel_keeps_every_component(seed):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(1, 9, 9, generator=gen) < 0.55
    simple = _simple_point_table()[_neighbourhood_codes(mask)][0]
    before = _topology(mask[0].numpy())
    for y, x in simple.nonzero().tolist():
        flipped = mask[0].clone()
        flipped[y, x] = ~flipped[y, x]
        assert _topology(flipped.numpy()) == before


def test_warping_forgives_shifts_but_not_splits():
    target = _cells()
    shifted = target.roll(1, dims=1)
    assert pixel_error(shifted, target) > 0
    assert warping_error(shifted, target).item() == 0.0
    split = target.clone()
    split[5, 1:11] = False  # a cut through the upper left cell
    # the warp removes the cut pixels one by one until the last would split the cell: one error
    assert warping_error(split, target).item() == pytest.approx(1 / 576)
    warped = simple_point_warp(target, split)
    assert _topology(warped.numpy()) == _topology(target.numpy())


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_warp_keeps_the_topology_of_the_source(seed):
    gen = torch.Generator().manual_seed(seed)
    source, target = _cells(), torch.rand(24, 24, generator=gen) < 0.6
    warped = simple_point_warp(source, target)
    assert _topology(warped.numpy()) == _topology(source.numpy())
    assert warping_error(target, source) <= pixel_error(target, source)


@pytest.mark.parametrize("metric", [pixel_error, rand_error, warping_error])
def test_bad_input_raises_value_error(metric):
    with pytest.raises(ValueError, match="binary mask"):
        metric(torch.rand(4, 4), torch.zeros(4, 4))
    with pytest.raises(ValueError, match="2D"):
        metric(torch.zeros(4), torch.zeros(4))


def _two_cells(membrane_column: int) -> torch.Tensor:
    mask = torch.ones(12, 12, dtype=torch.bool)
    mask[[0, -1], :] = mask[:, [0, -1]] = False  # frame
    mask[:, membrane_column] = False  # a one-pixel membrane between two cells
    return mask


@pytest.mark.parametrize("shift, forgiven", [(1, True), (2, False)])
def test_greedy_warp_slides_a_thin_membrane_by_one_pixel_only(shift, forgiven):
    target, pred = _two_cells(5), _two_cells(5 + shift)
    assert pixel_error(pred, target) > 0
    assert (warping_error(pred, target).item() == 0.0) == forgiven

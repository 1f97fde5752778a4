"""Surface distances: hand cases, properties, empty masks, and agreement with medpy and MONAI."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from course_lib.metrics import (
    average_surface_distance,
    hausdorff_distance,
    mask_surface,
    surface,
    surface_distances,
)


def _square(size: int = 12, lo: int = 3, hi: int = 7) -> torch.Tensor:
    m = torch.zeros(size, size, dtype=torch.bool)
    m[lo:hi, lo:hi] = True
    return m


def _random_pair(shape, seed, density=0.3):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=gen) < density, torch.rand(shape, generator=gen) < density


def test_mask_surface_is_the_mask_minus_its_face_erosion_with_background_border():
    mask = torch.rand(9, 10, 11, generator=torch.Generator().manual_seed(0)) < 0.7
    eroded = ndimage.binary_erosion(mask.numpy(), ndimage.generate_binary_structure(3, 1))
    expected = mask.numpy() & ~eroded  # SciPy's border_value=0: the border counts as background
    assert np.array_equal(mask_surface(mask).numpy(), expected)
    assert mask_surface(torch.ones(3, 3)).sum() == 8  # border pixels of a full image are surface


def test_hand_computed_square_and_outlier():
    target = _square()
    pred = target.clone()
    pred[10, 10] = True  # one stray pixel, far from the square
    # farthest stray surface pixel (10, 10) to the square's corner (6, 6): sqrt(32)
    assert hausdorff_distance(pred, target).item() == pytest.approx(math.sqrt(32))
    assert hausdorff_distance(pred, target, directed=True).item() == pytest.approx(math.sqrt(32))
    assert hausdorff_distance(target, pred, directed=True).item() == 0.0
    # 12 square surface pixels + 1 stray: d(pred→target) = twelve 0s and sqrt(32); target→pred 0s
    d_pt, d_tp = surface_distances(pred, target)[0]
    assert sorted(d_pt.tolist())[-1] == pytest.approx(math.sqrt(32)) and d_pt.numel() == 13
    assert d_tp.tolist() == [0.0] * 12
    expected_assd = math.sqrt(32) / 25
    assert average_surface_distance(pred, target).item() == pytest.approx(expected_assd)
    assert average_surface_distance(target, pred, symmetric=False).item() == 0.0


def test_the_two_hd95_conventions_differ_on_an_outlier_blob():
    target = torch.zeros(64, 64, dtype=torch.bool)
    target[10:40, 10:40] = True
    pred = target.clone()
    pred[55:59, 55:59] = True  # 12 far surface pixels: under 5 % of pooled, over 5 % of pred's
    hd = hausdorff_distance(pred, target).item()
    max_mode = hausdorff_distance(pred, target, percentile=95).item()
    pooled = hausdorff_distance(pred, target, percentile=95, mode="pooled").item()
    assert hd == pytest.approx(math.hypot(19, 19))
    assert pooled == 0.0 < max_mode < hd


@settings(max_examples=20, deadline=None)
@given(
    st.integers(0, 2),
    st.integers(1, 4),
    st.sampled_from([(1.0, 1.0, 1.0), (0.7, 1.3, 2.5), (3.0, 0.5, 1.0)]),
    st.integers(0, 3),
)
def test_translating_a_box_by_k_voxels_gives_k_times_spacing(axis, k, spacing, corner):
    box = torch.zeros(24, 24, 24, dtype=torch.bool)
    lo = 3 + corner
    box[lo : lo + 12, lo : lo + 11, lo : lo + 10] = True  # half of each side exceeds k
    moved = box.roll(k, dims=axis)
    expected = k * spacing[axis]
    for percentile in (None, 100):
        for mode in ("max", "pooled"):
            hd = hausdorff_distance(moved, box, spacing=spacing, percentile=percentile, mode=mode)
            assert hd.item() == pytest.approx(expected, rel=1e-5)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([(13, 17), (7, 9, 8)]), st.floats(0.1, 0.6))
def test_symmetry_and_ordering(seed, shape, density):
    a, b = _random_pair(shape, seed, density)
    spacing = tuple(1.0 + 0.5 * i for i in range(len(shape)))
    hd = hausdorff_distance(a, b, spacing=spacing)
    assert hd == hausdorff_distance(b, a, spacing=spacing)
    for mode in ("max", "pooled"):
        hd95 = hausdorff_distance(a, b, spacing=spacing, percentile=95, mode=mode)
        assert hd95 == hausdorff_distance(b, a, spacing=spacing, percentile=95, mode=mode)
        assert hd >= hd95 >= 0
    assd = average_surface_distance(a, b, spacing=spacing)
    assert assd == pytest.approx(average_surface_distance(b, a, spacing=spacing).item())
    assert 0 <= assd <= hd


def test_identical_masks_give_zero():
    a, _ = _random_pair((20, 20), 3)
    assert hausdorff_distance(a, a).item() == 0.0
    assert average_surface_distance(a, a).item() == 0.0


@pytest.mark.parametrize("percentile", [None, 95])
@pytest.mark.parametrize("directed", [False, True])
def test_empty_masks_both_empty_value_one_inf(percentile, directed):
    empty, full = torch.zeros(6, 6, dtype=torch.bool), _square(6, 1, 4)
    kw = {"percentile": percentile, "directed": directed}
    assert math.isnan(hausdorff_distance(empty, empty, **kw).item())  # undefined: NaN by default
    assert math.isnan(average_surface_distance(empty, empty, symmetric=not directed).item())
    kw["empty_value"] = 0.0
    assert hausdorff_distance(empty, empty, **kw).item() == 0.0
    assert math.isinf(hausdorff_distance(empty, full, **kw).item())
    assert math.isinf(hausdorff_distance(full, empty, **kw).item())
    zero = {"symmetric": not directed, "empty_value": 0.0}
    assert average_surface_distance(empty, empty, **zero).item() == 0.0
    assert math.isinf(average_surface_distance(full, empty, **zero).item())


def test_batched_over_items_and_classes_equals_one_by_one():
    pred, target = _random_pair((2, 3, 15, 16), 4, 0.2)
    pred[1, 2] = False  # one empty prediction inside the batch
    pred[0, 1] = target[0, 1] = False  # one item where both are empty
    kw = {"spacing": (0.8, 1.7), "percentile": 95, "empty_value": 0.0}
    batch = hausdorff_distance(pred, target, **kw)
    assd = average_surface_distance(pred, target, spacing=(0.8, 1.7), empty_value=0.0)
    assert batch.shape == (2, 3) and batch.dtype == torch.float32
    for n in range(2):
        for c in range(3):
            assert batch[n, c] == hausdorff_distance(pred[n, c], target[n, c], **kw)
            one = average_surface_distance(
                pred[n, c], target[n, c], spacing=(0.8, 1.7), empty_value=0.0
            )
            assert assd[n, c] == one
    assert batch[0, 1] == 0 and math.isinf(batch[1, 2])
    assert hausdorff_distance(pred, target, spatial_dims=2).shape == (2, 3)


def _monai_metrics():
    return pytest.importorskip("monai.metrics")


@pytest.mark.parametrize(
    "shape, spacing", [((30, 40), (0.7, 1.3)), ((12, 14, 16), (1.0, 0.7, 2.5))]
)
@pytest.mark.parametrize("seed", [0, 1])
def test_agrees_with_medpy(shape, spacing, seed):
    binary = pytest.importorskip("medpy.metric.binary")
    a, b = _random_pair(shape, seed)
    an, bn = a.numpy(), b.numpy()
    approx = {"rel": 1e-5}
    assert hausdorff_distance(a, b, spacing=spacing).item() == pytest.approx(
        binary.hd(an, bn, spacing), **approx
    )
    hd95 = hausdorff_distance(a, b, spacing=spacing, percentile=95, mode="pooled")
    assert hd95.item() == pytest.approx(binary.hd95(an, bn, spacing), **approx)
    assd = average_surface_distance(a, b, spacing=spacing)
    assert assd.item() == pytest.approx(binary.assd(an, bn, spacing), **approx)
    asd = average_surface_distance(a, b, spacing=spacing, symmetric=False)
    assert asd.item() == pytest.approx(binary.asd(an, bn, spacing), **approx)


@pytest.mark.parametrize(
    "shape, spacing", [((30, 40), (0.7, 1.3)), ((12, 14, 16), (1.0, 0.7, 2.5))]
)
def test_agrees_with_monai(shape, spacing):
    metrics = _monai_metrics()
    pred, target = _random_pair((2, 2, *shape), 5)
    kw = {"include_background": True, "spacing": list(spacing)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = [
            (metrics.compute_hausdorff_distance(pred.float(), target.float(), **kw), {}),
            (
                metrics.compute_hausdorff_distance(
                    pred.float(), target.float(), percentile=95, **kw
                ),
                {"percentile": 95},
            ),
            (
                metrics.compute_hausdorff_distance(
                    pred.float(), target.float(), directed=True, **kw
                ),
                {"directed": True},
            ),
        ]
        asd = metrics.compute_average_surface_distance(
            pred.float(), target.float(), symmetric=True, **kw
        )
    for expected, extra in cases:
        ours = hausdorff_distance(pred, target, spacing=spacing, **extra)
        torch.testing.assert_close(ours, expected.float(), rtol=1e-5, atol=1e-5)
    ours_asd = average_surface_distance(pred, target, spacing=spacing)
    torch.testing.assert_close(ours_asd, asd.float(), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda_and_matches_cpu():
    pred, target = _random_pair((2, 10, 12, 14), 6)
    on_gpu = hausdorff_distance(pred.to("cuda"), target.to("cuda"), percentile=95, spatial_dims=3)
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(
        on_gpu.cpu(), hausdorff_distance(pred, target, percentile=95, spatial_dims=3)
    )


@pytest.mark.parametrize(
    "pred, target, kwargs, message",
    [
        (torch.rand(4, 4), torch.zeros(4, 4), {}, "binary mask"),
        (torch.zeros(4, 4), torch.zeros(4, 5), {}, "same shape"),
        (torch.zeros(4, 4), torch.zeros(4, 4), {"percentile": 101}, "percentile"),
        (torch.zeros(4, 4), torch.zeros(4, 4), {"mode": "mean"}, "mode"),
        (torch.zeros(4, 4), torch.zeros(4, 4), {"spacing": (1.0, 2.0, 3.0)}, "spatial_dims"),
        ([[0, 1]], torch.zeros(1, 2), {}, "torch.Tensor"),
    ],
)
def test_bad_input_raises_value_error(pred, target, kwargs, message):
    with pytest.raises(ValueError, match=message):
        hausdorff_distance(pred, target, **kwargs)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.uint8, torch.int64])
def test_any_binary_dtype_gives_the_bool_result(dtype):
    pred, target = _random_pair((2, 11, 13), 7)
    expected = hausdorff_distance(pred, target, percentile=95, spatial_dims=2)
    ours = hausdorff_distance(pred.to(dtype), target.to(dtype), percentile=95, spatial_dims=2)
    assert torch.equal(ours, expected)


def _surfaces(pred, target, spatial_dims):
    """The ``(2, items, *spatial)`` surfaces that both routes of ``surface_distances`` take."""
    spatial = pred.shape[pred.ndim - spatial_dims :]
    both = torch.stack([pred, target]).reshape(2, -1, *spatial)
    return mask_surface(both, spatial_dims=spatial_dims)


@pytest.mark.parametrize("band", [1, 2, 40])
def test_tree_and_transform_routes_give_the_same_distances(monkeypatch, band):
    """The CPU's k-d tree and the GPU's transform (banded, then exact beyond the band) agree on
    every distance, whatever the band: 1 and 2 send most voxels the far route, 40 none."""
    pred, target = _random_pair((3, 14, 15, 13), 8, 0.05)
    pred[0, 1:4, 1:4, 1:4] = target[1, 9:12, 9:12, 8:11] = True  # blobs far from the rest
    pred[2] = False  # an item with one empty mask: its other direction is all inf
    steps = (1.5, 0.7, 1.1)
    surfaces = _surfaces(pred, target, 3)
    by_tree = surface._nearest_by_tree(surfaces, steps)
    monkeypatch.setattr(surface, "BAND", band)
    by_transform = surface._nearest_by_transform(surfaces, steps)
    for tree_pair, transform_pair in zip(by_tree, by_transform, strict=True):
        for from_tree, from_transform in zip(tree_pair, transform_pair, strict=True):
            assert from_tree.dtype == from_transform.dtype == torch.float32
            torch.testing.assert_close(from_tree, from_transform, rtol=1e-6, atol=1e-5)
    assert len(by_tree[2][0]) == 0 and torch.isinf(by_tree[2][1]).all()
    # the far blob: beyond bands of 1 and 2 voxels (at most 2 * 0.7 here), inside one of 40
    assert by_tree[0][0].max() > 3


def test_tree_and_transform_routes_agree_in_2d_with_medpy():
    pred, target = _random_pair((4, 40, 37), 9, 0.02)
    spacing = (0.6, 1.3)
    surfaces = _surfaces(pred, target, 2)
    by_tree = surface._nearest_by_tree(surfaces, spacing)
    by_transform = surface._nearest_by_transform(surfaces, spacing)
    for tree_pair, transform_pair in zip(by_tree, by_transform, strict=True):
        torch.testing.assert_close(tree_pair, transform_pair, rtol=1e-6, atol=1e-5)
    binary = pytest.importorskip("medpy.metric.binary")
    a, b = pred[0].numpy(), target[0].numpy()
    hd = hausdorff_distance(pred[0], target[0], spacing=spacing)
    assert hd.item() == pytest.approx(binary.hd(a, b, spacing), rel=1e-5)
    assd = average_surface_distance(pred[0], target[0], spacing=spacing)
    assert assd.item() == pytest.approx(binary.assd(a, b, spacing), rel=1e-5)


def test_cpu_masks_take_the_tree_route(monkeypatch):
    """On the CPU the banded transform is not used (the tree is several times faster there)."""

    def not_on_the_cpu(*args):
        raise AssertionError("the transform route ran on CPU masks")

    monkeypatch.setattr(surface, "_nearest_by_transform", not_on_the_cpu)
    pred, target = _random_pair((2, 9, 10), 3)
    assert hausdorff_distance(pred, target, spatial_dims=2).shape == (2,)

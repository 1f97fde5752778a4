"""Resampling: equal to scikit-image's resize (what nnU-Net calls) and to scipy's
map_coordinates for the separate low-resolution axis; label maps keep their labels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import map_coordinates

from course_lib.nnunet.resampling import (
    _nearest_along,
    compute_new_shape,
    resample_to_shape,
    resize_image,
    resize_segmentation,
    separate_z_axis,
)


@settings(max_examples=15, deadline=None)
@given(
    shape=st.tuples(st.integers(2, 9), st.integers(2, 9), st.integers(2, 9)),
    new=st.tuples(st.integers(1, 12), st.integers(1, 12), st.integers(1, 12)),
    order=st.sampled_from([0, 1, 3]),
)
def test_resize_image_equals_skimage(shape, new, order) -> None:
    transform = pytest.importorskip("skimage.transform")
    x = np.random.default_rng(sum(shape)).normal(size=shape)
    expected = transform.resize(x, new, order, mode="edge", anti_aliasing=False)
    np.testing.assert_allclose(resize_image(x, new, order), expected, rtol=0, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(old=st.integers(1, 20), new=st.integers(1, 40))
def test_nearest_axis_equals_map_coordinates(old: int, new: int) -> None:
    vol = np.random.default_rng(old).normal(size=(old, 3, 2))
    rows, cols, dims = np.mgrid[:new, :3, :2].astype(float)
    coords = np.array([old / new * (rows + 0.5) - 0.5, cols, dims])
    expected = map_coordinates(vol, coords, order=0, mode="nearest")
    np.testing.assert_array_equal(_nearest_along(vol, 0, new), expected)


def test_separate_z_rules() -> None:
    assert separate_z_axis((4.0, 1.0, 1.0), (1.0, 1.0, 1.0)) == 0  # current spacing decides
    assert separate_z_axis((1.0, 1.0, 1.0), (1.0, 1.0, 3.5)) == 2  # else the target spacing
    assert separate_z_axis((2.0, 1.0, 1.0), (2.0, 1.0, 1.0)) is None  # ratio 2: plain 3D
    assert separate_z_axis((4.0, 4.0, 1.0), (1.0, 1.0, 1.0)) is None  # two coarse axes


def test_separate_z_never_mixes_slices() -> None:
    """Along the coarse axis every output slice is a copy of an (in-plane resized) input slice."""
    data = np.stack([np.full((6, 6), float(k)) for k in range(5)])[None]
    out = resample_to_shape(data, (9, 12, 12), (5.0, 1.0, 1.0), (2.5, 0.5, 0.5))
    assert set(np.unique(out)) <= set(range(5))
    # the same with plain cubic 3D interpolation mixes slices
    mixed = resample_to_shape(data, (9, 12, 12), (1.0, 1.0, 1.0), (0.5, 0.5, 0.5))
    assert not set(np.unique(mixed.round(6))) <= set(range(5))


def test_segmentation_keeps_its_labels_and_dtype() -> None:
    rng = np.random.default_rng(0)
    seg = rng.integers(-1, 3, size=(7, 8, 9)).astype(np.int8)
    out = resize_segmentation(seg, (11, 5, 13))
    assert out.dtype == np.int8 and set(np.unique(out)) <= {-1, 0, 1, 2}
    same = resize_segmentation(seg, seg.shape)
    np.testing.assert_array_equal(same, seg)


def test_upsampling_by_two_breaks_ties_to_the_nearest_label() -> None:
    seg = np.array([[0, 1]])
    out = resize_segmentation(seg, (1, 4))
    np.testing.assert_array_equal(out, [[0, 0, 1, 1]])


def test_compute_new_shape_and_errors() -> None:
    assert compute_new_shape((10, 20, 20), (2.0, 1.0, 1.0), (1.0, 2.0, 2.0)).tolist() == [
        20,
        10,
        10,
    ]
    with pytest.raises(ValueError, match="one entry per axis"):
        compute_new_shape((10, 20), (1.0,), (1.0, 1.0))
    with pytest.raises(ValueError, match=r"\(C, \*spatial\)"):
        resample_to_shape(np.zeros((4, 4, 4)), (2, 2, 2), (1, 1, 1), (2, 2, 2))

"""Exact EDT: against SciPy on random masks (2D, 3D, anisotropic), closed forms and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from course_lib.metrics import distance_transform_edt
from course_lib.ops.distance_transform import _lower_envelope, distance_transform_at


def _scipy(mask: torch.Tensor, spacing=None) -> np.ndarray:
    return ndimage.distance_transform_edt(mask.numpy(), sampling=spacing)


@pytest.mark.parametrize(
    "shape, spacing",
    [
        ((23, 31), None),
        ((23, 31), (0.7, 2.1)),
        ((1, 17), None),
        ((17, 1), (2.0, 3.0)),
        ((9, 14, 11), None),
        ((9, 14, 11), (1.0, 0.7, 2.5)),
        ((40, 12, 25), (3.0, 0.4, 1.1)),
    ],
)
@pytest.mark.parametrize("density", [0.05, 0.5, 0.97])
def test_equals_scipy_on_random_masks(shape, spacing, density):
    mask = torch.rand(shape, generator=torch.Generator().manual_seed(len(shape))) < density
    mask.view(-1)[0] = False  # at least one zero, so SciPy's output is defined everywhere
    out = distance_transform_edt(mask, spacing)
    assert out.dtype == torch.float32 and out.shape == mask.shape
    np.testing.assert_allclose(out.numpy(), _scipy(mask, spacing), atol=1e-4, rtol=0)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.integers(1, 12), min_size=2, max_size=3),
    st.integers(0, 2**31 - 1),
    st.floats(0.2, 3.0),
)
def test_equals_scipy_property(shape, seed, step):
    mask = torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < 0.8
    mask.view(-1)[seed % mask.numel()] = False
    spacing = [step * (1 + i) for i in range(len(shape))]
    out = distance_transform_edt(mask, spacing)
    np.testing.assert_allclose(out.numpy(), _scipy(mask, spacing), atol=1e-4, rtol=0)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**31 - 1), st.sampled_from([1.0, 0.7, 2.5]))
def test_lower_envelope_equals_brute_force_with_ties_and_gaps(n, seed, step):
    gen = torch.Generator().manual_seed(seed)
    f = torch.randint(0, 20, (n, 9), generator=gen).double()  # small integers: many ties
    f[torch.rand(n, 9, generator=gen) < 0.3] = torch.inf  # and lines with gaps or no site
    x = torch.arange(n).double() * step
    brute = (f[None] + (x[:, None, None] - x[None, :, None]) ** 2).amin(1)
    torch.testing.assert_close(_lower_envelope(f, step), brute, rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    "shape, spacing", [((17,), (0.5,)), ((9, 14), (1.5, 0.7)), ((7, 11, 10), (2.0, 0.6, 1.1))]
)
@pytest.mark.parametrize("density", [0.02, 0.5])
def test_at_points_equals_the_full_transform_there(shape, spacing, density):
    gen = torch.Generator().manual_seed(len(shape))
    mask = torch.rand(shape, generator=gen) > density
    points = torch.stack([torch.randint(0, n, (40,), generator=gen) for n in shape], dim=1)
    full = distance_transform_edt(mask, spacing)
    got = distance_transform_at(mask, points, spacing)
    torch.testing.assert_close(got, full[tuple(points.T)], rtol=1e-6, atol=1e-6)
    assert distance_transform_at(torch.ones(shape), points, spacing).isinf().all()


def test_single_zero_gives_euclidean_distance_to_it():
    mask = torch.ones(5, 6, 7, dtype=torch.bool)
    mask[1, 2, 3] = False
    out = distance_transform_edt(mask, (2.0, 1.0, 0.5))
    i, j, k = torch.meshgrid(torch.arange(5), torch.arange(6), torch.arange(7), indexing="ij")
    expected = (((i - 1) * 2.0) ** 2 + (j - 2) ** 2 + ((k - 3) * 0.5) ** 2).float().sqrt()
    torch.testing.assert_close(out, expected)


def test_zero_where_mask_is_zero_and_inf_without_any_zero():
    out = distance_transform_edt(torch.tensor([[0, 0], [0, 0]]))
    assert torch.equal(out, torch.zeros(2, 2))
    assert torch.isinf(distance_transform_edt(torch.ones(3, 4))).all()


def test_batch_axes_are_independent_items():
    masks = torch.rand(3, 2, 10, 13, generator=torch.Generator().manual_seed(1)) < 0.7
    masks[..., 0, 0] = False
    out = distance_transform_edt(masks, (1.5, 0.5))
    for b in range(3):
        for c in range(2):
            np.testing.assert_allclose(
                out[b, c].numpy(), _scipy(masks[b, c], (1.5, 0.5)), atol=1e-4, rtol=0
            )
    # the same batch, told by spatial_dims instead of spacing
    torch.testing.assert_close(
        distance_transform_edt(masks, spatial_dims=2)[1, 0], distance_transform_edt(masks[1, 0])
    )


def test_distance_to_each_instance_of_a_label_map():
    labels = torch.zeros(8, 12, dtype=torch.long)
    labels[2:6, 1:5], labels[2:6, 7:11] = 1, 2
    ids = torch.tensor([1, 2])
    out = distance_transform_edt(labels != ids[:, None, None], spatial_dims=2)
    for n, i in enumerate(ids.tolist()):
        np.testing.assert_allclose(out[n].numpy(), _scipy(labels != i), atol=1e-5)
    assert out[0, 3, 5].item() == 1.0 and out[1, 3, 5].item() == 2.0  # a gap pixel: d1=1, d2=2


def test_any_dtype_nonzero_means_inside():
    mask = torch.tensor([[0.0, 0.3, -2.0, 1.0]])
    assert distance_transform_edt(mask).tolist() == [[0.0, 1.0, 2.0, 3.0]]


def test_large_distances_stay_exact():
    mask = torch.ones(1, 300, dtype=torch.bool)
    mask[0, 0] = False
    out = distance_transform_edt(mask, (1.0, 0.7))
    torch.testing.assert_close(out[0], torch.arange(300) * 0.7, atol=1e-4, rtol=0)
    assert math.isclose(out[0, -1].item(), 299 * 0.7, abs_tol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda_and_matches_cpu():
    mask = torch.rand(12, 20, 16, generator=torch.Generator().manual_seed(2)) < 0.9
    out = distance_transform_edt(mask.to("cuda"), (1.0, 0.7, 2.5))
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), distance_transform_edt(mask, (1.0, 0.7, 2.5)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mask": [[0, 1]]}, "torch.Tensor"),
        ({"mask": torch.zeros(())}, "at least one axis"),
        ({"mask": torch.zeros(2, 0)}, "at least one axis"),
        ({"mask": torch.zeros(3, 3), "spacing": (1.0, 1.0, 1.0)}, "spatial_dims"),
        ({"mask": torch.zeros(3, 3), "spacing": (1.0, 1.0), "spatial_dims": 1}, "one value"),
        ({"mask": torch.zeros(3, 3), "spacing": (1.0, -1.0)}, "positive"),
        ({"mask": torch.zeros(3, 3), "spacing": 0.0}, "positive"),
        ({"mask": torch.zeros(3, 3), "spatial_dims": 0}, "spatial_dims"),
    ],
)
def test_bad_input_raises_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        distance_transform_edt(**kwargs)

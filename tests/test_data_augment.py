"""Augmentation: identity at zero displacement, labels kept, field statistics, histogram match."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.data import (
    UNLABELED,
    elastic_deform_2d,
    elastic_displacement_2d,
    histogram_match,
    random_flip,
    random_gamma,
    random_rotate_scale,
    smooth_deform_3d,
    smooth_displacement_3d,
    warp,
)
from course_lib.data.augment import _bspline_matrix


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def labelled_2d(n: int = 2, size: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    label = torch.randint(0, 3, (n, size, size), generator=gen(1))
    label[:, :3] = UNLABELED
    return torch.rand(n, 2, size, size, generator=gen(2)), label


# ---------------------------------------------------------------------------- warp
@pytest.mark.parametrize("shape", [(2, 3, 7, 9), (2, 1, 5, 6, 7)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_zero_displacement_is_the_identity(shape, dtype):
    image = torch.rand(shape, generator=gen(), dtype=dtype)
    label = torch.randint(-1, 4, (shape[0], *shape[2:]), generator=gen(1))
    out, out_label = warp(image, label, torch.zeros(shape[0], len(shape) - 2, *shape[2:]))
    assert out.dtype == dtype and out_label.dtype == label.dtype
    torch.testing.assert_close(out, image, atol=1e-6, rtol=0)
    assert torch.equal(out_label, label)


def test_bfloat16_images_are_warped_at_exact_positions():
    image = torch.rand(1, 1, 64, 64, generator=gen())
    label = (image[:, 0] > 0.5).long()
    shift = torch.zeros(1, 2, 64, 64)
    shift[:, 0] = 1.0
    out, out_label = warp(image.to(torch.bfloat16), label, shift)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out[..., :-1, :].float(), image[..., 1:, :], atol=4e-3, rtol=0)
    assert torch.equal(out_label[:, :-1], label[:, 1:])
    rotated, _ = random_rotate_scale(image.to(torch.bfloat16), label, generator=gen())
    assert rotated.dtype == torch.bfloat16 and torch.isfinite(rotated.float()).all()


def test_constant_displacement_shifts_by_whole_voxels():
    image, label = labelled_2d()
    shift = torch.zeros(2, 2, 24, 24)
    shift[:, 1] = 3.0  # sample 3 px to the right: content moves left
    out, out_label = warp(image, label, shift)
    torch.testing.assert_close(out[..., :-3], image[..., 3:], atol=1e-5, rtol=0)
    assert torch.equal(out_label[..., :-3], label[..., 3:])


def test_warp_rejects_bad_shapes():
    image, label = labelled_2d()
    with pytest.raises(ValueError, match="displacement"):
        warp(image, label, torch.zeros(2, 3, 24, 24))
    with pytest.raises(ValueError, match="label"):
        warp(image, label[:, :5], torch.zeros(2, 2, 24, 24))
    with pytest.raises(ValueError, match="label"):
        warp(image, label.float(), torch.zeros(2, 2, 24, 24))
    with pytest.raises(ValueError, match="image"):
        warp(image[0], None, torch.zeros(2, 2, 24, 24))
    with pytest.raises(ValueError, match="floating"):
        warp(label[:, None], None, torch.zeros(2, 2, 24, 24))


# ---------------------------------------------------------------------------- elastic 2D
def test_unet_field_has_std_10_px_at_the_control_points():
    field = elastic_displacement_2d(4000, (9, 9), generator=gen())
    # align_corners: the 3 x 3 control points sit at rows/columns 0, 4 and 8
    at_nodes = field[:, :, ::4, ::4]
    assert float(at_nodes.std()) == pytest.approx(10.0, rel=0.03)
    assert float(at_nodes.mean()) == pytest.approx(0.0, abs=0.2)
    # between the nodes, bicubic interpolation keeps the field smooth (no jumps between pixels)
    big = elastic_displacement_2d(8, (64, 64), generator=gen())
    assert float(big.diff(dim=-1).abs().max()) < 3.0


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), std=st.floats(0.0, 15.0))
def test_elastic_deformation_keeps_the_label_set(seed, std):
    image, label = labelled_2d()
    out, out_label = elastic_deform_2d(image, label, std=std, generator=gen(seed))
    assert out.shape == image.shape and out_label.shape == label.shape
    assert set(out_label.unique().tolist()) <= set(label.unique().tolist())


def test_elastic_deformation_at_zero_std_is_the_identity():
    image, label = labelled_2d()
    out, out_label = elastic_deform_2d(image, label, std=0.0, generator=gen())
    torch.testing.assert_close(out, image, atol=1e-5, rtol=0)
    assert torch.equal(out_label, label)


def test_same_generator_seed_same_deformation():
    image, label = labelled_2d()
    a = elastic_deform_2d(image, label, generator=gen(7))
    b = elastic_deform_2d(image, label, generator=gen(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# ---------------------------------------------------------------------------- smooth 3D
def test_bspline_weights_partition_unity():
    b = _bspline_matrix(17, 6)
    torch.testing.assert_close(b.sum(1), torch.ones(17))
    assert (b >= 0).all()


def test_smooth_field_is_smooth_and_respects_per_axis_std():
    field = smooth_displacement_3d(3, (10, 20, 24), std=(0.0, 4.0, 4.0), generator=gen())
    assert field.shape == (3, 3, 10, 20, 24)
    assert torch.equal(field[:, 0], torch.zeros_like(field[:, 0]))  # in-plane only
    assert float(field[:, 1:].std()) > 0.5
    assert float(field.diff(dim=-1).abs().max()) < 2.0


def test_smooth_deformation_keeps_labels_and_is_identity_at_zero():
    image = torch.rand(2, 1, 8, 12, 12, generator=gen())
    label = torch.randint(-1, 3, (2, 8, 12, 12), generator=gen(1))
    out, out_label = smooth_deform_3d(image, label, std=0.0)
    torch.testing.assert_close(out, image, atol=1e-5, rtol=0)
    assert torch.equal(out_label, label)
    _, moved = smooth_deform_3d(image, label, std=3.0, generator=gen(2))
    assert set(moved.unique().tolist()) <= set(label.unique().tolist())
    assert not torch.equal(moved, label)
    with pytest.raises(ValueError, match="control_points"):
        smooth_deform_3d(image, label, control_points=3)
    with pytest.raises(ValueError, match="image"):
        smooth_deform_3d(image[:, :, 0], None)


# ---------------------------------------------------------------------------- rotation, scaling
def test_no_rotation_no_scaling_is_the_identity():
    image, label = labelled_2d()
    out, out_label = random_rotate_scale(image, label, max_angle=0.0, scale=(1.0, 1.0))
    torch.testing.assert_close(out, image, atol=1e-5, rtol=0)
    assert torch.equal(out_label, label)


def test_in_plane_rotation_of_a_volume_keeps_each_slice_in_its_slice():
    depth = torch.arange(6.0).view(1, 1, 6, 1, 1).expand(2, 1, 6, 10, 10).contiguous()
    out, _ = random_rotate_scale(depth, max_angle=(40.0, 0.0, 0.0), scale=(1, 1), generator=gen())
    torch.testing.assert_close(out, depth, atol=1e-5, rtol=0)


def test_rotation_by_scale_2_zooms_into_the_centre():
    image = torch.zeros(1, 1, 9, 9)
    image[0, 0, 4, 4] = 1.0
    label = image[:, 0].long()
    out, out_label = random_rotate_scale(image, label, max_angle=0.0, scale=(2.0, 2.0))
    assert float(out[0, 0, 4, 4]) == 1.0
    assert int(out_label.sum()) > 1  # the centre pixel now covers several pixels


def test_rotation_keeps_the_label_set_and_rejects_bad_arguments():
    image, label = labelled_2d()
    _, out_label = random_rotate_scale(image, label, max_angle=30.0, generator=gen())
    assert set(out_label.unique().tolist()) <= set(label.unique().tolist())
    with pytest.raises(ValueError, match="scale"):
        random_rotate_scale(image, label, scale=(1.2, 0.8))
    with pytest.raises(ValueError, match="max_angle"):
        random_rotate_scale(image, label, max_angle=(10.0, 0.0, 0.0))


# ---------------------------------------------------------------------------- gamma, flip
def test_gamma_keeps_the_range_and_is_identity_at_one():
    image = 50 + 100 * torch.rand(3, 2, 8, 8, generator=gen())
    torch.testing.assert_close(random_gamma(image, (1.0, 1.0)), image, rtol=1e-5, atol=1e-4)
    out = random_gamma(image, (0.5, 2.0), generator=gen())
    torch.testing.assert_close(out.amin((2, 3)), image.amin((2, 3)))
    torch.testing.assert_close(out.amax((2, 3)), image.amax((2, 3)))
    assert torch.isfinite(random_gamma(torch.zeros(1, 1, 4, 4), (0.5, 2.0))).all()
    half = random_gamma(image.to(torch.bfloat16), (0.7, 1.5), generator=gen())
    assert half.dtype == torch.bfloat16 and torch.isfinite(half.float()).all()
    with pytest.raises(ValueError, match="gamma"):
        random_gamma(image, (0.0, 1.0))


def test_flip_moves_image_and_label_together():
    image, label = labelled_2d()
    out, out_label = random_flip(image, label, p=1.0)
    assert torch.equal(out, image.flip(-1).flip(-2)) and torch.equal(
        out_label, label.flip(-1).flip(-2)
    )
    same, same_label = random_flip(image, label, p=0.0)
    assert torch.equal(same, image) and torch.equal(same_label, label)
    # with p = 0.5 some samples flip and others do not, and label follows its own image
    image8 = torch.rand(16, 1, 4, 4, generator=gen())
    out8, lab8 = random_flip(image8, (image8[:, 0] * 100).long(), axes=[1], generator=gen())
    flipped = (out8 != image8).flatten(1).any(1)
    assert 0 < int(flipped.sum()) < 16
    assert torch.equal(lab8, (out8[:, 0] * 100).long())
    with pytest.raises(ValueError, match="axes"):
        random_flip(image, label, axes=[2])


# ---------------------------------------------------------------------------- histogram matching
def test_histogram_matching_reproduces_the_reference_quantiles():
    source = torch.randn(1, 1, 20, 30, 30, generator=gen()) * 5 + 3
    reference = torch.rand(1, 1, 15, 25, 25, generator=gen(1)) ** 3 * 800 - 100  # other case
    out = histogram_match(source, reference)
    q = torch.linspace(0.01, 0.99, 25, dtype=torch.float64)
    got = torch.quantile(out.double().flatten(), q)
    want = torch.quantile(reference.double().flatten(), q)
    torch.testing.assert_close(got, want, rtol=0, atol=0.01 * float(reference.std()))
    # monotone: the order of intensities is kept
    order = source.flatten().argsort()
    assert (out.flatten()[order].diff() >= 0).all()


def test_histogram_matching_equals_skimage():
    exposure = pytest.importorskip("skimage.exposure")
    source = torch.randint(0, 40, (1, 1, 12, 16, 16), generator=gen()).double()
    reference = torch.randn(1, 1, 10, 14, 14, generator=gen(1)).double()
    ours = histogram_match(source, reference)[0, 0].numpy()
    theirs = exposure.match_histograms(source[0, 0].numpy(), reference[0, 0].numpy())
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10)


def test_histogram_matching_is_batched_and_checks_shapes():
    source = torch.rand(3, 2, 6, 6, generator=gen())
    reference = torch.rand(1, 2, 5, 5, generator=gen(1)) + 10
    out = histogram_match(source, reference)
    assert out.shape == source.shape and float(out.min()) >= 10
    one = histogram_match(source[1:2], reference)
    torch.testing.assert_close(out[1:2], one)
    with pytest.raises(ValueError, match="reference"):
        histogram_match(source, torch.rand(2, 2, 5, 5))
    with pytest.raises(ValueError, match="source"):
        histogram_match(source.long(), reference)

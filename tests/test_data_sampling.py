"""PatchSampler and patch_box: shapes, purity in the step, foreground oversampling, coverage."""

from __future__ import annotations

import pytest
import torch

from course_lib.data import PatchSampler, patch_box
from course_lib.nnunet.training import forced_foreground


def _cases(n=3, shape=(6, 10, 12), channels=2):
    g = torch.Generator().manual_seed(0)
    images = [torch.randn(channels, *shape, generator=g) for _ in range(n)]
    labels = []
    for i in range(n):
        label = torch.zeros(shape, dtype=torch.long)
        label[1 + i, 2:4, 3:5] = 1 + i % 2  # a small foreground block per case
        labels.append(label)
    return images, labels


def test_batches_have_the_patch_shape_and_are_a_pure_function_of_the_step():
    images, labels = _cases()
    sampler = PatchSampler(images, labels, (4, 6, 6), batch_size=3, foreground_fraction=0.33)
    x, y = sampler(7)
    assert x.shape == (3, 2, 4, 6, 6) and y.shape == (3, 4, 6, 6) and y.dtype == torch.long
    again = PatchSampler(images, labels, (4, 6, 6), batch_size=3, foreground_fraction=0.33)(7)
    assert torch.equal(x, again[0]) and torch.equal(y, again[1])
    other = sampler(8)[0]
    assert not torch.equal(x, other)
    assert not torch.equal(x, PatchSampler(images, labels, (4, 6, 6), batch_size=3, seed=1)(7)[0])


def test_a_63_bit_seed_works():  # runtime.seed(k) under COURSE_SEED > 0 is a 63-bit number
    images, labels = _cases()
    big = PatchSampler(images, labels, (4, 6, 6), batch_size=3, seed=2**63 - 1)
    assert big(7)[0].shape == (3, 2, 4, 6, 6) and not torch.equal(big(7)[0], big(8)[0])


def test_patches_are_crops_of_the_cases():
    images, labels = _cases(n=1)
    sampler = PatchSampler(images, labels, (4, 6, 6), batch_size=1)
    x, y = sampler(3)
    # find the crop: image and label come from the same box
    found = [
        (a, b, c)
        for a in range(3)
        for b in range(5)
        for c in range(7)
        if torch.equal(images[0][:, a : a + 4, b : b + 6, c : c + 6], x[0])
    ]
    assert len(found) == 1
    a, b, c = found[0]
    assert torch.equal(labels[0][a : a + 4, b : b + 6, c : c + 6], y[0])


def test_forced_items_hold_foreground_and_follow_nnunets_rule():
    images, labels = _cases()
    for batch_size in (1, 2, 3, 5):
        sampler = PatchSampler(
            images, labels, (3, 4, 4), batch_size=batch_size, foreground_fraction=0.33
        )
        assert sampler.forced() == forced_foreground(batch_size, 0.33)
    sampler = PatchSampler(images, labels, (3, 4, 4), batch_size=4, foreground_fraction=0.5)
    assert sampler.forced() == [False, False, True, True]
    for step in range(1, 30):
        y = sampler(step)[1]
        assert (y[2:] > 0).flatten(1).any(1).all()  # every forced patch holds foreground


def test_uniform_corners_reach_every_position():
    image, label = torch.zeros(1, 5, 6), torch.zeros(5, 6, dtype=torch.long)
    image[0] = torch.arange(30.0).view(5, 6)
    sampler = PatchSampler([image], [label], (3, 3), batch_size=4)
    corners = {int(x[0, 0, 0]) for step in range(1, 60) for x in sampler(step)[0]}
    assert corners == {r * 6 + c for r in range(3) for c in range(4)}


def test_unannotated_voxels_are_not_foreground_and_empty_cases_fall_back_to_uniform():
    image = torch.zeros(1, 8, 8)
    label = torch.full((8, 8), -1, dtype=torch.long)  # nothing annotated: no foreground
    sampler = PatchSampler([image], [label], (4, 4), batch_size=2, foreground_fraction=1.0)
    x, y = sampler(1)
    assert x.shape == (2, 1, 4, 4) and (y == -1).all()


def test_patch_box_centres_and_clamps():
    g = torch.Generator().manual_seed(0)
    assert patch_box((10, 10), (4, 4), g, centre=(5, 5)) == (slice(3, 7), slice(3, 7))
    assert patch_box((10, 10), (4, 4), g, centre=(0, 9)) == (slice(0, 4), slice(6, 10))
    assert patch_box((4, 4), (4, 4), g) == (slice(0, 4), slice(0, 4))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"patch_size": (7, 6, 6)}, "fit inside"),
        ({"patch_size": (4, 6)}, "one size per axis"),
        ({"batch_size": 0}, "batch_size"),
        ({"foreground_fraction": 1.5}, "foreground_fraction"),
        ({"labels": [torch.zeros(6, 10, 11, dtype=torch.long)] * 3}, "same spatial shape"),
        ({"labels": []}, "non-empty"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    images, labels = _cases()
    options = {"images": images, "labels": labels, "patch_size": (4, 6, 6), "batch_size": 2}
    with pytest.raises(ValueError, match=match):
        PatchSampler(**{**options, **kwargs})


def test_63_bit_seeds_from_runtime_seed_do_not_overflow():
    image, label = torch.randn(1, 8, 8, 8), torch.zeros(8, 8, 8, dtype=torch.long)
    sampler = PatchSampler([image], [label], (4, 4, 4), batch_size=2, seed=2**63 - 2)
    first, again = sampler(7), sampler(7)
    assert torch.equal(first[0], again[0]) and first[0].shape == (2, 1, 4, 4, 4)

"""Connected components: same partition as scipy.ndimage.label, per item, both connectivities."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from course_lib.metrics import connected_components


def _same_partition(ours: np.ndarray, reference: np.ndarray) -> bool:
    inside = reference > 0
    pairs = set(zip(ours[inside].tolist(), reference[inside].tolist(), strict=True))
    return (
        np.array_equal(ours > 0, inside)
        and len(pairs) == reference.max() == ours.max()
        and set(np.unique(ours[inside]).tolist()) == set(range(1, ours.max() + 1))
    )


@pytest.mark.parametrize("shape", [(20, 30), (10, 12, 14)])
@pytest.mark.parametrize("connectivity", ["face", "full"])
@pytest.mark.parametrize("density", [0.3, 0.6])
def test_same_partition_as_scipy(shape, connectivity, density):
    mask = torch.rand(shape, generator=torch.Generator().manual_seed(len(shape))) < density
    rank = len(shape) if connectivity == "full" else 1
    reference, _ = ndimage.label(mask.numpy(), ndimage.generate_binary_structure(len(shape), rank))
    labels = connected_components(mask, connectivity=connectivity)
    assert labels.dtype == torch.int64 and labels.shape == mask.shape
    assert _same_partition(labels.numpy(), reference)


def test_long_spiral_is_one_component():
    spiral = torch.zeros(41, 41, dtype=torch.bool)
    for ring in range(0, 20, 2):  # nested squares joined into one long path
        lo, hi = ring, 40 - ring
        spiral[lo, lo : hi + 1] = spiral[hi, lo : hi + 1] = True
        spiral[lo : hi + 1, lo] = spiral[lo : hi + 1, hi] = True
        if ring + 2 < 20:
            spiral[lo + 1, lo + 1] = True
    assert connected_components(spiral, connectivity="full").max() == 1
    reference, count = ndimage.label(spiral.numpy())
    assert _same_partition(connected_components(spiral).numpy(), reference)


def test_batch_items_are_labelled_separately():
    masks = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1)) < 0.5
    labels = connected_components(masks, spatial_dims=2)
    for item, mask in zip(labels, masks, strict=True):
        assert torch.equal(item, connected_components(mask))


def test_empty_and_full_masks():
    assert connected_components(torch.zeros(4, 5)).abs().sum() == 0
    assert torch.equal(connected_components(torch.ones(4, 5)), torch.ones(4, 5, dtype=torch.long))


def test_bad_connectivity_raises_value_error():
    with pytest.raises(ValueError, match="connectivity"):
        connected_components(torch.ones(2, 2), connectivity=4)  # type: ignore[arg-type]

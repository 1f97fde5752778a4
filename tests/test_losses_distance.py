"""signed_distance_map, boundary_loss, hausdorff_dt_loss: Kervadec's formula with SciPy's EDT,
MONAI, empty and full masks, spacing, 2D and 3D."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import distance_transform_edt as scipy_edt

from course_lib.losses import boundary_loss, hausdorff_dt_loss, signed_distance_map


def kervadec_map(mask: np.ndarray, spacing=None) -> np.ndarray:
    """The authors' one_hot2dist for one channel, written from its formula with SciPy."""
    if not mask.any() or mask.all():
        return np.zeros(mask.shape)
    neg = ~mask
    return scipy_edt(neg, sampling=spacing) * neg - (scipy_edt(mask, sampling=spacing) - 1) * mask


def _labels(seed, spatial, classes=3):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, classes, (2, *[max(s // 3, 1) for s in spatial]), generator=g)
    labels = F.interpolate(coarse[:, None].float(), size=spatial, mode="nearest")[:, 0].long()
    logits = torch.randn(2, classes, *spatial, generator=g, dtype=torch.float64)
    return logits, labels


@pytest.mark.parametrize(
    "spatial, spacing", [((9, 12), None), ((9, 12), (0.5, 2.0)), ((6, 7, 8), (1.0, 0.7, 2.5))]
)
def test_signed_distance_map_equals_kervadec_formula(spatial, spacing):
    _, labels = _labels(0, spatial)
    one_hot = F.one_hot(labels, 4).movedim(-1, 1)  # class 3 is absent: an all-zero map
    got = signed_distance_map(one_hot, spacing)
    assert got.dtype == torch.float32
    for n in range(2):
        for c in range(4):
            expected = kervadec_map(one_hot[n, c].numpy().astype(bool), spacing)
            np.testing.assert_allclose(got[n, c].numpy(), expected, atol=1e-4)


def test_signed_distance_map_row_zero_on_inner_contour_and_degenerate_masks():
    row = torch.tensor([0, 0, 1, 1, 1, 0, 0, 0]).view(1, 1, 1, 8)
    assert signed_distance_map(row).flatten().tolist() == [2, 1, 0, -1, 0, 1, 2, 3]
    assert not signed_distance_map(torch.ones(1, 1, 4, 4)).any()
    assert not signed_distance_map(torch.zeros(1, 1, 4, 4)).any()
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        signed_distance_map(torch.ones(4, 4))


@pytest.mark.parametrize("spatial", [(9, 12), (5, 6, 7)], ids=["2d", "3d"])
@pytest.mark.parametrize("include_background", [True, False])
def test_boundary_loss_equals_monai(spatial, include_background):
    monai_losses = pytest.importorskip("monai.losses")
    logits, labels = _labels(1, spatial)
    monai = monai_losses.BoundaryLoss(
        softmax=True, to_onehot_y=True, include_background=include_background
    )
    expected = monai(logits, labels.unsqueeze(1))
    got = boundary_loss(logits, labels, include_background=include_background)
    assert torch.allclose(got, expected.double(), atol=1e-6)


@pytest.mark.parametrize("spatial", [(9, 12), (5, 6, 7)], ids=["2d", "3d"])
@pytest.mark.parametrize("alpha", [2.0, 1.0])
def test_hausdorff_dt_loss_equals_monai(spatial, alpha):
    monai_losses = pytest.importorskip("monai.losses")
    logits, labels = _labels(2, spatial)
    monai = monai_losses.HausdorffDTLoss(alpha=alpha, softmax=True, to_onehot_y=True)
    expected = monai(logits, labels.unsqueeze(1))
    assert torch.allclose(hausdorff_dt_loss(logits, labels, alpha=alpha), expected.double())


def test_hausdorff_dt_loss_with_spacing_equals_hand_formula():
    logits, labels = _labels(3, (8, 10))
    spacing = (2.0, 0.5)
    p = logits.softmax(dim=1)[:, 1:]
    g = F.one_hot(labels, 3).movedim(-1, 1)[:, 1:].double()

    def field(mask):
        mask = mask.numpy()
        if not mask.any() or mask.all():
            return np.zeros(mask.shape)
        return scipy_edt(mask, sampling=spacing) + scipy_edt(~mask, sampling=spacing)

    expected = np.mean(
        [
            np.mean(
                (p[n, c] - g[n, c]).numpy() ** 2
                * (field(p[n, c] > 0.5) ** 2 + field(g[n, c] > 0.5) ** 2)
            )
            for n in range(2)
            for c in range(2)
        ]
    )
    got = hausdorff_dt_loss(logits, labels, spacing=spacing)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_a_far_false_positive_costs_more_than_a_near_one():
    labels = torch.zeros(1, 20, 20, dtype=torch.long)
    labels[0, 8:12, 8:12] = 1
    base = 10.0 * (2 * F.one_hot(labels, 2).movedim(-1, 1).double() - 1)
    near, far = base.clone(), base.clone()
    near[0, :, 7, 9] = torch.tensor([-10.0, 10.0])  # a false positive next to the square
    far[0, :, 0, 0] = torch.tensor([-10.0, 10.0])  # one in the corner
    for loss in (boundary_loss, hausdorff_dt_loss):
        assert loss(far, labels) > loss(near, labels) > loss(base, labels)

"""Synthetic cells and volumes: determinism, the difficulties they must carry, shapes, errors."""

from __future__ import annotations

import pytest
import torch

from course_lib.data import (
    CT_LABELS,
    UNLABELED,
    make_cells,
    make_mr_multichannel,
    make_sparse_annotation,
    make_volumes,
    touching_fraction,
)
from course_lib.data.cells import _neighbour_differs


@pytest.fixture(scope="module")
def phase():
    return make_cells(4, 128, seed=0)


@pytest.fixture(scope="module")
def ct():
    return make_volumes(4, seed=0, shape=(24, 48, 48))


# ---------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("style", ["phase", "em"])
def test_cells_are_a_function_of_the_seed(style):
    a, b = make_cells(2, 64, seed=3, style=style), make_cells(2, 64, seed=3, style=style)
    assert torch.equal(a.images, b.images) and torch.equal(a.instances, b.instances)
    c = make_cells(2, 64, seed=4, style=style)
    assert not torch.equal(a.images, c.images)
    # image i depends on (seed, i) only: a larger set starts with the smaller one
    longer = make_cells(3, 64, seed=3, style=style)
    assert torch.equal(longer.images[:2], a.images)


def test_volumes_are_a_function_of_the_seed():
    a = make_volumes(2, seed=1, shape=(16, 32, 32))
    b = make_volumes(3, seed=1, shape=(16, 32, 32))
    for x, y in zip(a, b[:2], strict=True):
        assert torch.equal(x.image, y.image) and torch.equal(x.label, y.label)
        assert x.spacing == y.spacing
    c = make_volumes(1, seed=2, shape=(16, 32, 32))[0]
    assert c.spacing != a[0].spacing
    m1 = make_mr_multichannel(1, seed=0, shape=(12, 32, 32))[0]
    m2 = make_mr_multichannel(1, seed=0, shape=(12, 32, 32))[0]
    assert torch.equal(m1.image, m2.image)


# ---------------------------------------------------------------------------- cells
def test_phase_cells_shapes_ranges_and_masks(phase):
    assert phase.images.shape == (4, 1, 128, 128) and phase.images.dtype == torch.float32
    assert 0 <= float(phase.images.min()) and float(phase.images.max()) <= 1
    assert phase.instances.dtype == phase.masks.dtype == torch.int64
    assert torch.equal(phase.masks, (phase.instances > 0).long())
    per_image = [len(torch.unique(i)) - 1 for i in phase.instances]
    assert all(15 <= k <= 40 for k in per_image), per_image
    assert len(phase) == 4


def test_a_good_fraction_of_cells_touch(phase):
    assert touching_fraction(phase.instances) >= 0.5
    apart = make_cells(4, 128, seed=0, touching=0.0)
    assert touching_fraction(apart.instances) < touching_fraction(phase.instances)


def test_touching_cells_are_separated_by_a_background_gap(phase):
    # no pixel of a cell has a pixel of another cell among its 8 neighbours ...
    assert not _neighbour_differs(phase.instances, 1).any()
    # ... and the gaps are thin: many cells have another within 2 pixels
    assert _neighbour_differs(phase.instances, 2).any()


def test_cells_look_like_phase_contrast(phase):
    img, fg = phase.images[:, 0], phase.masks.bool()
    assert img[fg].mean() < img[~fg].mean() - 0.15  # dark cells on a brighter background


def test_em_cells_pack_densely_with_membranes_as_target():
    em = make_cells(2, 96, seed=0, style="em")
    assert torch.equal(em.masks, (em.instances == 0).long())
    frac = float(em.masks.float().mean())
    assert 0.15 < frac < 0.45, frac
    assert touching_fraction(em.instances, gap=3) > 0.95  # every cell has neighbours
    img = em.images[:, 0]
    assert img[em.masks.bool()].mean() < img[~em.masks.bool()].mean() - 0.2


def test_touching_fraction_toy_and_errors():
    lab = torch.zeros(1, 8, 18, dtype=torch.long)
    lab[0, 2:6, 1:5], lab[0, 2:6, 7:11] = 1, 2
    assert touching_fraction(lab) == 1.0
    assert touching_fraction(lab, gap=1) == 0.0
    lab[0, 0, 17] = 3  # a far cell
    assert touching_fraction(lab[0]) == pytest.approx(2 / 3)
    assert touching_fraction(torch.zeros(2, 5, 5, dtype=torch.long)) == 0.0
    with pytest.raises(ValueError, match="instances"):
        touching_fraction(torch.zeros(5, 5))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0, "size": 64, "seed": 0}, "n must"),
        ({"n": 1, "size": 16, "seed": 0}, "size must"),
        ({"n": 1, "size": 64, "seed": -1}, "seed"),
        ({"n": 1, "size": 64, "seed": 0, "style": "dic"}, "style"),
        ({"n": 1, "size": 64, "seed": 0, "touching": 1.5}, "touching"),
    ],
)
def test_make_cells_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_cells(**kwargs)


# ---------------------------------------------------------------------------- volumes
def test_volumes_vary_and_are_anisotropic(ct):
    shapes = {tuple(c.image.shape) for c in ct}
    assert len(shapes) > 1
    for c in ct:
        assert c.image.ndim == 4 and c.image.shape[0] == 1 and c.image.dtype == torch.float32
        assert c.label.shape == c.image.shape[1:] and c.label.dtype == torch.int64
        sz, sy, sx = c.spacing
        assert 1.0 <= sz <= 5.0 and 0.6 <= sy == sx <= 1.0
        assert c.channel_names == ("CT",)
    assert len({c.spacing for c in ct}) == len(ct)


def test_volumes_are_strongly_imbalanced(ct):
    for c in make_volumes(8, seed=0, shape=(32, 64, 64)):
        assert set(c.label.unique().tolist()) == set(CT_LABELS.values())
        organ = float((c.label >= 1).float().mean())
        lesion = float((c.label == 2).float().mean())
        assert 0.01 < organ < 0.12, organ
        assert 0 < lesion < 0.006, lesion


def test_lesion_lies_inside_the_organ(ct):
    # every lesion voxel has organ or lesion around it in-plane (the lesion is not at the edge of
    # the body): dilating the lesion by one voxel touches organ
    for c in ct:
        lesion = (c.label == 2).float()[None, None]
        ring = torch.nn.functional.max_pool3d(lesion, 3, 1, 1)[0, 0].bool() & (c.label != 2)
        assert (c.label[ring] == 1).float().mean() > 0.5


def test_ct_intensities_are_hounsfield_units(ct):
    c = ct[0]
    img, lab = c.image[0], c.label
    assert float(img.min()) < -900 and float(img.max()) > 500  # air and bone
    organ, lesion = img[lab == 1].mean(), img[lab == 2].mean()
    assert 70 < organ < 150 and 10 < organ - lesion < 80


def test_mr_volumes_have_a_bias_field():
    c = make_volumes(1, seed=0, modality="mr", shape=(24, 48, 48))[0]
    assert c.channel_names == ("T1",) and float(c.image.min()) >= 0
    organ = c.image[0][c.label == 1]
    assert organ.std() / organ.mean() > 0.05  # the same tissue varies across the volume


def test_mr_multichannel_needs_both_channels():
    cases = make_mr_multichannel(3, seed=0, shape=(16, 48, 48))
    assert len({c.image.shape[1] for c in cases}) > 1  # the number of slices varies
    for c in cases:
        assert c.image.shape[0] == 2 and c.channel_names == ("T1", "T2")
        assert c.spacing == (1.5, 0.4, 0.4)
        frac = float(c.label.float().mean())
        assert 0.001 < frac < 0.015, frac
        # thresholding one channel at the target's lower quartile catches look-alikes (vessels in
        # T1, fluid in T2); both channels together are far more precise
        t1, t2 = c.image
        target = c.label.bool()
        bright1, bright2 = t1 > t1[target].quantile(0.25), t2 > t2[target].quantile(0.25)
        p1, p2, p12 = (
            float((target & m).sum() / m.sum()) for m in (bright1, bright2, bright1 & bright2)
        )
        assert p12 > 2 * max(p1, p2)


def test_sparse_annotation_keeps_few_orthogonal_slices():
    dense = make_volumes(1, seed=0, shape=(16, 32, 32), shape_jitter=0.0)[0].label
    sparse = make_sparse_annotation(dense, 2, seed=0)
    labelled = sparse != UNLABELED
    assert sparse.dtype == dense.dtype and sparse.shape == dense.shape
    assert torch.equal(sparse[labelled], dense[labelled])
    full_slices = [
        int(labelled.all(dim=(1, 2)).sum()),
        int(labelled.all(dim=(0, 2)).sum()),
        int(labelled.all(dim=(0, 1)).sum()),
    ]
    assert full_slices == [2, 2, 2]
    assert float(labelled.float().mean()) < 0.3
    # the kept slices show foreground, so the sparse labels still teach
    assert (sparse > 0).any()
    assert torch.equal(make_sparse_annotation(dense, 2, seed=0), sparse)
    assert torch.equal(make_sparse_annotation(dense, 0, seed=0), torch.full_like(dense, -1))


@pytest.mark.parametrize(
    ("label", "count", "match"),
    [
        (torch.zeros(4, 4, dtype=torch.long), 1, "label must"),
        (torch.zeros(4, 4, 4), 1, "label must"),
        (torch.zeros(4, 4, 4, dtype=torch.long), 5, "n_slices_per_axis"),
        (torch.zeros(4, 4, 4, dtype=torch.long), (1, 1), "n_slices_per_axis"),
    ],
)
def test_sparse_annotation_rejects_bad_arguments(label, count, match):
    with pytest.raises(ValueError, match=match):
        make_sparse_annotation(label, count, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"modality": "pet"}, "modality"),
        ({"shape": (4, 32, 32)}, "shape"),
        ({"inplane_spacing": (1.0, 0.5)}, "inplane_spacing"),
        ({"shape_jitter": 0.7}, "shape_jitter"),
    ],
)
def test_make_volumes_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_volumes(1, seed=0, **kwargs)

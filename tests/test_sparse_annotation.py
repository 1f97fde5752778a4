"""Learning from sparse annotation (3D U-Net, Cicek et al. 2016, Sec. 2): unlabelled voxels get
weight 0 in the weighted softmax cross-entropy, so the labelled slices alone drive the gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.data import UNLABELED, make_sparse_annotation
from course_lib.losses import cross_entropy
from course_lib.models.unet3d import UNet3D

WEIGHTS = [0.2, 1.0, 5.0]  # down-weight background, up-weight the rare class, as the paper does


def _sparse_case(seed: int = 0, shape=(6, 7, 8), slices=1):
    """Random logits ``(1, 3, *shape)`` and a sparse label map with ``slices`` slices per axis."""
    gen = torch.Generator().manual_seed(seed)
    dense = torch.randint(0, 3, shape, generator=gen)
    sparse = make_sparse_annotation(dense, slices, seed=seed)[None]
    logits = (3 * torch.randn(1, 3, *shape, generator=gen, dtype=torch.float64)).requires_grad_()
    return logits, sparse


def _loss(logits, target):
    return cross_entropy(logits, target, weight=WEIGHTS, ignore_index=UNLABELED)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("weight", [None, WEIGHTS])
def test_all_unlabelled_gives_zero_loss_and_zero_gradient(dtype, weight):
    logits = (100 * torch.randn(2, 3, 4, 5, 6)).to(dtype).requires_grad_()
    target = torch.full((2, 4, 5, 6), UNLABELED)
    loss = cross_entropy(logits, target, weight=weight, ignore_index=UNLABELED)
    loss.backward()
    assert loss.item() == 0.0
    assert logits.grad is not None and torch.count_nonzero(logits.grad) == 0


def test_all_unlabelled_leaves_every_network_parameter_without_gradient():
    net = UNet3D(1, 3, base_channels=2, depth=1, padding="same")
    loss = _loss(net(torch.randn(1, 1, 8, 8, 8)), torch.full((1, 8, 8, 8), UNLABELED))
    loss.backward()
    assert loss.item() == 0.0
    assert all(torch.count_nonzero(p.grad) == 0 for p in net.parameters())


def test_gradient_is_nonzero_exactly_on_the_annotated_slices():
    logits, sparse = _sparse_case()
    _loss(logits, sparse).backward()
    moved = logits.grad.abs().sum(dim=1) > 0
    assert torch.equal(moved, sparse != UNLABELED)
    assert 0 < int(moved.sum()) < moved.numel()


def test_loss_equals_weighted_ce_over_the_labelled_voxels_alone():
    logits, sparse = _sparse_case(seed=3, slices=2)
    labelled = sparse != UNLABELED
    voxels = logits.movedim(1, -1)[labelled]  # (n_labelled, C): unlabelled voxels never enter
    expected = F.cross_entropy(voxels, sparse[labelled], weight=torch.tensor(WEIGHTS).double())
    torch.testing.assert_close(_loss(logits, sparse), expected)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000), scale=st.floats(-50, 50))
def test_changing_the_logits_of_unlabelled_voxels_changes_nothing(seed, scale):
    logits, sparse = _sparse_case(seed=seed)
    noise = scale * torch.randn(logits.shape, dtype=logits.dtype)
    changed = torch.where((sparse == UNLABELED)[:, None], logits + noise, logits)
    assert _loss(changed, sparse).item() == pytest.approx(_loss(logits, sparse).item(), rel=1e-12)


def test_unlabelled_as_background_instead_pushes_every_voxel_towards_background():
    logits, sparse = _sparse_case()
    as_background = torch.where(sparse == UNLABELED, 0, sparse)
    _loss(logits, as_background).backward()
    unlabelled = (sparse == UNLABELED)[:, None].expand_as(logits)
    grad = logits.grad[unlabelled].view(3, -1)  # (class, voxel) at the unlabelled voxels
    # d loss / d logit_c = w_0 (p_c - [c = 0]) / Z: negative for background, positive otherwise
    assert (grad[0] < 0).all() and (grad[1:] > 0).all()


def test_network_gradient_equals_that_of_the_masked_loss():
    torch.manual_seed(0)
    net = UNet3D(1, 3, base_channels=2, depth=1, padding="same").double()
    image = torch.randn(1, 1, 8, 8, 8, dtype=torch.float64)
    dense = torch.randint(0, 3, (8, 8, 8))
    sparse = make_sparse_annotation(dense, 1, seed=0)[None]

    def grads(loss_fn):
        net.zero_grad()
        loss_fn(net(image)).backward()
        return [p.grad.clone() for p in net.parameters()]

    def masked(logits):  # independent: per-voxel weighted NLL, mask, normalise by mask weight
        w = torch.tensor(WEIGHTS, dtype=torch.float64)[dense.clamp(min=0)][None]
        mask = (sparse != UNLABELED).double()
        nll = F.cross_entropy(logits, dense[None], reduction="none")
        return (mask * w * nll).sum() / (mask * w).sum()

    for ours, theirs in zip(grads(lambda z: _loss(z, sparse)), grads(masked), strict=True):
        torch.testing.assert_close(ours, theirs)


def test_gradcheck_with_class_weights_and_ignored_voxels():
    logits, sparse = _sparse_case(shape=(3, 3, 4))
    assert torch.autograd.gradcheck(lambda z: _loss(z, sparse), (logits,))


def test_extreme_logits_stay_finite():
    logits, sparse = _sparse_case()
    huge = (1e4 * logits.detach()).requires_grad_()
    loss = _loss(huge, sparse)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(huge.grad).all()

"""cross_entropy and binary_cross_entropy against torch, closed-form gradients, weights, ignore."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib.losses import BinaryCrossEntropyLoss, binary_cross_entropy, cross_entropy


def _inputs(seed=0, shape=(2, 3, 5, 6)):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(*shape, generator=g, dtype=torch.float64)
    labels = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    return logits, labels


@pytest.mark.parametrize("shape", [(2, 3, 5, 6), (2, 4, 3, 4, 5)], ids=["2d", "3d"])
def test_equals_torch_cross_entropy_with_weights_and_ignore_index(shape):
    logits, labels = _inputs(shape=shape)
    labels.view(-1)[::4] = -1
    weight = torch.linspace(0.5, 2.0, shape[1], dtype=torch.float64)
    for kwargs in ({}, {"weight": weight}):
        expected = F.cross_entropy(logits, labels, ignore_index=-1, **kwargs)
        got = cross_entropy(logits, labels, ignore_index=-1, **kwargs)
        assert torch.allclose(got, expected)
    expected = F.cross_entropy(logits, labels, weight=weight, ignore_index=-1, reduction="sum")
    assert torch.allclose(
        cross_entropy(logits, labels, weight=weight, ignore_index=-1, reduction="sum"), expected
    )


def test_one_hot_and_soft_targets_match_torch():
    logits, labels = _inputs()
    one_hot = F.one_hot(labels, 3).movedim(-1, 1).double()
    assert torch.allclose(cross_entropy(logits, one_hot), F.cross_entropy(logits, labels))
    soft = torch.rand_like(logits).softmax(dim=1)
    assert torch.allclose(cross_entropy(logits, soft), F.cross_entropy(logits, soft))
    # class weights: one-hot targets give exactly what label maps give
    w = [0.3, 1.0, 2.0]
    assert torch.allclose(
        cross_entropy(logits, one_hot, weight=w), cross_entropy(logits, labels, weight=w)
    )


def test_pixel_weight_map_multiplies_the_per_pixel_loss():
    logits, labels = _inputs()
    weight_map = torch.rand(2, 5, 6, dtype=torch.float64) * 10
    expected = (weight_map * F.cross_entropy(logits, labels, reduction="none")).mean()
    assert torch.allclose(cross_entropy(logits, labels, pixel_weight=weight_map), expected)
    none = cross_entropy(logits, labels, pixel_weight=weight_map.unsqueeze(1), reduction="none")
    assert none.shape == (2, 5, 6)


def test_gradient_wrt_logits_is_p_minus_t_over_n():
    logits, labels = _inputs()
    logits.requires_grad_(True)
    cross_entropy(logits, labels).backward()
    one_hot = F.one_hot(labels, 3).movedim(-1, 1).double()
    expected = (logits.detach().softmax(dim=1) - one_hot) / labels.numel()
    assert torch.allclose(logits.grad, expected)


def test_unannotated_voxels_take_no_part():
    logits, labels = _inputs()
    partial = labels.clone()
    partial[:, :2] = -1
    cropped = cross_entropy(logits[:, :, 2:], labels[:, 2:])
    assert torch.allclose(cross_entropy(logits, partial, ignore_index=-1), cropped)


def test_cross_entropy_rejects_one_channel_and_bad_weights():
    logits, labels = _inputs()
    with pytest.raises(ValueError, match="binary_cross_entropy"):
        cross_entropy(logits[:, :1], labels.clamp(max=1))
    with pytest.raises(ValueError, match="one value per class"):
        cross_entropy(logits, labels, weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="pixel_weight"):
        cross_entropy(logits, labels, pixel_weight=torch.ones(2, 5, 5))
    with pytest.raises(ValueError, match="-1"):
        cross_entropy(logits, labels.masked_fill(labels == 0, -1))  # no ignore_index given


def test_binary_cross_entropy_equals_torch_with_pos_weight():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 1, 6, 6, generator=g, dtype=torch.float64)
    mask = torch.randint(0, 2, (2, 6, 6), generator=g)
    expected = F.binary_cross_entropy_with_logits(
        logits, mask.unsqueeze(1).double(), pos_weight=torch.tensor([4.0], dtype=torch.float64)
    )
    assert torch.allclose(binary_cross_entropy(logits, mask, pos_weight=4.0), expected)
    assert torch.allclose(BinaryCrossEntropyLoss(pos_weight=4.0)(logits, mask), expected)


def test_binary_cross_entropy_multi_label_and_gradient():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 2, (2, 3, 4, 4), generator=g).double()
    binary_cross_entropy(logits, target).backward()
    # d/dx of the mean BCE is (sigmoid(x) - t) / n: bounded by 1/n whatever the logit
    expected = (logits.detach().sigmoid() - target) / target.numel()
    assert torch.allclose(logits.grad, expected)


def test_binary_cross_entropy_at_extreme_logits_is_exact():
    logits = torch.tensor([[[[1e4, -1e4]]]])
    mask = torch.tensor([[[0, 0]]])
    assert binary_cross_entropy(logits, mask, reduction="none")[0, 0, 0].tolist() == [1e4, 0.0]

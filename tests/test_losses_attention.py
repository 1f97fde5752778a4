"""Multi-scale attention loss (Wang et al. 2019): it takes the maps' logits; hand computation,
an independent implementation, pooling, empty masks, extreme logits, half precision, errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.losses.attention import AttentionLoss, attention_loss, pool_foreground

BIG = 1e4
"""A logit whose sigmoid is exactly 0 or 1 in float32 and float64: a saturated map."""


def _logit(p: torch.Tensor) -> torch.Tensor:
    """Logits of probabilities ``p`` in float64, 0 and 1 mapped to -BIG and +BIG."""
    return torch.logit(p.double()).clamp(-BIG, BIG)


def _hand_example():
    g = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).reshape(1, 1, 1, 2, 2)
    z_full = torch.tensor([[0.0, 0.0], [-BIG, -BIG]]).reshape(1, 1, 1, 2, 2)  # A = .5 .5 / 0 0
    z_coarse = torch.zeros(1, 1, 1, 1, 1)  # A = 0.5; its target is avgpool(g) = 0.25
    return [z_full, z_coarse], g


def test_dice_against_hand_computation():
    # level 1: 1 - 2*0.5 / (1 + 1) = 0.5; level 2: 1 - 2*0.125 / (0.5 + 0.25) = 2/3; mean 7/12
    z, g = _hand_example()
    loss = attention_loss(z, g, loss="dice", smooth_nr=0.0, smooth_dr=0.0)
    torch.testing.assert_close(loss, torch.tensor(7 / 12))


def test_bce_against_hand_computation():
    # level 1: (-log 0.5 - log 0.5 + 0 + 0) / 4 = ln2 / 2; level 2: -(0.25 + 0.75) log 0.5 = ln2
    z, g = _hand_example()
    expected = torch.tensor(0.75 * math.log(2))
    torch.testing.assert_close(attention_loss(z, g), expected)
    torch.testing.assert_close(attention_loss(z, g, loss="bce"), expected)


def test_mse_against_hand_computation():
    # level 1: (0.25 + 0.25) / 4 = 0.125; level 2: (0.5 - 0.25)^2 = 0.0625; mean 0.09375
    z, g = _hand_example()
    torch.testing.assert_close(attention_loss(z, g, loss="mse"), torch.tensor(0.09375))


def test_equals_an_independent_implementation_on_sigmoid_of_the_logits():
    """The maps are sigmoid(logits): each form recomputed from the probabilities, level by level."""
    gen = torch.Generator().manual_seed(4)
    g = (torch.rand(2, 1, 2, 4, 4, generator=gen, dtype=torch.float64) > 0.6).double()
    z = [
        3 * torch.randn(2, 1, *s, generator=gen, dtype=torch.float64)
        for s in [(2, 4, 4), (1, 2, 2)]
    ]
    pooled = [g, g.reshape(2, 1, 1, 2, 2, 2, 2, 2).mean(dim=(3, 5, 7))]
    a = [torch.sigmoid(level) for level in z]
    bce = [-(t * p.log() + (1 - t) * (1 - p).log()).mean() for p, t in zip(a, pooled, strict=True)]
    dice = [
        1 - (2 * (p * t).sum() + 1e-5) / (p.sum() + t.sum() + 1e-5)
        for p, t in zip(a, pooled, strict=True)
    ]
    mse = [((p - t) ** 2).mean() for p, t in zip(a, pooled, strict=True)]
    for name, levels in [("bce", bce), ("dice", dice), ("mse", mse)]:
        torch.testing.assert_close(attention_loss(z, g, loss=name), torch.stack(levels).mean())
        torch.testing.assert_close(AttentionLoss(loss=name)(z, g), attention_loss(z, g, loss=name))


def test_bce_and_mse_are_smallest_at_the_pooled_mask():
    g = 0.1 + 0.8 * torch.rand(1, 1, 2, 4, 4, generator=torch.Generator().manual_seed(3))
    target = pool_foreground(g.double(), (2, 2, 2))  # soft, strictly inside (0, 1)
    for loss in ("bce", "mse"):
        best = attention_loss([_logit(target)], g, loss=loss)
        for delta in (-0.1, 0.1):
            assert attention_loss([_logit(target) + delta], g, loss=loss) > best


def test_foreground_without_channel_axis_and_bool():
    z, g = _hand_example()
    torch.testing.assert_close(attention_loss(z, g[:, 0].bool()), attention_loss(z, g))


def test_dice_pools_the_batch():
    """Sums over the whole batch: a patch without target still pays for attention spent on it."""
    torch.manual_seed(0)
    g = (torch.rand(3, 1, 2, 4, 4) > 0.7).float()
    g[1] = 0
    z = [torch.randn(3, 1, 2, 4, 4)]
    pooled = attention_loss([z[0].reshape(1, 1, 6, 4, 4)], g.reshape(1, 1, 6, 4, 4), loss="dice")
    torch.testing.assert_close(attention_loss(z, g, loss="dice"), pooled)
    quiet = [z[0].clone()]
    quiet[0][1] = -BIG  # no attention on the empty patch: a lower loss
    assert attention_loss(quiet, g, loss="dice") < attention_loss(z, g, loss="dice")


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 2),
    factors=st.tuples(st.sampled_from([1, 2]), st.sampled_from([1, 2, 4]), st.sampled_from([1, 2])),
    coarse=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
    seed=st.integers(0, 1000),
)
def test_pool_foreground_is_the_block_mean(n, factors, coarse, seed):
    g = (
        torch.rand(
            n,
            1,
            *(c * f for c, f in zip(coarse, factors, strict=True)),
            generator=torch.Generator().manual_seed(seed),
        )
        > 0.5
    ).float()
    blocks = g.reshape(n, 1, coarse[0], factors[0], coarse[1], factors[1], coarse[2], factors[2])
    torch.testing.assert_close(pool_foreground(g, coarse), blocks.mean(dim=(3, 5, 7)))


def test_maps_equal_to_pooled_masks():
    g = torch.zeros(2, 1, 4, 8, 8)
    g[0, :, 1:3, 2:6, 3:5] = 1
    g[1, :, 0, 0, 0] = 1
    maps = [pool_foreground(g, s) for s in [(4, 8, 8), (4, 4, 4), (2, 2, 2)]]
    z = [_logit(m) for m in maps]
    assert attention_loss(z, g, loss="mse") < 1e-20  # MSE is minimal exactly at A = G
    # soft Dice against a soft target is not 0 at A = G: a sharpened map scores better
    sharpened = [_logit((m > 0.1).double()) for m in maps]
    assert attention_loss(sharpened, g, loss="dice") < attention_loss(z, g, loss="dice")


def test_dice_is_zero_for_masks_aligned_with_the_pooling_blocks():
    g = torch.zeros(1, 1, 4, 8, 8)
    g[..., 0:4, 4:8, 0:4] = 1  # whole 2x2x2 and 4x4x4 blocks: every pooled value is 0 or 1
    z = [_logit(pool_foreground(g, s)) for s in [(4, 8, 8), (2, 4, 4), (1, 2, 2)]]
    assert attention_loss(z, g, loss="dice") < 1e-6


def test_empty_masks():
    g = torch.zeros(1, 1, 2, 4, 4)
    nothing = [torch.full((1, 1, 2, 4, 4), -BIG, requires_grad=True)]
    for loss in ("bce", "dice", "mse"):
        value = attention_loss(nothing, g, loss=loss)
        value.backward()
        assert value == 0  # nothing to find, nothing found
        assert torch.isfinite(nothing[0].grad).all()
    loss = attention_loss([torch.zeros(1, 1, 2, 4, 4)], g, loss="dice")  # A = 0.5, no target
    assert 0.99 < loss <= 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_logits_give_the_exact_loss_and_a_gradient_that_does_not_vanish(dtype):
    """Saturated and wrong everywhere: the BCE is the logit's size itself (no log(0), no clamp
    at 100), and its gradient A - G stays; Dice and MSE stay finite."""
    g = torch.zeros(1, 1, 2, 4, 4, dtype=dtype)
    g[..., 0, :2, :2] = 1
    wrong = (BIG * (1 - 2 * g)).requires_grad_()  # -1e4 on the target, +1e4 elsewhere
    loss = attention_loss([wrong], g)
    loss.backward()
    torch.testing.assert_close(loss, torch.tensor(BIG, dtype=dtype))
    torch.testing.assert_close(wrong.grad, (1 - 2 * g) / g.numel())  # (A - G) / voxels
    for form in ("dice", "mse"):
        z = wrong.detach().clone().requires_grad_()
        value = attention_loss([z], g, loss=form)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(z.grad).all()
        torch.testing.assert_close(value, torch.tensor(1.0, dtype=dtype), atol=1e-4, rtol=0)


def test_gradcheck_float64():
    torch.manual_seed(1)
    g = (torch.rand(2, 1, 2, 4, 4) > 0.5).double()
    z = [
        torch.randn(2, 1, 2, 4, 4, dtype=torch.float64, requires_grad=True),
        torch.randn(2, 1, 1, 2, 2, dtype=torch.float64, requires_grad=True),
    ]
    for loss in ("bce", "dice", "mse"):
        assert torch.autograd.gradcheck(
            lambda a, b, loss=loss: attention_loss([a, b], g, loss=loss), z
        )


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("loss", ["bce", "dice", "mse"])
def test_half_precision_is_computed_in_float32(dtype, loss):
    """As every loss: half-precision logits (autocast) give a float32 loss, close to the float32
    loss, and with saturated logits the float32 loss of the rounded logits, gradients finite."""
    gen = torch.Generator().manual_seed(2)
    g = (torch.rand(1, 1, 2, 8, 8, generator=gen) > 0.8).float()
    z = [
        3 * torch.randn(1, 1, 2, 8, 8, generator=gen),
        3 * torch.randn(1, 1, 2, 4, 4, generator=gen),
    ]
    low = [level.to(dtype) for level in z]
    value = attention_loss(low, g, loss=loss)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, attention_loss(z, g, loss=loss), atol=2e-2, rtol=0)

    low[1][..., 0, :, :] = BIG * low[1][..., 0, :, :].sign()  # saturated, often wrong, voxels
    low = [level.requires_grad_() for level in low]
    value = attention_loss(low, g, loss=loss)
    value.backward()
    assert all(torch.isfinite(level.grad.float()).all() for level in low)
    rounded = attention_loss([level.detach().float() for level in low], g, loss=loss)
    torch.testing.assert_close(value, rounded)  # the same numbers: only the input was rounded


def test_bce_with_a_map_that_is_neither_saturated_nor_right():
    # sigmoid(log 3) = 0.75 against G = 1: -log 0.75 at every voxel
    z = [torch.full((1, 1, 2, 2), math.log(3.0), dtype=torch.float64)]
    loss = attention_loss(z, torch.ones(1, 1, 2, 2))
    torch.testing.assert_close(loss, torch.tensor(-math.log(0.75), dtype=torch.float64))


@pytest.mark.parametrize(
    "z, g, kwargs, match",
    [
        ([], torch.zeros(1, 1, 2, 2), {}, "non-empty"),
        ([torch.zeros(1, 1, 2, 2)], torch.zeros(1, 1, 2, 2), {"loss": "l1"}, "loss must be"),
        ([torch.zeros(1, 1, 3, 3)], torch.zeros(1, 1, 4, 4), {}, "divide"),
        ([torch.zeros(1, 1, 2, 2)], torch.zeros(2, 1, 4, 4), {}, "foreground must be"),
        ([torch.zeros(1, 1, 2, 2)], torch.full((1, 1, 4, 4), 2.0), {}, r"\[0, 1\]"),
        ([torch.zeros(1, 1, 2, 2, dtype=torch.long)], torch.zeros(1, 1, 4, 4), {}, "floating"),
        (
            [torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 1, 1)],
            torch.zeros(1, 1, 4, 4),
            {},
            r"logits\[1\]",
        ),
    ],
)
def test_bad_input(z, g, kwargs, match):
    with pytest.raises(ValueError, match=match):
        attention_loss(z, g, **kwargs)

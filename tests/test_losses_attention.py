"""Multi-scale attention loss (Wang et al. 2019): hand computation, pooling, empty masks, errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.losses.attention import attention_loss, pool_foreground


def _hand_example():
    g = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).reshape(1, 1, 1, 2, 2)
    a_full = torch.tensor([[0.5, 0.5], [0.0, 0.0]]).reshape(1, 1, 1, 2, 2)
    a_coarse = torch.full((1, 1, 1, 1, 1), 0.5)  # its target is avgpool(g) = 0.25
    return [a_full, a_coarse], g


def test_dice_against_hand_computation():
    # level 1: 1 - 2*0.5 / (1 + 1) = 0.5; level 2: 1 - 2*0.125 / (0.5 + 0.25) = 2/3; mean 7/12
    maps, g = _hand_example()
    loss = attention_loss(maps, g, loss="dice", smooth_nr=0.0, smooth_dr=0.0)
    torch.testing.assert_close(loss, torch.tensor(7 / 12))


def test_bce_against_hand_computation():
    # level 1: (-log 0.5 - log 0.5 + 0 + 0) / 4 = ln2 / 2; level 2: -(0.25 + 0.75) log 0.5 = ln2
    maps, g = _hand_example()
    expected = torch.tensor(0.75 * math.log(2))
    torch.testing.assert_close(attention_loss(maps, g), expected)
    torch.testing.assert_close(attention_loss(maps, g, loss="bce"), expected)


def test_bce_and_mse_are_smallest_at_the_pooled_mask():
    g = torch.zeros(1, 1, 2, 4, 4)
    g[..., 0, 1:3, 1:2] = 1
    target = pool_foreground(g, (2, 2, 2))  # soft: values 0, 0.25
    for loss in ("bce", "mse"):
        best = attention_loss([target], g, loss=loss)
        for delta in (-0.1, 0.1):
            assert attention_loss([(target + delta).clamp(0, 1)], g, loss=loss) > best


def test_mse_against_hand_computation():
    # level 1: (0.25 + 0.25) / 4 = 0.125; level 2: (0.5 - 0.25)^2 = 0.0625; mean 0.09375
    maps, g = _hand_example()
    torch.testing.assert_close(attention_loss(maps, g, loss="mse"), torch.tensor(0.09375))


def test_foreground_without_channel_axis_and_bool():
    maps, g = _hand_example()
    torch.testing.assert_close(attention_loss(maps, g[:, 0].bool()), attention_loss(maps, g))


def test_dice_pools_the_batch():
    """Sums over the whole batch: a patch without target still pays for attention spent on it."""
    torch.manual_seed(0)
    g = (torch.rand(3, 1, 2, 4, 4) > 0.7).float()
    g[1] = 0
    maps = [torch.rand(3, 1, 2, 4, 4)]
    pooled = attention_loss([maps[0].reshape(1, 1, 6, 4, 4)], g.reshape(1, 1, 6, 4, 4), loss="dice")
    torch.testing.assert_close(attention_loss(maps, g, loss="dice"), pooled)
    quiet = [maps[0].clone()]
    quiet[0][1] = 0  # no attention on the empty patch: a lower loss
    assert attention_loss(quiet, g, loss="dice") < attention_loss(maps, g, loss="dice")


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
    assert attention_loss(maps, g, loss="mse") == 0  # MSE is minimal exactly at A = G
    # soft Dice against a soft target is not 0 at A = G: a sharpened map scores better
    sharpened = [(m > 0.1).float() for m in maps]
    assert attention_loss(sharpened, g, loss="dice") < attention_loss(maps, g, loss="dice")


def test_dice_is_zero_for_masks_aligned_with_the_pooling_blocks():
    g = torch.zeros(1, 1, 4, 8, 8)
    g[..., 0:4, 4:8, 0:4] = 1  # whole 2x2x2 and 4x4x4 blocks: every pooled value is 0 or 1
    maps = [pool_foreground(g, s) for s in [(4, 8, 8), (2, 4, 4), (1, 2, 2)]]
    assert attention_loss(maps, g, loss="dice") < 1e-6


def test_empty_masks():
    g = torch.zeros(1, 1, 2, 4, 4)
    for loss in ("bce", "dice", "mse"):
        assert attention_loss([torch.zeros(1, 1, 2, 4, 4)], g, loss=loss) == 0  # nothing, found
    loss = attention_loss([torch.full((1, 1, 2, 4, 4), 0.5)], g, loss="dice")  # attends to nothing
    assert 0.99 < loss <= 1


def test_saturated_maps_stay_finite():
    g = torch.zeros(1, 1, 2, 4, 4)
    g[..., 0, :2, :2] = 1
    wrong = (1 - g).requires_grad_()  # 0 on the target, 1 elsewhere: log(0) clamped
    loss = attention_loss([wrong], g)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(wrong.grad).all()


def test_gradcheck_float64():
    torch.manual_seed(1)
    g = (torch.rand(2, 1, 2, 4, 4) > 0.5).double()
    maps = [
        torch.rand(2, 1, 2, 4, 4, dtype=torch.float64, requires_grad=True),
        torch.rand(2, 1, 1, 2, 2, dtype=torch.float64, requires_grad=True),
    ]
    for loss in ("bce", "dice", "mse"):
        assert torch.autograd.gradcheck(
            lambda a, b, loss=loss: attention_loss([a, b], g, loss=loss), maps
        )


def test_bfloat16_close_to_float32():
    torch.manual_seed(2)
    g = (torch.rand(1, 1, 2, 8, 8) > 0.8).float()
    maps = [torch.rand(1, 1, 2, 8, 8), torch.rand(1, 1, 2, 4, 4)]
    low = attention_loss([m.bfloat16() for m in maps], g)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), attention_loss(maps, g), atol=2e-2, rtol=0)


@pytest.mark.parametrize(
    "maps, g, kwargs, match",
    [
        ([], torch.zeros(1, 1, 2, 2), {}, "non-empty"),
        ([torch.zeros(1, 1, 2, 2)], torch.zeros(1, 1, 2, 2), {"loss": "l1"}, "loss must be"),
        ([torch.zeros(1, 1, 3, 3)], torch.zeros(1, 1, 4, 4), {}, "divide"),
        ([torch.zeros(1, 1, 2, 2)], torch.zeros(2, 1, 4, 4), {}, "foreground must be"),
        ([torch.zeros(1, 1, 2, 2)], torch.full((1, 1, 4, 4), 2.0), {}, r"\[0, 1\]"),
        (
            [torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 1, 1)],
            torch.zeros(1, 1, 4, 4),
            {},
            r"attention_maps\[1\]",
        ),
    ],
)
def test_bad_input(maps, g, kwargs, match):
    with pytest.raises(ValueError, match=match):
        attention_loss(maps, g, **kwargs)

"""zscore and window: closed forms, per-channel statistics, constant input, bad arguments."""

from __future__ import annotations

import pytest
import torch

from course_lib.data import window, zscore


def test_zscore_gives_each_channel_mean_0_and_std_1():
    g = torch.Generator().manual_seed(0)
    image = torch.stack(
        [torch.randn(4, 5, 6, generator=g), 50 + 9 * torch.randn(4, 5, 6, generator=g)]
    )
    z = zscore(image)
    torch.testing.assert_close(z.mean(dim=(1, 2, 3)), torch.zeros(2), atol=1e-6, rtol=0)
    torch.testing.assert_close(z.std(dim=(1, 2, 3)), torch.ones(2))
    # what chapter 08 wrote by hand, per channel, and chapter 02 over a whole one-channel volume
    mean, std = image.mean(dim=(1, 2, 3), keepdim=True), image.std(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(z, (image - mean) / std)
    one = image[:1]
    torch.testing.assert_close(zscore(one, per_channel=False), (one - one.mean()) / one.std())
    both = zscore(image, per_channel=False)
    torch.testing.assert_close(both.mean(), torch.tensor(0.0), atol=1e-6, rtol=0)


def test_zscore_of_a_constant_channel_is_zero_not_nan():
    assert torch.equal(zscore(torch.full((1, 3, 3), 7.0)), torch.zeros(1, 3, 3))


def test_window_is_chapter_07s_formula_and_clips():
    hu = torch.linspace(-1000, 1500, 101)
    low, high = -200.0, 300.0
    by_hand = (hu.clamp(low, high) - (low + high) / 2) / ((high - low) / 4)
    torch.testing.assert_close(window(hu, (low, high), out_range=(-2.0, 2.0)), by_hand)
    y = window(hu, (low, high))
    assert y.min() == -1 and y.max() == 1 and bool((y.diff() >= 0).all())  # monotone


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: zscore(torch.zeros(4, dtype=torch.long)), "floating tensor"),
        (lambda: zscore(torch.zeros(4)), r"\(C, \*spatial\)"),
        (lambda: window(torch.zeros(3), (1.0, 1.0)), "low < high"),
        (lambda: window(torch.zeros(3), (0.0, 1.0), out_range=(1.0, 0.0)), "low < high"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()

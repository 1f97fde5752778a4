"""transposed_conv_up doubles exactly; checkerboard_amplitude: known values, Odena et al.'s case."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from course_lib.blocks.upsampling import checkerboard_amplitude, transposed_conv_up
from course_lib.models.unet import up_sampling


@settings(max_examples=15, deadline=None)
@given(kernel=st.integers(2, 6), size=st.integers(1, 9), spatial_dims=st.sampled_from([2, 3]))
def test_output_is_exactly_twice_the_input(kernel, size, spatial_dims):
    up = transposed_conv_up(2, 3, kernel_size=kernel, spatial_dims=spatial_dims)
    out = up(torch.randn(1, 2, *(size,) * spatial_dims))
    assert out.shape == (1, 3, *(2 * size,) * spatial_dims)


def _ones(module: nn.Module) -> nn.Module:
    for name, p in module.named_parameters():
        nn.init.ones_(p) if name.endswith("weight") else nn.init.zeros_(p)
    return module


def test_uneven_overlap_makes_a_checkerboard_from_a_constant_input():
    # Odena et al. 2016: kernel 3, stride 2 -> taps 1, 2, 1, 2 per axis; kernel 2 -> even overlap
    x = torch.ones(1, 1, 8, 8)
    k3 = _ones(transposed_conv_up(1, 1, kernel_size=3))(x)[0, 0].detach()
    k2 = _ones(transposed_conv_up(1, 1, kernel_size=2))(x)[0, 0].detach()
    up = _ones(up_sampling(1, 1, spatial_dims=2, mode="upsample", padding="same"))(x)[0, 0].detach()
    assert torch.equal(k3[2:-2, 2:-2].unique(), torch.tensor([1.0, 2.0, 4.0]))
    assert checkerboard_amplitude(k3, margin=2) > 1.0
    assert checkerboard_amplitude(k2) == 0.0
    assert checkerboard_amplitude(up, margin=1) == 0.0


def test_known_amplitudes():
    i, j = torch.meshgrid(torch.arange(8), torch.arange(10), indexing="ij")
    assert torch.isclose(checkerboard_amplitude(2.5 * (-1.0) ** (i + j)), torch.tensor(2.5))
    assert torch.isclose(checkerboard_amplitude((-1.0) ** i), torch.tensor(1.0))
    assert checkerboard_amplitude(torch.full((6, 6), 7.0)) == 0.0
    ramp = 0.1 * (i + j).float()  # every 2 x 2 cell holds offsets 0, s, s, 2s: std s / sqrt(2)
    assert torch.isclose(checkerboard_amplitude(ramp), torch.tensor(0.1 / 2**0.5))


def test_batch_axes_are_kept_and_bfloat16_works():
    y = torch.randn(3, 2, 6, 6, dtype=torch.bfloat16)
    assert checkerboard_amplitude(y).shape == (3, 2)


def test_bad_input():
    with pytest.raises(ValueError, match="kernel_size"):
        transposed_conv_up(1, 1, kernel_size=1)
    with pytest.raises(ValueError, match="margin"):
        checkerboard_amplitude(torch.zeros(4, 4), margin=-1)
    with pytest.raises(ValueError, match="no 2 x 2 tile"):
        checkerboard_amplitude(torch.zeros(4, 4), margin=2)

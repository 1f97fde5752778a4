"""Attention gate (Oktay et al. 2018): identity-safe shape, eq. 1-2, coefficient range, errors."""

from __future__ import annotations

import pytest
import torch

from course_lib.blocks.attention_gate import AttentionGate


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_output_shape_equals_skip_shape(spatial_dims):
    gate = AttentionGate(6, 10, spatial_dims=spatial_dims)
    x = torch.randn(2, 6, *(5,) * spatial_dims)
    g = torch.randn(2, 10, *(5,) * spatial_dims)
    assert gate(x, g).shape == x.shape
    assert gate.coefficients(x, g).shape == (2, 1, *(5,) * spatial_dims)


def test_matches_equations_1_and_2():
    torch.manual_seed(0)
    gate = AttentionGate(3, 4, inter_channels=2).double()
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    g = torch.randn(1, 4, 4, 4, dtype=torch.float64)
    wx = gate.theta_x.weight[:, :, 0, 0]
    wg, bg = gate.phi_g.weight[:, :, 0, 0], gate.phi_g.bias
    psi, bpsi = gate.psi.weight[0, :, 0, 0], gate.psi.bias
    # per pixel: q = psi^T relu(W_x^T x + W_g^T g + b_g) + b_psi
    hidden = torch.relu(
        torch.einsum("kc,nchw->nkhw", wx, x)
        + torch.einsum("kc,nchw->nkhw", wg, g)
        + bg[:, None, None]
    )
    alpha = torch.sigmoid(torch.einsum("k,nkhw->nhw", psi, hidden) + bpsi)[:, None]
    assert torch.allclose(gate(x, g), alpha * x)


def test_coefficients_in_0_1_even_for_extreme_inputs():
    gate = AttentionGate(2, 2)
    x, g = 1e20 * torch.randn(1, 2, 4, 4), -1e20 * torch.randn(1, 2, 4, 4)
    alpha = gate.coefficients(x, g)
    assert bool(((alpha >= 0) & (alpha <= 1)).all())
    assert torch.isfinite(gate(torch.randn(1, 2, 4, 4), g)).all()


def test_a_gate_that_says_nothing_halves_the_skip():
    gate = AttentionGate(2, 3)
    torch.nn.init.zeros_(gate.psi.weight)
    torch.nn.init.zeros_(gate.psi.bias)
    x = torch.randn(1, 2, 3, 3)
    assert torch.allclose(gate(x, torch.randn(1, 3, 3, 3)), 0.5 * x)


def test_gradcheck_in_both_inputs():
    torch.manual_seed(0)
    gate = AttentionGate(2, 3).double()
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    g = torch.randn(1, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gate, (x, g))


def test_bfloat16_runs():
    gate = AttentionGate(2, 3).to(torch.bfloat16)
    x, g = (
        torch.randn(1, 2, 3, 3, dtype=torch.bfloat16),
        torch.randn(1, 3, 3, 3, dtype=torch.bfloat16),
    )
    assert gate(x, g).dtype == torch.bfloat16


def test_bad_input():
    gate = AttentionGate(2, 3)
    with pytest.raises(ValueError, match=r"g must have shape \(N, 3"):
        gate(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match="same batch size and spatial shape"):
        gate(torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="inter_channels"):
        AttentionGate(2, 3, inter_channels=0)

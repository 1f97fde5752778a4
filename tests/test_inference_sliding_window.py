"""Sliding-window inference: nnU-Net window placement, MONAI's importance map, exact blending."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.inference.sliding_window import (
    importance_map,
    sliding_window_predict,
    window_starts,
)


def _conv_net(dims: int, seed: int = 0, out_channels: int = 3) -> torch.nn.Module:
    torch.manual_seed(seed)
    conv = torch.nn.Conv2d if dims == 2 else torch.nn.Conv3d
    return torch.nn.Sequential(
        conv(1, 4, 3, padding=1), torch.nn.ReLU(), conv(4, out_channels, 3, padding=1)
    ).eval()


class _Recorder(torch.nn.Module):
    """Identity that remembers the shape and device of every batch it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[tuple[int, ...], torch.device]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((tuple(x.shape), x.device))
        return x


# --- window placement ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "patch", "overlap", "expected"),
    [
        (160, 64, 0.5, [0, 32, 64, 96]),  # the benchmark's case: MONAI places the same windows
        (21, 8, 0.5, [0, 3, 6, 10, 13]),  # nnU-Net spreads evenly; MONAI gives [0, 4, 8, 12, 13]
        (64, 64, 0.5, [0]),
        (65, 64, 0.5, [0, 1]),
        (20, 8, 0.0, [0, 6, 12]),  # no overlap asked, but windows must still reach the border
        (10, 4, 0.75, [0, 1, 2, 3, 4, 5, 6]),
    ],
)
def test_window_starts_known_values(size: int, patch: int, overlap: float, expected: list) -> None:
    assert window_starts(size, patch, overlap) == expected


@settings(max_examples=60, deadline=None)
@given(
    patch=st.integers(1, 40),
    extra=st.integers(0, 100),
    overlap=st.sampled_from([0.0, 0.25, 0.5, 0.75, 0.9]),
)
def test_window_starts_cover_the_axis_evenly(patch: int, extra: int, overlap: float) -> None:
    size = patch + extra
    starts = window_starts(size, patch, overlap)
    # nnU-Net's count: the fewest windows whose step does not exceed (1 - overlap) * patch
    assert len(starts) == math.ceil(extra / ((1 - overlap) * patch)) + 1
    assert starts[0] == 0 and starts[-1] == size - patch
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(g >= 0 for g in gaps)
    assert all(g <= (1 - overlap) * patch + 1 for g in gaps)  # rounding adds at most one voxel
    assert all(g <= patch for g in gaps)  # no voxel is left uncovered


@pytest.mark.parametrize(("size", "patch", "overlap"), [(4, 5, 0.5), (4, 0, 0.5), (8, 4, 1.0)])
def test_window_starts_rejects_bad_arguments(size: int, patch: int, overlap: float) -> None:
    with pytest.raises(ValueError):
        window_starts(size, patch, overlap)


# --- importance map --------------------------------------------------------------------------


@pytest.mark.parametrize("patch", [(8,), (5, 8), (7, 6, 9), (64, 64, 64)])
def test_gaussian_map_is_symmetric_peaks_in_the_centre_and_is_floored(patch: tuple) -> None:
    m = importance_map(patch, dtype=torch.float64)
    assert m.shape == patch
    for axis in range(len(patch)):
        torch.testing.assert_close(m, m.flip(axis))
    centre = tuple((p - 1) // 2 for p in patch)
    assert m[centre] == m.max()
    assert m.min() >= 1e-3


def test_gaussian_map_closed_form() -> None:
    # 1D, p = 5, sigma = 0.625: exp(-x^2 / 0.78125) at x = -2..2
    expected = torch.exp(-torch.tensor([4.0, 1.0, 0.0, 1.0, 4.0], dtype=torch.float64) / 0.78125)
    torch.testing.assert_close(importance_map((5,), dtype=torch.float64), expected)
    assert torch.equal(importance_map((3, 4), "constant"), torch.ones(3, 4))


@pytest.mark.parametrize("patch", [(8, 5), (16, 12, 10), (64, 64, 64)])
@pytest.mark.parametrize("sigma_scale", [0.125, 0.3])
def test_gaussian_map_equals_monai(patch: tuple, sigma_scale: float) -> None:
    monai_utils = pytest.importorskip("monai.data.utils")
    theirs = monai_utils.compute_importance_map(patch, mode="gaussian", sigma_scale=sigma_scale)
    torch.testing.assert_close(importance_map(patch, sigma_scale=sigma_scale), theirs)


def test_importance_map_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="importance"):
        importance_map((4, 4), "cosine")
    with pytest.raises(ValueError, match="sigma_scale"):
        importance_map((4, 4), sigma_scale=0.0)
    with pytest.raises(ValueError, match="patch_size"):
        importance_map((4, 0))


# --- blending --------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    shape=st.lists(st.integers(3, 30), min_size=2, max_size=3),
    importance=st.sampled_from(["gaussian", "constant"]),
    overlap=st.sampled_from([0.0, 0.25, 0.5, 0.7]),
    seed=st.integers(0, 2**16),
)
def test_identity_model_returns_its_input_exactly(
    shape: list[int], importance: str, overlap: float, seed: int
) -> None:
    gen = torch.Generator().manual_seed(seed)
    volume = torch.randn(2, 2, *shape, generator=gen) * 100
    patch = tuple(max(2, s // 2 + 1) for s in shape)
    patch = (*patch[:-1], shape[-1] + 2)  # the last axis is shorter than the patch: padding
    mirror_axes = tuple(range(len(shape)))
    out = sliding_window_predict(
        torch.nn.Identity(),
        volume,
        patch,
        overlap=overlap,
        importance=importance,
        mirror_axes=mirror_axes,
        batch_size=3,
    )
    assert out.dtype == volume.dtype
    assert torch.equal(out, volume)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("importance", ["gaussian", "constant"])
def test_equals_monai_for_the_same_windows(dims: int, importance: str) -> None:
    monai_inferers = pytest.importorskip("monai.inferers")
    net = _conv_net(dims)
    shape = (40, 24, 32)[-dims:]  # size - patch is a multiple of the step on every axis
    patch = (16,) * dims
    volume = torch.randn(2, 1, *shape)
    ours = sliding_window_predict(
        net, volume, patch, overlap=0.5, importance=importance, batch_size=3
    )
    with torch.no_grad():
        theirs = monai_inferers.sliding_window_inference(
            volume, patch, 3, net, overlap=0.5, mode=importance
        )
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_equals_monai_when_the_volume_is_smaller_than_the_window() -> None:
    monai_inferers = pytest.importorskip("monai.inferers")
    net = _conv_net(2)
    volume = torch.randn(1, 1, 9, 12)
    ours = sliding_window_predict(net, volume, (16, 16))
    with torch.no_grad():
        theirs = monai_inferers.sliding_window_inference(
            volume, (16, 16), 1, net, overlap=0.5, mode="gaussian"
        )
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_pointwise_model_gives_the_whole_volume_prediction() -> None:
    # a 1x1x1 convolution sees no context, so windows must not change its prediction anywhere
    torch.manual_seed(0)
    net = torch.nn.Conv3d(2, 3, 1).eval()
    volume = torch.randn(1, 2, 21, 17, 30)
    with torch.no_grad():
        whole = net(volume)
    out = sliding_window_predict(net, volume, (8, 8, 12), overlap=0.5, batch_size=5)
    torch.testing.assert_close(out, whole, rtol=1e-5, atol=1e-6)


def test_mirroring_averages_flipped_passes() -> None:
    net = _conv_net(2, out_channels=2)
    volume = torch.randn(1, 1, 20, 28)

    def mirrored(x: torch.Tensor) -> torch.Tensor:
        return (net(x) + net(x.flip(3)).flip(3)) / 2

    ours = sliding_window_predict(net, volume, (12, 12), mirror_axes=(1,))
    expected = sliding_window_predict(mirrored, volume, (12, 12))
    torch.testing.assert_close(ours, expected)
    plain = sliding_window_predict(net, volume, (12, 12))
    assert not torch.allclose(ours, plain)


def test_batches_of_windows_change_nothing_and_stay_bounded() -> None:
    net = _conv_net(3)
    volume = torch.randn(1, 1, 20, 20, 20)
    one = sliding_window_predict(net, volume, (8, 8, 8), batch_size=1)
    many = sliding_window_predict(net, volume, (8, 8, 8), batch_size=7)
    torch.testing.assert_close(one, many)

    recorder = _Recorder()
    sliding_window_predict(recorder, volume, (8, 8, 8), batch_size=4, mirror_axes=(0, 2))
    n_windows = len(window_starts(20, 8)) ** 3
    assert len(recorder.calls) == math.ceil(n_windows / 4) * 4  # 4 mirror passes per batch
    assert all(shape[0] <= 4 and shape[2:] == (8, 8, 8) for shape, _ in recorder.calls)


def test_half_precision_model_output() -> None:
    net = _conv_net(2)
    volume = torch.randn(1, 1, 24, 24)
    reference = sliding_window_predict(net, volume, (12, 12))
    half = sliding_window_predict(net.to(torch.bfloat16), volume.to(torch.bfloat16), (12, 12))
    assert half.dtype == torch.float32
    assert torch.isfinite(half).all()
    torch.testing.assert_close(half, reference, rtol=0.05, atol=0.05)
    double = sliding_window_predict(net.double(), volume.double(), (12, 12))
    assert double.dtype == torch.float64


def test_output_device_and_model_device_are_respected() -> None:
    recorder = _Recorder()
    volume = torch.randn(1, 1, 10, 10)
    out = sliding_window_predict(recorder, volume, (6, 6), device="cpu", output_device="cpu")
    assert out.device == torch.device("cpu")
    assert {device for _, device in recorder.calls} == {torch.device("cpu")}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_model_on_gpu_output_in_cpu_memory() -> None:
    gpu = torch.device("cuda", torch.cuda.current_device())
    net = _conv_net(3).to(gpu)
    volume = torch.randn(1, 1, 40, 40, 40)  # stays in CPU memory
    out = sliding_window_predict(net, volume, (16, 16, 16), output_device="cpu")
    assert out.device.type == "cpu"
    reference = sliding_window_predict(net.cpu(), volume, (16, 16, 16))
    torch.testing.assert_close(out, reference, rtol=1e-4, atol=1e-4)


def test_rejects_bad_arguments() -> None:
    volume = torch.zeros(1, 1, 8, 8)
    identity = torch.nn.Identity()
    with pytest.raises(ValueError, match="image must be a tensor"):
        sliding_window_predict(identity, torch.zeros(8, 8), (4, 4))
    with pytest.raises(ValueError, match="image must be a tensor"):
        sliding_window_predict(identity, volume, (4, 4, 4))
    with pytest.raises(ValueError, match="overlap"):
        sliding_window_predict(identity, volume, (4, 4), overlap=1.0)
    with pytest.raises(ValueError, match="batch_size"):
        sliding_window_predict(identity, volume, (4, 4), batch_size=0)
    with pytest.raises(ValueError, match="mirror_axes"):
        sliding_window_predict(identity, volume, (4, 4), mirror_axes=(2,))
    with pytest.raises(ValueError, match="mirror_axes"):
        sliding_window_predict(identity, volume, (4, 4), mirror_axes=(0, 0))
    with pytest.raises(ValueError, match="importance"):
        sliding_window_predict(identity, volume, (4, 4), importance="linear")
    with pytest.raises(ValueError, match="overlap-tile"):
        sliding_window_predict(torch.nn.Conv2d(1, 1, 3), volume, (4, 4))  # valid padding

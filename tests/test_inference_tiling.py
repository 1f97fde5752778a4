"""Overlap-tile inference: equals the whole mirror-padded prediction in 2D and 3D, no seams."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.inference.sliding_window import sliding_window_predict
from course_lib.inference.tiling import mirror_pad, overlap_tile_predict, tile_layout
from course_lib.models.unet import UNet


def _whole_padded_prediction(net, image, layout):
    """The reference: the net run once on the whole mirror-padded image, cropped to the image."""
    spatial = image.shape[2:]
    after = [p - m - s for p, m, s in zip(layout.padded_shape, layout.margin, spatial, strict=True)]
    out = net(mirror_pad(image, layout.margin, after))
    return out[(slice(None), slice(None), *(slice(0, s) for s in spatial))]


@pytest.fixture(scope="module")
def net2d():
    torch.manual_seed(0)
    return UNet(1, 2, base_channels=2, depth=3).double().eval()


def test_2d_tiles_equal_whole_image(net2d):
    image = torch.randn(2, 1, 57, 83, dtype=torch.float64)
    layout = tile_layout(net2d, image.shape[2:], (108, 108))
    # depth 3: output tiles of 20 px step by 16 (pooling grids stay aligned), several tiles per axis
    assert layout.tile_out == (20, 20) and layout.stride == (16, 16)
    assert len(layout.corners) == 4 * 5
    tiled = overlap_tile_predict(net2d, image, patch_size=(108, 108), batch_size=3)
    assert tiled.shape == (2, 2, 57, 83)
    torch.testing.assert_close(tiled, _whole_padded_prediction(net2d, image, layout))


def test_tiles_placed_at_the_output_width_would_show_seams(net2d):
    # why the stride is rounded down to a multiple of 2**depth: a tile shifted by 20 px (not a
    # multiple of 8) sees different pooling grids, and its prediction differs
    image = torch.randn(1, 1, 148, 108, dtype=torch.float64)
    with torch.no_grad():
        whole = net2d(image)
        shifted = net2d(image[:, :, 20 : 20 + 108])
        aligned = net2d(image[:, :, 16 : 16 + 108])
    torch.testing.assert_close(aligned, whole[:, :, 16 : 16 + 20])
    assert (shifted - whole[:, :, 20 : 20 + 20]).abs().max() > 1e-3


def test_3d_tiles_equal_whole_volume():
    torch.manual_seed(1)
    net = UNet(1, 3, base_channels=2, depth=2, spatial_dims=3).double().eval()
    volume = torch.randn(1, 1, 19, 30, 26, dtype=torch.float64)
    layout = tile_layout(net, volume.shape[2:], (52, 56, 52))
    assert len(layout.corners) > 1
    tiled = overlap_tile_predict(net, volume, patch_size=(52, 56, 52))
    torch.testing.assert_close(tiled, _whole_padded_prediction(net, volume, layout))


def test_upsample_mode_tiles_exactly_too():
    torch.manual_seed(2)
    net = UNet(1, 2, base_channels=2, depth=2, up_mode="upsample").double().eval()
    image = torch.randn(1, 1, 40, 33, dtype=torch.float64)
    tile = net.valid_input_shape((60, 60))
    layout = tile_layout(net, image.shape[2:], tile)
    tiled = overlap_tile_predict(net, image, patch_size=tile)
    torch.testing.assert_close(tiled, _whole_padded_prediction(net, image, layout))


def test_default_is_one_tile(net2d):
    image = torch.randn(1, 1, 30, 41, dtype=torch.float64)
    layout = tile_layout(net2d, (30, 41))
    assert len(layout.corners) == 1 and all(
        o >= s for o, s in zip(layout.tile_out, (30, 41), strict=True)
    )
    torch.testing.assert_close(
        overlap_tile_predict(net2d, image), _whole_padded_prediction(net2d, image, layout)
    )


@settings(max_examples=15, deadline=None)
@given(
    before=st.lists(st.integers(0, 25), min_size=2, max_size=2),
    after=st.lists(st.integers(0, 25), min_size=2, max_size=2),
    h=st.integers(2, 9),
    w=st.integers(2, 9),
)
def test_mirror_pad_matches_numpy_reflect(before, after, h, w):
    x = torch.randn(1, 1, h, w, dtype=torch.float64)
    ref = np.pad(x.numpy(), [(0, 0), (0, 0), *zip(before, after, strict=True)], mode="reflect")
    assert np.array_equal(mirror_pad(x, before, after).numpy(), ref)


def test_same_padding_falls_back_to_sliding_window():
    torch.manual_seed(3)
    net = UNet(1, 2, base_channels=2, depth=2, padding="same").eval()
    image = torch.randn(1, 1, 40, 52)
    got = overlap_tile_predict(net, image, patch_size=(24, 24), overlap=0.5)
    torch.testing.assert_close(got, sliding_window_predict(net, image, (24, 24), overlap=0.5))


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(patch_size=(107, 108)), "does not go through"), (dict(batch_size=0), "batch_size")],
)
def test_bad_input_raises(net2d, kwargs, message):
    with pytest.raises(ValueError, match=message):
        overlap_tile_predict(net2d, torch.zeros(1, 1, 20, 20, dtype=torch.float64), **kwargs)
    with pytest.raises(ValueError, match="image must be"):
        overlap_tile_predict(net2d, torch.zeros(20, 20))


def test_tile_too_small_for_the_pooling_grid():
    net = UNet(1, 2, base_channels=1, depth=3)
    with pytest.raises(ValueError, match="spacing"):
        tile_layout(net, (50, 50), net.valid_input_shape((1, 1)))


def test_both_inference_functions_share_arguments_and_defaults():
    import inspect

    tiles = inspect.signature(overlap_tile_predict).parameters
    windows = inspect.signature(sliding_window_predict).parameters
    shared = ["model", "image", "patch_size", "overlap", "batch_size", "mirror_axes", "device"]
    assert list(tiles) == [*shared, "output_device"]
    assert list(windows)[: len(tiles)] == list(tiles)
    for name in shared[3:]:
        assert tiles[name].default == windows[name].default, name


def test_mirroring_of_a_valid_net_averages_the_flipped_predictions():
    torch.manual_seed(0)
    net = UNet(1, 2, base_channels=2, depth=2).double().eval()
    image = torch.randn(1, 1, 30, 34, dtype=torch.float64)
    plain = overlap_tile_predict(net, image, (76, 76))
    flipped = overlap_tile_predict(net, image.flip(3), (76, 76)).flip(3)
    mirrored = overlap_tile_predict(net, image, (76, 76), mirror_axes=(1,))
    torch.testing.assert_close(mirrored, (plain + flipped) / 2)

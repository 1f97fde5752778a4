"""One constructor convention for every model: ``Model(in_channels, num_classes, base_channels,
depth)``, ``depth`` the number of down-samplings and ``base_channels`` the first level's width,
doubled at each of them, measured on every model (shapes only, on the meta device)."""

from __future__ import annotations

import inspect

import pytest
import torch

from course_lib import models
from course_lib.nnunet.network import PlainConvUNet

CONVENTION = ["in_channels", "num_classes", "base_channels", "depth"]
EXCUSED = {
    "TernausNet": "no depth: the encoder is VGG11's, 5 poolings, to load its pretrained weights",
    "PlainConvUNet": "nnU-Net's planner sets every stage's width, kernel and stride",
}
MODELS = sorted(
    name for name in models.__all__ if isinstance(getattr(models, name), type) and name[0].isupper()
)
# name: (extra constructor options, input spatial shape), every pooling halving every axis
BUILD = {
    "UNet": ({"padding": "same"}, (32, 32)),
    "UNet3D": ({"padding": "same"}, (16, 16, 16)),
    "UNet25D": ({"levels_2d": 0}, (16, 16, 16)),
    "VNet": ({}, (16, 16, 16)),
    "TwoPathwayUNet": ({}, (16, 16, 16)),
}


def test_every_model_is_checked():
    assert set(MODELS) == set(BUILD) | {"TernausNet"}


@pytest.mark.parametrize("name", [*MODELS, "PlainConvUNet"])
def test_constructor_takes_the_four_arguments_in_order(name):
    cls = getattr(models, name, PlainConvUNet)
    params = list(inspect.signature(cls.__init__).parameters)[1:]
    if name in EXCUSED:
        assert params[:2] == CONVENTION[:2], (name, EXCUSED[name])
        return
    assert params[:4] == CONVENTION, name


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("name", sorted(BUILD))
def test_depth_counts_down_samplings_and_base_channels_the_first_level(name, depth):
    options, spatial = BUILD[name]
    with torch.device("meta"):
        net = getattr(models, name)(2, 3, 4, depth, **options)
    seen = []
    for module in net.modules():
        module.register_forward_hook(
            lambda m, i, out: seen.append(out.shape) if isinstance(out, torch.Tensor) else None
        )
    with torch.no_grad():
        out = net(torch.empty(1, 2, *spatial, device="meta"))
    assert tuple(out.shape) == (1, 3, *spatial)
    smallest = min(s[-1] for s in seen)
    assert smallest == spatial[-1] // 2**depth, "depth = number of down-samplings"
    encoder = seen[: next(i for i, s in enumerate(seen) if s[-1] == smallest)]
    assert max(s[1] for s in encoder if s[-1] == spatial[-1]) == 4, "first level: base_channels"
    at_bottom = max(s[1] for s in seen if s[-1] == smallest)
    assert at_bottom == 4 * 2**depth, "base_channels doubled at each down-sampling"

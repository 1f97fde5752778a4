"""Parameters and training-step time of the U-Net variants of chapter 05 and of TernausNet.

Usage: ``python benchmarks/bench_unet_variants.py [--device cuda] [--repeats 10] [--size 128]
[--batch 4] [--width 16]``

Prints one row per net: parameters and the median milliseconds of one optimizer step (forward,
backward, Adam) on a ``(batch, 1, size, size)`` input, and the ratio to the plain U-Net. The
notebook's table measures the same quantity inside its short runs, on a possibly shared machine;
this script repeats it on a quiet one.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from _timing import time_call  # benchmarks/_timing.py, next to this script
from bench_training import training_step
from torch import nn

from course_lib.blocks.conv import DoubleConv
from course_lib.blocks.dense import DenseBlock
from course_lib.blocks.residual import ResidualBlock
from course_lib.blocks.se import se_block
from course_lib.models.ternausnet import TernausNet
from course_lib.models.unet import UNet


def _nets(width: int) -> dict[str, nn.Module]:
    def unet(**options: Any) -> nn.Module:
        return UNet(1, 2, width, 3, padding="same", norm="batch", **options)

    return {
        "U-Net (DoubleConv)": unet(),
        "residual": unet(block=ResidualBlock),
        "dense": unet(block=DenseBlock),
        "squeeze-excitation": unet(block=se_block(DoubleConv, reduction=4)),
        "attention gates": unet(attention_gates=True),
        "up-sampling + conv": unet(up_mode="upsample"),
        "TernausNet": TernausNet(1, 2, width),
    }


def _step_time(net: nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median seconds of one training step (one warm-up step first)."""
    return time_call(training_step(net, x), x.device, repeats=repeats)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--size", type=int, default=128, help="image side, a multiple of 32")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--width", type=int, default=16, help="channels of the first level")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 1, args.size, args.size, device=device)
    print(f"device {device}, input {tuple(x.shape)}, width {args.width}, median of {args.repeats}")
    print(f"{'net':22}{'parameters':>12}{'ms/step':>10}{'vs U-Net':>10}")
    base = None
    for name, net in _nets(args.width).items():
        step_seconds = _step_time(net.to(device), x, args.repeats)
        base = base or step_seconds
        n_params = sum(p.numel() for p in net.parameters())
        print(f"{name:22}{n_params:12,}{1000 * step_seconds:10.1f}{step_seconds / base:10.2f}")


if __name__ == "__main__":
    main()

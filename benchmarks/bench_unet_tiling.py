"""Overlap-tile inference: time per image against the tile size, and the work repeated.

Smaller tiles recompute more of the shared context (the "patch classifier" extreme); one tile
covering the image computes everything once. Prints a table; run on the device you care about:

    python benchmarks/bench_unet_tiling.py [--size 256] [--base 16] [--depth 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math

import torch
from _timing import time_call  # benchmarks/_timing.py, next to this script

from course_lib import runtime
from course_lib.inference.tiling import overlap_tile_predict, tile_layout
from course_lib.models.unet import UNet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="image side (px)")
    parser.add_argument("--base", type=int, default=16, help="base channels")
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = runtime.device()
    runtime.seed_everything(0)
    net = UNet(1, 2, base_channels=args.base, depth=args.depth).to(device).eval()
    image = torch.randn(1, 1, args.size, args.size, device=device)
    step = 2**args.depth
    print(f"U-Net base {args.base}, depth {args.depth}, image {args.size}^2 px on {device}")
    print(
        f"{'output tile':>11s} {'input tile':>10s} {'tiles':>6s} {'input px / image px':>20s} "
        f"{'seconds':>8s}"
    )
    for out in [step, 4 * step, 8 * step, None]:
        layout = tile_layout(
            net,
            (args.size, args.size),
            None if out is None else tile_layout(net, (out, out)).tile_in,
        )
        work = len(layout.corners) * math.prod(layout.tile_in) / args.size**2
        best, _ = time_call(
            lambda layout=layout: overlap_tile_predict(net, image, patch_size=layout.tile_in),
            device,
            repeats=args.repeats,
            reduce=min,
        )
        print(
            f"{layout.tile_out[0]:11d} {layout.tile_in[0]:10d} {len(layout.corners):6d} "
            f"{work:20.1f} {best:8.3f}"
        )


if __name__ == "__main__":
    main()

"""Benchmark: course_lib's sliding_window_predict against MONAI's sliding_window_inference.

Same model, same volume, same windows (a 160^3 volume with 64^3 patches and overlap 0.5 gives
window starts 0, 32, 64, 96 per axis in both libraries), Gaussian blending. Prints a table with
the median time of each, their ratio and the largest difference of the outputs. Goal: ratio <= 1.

    python benchmarks/bench_sliding_window.py        # the issue's case, on runtime.device()
    python benchmarks/bench_sliding_window.py --size 96 --patch 48 --repeats 3   # a quick look
"""

from __future__ import annotations

import argparse
import statistics

import torch
from _timing import time_call  # benchmarks/_timing.py, next to this script

from course_lib import runtime
from course_lib.inference.sliding_window import sliding_window_predict


def _model(channels: int, classes: int) -> torch.nn.Module:
    """A small same-padding 3D net: enough work per window that blending is not all we time."""
    return torch.nn.Sequential(
        torch.nn.Conv3d(1, channels, 3, padding=1),
        torch.nn.PReLU(channels),
        torch.nn.Conv3d(channels, channels, 3, padding=1),
        torch.nn.PReLU(channels),
        torch.nn.Conv3d(channels, classes, 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=160, help="side of the cubic volume")
    parser.add_argument("--patch", type=int, default=64, help="side of the cubic window")
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=2, help="windows per model call")
    parser.add_argument("--channels", type=int, default=8, help="width of the benchmark net")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from monai.inferers import sliding_window_inference  # the peer; installed with the dev extras

    runtime.seed_everything(0)
    device = runtime.device()
    model = _model(args.channels, 2).to(device).eval()
    volume = torch.randn(1, 1, args.size, args.size, args.size, device=device)
    patch = (args.patch,) * 3

    def ours() -> torch.Tensor:
        return sliding_window_predict(
            model, volume, patch, overlap=args.overlap, batch_size=args.batch_size
        )

    def monai() -> torch.Tensor:
        with torch.no_grad():
            return sliding_window_inference(
                volume, patch, args.batch_size, model, overlap=args.overlap, mode="gaussian"
            )

    ours(), monai()  # warm-up: cuDNN autotuning, allocator
    times: dict[str, list[float]] = {"ours": [], "monai": []}
    for _ in range(args.repeats):  # interleaved, so that a busy machine slows both alike
        t, y_ours = time_call(ours, device, repeats=1, warmup=0)
        times["ours"].append(t)
        t, y_monai = time_call(monai, device, repeats=1, warmup=0)
        times["monai"].append(t)
    t_ours, t_monai = statistics.median(times["ours"]), statistics.median(times["monai"])
    diff = (y_ours - y_monai).abs().max().item()

    print(f"device {device}, volume {args.size}^3, patch {args.patch}^3, overlap {args.overlap}")
    print(f"{'implementation':<28}{'median s':>10}")
    print(f"{'course_lib sliding_window':<28}{t_ours:>10.3f}")
    print(f"{'monai sliding_window_inf.':<28}{t_monai:>10.3f}")
    print(f"time ratio ours / monai: {t_ours / t_monai:.2f}   max |difference|: {diff:.2e}")


if __name__ == "__main__":
    main()

"""Benchmark: course_lib's sliding_window_predict against MONAI's sliding_window_inference.

Same model, same volume, same windows (a 160³ volume with 64³ patches and overlap 0.5 gives
window starts 0, 32, 64, 96 per axis in both libraries), Gaussian blending, two windows per model
call. Prints the row of the comparison table (median time of each, their ratio, peak memory and
the largest difference of the outputs). Goal: ratio <= 1. ``benchmarks/report.py`` prints this
row with every other comparison.

    python benchmarks/bench_sliding_window.py            # the issue's case, on runtime.device()
    python benchmarks/bench_sliding_window.py --quick    # a 96³ volume with 48³ windows
"""

from __future__ import annotations

import argparse

import torch
from _timing import Row, compare, print_table  # benchmarks/_timing.py, next to this script

from course_lib import runtime
from course_lib.inference.sliding_window import sliding_window_predict

SIZE, PATCH, QUICK_SIZE, QUICK_PATCH = 160, 64, 96, 48
TARGET = 1.0


def _model(channels: int, classes: int) -> torch.nn.Module:
    """A small same-padding 3D net: enough work per window that blending is not all we time."""
    return torch.nn.Sequential(
        torch.nn.Conv3d(1, channels, 3, padding=1),
        torch.nn.PReLU(channels),
        torch.nn.Conv3d(channels, channels, 3, padding=1),
        torch.nn.PReLU(channels),
        torch.nn.Conv3d(channels, classes, 1),
    )


def sliding_window_row(
    device: torch.device,
    repeats: int,
    quick: bool = False,
    *,
    overlap: float = 0.5,
    batch_size: int = 2,
    channels: int = 8,
) -> Row:
    from monai.inferers import sliding_window_inference  # the peer; installed with the dev extras

    size, side = (QUICK_SIZE, QUICK_PATCH) if quick else (SIZE, PATCH)
    runtime.seed_everything(0)
    model = _model(channels, 2).to(device).eval()
    volume = torch.randn(1, 1, size, size, size, device=device)
    patch = (side,) * 3

    def ours() -> torch.Tensor:
        return sliding_window_predict(model, volume, patch, overlap=overlap, batch_size=batch_size)

    def monai() -> object:
        with torch.no_grad():
            return sliding_window_inference(
                volume, patch, batch_size, model, overlap=overlap, mode="gaussian"
            )

    return compare(
        "sliding window, Gaussian",
        f"{size}³, windows {side}³, overlap {overlap:g}",
        ours,
        "MONAI",
        monai,
        repeats=repeats,
        target=TARGET,
        device=device,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 96³ volume with 48³ windows")
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=2, help="windows per model call")
    parser.add_argument("--channels", type=int, default=8, help="width of the benchmark net")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    row = sliding_window_row(
        runtime.device(),
        args.repeats,
        args.quick,
        overlap=args.overlap,
        batch_size=args.batch_size,
        channels=args.channels,
    )
    print_table([row], "Sliding-window inference")


if __name__ == "__main__":
    main()

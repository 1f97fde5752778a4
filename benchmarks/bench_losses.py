"""Forward + backward time of course_lib's Dice, focal and Tversky losses against MONAI's.

Usage: ``python benchmarks/bench_losses.py [--device cuda] [--repeats 10] [--shape 2 3 96 96 64]``

Prints one row per loss: median milliseconds of ``loss(logits, labels).backward()`` for each
library and their ratio (ours / MONAI; goal: <= 1). Both get the same logits and the same integer
labels (MONAI with ``to_onehot_y=True``), with the same activation and settings, and both results
are checked equal first.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from _timing import time_call  # benchmarks/_timing.py, next to this script

from course_lib import losses


def _forward_backward(fn: Callable[[torch.Tensor], torch.Tensor], logits: torch.Tensor) -> None:
    fn(logits.detach().requires_grad_(True)).backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--shape", type=int, nargs="+", default=[2, 3, 96, 96, 64])
    args = parser.parse_args()
    if len(args.shape) not in (4, 5) or args.repeats < 1:
        parser.error("--shape needs N C and 2 or 3 spatial sizes; --repeats must be >= 1")
    try:
        import monai.losses as monai_losses
    except ImportError:
        raise SystemExit("MONAI is not installed: this benchmark compares against it") from None

    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    n, c, *spatial = args.shape
    logits = torch.randn(*args.shape, generator=gen).to(device)
    labels = torch.randint(0, c, (n, *spatial), generator=gen).to(device)
    labels_1 = labels.unsqueeze(1)  # MONAI's (N, 1, *spatial) label layout

    cases = {
        "dice (softmax)": (
            lambda x: losses.dice_loss(x, labels),
            lambda x: monai_losses.DiceLoss(softmax=True, to_onehot_y=True)(x, labels_1),
        ),
        "focal (sigmoid, gamma 2)": (
            lambda x: losses.focal_loss(x, labels, gamma=2.0, activation="sigmoid"),
            lambda x: monai_losses.FocalLoss(gamma=2.0, to_onehot_y=True)(x, labels_1),
        ),
        "tversky (0.3, 0.7)": (
            lambda x: losses.tversky_loss(x, labels, alpha=0.3, beta=0.7),
            lambda x: monai_losses.TverskyLoss(softmax=True, to_onehot_y=True, alpha=0.3, beta=0.7)(
                x, labels_1
            ),
        ),
    }
    print(f"shape {tuple(args.shape)}, {device}, median of {args.repeats} forward + backward")
    print(f"{'loss':26s} {'course_lib ms':>14s} {'MONAI ms':>10s} {'ratio':>7s}")
    for name, (ours, theirs) in cases.items():
        assert torch.allclose(ours(logits), theirs(logits), atol=1e-5), name
        t_ours, t_theirs = (
            time_call(
                lambda f=f: _forward_backward(f, logits), logits.device, repeats=args.repeats
            )[0]
            for f in (ours, theirs)
        )
        print(f"{name:26s} {1e3 * t_ours:14.2f} {1e3 * t_theirs:10.2f} {t_ours / t_theirs:7.2f}")


if __name__ == "__main__":
    main()

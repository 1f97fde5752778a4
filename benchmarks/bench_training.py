"""One training step of course_lib's U-Net and V-Net against MONAI's BasicUNet and VNet.

    python benchmarks/bench_training.py [--device cuda] [--repeats 5] [--quick]

A step is forward, cross-entropy, backward and an Adam update, on the same random batch for both.
The nets have the same width: U-Net (2D, base 16, depth 4, same padding, batch norm, ReLU, 2x2
transposed convolutions) against ``BasicUNet(features=(16, 32, 64, 128, 256, 16), act="relu",
norm="batch")``, which is the same architecture; V-Net (base 16, kernel 5, batch norm, PReLU)
against ``VNet(act="prelu")`` without dropout, which follows the reference implementation's
stages (1, 2, 3, 2 convolutions down, 2, 2, 1, 1 up) where ours follows the paper's (1, 2, 3, 3, 3
down, 3, 3, 2, 1 up); the size column gives both parameter counts. Goal (issue 19): ratio <= 1.
``benchmarks/report.py`` prints these rows with every other comparison; the throughput
(samples per second) is the batch over the step time.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from _timing import Row, compare, print_table  # benchmarks/_timing.py, next to this script
from torch import nn

from course_lib.models.unet import UNet
from course_lib.models.vnet import VNet

TARGET = 1.0
UNET_INPUT, QUICK_UNET_INPUT = (8, 1, 128, 128), (2, 1, 64, 64)
VNET_INPUT, QUICK_VNET_INPUT = (1, 1, 48, 48, 48), (1, 1, 32, 32, 32)


def training_step(
    net: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None
) -> Callable[[], None]:
    """A callable doing one optimizer step (forward, loss, backward, Adam) of ``net`` on ``x``.

    The loss is the cross-entropy with ``target``, or the mean square of the output without one.
    """
    opt = torch.optim.Adam(net.parameters())

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = net(x).float()
        loss = out.square().mean() if target is None else F.cross_entropy(out, target)
        loss.backward()
        opt.step()

    return step


def _params(net: nn.Module) -> str:
    return f"{sum(p.numel() for p in net.parameters()) / 1e6:.2f}M"


def _batch(shape: tuple[int, ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=gen)
    y = torch.randint(0, 2, (shape[0], *shape[2:]), generator=gen)
    return x.to(device), y.to(device)


def rows(device: torch.device, repeats: int, quick: bool = False) -> list[Row]:
    from monai.networks.nets import BasicUNet
    from monai.networks.nets import VNet as MonaiVNet

    torch.manual_seed(0)
    unet = UNet(1, 2, 16, 4, padding="same", norm="batch").to(device)
    basic = BasicUNet(2, 1, 2, features=(16, 32, 64, 128, 256, 16), act="relu", norm="batch")
    vnet = VNet(1, 2, 16, 4, norm="batch").to(device)
    with warnings.catch_warnings():  # MONAI deprecates dropout_prob, which we leave at its default
        warnings.simplefilter("ignore")
        monai_vnet = MonaiVNet(
            3, 1, 2, act="prelu", dropout_prob_down=0.0, dropout_prob_up=(0.0, 0.0)
        )
    out = []
    for name, ours, theirs, peer, shape in [
        (
            "U-Net training step",
            unet,
            basic,
            "MONAI BasicUNet",
            QUICK_UNET_INPUT if quick else UNET_INPUT,
        ),
        (
            "V-Net training step",
            vnet,
            monai_vnet,
            "MONAI VNet",
            QUICK_VNET_INPUT if quick else VNET_INPUT,
        ),
    ]:
        x, y = _batch(shape, device)
        out.append(
            compare(
                name,
                f"{'x'.join(map(str, shape))}; {_params(ours)} vs {_params(theirs)} parameters",
                training_step(ours, x, y),
                peer,
                training_step(theirs.to(device), x, y),
                repeats=repeats,
                target=TARGET,
                device=device,
                results_differ=True,
            )
        )
    return out


def throughput(row: Row) -> str:
    """Samples per second of both sides of a training-step row (the batch is the size's first
    number)."""
    batch = int(row.size.split("x")[0])
    return (
        f"{row.operation} on {row.device}: {batch / row.ours_s:.1f} samples/s (course_lib), "
        f"{batch / row.peer_s:.1f} ({row.peer})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small batches, for a quick look")
    args = parser.parse_args()
    measured = rows(torch.device(args.device), args.repeats, args.quick)
    print_table(measured, "Training steps")
    print("\n".join(throughput(row) for row in measured))


if __name__ == "__main__":
    main()

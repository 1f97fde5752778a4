"""Forward + backward of course_lib's losses against MONAI's, and Lovász-softmax against Berman's.

Usage: ``python benchmarks/bench_losses.py [--device cuda] [--repeats 10] [--quick]``

One row per loss, dimension and class count: the median time of ``loss(logits, labels)`` and its
backward for each library, their ratio (ours / MONAI; goal: <= 1), the peak memory of each and the
largest difference of the loss values and gradients. Both get the same float32 logits and the same
integer labels (MONAI with ``to_onehot_y=True``), with the same activation and settings.
``benchmarks/report.py`` prints these rows with every other comparison.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from _timing import Row, compare, print_table  # benchmarks/_timing.py, next to this script

from course_lib import losses

Loss = Callable[[torch.Tensor], torch.Tensor]

SHAPES = {"2D": (8, 256, 256), "3D": (2, 96, 96, 64)}
"""(N, *spatial) of the logits per dimension; the channels are the class count."""
QUICK_SHAPES = {"2D": (4, 96, 96), "3D": (1, 48, 48, 32)}
LOVASZ_SHAPE, QUICK_LOVASZ_SHAPE = (4, 4, 128, 128), (2, 4, 64, 64)
LOSS_TARGET = 1.0


def forward_backward(fn: Loss, logits: torch.Tensor) -> Callable[[], tuple[torch.Tensor, ...]]:
    """A call that evaluates ``fn`` on fresh leaf logits and back-propagates: (loss, gradient)."""

    def run() -> tuple[torch.Tensor, ...]:
        x = logits.detach().requires_grad_(True)
        loss = fn(x)
        loss.backward()
        assert x.grad is not None
        return loss.detach(), x.grad

    return run


def _inputs(
    shape: tuple[int, ...], classes: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    n, *spatial = shape
    logits = torch.randn(n, classes, *spatial, generator=gen)
    labels = torch.randint(0, classes, (n, *spatial), generator=gen)
    return logits.to(device), labels.to(device)


def monai_cases(labels: torch.Tensor) -> dict[str, tuple[Loss, Loss]]:
    """course_lib's loss and MONAI's with the same definition, for one label map."""
    import monai.losses as monai_losses

    labels_1 = labels.unsqueeze(1)  # MONAI's (N, 1, *spatial) label layout
    dice = monai_losses.DiceLoss(softmax=True, to_onehot_y=True)
    focal = monai_losses.FocalLoss(gamma=2.0, to_onehot_y=True)
    tversky = monai_losses.TverskyLoss(softmax=True, to_onehot_y=True, alpha=0.3, beta=0.7)
    dice_ce = monai_losses.DiceCELoss(softmax=True, to_onehot_y=True)
    return {
        "Dice (softmax)": (lambda x: losses.dice_loss(x, labels), lambda x: dice(x, labels_1)),
        "focal (sigmoid, gamma 2)": (
            lambda x: losses.focal_loss(x, labels, gamma=2.0, activation="sigmoid"),
            lambda x: focal(x, labels_1),
        ),
        "Tversky (0.3, 0.7)": (
            lambda x: losses.tversky_loss(x, labels, alpha=0.3, beta=0.7),
            lambda x: tversky(x, labels_1),
        ),
        "Dice + CE": (lambda x: losses.dice_ce_loss(x, labels), lambda x: dice_ce(x, labels_1)),
    }


def monai_rows(device: torch.device, repeats: int, quick: bool = False) -> list[Row]:
    """Dice, focal, Tversky and Dice + CE against MONAI, in 2D and 3D, with 2 and 4 classes."""
    rows = []
    for dim, shape in (QUICK_SHAPES if quick else SHAPES).items():
        for classes in (2, 4):
            logits, labels = _inputs(shape, classes, device)
            size = f"{dim} {'x'.join(map(str, logits.shape))}"
            for name, (ours, theirs) in monai_cases(labels).items():
                rows.append(
                    compare(
                        f"{name} fwd+bwd",
                        size,
                        forward_backward(ours, logits),
                        "MONAI",
                        forward_backward(theirs, logits),
                        repeats=repeats,
                        target=LOSS_TARGET,
                        device=device,
                    )
                )
    return rows


def berman_lovasz_softmax(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The reference formulation (Berman et al. 2018, Sec. 3.2; their ``lovasz_softmax`` with its
    defaults): the whole batch as one image, a Python loop over the classes present, each
    class's errors sorted and dotted with the Jaccard loss's Lovász gradient."""
    flat_probs = probs.movedim(1, -1).reshape(-1, probs.shape[1])
    flat_labels = labels.reshape(-1)
    class_losses = []
    for c in range(probs.shape[1]):
        foreground = (flat_labels == c).float()
        if foreground.sum() == 0:
            continue
        errors = (foreground - flat_probs[:, c]).abs()
        errors_sorted, order = torch.sort(errors, descending=True)
        fg_sorted = foreground[order]
        positives = fg_sorted.sum()
        jaccard = 1 - (positives - fg_sorted.cumsum(0)) / (positives + (1 - fg_sorted).cumsum(0))
        jaccard[1:] = jaccard[1:] - jaccard[:-1].clone()
        class_losses.append(torch.dot(errors_sorted, jaccard))
    return torch.stack(class_losses).mean()


def lovasz_row(device: torch.device, repeats: int, quick: bool = False) -> Row:
    """course_lib's batched ``lovasz_softmax`` against the reference's per-class loop."""
    shape = QUICK_LOVASZ_SHAPE if quick else LOVASZ_SHAPE
    logits, labels = _inputs((shape[0], *shape[2:]), shape[1], device)
    return compare(
        "Lovász-softmax fwd+bwd",
        f"2D {'x'.join(map(str, shape))}",
        forward_backward(lambda x: losses.lovasz_softmax(x, labels), logits),
        "Berman's formulation",
        forward_backward(lambda x: berman_lovasz_softmax(x.softmax(dim=1), labels), logits),
        repeats=repeats,
        device=device,
    )


def rows(device: torch.device, repeats: int, quick: bool = False) -> list[Row]:
    return [*monai_rows(device, repeats, quick), lovasz_row(device, repeats, quick)]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="small inputs, for a quick look")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    print_table(rows(torch.device(args.device), args.repeats, args.quick), "Losses")


if __name__ == "__main__":
    main()

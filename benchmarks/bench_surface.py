"""HD95 and ASSD against MONAI and medpy, and the distance transform against SciPy's.

Run: ``python benchmarks/bench_surface.py [--quick] [--repeats 3]``. The masks are two
overlapping ellipsoids, the prediction with a bump, on cubes of 128³ and 256³ voxels, spacing
1.5×1×1 mm. Each metric is one call, as a user would call it. Goals (issue 19): HD95 at most half
the time of the fastest peer on the CPU; on CUDA the whole computation stays on the GPU (inputs,
every intermediate and the result live there, so only the final ``float()`` syncs), measured
against the CPU peers. ``benchmarks/report.py`` prints these rows with every other comparison.
"""

from __future__ import annotations

import argparse
import importlib.util
import warnings
from collections.abc import Callable

import torch
from _timing import (
    Row,
    compare,
    compare_peers,
    print_table,
)  # benchmarks/_timing.py, next to this script

from course_lib.metrics import average_surface_distance, hausdorff_distance
from course_lib.ops.distance_transform import distance_transform_edt

SPACING = (1.5, 1.0, 1.0)
SIDES, QUICK_SIDES = (128, 256), (48, 64)
EDT_SIDES, QUICK_EDT_SIDES = (128,), (48,)
HD95_TARGET = 0.5


def ellipsoid_pair(shape: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """A target ellipsoid and a shifted, slightly larger prediction with a bump on one side."""
    z, y, x = torch.meshgrid(*[torch.linspace(-1, 1, n) for n in shape], indexing="ij")
    target = (z / 0.6) ** 2 + (y / 0.5) ** 2 + (x / 0.55) ** 2 <= 1
    pred = ((z - 0.04) / 0.62) ** 2 + ((y + 0.03) / 0.5) ** 2 + (x / 0.57) ** 2 <= 1
    bump = (z / 0.1) ** 2 + ((y - 0.5) / 0.12) ** 2 + (x / 0.1) ** 2 <= 1
    return pred | bump, target


def course_lib_runs(pred: torch.Tensor, target: torch.Tensor) -> dict[str, Callable[[], float]]:
    return {
        "HD95": lambda: float(hausdorff_distance(pred, target, percentile=95, spacing=SPACING)),
        "ASSD": lambda: float(average_surface_distance(pred, target, spacing=SPACING)),
    }


def monai_runs(pred: torch.Tensor, target: torch.Tensor) -> dict[str, Callable[[], float]]:
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance

    p, t = pred[None, None].float(), target[None, None].float()
    kw = {"include_background": True, "spacing": list(SPACING)}
    return {
        "HD95": lambda: float(compute_hausdorff_distance(p, t, percentile=95, **kw)),
        "ASSD": lambda: float(compute_average_surface_distance(p, t, symmetric=True, **kw)),
    }


def medpy_runs(pred: torch.Tensor, target: torch.Tensor) -> dict[str, Callable[[], float]]:
    from medpy.metric import binary

    p, t = pred.numpy(), target.numpy()
    return {
        "HD95": lambda: float(binary.hd95(p, t, SPACING)),  # the pooled convention
        "ASSD": lambda: float(binary.assd(p, t, SPACING)),
    }


def surface_rows(
    repeats: int, quick: bool = False, device: torch.device | str = "cpu", budget_s: float = 30.0
) -> list[Row]:
    """HD95 and ASSD of course_lib (on ``device``) against each installed peer (on the CPU).

    medpy's HD95 pools both directions before the percentile, course_lib and MONAI take the larger
    of the two directed P95s, so medpy's HD95 differs by design (its row shows by how much).
    """
    warnings.filterwarnings("ignore", module="monai")
    peers = {"MONAI": ("monai", monai_runs), "medpy": ("medpy", medpy_runs)}
    missing = [name for name, (module, _) in peers.items() if not importlib.util.find_spec(module)]
    for name in missing:
        print(f"{name} is not installed: its surface-distance rows are left out")
        del peers[name]
    rows = []
    for side in QUICK_SIDES if quick else SIDES:
        pred, target = ellipsoid_pair((side, side, side))
        ours = course_lib_runs(pred.to(device), target.to(device))
        theirs = {name: runs(pred, target) for name, (_, runs) in peers.items()}
        for metric in ("HD95", "ASSD"):
            rows += compare_peers(
                metric,
                f"{side}³",
                ours[metric],
                {name: runs[metric] for name, runs in theirs.items()},
                repeats=repeats,
                budget_s=budget_s,
                target=HD95_TARGET if metric == "HD95" else None,
                device=device,
                peer_device="cpu",
            )
    return rows


def edt_rows(
    repeats: int, quick: bool = False, device: torch.device | str = "cpu", budget_s: float = 30.0
) -> list[Row]:
    """The exact Euclidean distance transform of the target ellipsoid, against SciPy's."""
    import scipy.ndimage

    rows = []
    for side in QUICK_EDT_SIDES if quick else EDT_SIDES:
        _, target = ellipsoid_pair((side, side, side))
        mask, array = target.to(device), target.numpy()
        rows.append(
            compare(
                "EDT",
                f"{side}³",
                lambda mask=mask: distance_transform_edt(mask, SPACING),
                "SciPy",
                lambda array=array: scipy.ndimage.distance_transform_edt(array, SPACING),
                repeats=repeats,
                budget_s=budget_s,
                device=device,
                peer_device="cpu",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small volumes, for a quick look")
    parser.add_argument(
        "--device", default="cpu", help="course_lib's device; the peers use the CPU"
    )
    args = parser.parse_args()
    rows = surface_rows(args.repeats, args.quick, args.device)
    rows += edt_rows(args.repeats, args.quick, args.device)
    print_table(rows, "Surface distances and the distance transform")
    print("medpy's HD95 pools both directions; course_lib and MONAI take the max of the two P95s.")


if __name__ == "__main__":
    main()

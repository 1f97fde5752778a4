"""HD95 and ASSD on pairs of 3D masks: course_lib against MONAI and medpy, time ratios printed.

Run: ``python benchmarks/bench_surface.py`` (``--repeat 3`` for steadier numbers). The masks are two
overlapping ellipsoids, the prediction with a bump, at 160³ and 128×256×256 voxels, spacing
1.5×1×1 mm. Each metric is one call, timed on its own, as a user would call it. Goal (issue 5):
course_lib on the CPU no slower than the fastest peer; on CUDA the whole computation stays on the
GPU (inputs, every intermediate and the result live there, so only the final ``float()`` syncs).
"""

from __future__ import annotations

import argparse
import importlib.util
import warnings
from collections.abc import Callable

import torch
from _timing import time_call  # benchmarks/_timing.py, next to this script

from course_lib.metrics import average_surface_distance, hausdorff_distance

SPACING = (1.5, 1.0, 1.0)
SHAPES = [(160, 160, 160), (128, 256, 256)]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    print(f"torch threads: {torch.get_num_threads()}")
    print(
        f"{'shape':>12} {'metric':>6} {'implementation':>16} {'seconds':>8} {'ratio':>6} {'mm':>8}"
    )
    for shape in SHAPES:
        pred, target = ellipsoid_pair(shape)
        impls = {"course_lib cpu": course_lib_runs(pred, target)}
        for name, runs in [("monai", monai_runs), ("medpy", medpy_runs)]:
            if importlib.util.find_spec(name):
                impls[name] = runs(pred, target)
        if torch.cuda.is_available():
            on_gpu = pred.to("cuda"), target.to("cuda")
            impls["course_lib cuda"] = course_lib_runs(*on_gpu)
            float(hausdorff_distance(*on_gpu))  # warm-up: CUDA context and kernels
        for metric in ("HD95", "ASSD"):
            timed = {
                name: time_call(runs[metric], repeats=args.repeat, warmup=0, reduce=min)
                for name, runs in impls.items()
            }
            peers = [t for name, (t, _) in timed.items() if "course_lib" not in name]
            for name, (seconds, value) in timed.items():
                ratio = f"{seconds / min(peers):6.2f}" if peers else "   n/a"
                size = "x".join(map(str, shape))
                print(f"{size:>12} {metric:>6} {name:>16} {seconds:8.3f} {ratio} {value:8.4f}")
    print("ratio: time / fastest peer on the CPU (below 1: faster than every peer)")
    print("medpy's HD95 pools both directions; course_lib and MONAI take the max of the two P95s.")


if __name__ == "__main__":
    main()

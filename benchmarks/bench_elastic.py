"""3D elastic deformation of a 128^3 volume + label: course_lib against TorchIO, on the CPU.

    python benchmarks/bench_elastic.py [--size 128] [--repeats 5] [--device cpu]

Both deform an image (trilinear) and a label map (nearest neighbour) with a cubic B-spline field on
a 7 x 7 x 7 control grid. TorchIO (``RandomElasticDeformation``, SimpleITK resampling) is optional:
install it in a benchmark environment (``pip install torchio``; check first with
``pip install --dry-run torchio`` that it leaves torch and numpy alone). Goal: faster than TorchIO.
"""

from __future__ import annotations

import argparse

import torch
from _timing import time_call  # benchmarks/_timing.py, next to this script

from course_lib.data import smooth_deform_3d

CONTROL_POINTS = 7  # TorchIO's default num_control_points
MAX_DISPLACEMENT = 7.5  # TorchIO's default max_displacement (voxels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="edge of the cubic volume (voxels)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per method (median)")
    parser.add_argument("--device", default="cpu", help="device of course_lib's run, e.g. cpu")
    args = parser.parse_args()
    if args.size < 8 or args.repeats < 1:
        parser.error("--size must be >= 8 and --repeats >= 1")

    gen = torch.Generator().manual_seed(0)
    n = args.size
    image = torch.rand(1, 1, n, n, n, generator=gen)
    label = torch.randint(0, 3, (1, n, n, n), generator=gen)
    device = torch.device(args.device)
    img_d, lab_d = image.to(device), label.to(device)

    def ours() -> object:
        # std chosen so that most control-point displacements stay within TorchIO's maximum
        return smooth_deform_3d(
            img_d, lab_d, control_points=CONTROL_POINTS, std=MAX_DISPLACEMENT / 2, generator=gen
        )

    rows = [
        (
            f"course_lib smooth_deform_3d ({device.type})",
            time_call(ours, device, repeats=args.repeats)[0],
        )
    ]
    try:
        import torchio as tio
    except ImportError:
        tio = None
        print(
            "TorchIO is not installed: `pip install torchio` in a benchmark environment to compare."
        )
    if tio is not None:
        transform = tio.RandomElasticDeformation(
            num_control_points=CONTROL_POINTS, max_displacement=MAX_DISPLACEMENT
        )
        subject = tio.Subject(
            image=tio.ScalarImage(tensor=image[0]), label=tio.LabelMap(tensor=label)
        )
        rows.append(
            (
                f"TorchIO {tio.__version__} RandomElasticDeformation (cpu)",
                time_call(lambda: transform(subject), repeats=args.repeats)[0],
            )
        )

    print(
        f"\n3D elastic deformation, image + label, {n}^3 voxels, "
        f"{torch.get_num_threads()} CPU thread(s), median of {args.repeats}"
    )
    print(f"{'method':58} {'seconds':>8} {'speed-up':>11}")
    reference = rows[1][1] if len(rows) > 1 else None
    for name, seconds in rows:
        ratio = f"{reference / seconds:10.1f}x" if reference else "          -"
        print(f"{name:58} {seconds:8.3f} {ratio}")


if __name__ == "__main__":
    main()

"""3D elastic deformation of a 128³ volume + label: course_lib against TorchIO, on the CPU.

    python benchmarks/bench_elastic.py [--size 128] [--repeats 5] [--device cpu] [--quick]

Both deform an image (trilinear) and a label map (nearest neighbour) with a cubic B-spline field on
a 7 x 7 x 7 control grid. TorchIO (``RandomElasticDeformation``, SimpleITK resampling, given as
many threads as torch) is a benchmark-only peer (``pip install --no-deps -r
requirements-bench.txt``). Goal (issue 19): at most half TorchIO's time. The fields are random in
both, so the row shows no difference of the results.
``benchmarks/report.py`` prints this row with every other comparison.
"""

from __future__ import annotations

import argparse

import torch
from _timing import Row, compare, print_table  # benchmarks/_timing.py, next to this script

from course_lib.data import smooth_deform_3d

CONTROL_POINTS = 7  # TorchIO's default num_control_points
MAX_DISPLACEMENT = 7.5  # TorchIO's default max_displacement (voxels)
SIZE, QUICK_SIZE = 128, 64
TARGET = 0.5


def elastic_row(
    repeats: int, quick: bool = False, device: torch.device | str = "cpu", size: int | None = None
) -> Row | None:
    """The row, or None (with a message) when TorchIO is not installed."""
    try:
        import torchio as tio
    except ImportError:
        print("TorchIO is not installed: no elastic row (see requirements-bench.txt)")
        return None
    import SimpleITK as sitk  # TorchIO's resampler; give it the threads torch has

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(torch.get_num_threads())
    n = size or (QUICK_SIZE if quick else SIZE)
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(1, 1, n, n, n, generator=gen)
    label = torch.randint(0, 3, (1, n, n, n), generator=gen)
    img_d, lab_d = image.to(device), label.to(device)

    def ours() -> object:
        # std chosen so that most control-point displacements stay within TorchIO's maximum
        return smooth_deform_3d(
            img_d, lab_d, control_points=CONTROL_POINTS, std=MAX_DISPLACEMENT / 2, generator=gen
        )

    transform = tio.RandomElasticDeformation(
        num_control_points=CONTROL_POINTS, max_displacement=MAX_DISPLACEMENT
    )
    subject = tio.Subject(image=tio.ScalarImage(tensor=image[0]), label=tio.LabelMap(tensor=label))
    return compare(
        "elastic deformation, image + label",
        f"3D {n}³, 7³ control points",
        ours,
        f"TorchIO {tio.__version__}",
        lambda: transform(subject),
        repeats=repeats,
        target=TARGET,
        device=device,
        peer_device="cpu",
        results_differ=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", type=int, default=None, help="edge of the cubic volume (voxels)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per method (median)")
    parser.add_argument("--device", default="cpu", help="device of course_lib's run, e.g. cpu")
    parser.add_argument("--quick", action="store_true", help="a 64³ volume")
    args = parser.parse_args()
    if (args.size is not None and args.size < 8) or args.repeats < 1:
        parser.error("--size must be >= 8 and --repeats >= 1")
    row = elastic_row(args.repeats, args.quick, args.device, args.size)
    if row is not None:
        print_table([row], "3D elastic deformation")


if __name__ == "__main__":
    main()

"""Where and how big the course runs: device, quick/full profile, seeding, mixed precision.

The profile is decided once per process. ``COURSE_PROFILE=quick|full`` wins; otherwise the course
runs ``quick`` when the ``CI`` variable is set or no CUDA device is present, and ``full`` on a GPU
(Colab). Notebooks take every size knob from :func:`profile` and the device from :func:`device`,
so one notebook serves a laptop without a GPU and a Colab GPU runtime alike.

Every seed a chapter uses goes through :func:`seed`: ``COURSE_SEED=k`` (default 0) shifts all of
them at once, so a learner (or ``benchmarks/claims.py``) can check that a chapter's claims hold for
other initial weights, batches and synthetic data, not only for the run its author watched.

Examples
--------
>>> from course_lib import runtime
>>> p = runtime.profile()
>>> p.name in ("quick", "full")
True
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import random
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import torch

from course_lib import distributed
from course_lib._version import __version__
from course_lib.ops.checks import check_int

PROFILE_ENV = "COURSE_PROFILE"
DEVICE_ENV = "COURSE_DEVICE"
SEED_ENV = "COURSE_SEED"
PROFILE_NAMES = ("quick", "full")
REPOSITORY_URL = "https://github.com/segmentation-course/segmentation-course"
"""Where the course lives; each release is the tag ``v<version>`` there."""


@dataclass(frozen=True)
class Profile:
    """Every size knob a chapter may turn, for one profile.

    Chapters scale their own experiments from these numbers (for example a chapter that needs
    twice the default iterations writes ``2 * p.iterations``) rather than inventing flags.
    """

    name: str
    """``"quick"`` (2 CPU cores, minutes) or ``"full"`` (a GPU, real training)."""
    device: torch.device
    """Where tensors and models go."""
    epochs: int
    """Passes over a small training set."""
    iterations: int
    """Optimizer steps of one training run."""
    n_images: int
    """2D images generated for a dataset."""
    image_size: int
    """Side of a generated 2D image, in pixels."""
    n_volumes: int
    """3D cases generated for a dataset."""
    volume_shape: tuple[int, int, int]
    """Typical (D, H, W) of a generated 3D case, in voxels."""
    patch_size_2d: tuple[int, int]
    """Training tile of the 2D nets."""
    patch_size_3d: tuple[int, int, int]
    """Training patch of the 3D nets."""
    batch_size: int
    """Mini-batch size."""
    base_channels: int
    """Width of the first level of the nets trained in the chapters (the papers use 32-64)."""
    num_workers: int
    """DataLoader worker processes."""
    amp: bool
    """Whether training uses automatic mixed precision (only ever on CUDA)."""


def _quick(dev: torch.device) -> Profile:
    return Profile(
        name="quick",
        device=dev,
        epochs=3,
        iterations=150,
        n_images=12,
        image_size=128,
        n_volumes=6,
        volume_shape=(32, 64, 64),
        patch_size_2d=(96, 96),
        patch_size_3d=(24, 48, 48),
        batch_size=2,
        base_channels=8,
        num_workers=0,
        amp=False,
    )


def _full(dev: torch.device) -> Profile:
    return Profile(
        name="full",
        device=dev,
        epochs=40,
        iterations=3000,
        n_images=60,
        image_size=256,
        n_volumes=30,
        volume_shape=(64, 160, 160),
        patch_size_2d=(256, 256),
        patch_size_3d=(64, 128, 128),
        batch_size=4,
        base_channels=32,
        num_workers=min(4, os.cpu_count() or 1),
        amp=dev.type == "cuda",
    )


def device() -> torch.device:
    """The device to compute on: ``COURSE_DEVICE`` if set, else CUDA when present (under torchrun,
    this process's GPU, ``cuda:LOCAL_RANK``), else the CPU.

    Raises
    ------
    ValueError
        If ``COURSE_DEVICE`` names a device torch does not know or that is not available.
    """
    requested = os.environ.get(DEVICE_ENV, "").strip()
    if requested:
        try:
            dev = torch.device(requested)
        except RuntimeError as err:
            raise ValueError(
                f"{DEVICE_ENV}={requested!r} is not a device torch knows; expected e.g. 'cpu' or "
                "'cuda:0'"
            ) from err
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"{DEVICE_ENV}={requested!r} asks for CUDA, but no CUDA device exists")
        return dev
    return distributed.local_device()


def _profile_name() -> str:
    requested = os.environ.get(PROFILE_ENV, "").strip().lower()
    if requested:
        if requested not in PROFILE_NAMES:
            raise ValueError(
                f"{PROFILE_ENV} must be one of {PROFILE_NAMES}, got {os.environ[PROFILE_ENV]!r}"
            )
        return requested
    if os.environ.get("CI") or not torch.cuda.is_available():
        return "quick"
    return "full"


@functools.cache
def profile() -> Profile:
    """The active :class:`Profile`, decided once per process (see the module docstring).

    Asking for ``full`` on a machine without CUDA works (the course still runs, slowly) but warns.
    """
    name = _profile_name()
    if name == "full" and device().type != "cuda":
        warnings.warn(
            "COURSE_PROFILE=full without a CUDA device: every chapter will run, but training for "
            "real on the CPU takes hours. Use a GPU runtime (Colab: Runtime > Change runtime type) "
            "or the quick profile.",
            stacklevel=2,
        )
    return named_profile(name)


def named_profile(name: str) -> Profile:
    """The knobs of the profile called ``name`` on this machine's device, without activating it.

    ``data_scripts/make_data.py --profile full`` uses it to write the full-size data on a CPU.
    """
    if name not in PROFILE_NAMES:
        raise ValueError(f"profile name must be one of {PROFILE_NAMES}, got {name!r}")
    return _quick(device()) if name == "quick" else _full(device())


def profile_table() -> list[dict[str, object]]:
    """Both profiles side by side, as rows ``{"knob", "quick", "full"}`` for display."""
    quick, full = asdict(named_profile("quick")), asdict(named_profile("full"))
    return [{"knob": k, "quick": quick[k], "full": full[k]} for k in quick]


def course_seed() -> int:
    """The seed shift ``k`` of ``COURSE_SEED=k`` (0 when unset).

    Raises
    ------
    ValueError
        If ``COURSE_SEED`` is not a non-negative integer.
    """
    raw = os.environ.get(SEED_ENV, "").strip()
    if not raw:
        return 0
    if not raw.isdigit():
        raise ValueError(f"{SEED_ENV} must be a non-negative integer, got {raw!r}")
    return int(raw)


def seed(base: int = 0) -> int:
    """The seed a chapter should use where it means ``base``, shifted by ``COURSE_SEED``.

    With ``COURSE_SEED`` unset or 0 this is ``base`` itself, so the default run is unchanged. For
    ``COURSE_SEED=k > 0`` it is a 63-bit number mixed from ``(base, k)`` by NumPy's
    ``SeedSequence``: different bases stay different and no two shifts share a seed.

    >>> seed(7) if course_seed() == 0 else 7
    7
    """
    check_int("seed", base, minimum=0)
    shift = course_seed()
    if shift == 0:
        return base
    state = np.random.SeedSequence([base, shift]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def generator(base: int = 0, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with :func:`seed` ``(base)``."""
    return torch.Generator(device=device).manual_seed(seed(base))


def seed_everything(base: int = 0) -> int:
    """Seed Python's, NumPy's and torch's global generators (CUDA included) in one call.

    The seed used is :func:`seed` ``(base)``, so ``COURSE_SEED`` shifts it; it is returned.
    """
    value = seed(base)
    random.seed(value)
    # The legacy global generator on purpose: learners' and libraries' code draws from it.
    np.random.seed(value % 2**32)  # noqa: NPY002
    torch.manual_seed(value)  # also seeds every CUDA device
    return value


def autocast(
    dev: torch.device | str | None = None, *, enabled: bool = True
) -> contextlib.AbstractContextManager[None]:
    """Mixed precision on CUDA, a no-op elsewhere.

    On CUDA this is ``torch.autocast("cuda")`` with bfloat16 where the GPU supports it (no loss
    scaling needed) and float16 otherwise; on the CPU it changes nothing, so the same training code
    runs in float32 there.
    """
    dev = torch.device(dev) if dev is not None else device()
    if not enabled or dev.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    if not parts:
        raise ValueError(f"cannot read a version number from {version!r}")
    return tuple(parts)


def release_requirement(version: str) -> str:
    """The pip requirement that installs course_lib release ``version`` (its tag ``v<version>``).

    >>> release_requirement("0.2.0")
    'course-lib @ git+https://github.com/segmentation-course/segmentation-course@v0.2.0'
    """
    return f"course-lib @ git+{REPOSITORY_URL}@v{version}"


def require_version(minimum: str, installed: str = __version__) -> None:
    """Stop a notebook early, with a plain explanation, when the installed course_lib is too old.

    A chapter calls this with the release it was written for, the one its first cell installs.
    The message says how to install that release and that the kernel must restart to use it.

    Raises
    ------
    RuntimeError
        If ``installed`` is older than ``minimum``.
    """
    if _version_tuple(installed) < _version_tuple(minimum):
        requirement = release_requirement(minimum)
        raise RuntimeError(
            f"This notebook was written for course_lib {minimum}, but the older course_lib "
            f"{installed} is installed. Install release {minimum}: on Colab, run "
            f'`%pip install -U "{requirement}"` in a new cell, then Runtime > Restart session and '
            f"run the notebook again from its first cell; in a terminal, `pip install -U "
            f'"{requirement}"` (from a clone of the course: `git checkout v{minimum}` and '
            "`pip install -e .`), then restart the kernel."
        )


def environment_report() -> str:
    """A few lines saying which versions, device and profile this session uses."""
    p = profile()
    if p.device.type == "cuda":
        where = f"{p.device} ({torch.cuda.get_device_name(p.device)})"
    else:
        where = f"{p.device} ({os.cpu_count()} cores)"
    return "\n".join(
        [
            f"course_lib {__version__}, torch {torch.__version__}, numpy {np.__version__}, "
            f"python {platform.python_version()}",
            f"device:  {where}",
            f"profile: {p.name} (set {PROFILE_ENV}=quick|full to change it), seed shift "
            f"{course_seed()} (set {SEED_ENV}=k to change it)",
        ]
    )

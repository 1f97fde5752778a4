"""The course's named datasets: one call loads a dataset, or makes it first.

:func:`load_dataset` reads ``<data dir>/<profile>/<name>...`` when the files are there and match
their manifest (generator parameters, a digest of the generators' code, SHA-256 checksums), and
otherwise generates the dataset from :mod:`course_lib.data.synthetic`, writes it atomically and
returns it. So a chapter opened on
its own (on Colab, say) works, and ``data_scripts/make_data.py`` is only a way to do all the work
up front.

Where the data lives: ``$COURSE_DATA_DIR`` if set; else ``data/`` at the root of the course
checkout (when ``course_lib`` is used from one); else ``./data`` in the working directory.

=================  ============================================================================
name               what :func:`load_dataset` returns
=================  ============================================================================
cells_phase        :class:`CellImages`, phase-contrast-like touching cells (U-Net)
cells_em           :class:`CellImages`, EM-like packed cells, membranes = class 1
ct_volumes         list of :class:`VolumeCase`, CT-like organ + lesion, anisotropic
mr_volumes         list of :class:`VolumeCase`, MR-like (bias field), same geometry
mr_multichannel    list of :class:`VolumeCase`, T1/T2-like channels, 1.5 x 0.4 x 0.4 mm
sparse_volumes     list of :class:`VolumeCase`, labels on a few orthogonal slices, rest -1
nnunet_ct          :class:`pathlib.Path` of an nnU-Net v2 raw dataset (``Dataset501_CourseCT``)
=================  ============================================================================

Sizes come from the profile: ``n_images`` x ``image_size`` for cells, ``n_volumes`` cases of about
``volume_shape`` for volumes. The generators' seeds go through :func:`course_lib.runtime.seed`, so
``COURSE_SEED=k`` draws other data (kept apart, under ``<profile>-seed<k>``).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from course_lib import runtime
from course_lib._version import __version__
from course_lib.atomic import atomic_path
from course_lib.data import nifti, synthetic
from course_lib.data.nifti import write_nnunet_raw
from course_lib.data.synthetic import (
    CT_LABELS,
    CellImages,
    VolumeCase,
    make_cells,
    make_mr_multichannel,
    make_sparse_annotation,
    make_volumes,
)

DATA_DIR_ENV = "COURSE_DATA_DIR"
DATA_VERSION = 1
"""Bump when the storage format changes: older files on disk are then regenerated."""

NNUNET_DATASET = "Dataset501_CourseCT"
SPARSE_SLICES_PER_AXIS = 2
"""Annotated slices per axis in ``sparse_volumes`` (the 3D U-Net paper labels a few per axis)."""

ProfileLike = runtime.Profile | str | None


# ----------------------------------------------------------------------------------------------
# Where, and how big
# ----------------------------------------------------------------------------------------------
def data_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: ``data_dir``, else ``$COURSE_DATA_DIR``, else the checkout's ``data/``."""
    if data_dir is not None:
        return Path(data_dir)
    if os.environ.get(DATA_DIR_ENV, "").strip():
        return Path(os.environ[DATA_DIR_ENV])
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "course_lib").is_dir():
        return checkout / "data"
    return Path.cwd() / "data"


def _folder(data_dir: str | os.PathLike[str] | None, sizes: runtime.Profile) -> Path:
    """``<data dir>/<profile>``, or ``<profile>-seed<k>`` for data drawn under ``COURSE_SEED=k``."""
    shift = runtime.course_seed()
    return data_root(data_dir) / (sizes.name if shift == 0 else f"{sizes.name}-seed{shift}")


def _sizes(profile: ProfileLike) -> runtime.Profile:
    """The size knobs of a profile given as a Profile, a name, or None (the active one)."""
    if profile is None:
        return runtime.profile()
    if isinstance(profile, runtime.Profile):
        return profile
    if profile not in runtime.PROFILE_NAMES:
        raise ValueError(
            f"profile must be a runtime.Profile, one of {runtime.PROFILE_NAMES} or None, got "
            f"{profile!r}"
        )
    return runtime.named_profile(profile)


# ----------------------------------------------------------------------------------------------
# Storage of tensors (torch.save of plain dicts, read back with weights_only=True)
# ----------------------------------------------------------------------------------------------
def _save(path: Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _cells_payload(cells: CellImages) -> dict[str, Any]:
    return {
        "images": cells.images,
        "instances": cells.instances.to(torch.int32),  # compact on disk
        "masks": cells.masks.to(torch.uint8),
        "style": cells.style,
    }


def _cells_from(payload: dict[str, Any]) -> CellImages:
    return CellImages(
        images=payload["images"],
        instances=payload["instances"].long(),
        masks=payload["masks"].long(),
        style=payload["style"],
    )


def _volumes_payload(cases: list[VolumeCase]) -> dict[str, Any]:
    def one(c: VolumeCase) -> dict[str, Any]:
        d = {
            "case_id": c.case_id,
            "image": c.image,
            "label": c.label.to(torch.int8),  # classes 0..2 and UNLABELED = -1
            "spacing": list(c.spacing),
            "channel_names": list(c.channel_names),
        }
        if c.dense_label is not None:
            d["dense_label"] = c.dense_label.to(torch.int8)
        return d

    return {"cases": [one(c) for c in cases]}


def _volumes_from(payload: dict[str, Any]) -> list[VolumeCase]:
    return [
        VolumeCase(
            case_id=d["case_id"],
            image=d["image"],
            label=d["label"].long(),
            spacing=tuple(d["spacing"]),
            channel_names=tuple(d["channel_names"]),
            dense_label=d["dense_label"].long() if "dense_label" in d else None,
        )
        for d in payload["cases"]
    ]


# ----------------------------------------------------------------------------------------------
# The datasets
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Spec:
    params: Callable[[Any], dict[str, Any]]
    """Generator arguments for a profile (stored in the manifest; a change means regenerate)."""
    build: Callable[[dict[str, Any], Path], tuple[Any, list[Path]]]
    """Generate, write under the folder, return (value, written files)."""
    read: Callable[[dict[str, Any], Path], Any]
    """Read the value back from the folder."""


def _tensor_spec(
    make: Callable[..., Any],
    to_payload: Callable,
    from_payload: Callable,
    params: Callable[[Any], dict[str, Any]],
    file: str,
) -> _Spec:
    def build(p: dict[str, Any], folder: Path) -> tuple[Any, list[Path]]:
        value = make(**p)
        _save(folder / file, to_payload(value))
        return value, [folder / file]

    return _Spec(params, build, lambda p, folder: from_payload(_load(folder / file)))


def _sparse_volumes(**p: Any) -> list[VolumeCase]:
    slices = p.pop("n_slices_per_axis")
    cases = make_volumes(**p)
    return [
        VolumeCase(
            case_id=c.case_id.replace("ct_", "sparse_"),
            image=c.image,
            label=make_sparse_annotation(c.label, slices, seed=p["seed"] + i),
            spacing=c.spacing,
            channel_names=c.channel_names,
            dense_label=c.label,
        )
        for i, c in enumerate(cases)
    ]


def _nnunet_build(p: dict[str, Any], folder: Path) -> tuple[Path, list[Path]]:
    # the same generator call as ct_volumes, so the raw dataset holds exactly those cases
    cases = make_volumes(**p)
    shutil.rmtree(folder / "nnUNet_raw" / NNUNET_DATASET, ignore_errors=True)  # no stale cases
    root = write_nnunet_raw(folder / "nnUNet_raw" / NNUNET_DATASET, cases, labels=CT_LABELS)
    return root, sorted(f for f in root.rglob("*") if f.is_file())


def _volume_params(seed: int, modality: str) -> Callable[[Any], dict[str, Any]]:
    return lambda s: {
        "n": s.n_volumes,
        "seed": runtime.seed(seed),
        "modality": modality,
        "shape": tuple(s.volume_shape),
    }


_SPECS: dict[str, _Spec] = {
    "cells_phase": _tensor_spec(
        make_cells,
        _cells_payload,
        _cells_from,
        lambda s: {
            "n": s.n_images,
            "size": s.image_size,
            "seed": runtime.seed(0),
            "style": "phase",
        },
        "cells_phase.pt",
    ),
    "cells_em": _tensor_spec(
        make_cells,
        _cells_payload,
        _cells_from,
        lambda s: {"n": s.n_images, "size": s.image_size, "seed": runtime.seed(1), "style": "em"},
        "cells_em.pt",
    ),
    "ct_volumes": _tensor_spec(
        make_volumes, _volumes_payload, _volumes_from, _volume_params(2, "ct"), "ct_volumes.pt"
    ),
    "mr_volumes": _tensor_spec(
        make_volumes, _volumes_payload, _volumes_from, _volume_params(3, "mr"), "mr_volumes.pt"
    ),
    "mr_multichannel": _tensor_spec(
        make_mr_multichannel,
        _volumes_payload,
        _volumes_from,
        lambda s: {"n": s.n_volumes, "seed": runtime.seed(4), "shape": tuple(s.volume_shape)},
        "mr_multichannel.pt",
    ),
    "sparse_volumes": _tensor_spec(
        _sparse_volumes,
        _volumes_payload,
        _volumes_from,
        lambda s: {**_volume_params(5, "ct")(s), "n_slices_per_axis": SPARSE_SLICES_PER_AXIS},
        "sparse_volumes.pt",
    ),
    "nnunet_ct": _Spec(
        params=_volume_params(2, "ct"),
        build=_nnunet_build,
        read=lambda p, folder: folder / "nnUNet_raw" / NNUNET_DATASET,
    ),
}
DATASET_NAMES = tuple(_SPECS)


# ----------------------------------------------------------------------------------------------
# Manifest: what was generated, with which parameters, and the files' checksums
# ----------------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest_path(folder: Path, name: str) -> Path:
    return folder / f"{name}.manifest.json"


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(params))  # tuples become lists, as they come back from disk


@functools.cache
def _generator_digest() -> str:
    """SHA-256 of the generators' source: files made by other code are made again."""
    digest = hashlib.sha256()
    for module in (synthetic, nifti):
        digest.update(Path(inspect.getfile(module)).read_bytes())
    return digest.hexdigest()


def _is_valid(folder: Path, name: str, params: dict[str, Any]) -> bool:
    path = _manifest_path(folder, name)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if (
        manifest.get("data_version") != DATA_VERSION
        or manifest.get("generator") != _generator_digest()
        or manifest.get("params") != _jsonable(params)
    ):
        return False
    files = manifest.get("files", {})
    return bool(files) and all(
        (folder / rel).is_file() and _sha256(folder / rel) == digest
        for rel, digest in files.items()
    )


def _write_manifest(folder: Path, name: str, params: dict[str, Any], files: list[Path]) -> None:
    manifest = {
        "name": name,
        "data_version": DATA_VERSION,
        "course_lib": __version__,
        "generator": _generator_digest(),
        "params": _jsonable(params),
        "files": {f.relative_to(folder).as_posix(): _sha256(f) for f in files},
    }
    with atomic_path(_manifest_path(folder, name)) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _check_name(name: str) -> _Spec:
    if name not in _SPECS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASET_NAMES)}")
    return _SPECS[name]


def dataset_is_valid(
    name: str, profile: ProfileLike = None, *, data_dir: str | os.PathLike[str] | None = None
) -> bool:
    """Whether ``name`` is on disk for ``profile`` with matching parameters and checksums."""
    spec = _check_name(name)
    sizes = _sizes(profile)
    return _is_valid(_folder(data_dir, sizes), name, spec.params(sizes))


def load_dataset(
    name: str, profile: ProfileLike = None, *, data_dir: str | os.PathLike[str] | None = None
) -> Any:
    """Load a course dataset, generating and writing it first when it is missing or invalid.

    Parameters
    ----------
    name : str
        One of :data:`DATASET_NAMES` (see the table in the module docstring).
    profile : Profile, "quick", "full" or None
        Which sizes; ``None`` is the active :func:`course_lib.runtime.profile`.
    data_dir : path, optional
        Data folder (default: :func:`data_root`).

    Returns
    -------
    CellImages, list of VolumeCase, or Path
        CPU tensors (move them to ``P.device`` where you train); the nnU-Net dataset's folder.

    Examples
    --------
    >>> cells = load_dataset("cells_phase")  # doctest: +SKIP
    >>> cells.images.shape  # doctest: +SKIP
    torch.Size([12, 1, 128, 128])
    """
    spec = _check_name(name)
    sizes = _sizes(profile)
    folder = _folder(data_dir, sizes)
    params = spec.params(sizes)
    if _is_valid(folder, name, params):
        return spec.read(params, folder)
    value, files = spec.build(dict(params), folder)
    _write_manifest(folder, name, params, files)
    return value

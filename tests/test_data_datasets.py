"""load_dataset and data_scripts/make_data.py: generate once, keep valid files, write atomically."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from course_lib import runtime
from course_lib.atomic import atomic_path, remove_stale_temporaries
from course_lib.data import (
    DATASET_NAMES,
    UNLABELED,
    CellImages,
    data_root,
    dataset_is_valid,
    load_dataset,
    read_nnunet_raw,
)
from course_lib.data import datasets as datasets_module

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny() -> runtime.Profile:
    return dataclasses.replace(
        runtime.profile(),
        name="quick",
        n_images=2,
        image_size=48,
        n_volumes=2,
        volume_shape=(12, 24, 24),
    )


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_generates_once_then_reads_from_disk(tmp_path, tiny):
    first = load_dataset("cells_phase", tiny, data_dir=tmp_path)
    assert isinstance(first, CellImages) and first.images.shape == (2, 1, 48, 48)
    data_file = tmp_path / "quick" / "cells_phase.pt"
    manifest = json.loads((tmp_path / "quick" / "cells_phase.manifest.json").read_text())
    assert manifest["params"] == {"n": 2, "size": 48, "seed": 0, "style": "phase"}
    assert list(manifest["files"]) == ["cells_phase.pt"]
    stamp = data_file.stat().st_mtime_ns
    second = load_dataset("cells_phase", tiny, data_dir=tmp_path)
    assert data_file.stat().st_mtime_ns == stamp  # read, not rewritten
    assert torch.equal(first.images, second.images) and torch.equal(first.masks, second.masks)
    assert second.instances.dtype == torch.int64


def test_corrupt_or_outdated_files_are_regenerated(tmp_path, tiny):
    original = load_dataset("ct_volumes", tiny, data_dir=tmp_path)
    data_file = tmp_path / "quick" / "ct_volumes.pt"
    data_file.write_bytes(data_file.read_bytes()[:-10] + b"corrupted!")
    assert not dataset_is_valid("ct_volumes", tiny, data_dir=tmp_path)
    again = load_dataset("ct_volumes", tiny, data_dir=tmp_path)
    assert dataset_is_valid("ct_volumes", tiny, data_dir=tmp_path)
    for a, b in zip(original, again, strict=True):
        assert torch.equal(a.image, b.image) and torch.equal(a.label, b.label)
        assert a.spacing == b.spacing
    bigger = dataclasses.replace(tiny, n_volumes=3)
    assert not dataset_is_valid("ct_volumes", bigger, data_dir=tmp_path)
    assert len(load_dataset("ct_volumes", bigger, data_dir=tmp_path)) == 3


def test_interrupted_generation_leaves_no_partial_file(tmp_path, tiny, monkeypatch):
    def save_then_die(obj, path):
        Path(path).write_bytes(b"half a tensor")  # the write had started ...
        raise KeyboardInterrupt  # ... when the user pressed Ctrl-C

    monkeypatch.setattr(datasets_module.torch, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        load_dataset("cells_em", tiny, data_dir=tmp_path)
    assert files_under(tmp_path) == []  # no data file, no temporary, no manifest
    monkeypatch.undo()
    cells = load_dataset("cells_em", tiny, data_dir=tmp_path)
    assert files_under(tmp_path / "quick") == ["cells_em.manifest.json", "cells_em.pt"]
    assert cells.style == "em"


def test_atomic_path_and_stale_temporaries(tmp_path):
    target = tmp_path / "a" / "x.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("boom")
    assert not target.exists() and files_under(tmp_path) == []
    # a killed process leaves its temporary behind: old ones are removed, fresh ones kept
    stale, fresh = tmp_path / ".tmp-0-x.pt", tmp_path / ".tmp-1-y.pt"
    stale.write_text("old")
    fresh.write_text("new")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    assert remove_stale_temporaries(tmp_path) == 1
    assert not stale.exists() and fresh.exists()


def test_volume_datasets(tmp_path, tiny):
    sparse = load_dataset("sparse_volumes", tiny, data_dir=tmp_path)
    for case in sparse:
        assert (case.label == UNLABELED).float().mean() > 0.5
        known = case.label != UNLABELED
        assert torch.equal(case.label[known], case.dense_label[known])
    mr = load_dataset("mr_multichannel", tiny, data_dir=tmp_path)
    assert all(c.image.shape[0] == 2 and c.spacing == (1.5, 0.4, 0.4) for c in mr)
    assert load_dataset("mr_volumes", tiny, data_dir=tmp_path)[0].channel_names == ("T1",)


def test_nnunet_dataset_is_the_ct_volumes_on_disk(tmp_path, tiny):
    root = load_dataset("nnunet_ct", tiny, data_dir=tmp_path)
    assert root == tmp_path / "quick" / "nnUNet_raw" / "Dataset501_CourseCT"
    assert (root / "dataset.json").is_file()
    ct = load_dataset("ct_volumes", tiny, data_dir=tmp_path)
    for a, b in zip(ct, read_nnunet_raw(root), strict=True):
        assert a.case_id == b.case_id and a.spacing == b.spacing
        assert torch.equal(a.label, b.label)
    assert load_dataset("nnunet_ct", tiny, data_dir=tmp_path) == root


def test_data_dir_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "elsewhere"))
    assert data_root() == tmp_path / "elsewhere"
    monkeypatch.delenv("COURSE_DATA_DIR")
    from_checkout = Path(datasets_module.__file__).resolve().parents[2] == ROOT
    # an editable install (the course's set-up) uses the checkout's data/ folder
    assert data_root() == (ROOT / "data" if from_checkout else Path.cwd() / "data")


def test_bad_names_and_profiles(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'cells'"):
        load_dataset("cells", data_dir=tmp_path)
    with pytest.raises(ValueError, match="profile"):
        load_dataset("cells_em", "medium", data_dir=tmp_path)
    assert set(DATASET_NAMES) >= {"cells_phase", "cells_em", "ct_volumes", "nnunet_ct"}


# ---------------------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def make_data():
    spec = importlib.util.spec_from_file_location(
        "make_data", ROOT / "data_scripts" / "make_data.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_data_writes_then_keeps(tmp_path, make_data, capsys):
    args = ["--profile", "quick", "--data-dir", str(tmp_path), "--only", "cells_em", "ct_volumes"]
    assert make_data.main(args) == 0
    assert "written" in capsys.readouterr().out
    assert dataset_is_valid("cells_em", "quick", data_dir=tmp_path)
    assert make_data.main(args) == 0
    out = capsys.readouterr().out
    assert "written" not in out and out.count("kept") == 2


@pytest.mark.parametrize(
    "args",
    [["--profile", "medium"], ["--only", "cells"], ["--unknown"]],
)
def test_make_data_rejects_bad_arguments(make_data, args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        make_data.main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err or "unrecognized" in err


def test_make_data_rejects_a_file_as_data_dir(make_data, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(SystemExit):
        make_data.main(["--data-dir", str(tmp_path / "file")])


def test_files_made_by_other_generator_code_are_made_again(tmp_path, tiny, monkeypatch):
    load_dataset("cells_em", tiny, data_dir=tmp_path)
    assert dataset_is_valid("cells_em", tiny, data_dir=tmp_path)
    monkeypatch.setattr(datasets_module, "_generator_digest", lambda: "edited generator")
    assert not dataset_is_valid("cells_em", tiny, data_dir=tmp_path)


def test_a_killed_run_leaves_only_complete_files(tmp_path):
    """Kill the command mid-run: whatever has a final name is complete and loads."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        str(ROOT / "data_scripts" / "make_data.py"),
        "--data-dir",
        str(tmp_path),
    ]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.rglob("*.manifest.json")):
        time.sleep(0.05)  # kill once the first dataset is done and the next is being written
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for path in tmp_path.rglob("*"):
        if path.is_dir() or path.name.startswith(".tmp-"):
            continue  # a temporary is never read: it has no final name
        if path.suffix == ".pt":
            torch.load(path, weights_only=True)  # complete: loads
        if path.name.endswith(".manifest.json"):
            name = path.name.removesuffix(".manifest.json")
            assert dataset_is_valid(name, "quick", data_dir=tmp_path)

"""``fit`` under torchrun: 2 CPU processes (gloo) take the steps of 1 process with the whole batch,
and a resumed data-parallel run continues as if it had never stopped (tests/_ddp_fit.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from course_lib import distributed

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _ddp_fit  # noqa: E402


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("ddp") / "result.json"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    done = subprocess.run(
        [*command, str(HERE / "_ddp_fit.py"), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _ddp_fit.runs(tmp_path_factory.mktemp("single"))


def test_two_processes_with_half_batches_match_one_process(two_processes, one_process):
    assert two_processes["world"] == 2 and one_process["world"] == 1
    two, one = two_processes["uninterrupted"], one_process["uninterrupted"]
    assert two["batch_seen"] == [2] and one["batch_seen"] == [4]  # each process its share
    assert len(two["train_loss"]) == 6 and two["val_steps"] == one["val_steps"] == [3, 6]
    torch.testing.assert_close(two["train_loss"], one["train_loss"], rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(two["val"], one["val"], rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(
        two_processes["weights"]["uninterrupted"],
        one_process["weights"]["uninterrupted"],
        rtol=1e-9,
        atol=1e-6,
    )
    assert two["train_loss"][-1] < two["train_loss"][0]  # and the run did learn


@pytest.mark.parametrize("result", ["two_processes", "one_process"])
def test_a_resumed_run_equals_an_uninterrupted_one(result, request):
    runs = request.getfixturevalue(result)
    resumed, uninterrupted = runs["resumed"], runs["uninterrupted"]
    torch.testing.assert_close(resumed["train_loss"], uninterrupted["train_loss"], rtol=0, atol=0)
    assert resumed["val"] == uninterrupted["val"] and resumed["val_steps"] == [3, 6]
    assert runs["weights"]["resumed"] == runs["weights"]["uninterrupted"]


def test_batch_share_needs_a_multiple_of_the_world_size():
    x = torch.zeros(3, 1)
    with pytest.raises(ValueError, match="batch size 3, which 2 processes cannot share"):
        distributed.batch_share((x, x), rank=0, world=2)
    a, b = (
        distributed.batch_share((torch.arange(6),), 0, 3),
        distributed.batch_share((torch.arange(6),), 2, 3),
    )
    assert a[0].tolist() == [0, 1] and b[0].tolist() == [4, 5]


def test_outside_torchrun_nothing_is_distributed(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not distributed.init_from_environment(torch.device("cpu"))
    assert distributed.rank_and_world() == (0, 1)
    assert distributed.mean_over_ranks(2.5, torch.device("cpu")) == 2.5
    assert distributed.from_rank_zero({"a": 1}) == {"a": 1}

"""course_lib.runtime: profile choice, device, seeding, autocast, version checks."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
import torch

from course_lib import __version__, runtime


@pytest.fixture
def fresh_profile(monkeypatch):
    """Clear the once-per-process profile cache around a test that changes the environment."""
    runtime.profile.cache_clear()
    yield monkeypatch
    runtime.profile.cache_clear()


def test_profile_env_overrides(fresh_profile):
    fresh_profile.setenv("COURSE_PROFILE", "quick")
    assert runtime.profile().name == "quick"


def test_ci_defaults_to_quick(fresh_profile):
    fresh_profile.delenv("COURSE_PROFILE", raising=False)
    fresh_profile.setenv("CI", "true")
    assert runtime.profile().name == "quick"


def test_no_cuda_defaults_to_quick(fresh_profile):
    fresh_profile.delenv("COURSE_PROFILE", raising=False)
    fresh_profile.delenv("CI", raising=False)
    fresh_profile.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.profile().name == "quick"


def test_cuda_without_ci_defaults_to_full(fresh_profile):
    fresh_profile.delenv("COURSE_PROFILE", raising=False)
    fresh_profile.delenv("CI", raising=False)
    fresh_profile.delenv("COURSE_DEVICE", raising=False)
    fresh_profile.setattr(torch.cuda, "is_available", lambda: True)
    fresh_profile.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    p = runtime.profile()
    assert p.name == "full" and p.device.type == "cuda" and p.amp


def test_full_on_cpu_warns_but_works(fresh_profile):
    fresh_profile.setenv("COURSE_PROFILE", "full")
    fresh_profile.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="without a CUDA device"):
        p = runtime.profile()
    assert p.name == "full" and p.device.type == "cpu" and not p.amp


def test_unknown_profile_is_a_clear_error(fresh_profile):
    fresh_profile.setenv("COURSE_PROFILE", "fast")
    with pytest.raises(ValueError, match="COURSE_PROFILE must be one of .* got 'fast'"):
        runtime.profile()


def test_profile_is_frozen_and_quick_is_smaller():
    quick, full = runtime._quick(torch.device("cpu")), runtime._full(torch.device("cpu"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.epochs = 99  # type: ignore[misc]
    for knob in ("iterations", "n_images", "image_size", "n_volumes", "base_channels"):
        assert getattr(quick, knob) < getattr(full, knob), knob
    assert [row["knob"] for row in runtime.profile_table()] == [
        f.name for f in dataclasses.fields(runtime.Profile)
    ]


def test_device_env(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert runtime.device() == torch.device("cpu")
    monkeypatch.setenv("COURSE_DEVICE", "tpu-please")
    with pytest.raises(ValueError, match="COURSE_DEVICE='tpu-please'"):
        runtime.device()
    monkeypatch.setenv("COURSE_DEVICE", "cuda:0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA device"):
        runtime.device()


def test_seed_everything_repeats_every_generator():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()  # noqa: NPY002

    runtime.seed_everything(123)
    first = draw()
    runtime.seed_everything(123)
    assert draw() == first
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        runtime.seed_everything(-1)


def test_course_seed_shifts_every_seed(monkeypatch):
    monkeypatch.delenv("COURSE_SEED", raising=False)
    assert runtime.course_seed() == 0
    assert [runtime.seed(b) for b in (0, 1, 99)] == [0, 1, 99]  # the default run is unchanged
    assert runtime.seed_everything(5) == 5
    shifted = {}
    for k in (1, 2):
        monkeypatch.setenv("COURSE_SEED", str(k))
        shifted[k] = [runtime.seed(b) for b in range(50)]
        assert shifted[k] == [runtime.seed(b) for b in range(50)]  # a pure function of (base, k)
        assert all(0 <= s < 2**63 for s in shifted[k])
    seeds = shifted[1] + shifted[2] + list(range(50))
    assert len(set(seeds)) == len(seeds), "two (base, shift) pairs share a seed"
    monkeypatch.setenv("COURSE_SEED", "1")
    assert runtime.seed_everything(3) == runtime.seed(3)
    draw = torch.rand(3, generator=runtime.generator(3))
    assert torch.equal(draw, torch.rand(3, generator=runtime.generator(3)))
    monkeypatch.setenv("COURSE_SEED", "0")
    assert not torch.equal(draw, torch.rand(3, generator=runtime.generator(3)))


@pytest.mark.parametrize("bad", ["-1", "two", "1.5"])
def test_bad_course_seed_is_a_clear_error(monkeypatch, bad):
    monkeypatch.setenv("COURSE_SEED", bad)
    with pytest.raises(
        ValueError, match=f"COURSE_SEED must be a non-negative integer, got '{bad}'"
    ):
        runtime.seed(0)


def test_autocast_is_a_noop_on_cpu():
    x = torch.randn(4, 4)
    with runtime.autocast(torch.device("cpu")):
        y = x @ x
    assert y.dtype == torch.float32


def test_require_version():
    runtime.require_version("0.0.1")
    runtime.require_version(__version__)
    runtime.require_version("0.1", installed="0.1.0+local")
    with pytest.raises(RuntimeError, match=r"written for course_lib 9\.0, but the older"):
        runtime.require_version("9.0")
    assert runtime._version_tuple("0.10.2") > runtime._version_tuple("0.9.9")


def test_require_version_says_how_to_install_the_pinned_release():
    with pytest.raises(RuntimeError) as info:
        runtime.require_version("0.2.0", installed="0.1.0")
    message = str(info.value)
    assert "course_lib 0.2.0" in message and "course_lib 0.1.0 is installed" in message
    assert runtime.release_requirement("0.2.0") in message  # the tag v0.2.0
    assert "@v0.2.0" in message and "Restart session" in message and "first cell" in message


def test_environment_report_names_versions_device_profile():
    report = runtime.environment_report()
    assert __version__ in report and torch.__version__ in report
    assert "device:" in report and "profile:" in report


def test_named_profile_does_not_activate_it(fresh_profile):
    fresh_profile.setenv("COURSE_PROFILE", "quick")
    assert runtime.named_profile("full").name == "full"
    assert runtime.profile().name == "quick"
    with pytest.raises(ValueError, match="profile name must be one of"):
        runtime.named_profile("huge")

"""Planner: our plans against nnunetv2 2.8.1's ExperimentPlanner (fixtures made by
tests/fixtures/nnunet/make_fixtures.py), plus properties of each heuristic."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from _nnunet_fixtures import assert_plans_match, load_json, make_fixtures
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.nnunet import planning
from course_lib.nnunet.planning import (
    feature_map_voxels,
    fullres_target_spacing,
    normalization_and_mask,
    pad_to_multiple,
    plan_configuration,
    plan_experiment,
    pool_and_conv_props,
    transpose_axes,
)

PLANNER_CASES = load_json("planner_cases.json")


@pytest.mark.parametrize("case", PLANNER_CASES, ids=[c["name"] for c in PLANNER_CASES])
def test_plans_match_nnunetv2(case: dict) -> None:
    ours = plan_experiment(
        case["fingerprint"],
        case["dataset_json"],
        gpu_memory_target_gb=case["gpu_memory_target_gb"],
    )
    assert_plans_match(ours, case["expected"])


def test_fixtures_cover_every_rule() -> None:
    """The reference cases exercise the cascade, the 5 % cap, the floor of 2 and shrinking."""
    configs = [c["expected"]["configurations"] for c in PLANNER_CASES]
    assert any("3d_cascade_fullres" in c for c in configs)
    assert any("3d_fullres" in c and "3d_lowres" not in c for c in configs)
    assert any("3d_fullres" not in c for c in configs)  # pseudo-2D data: 2d only
    assert any(c.get("3d_fullres", {}).get("batch_size") == 2 for c in configs)
    assert any(c.get("3d_fullres", {}).get("batch_size", 0) > 2 for c in configs)
    transposes = {tuple(c["expected"]["transpose_forward"]) for c in PLANNER_CASES}
    assert len(transposes) >= 3


def test_anisotropic_dataset_gets_tenth_percentile_and_in_plane_kernels() -> None:
    """ACDC-like data (10 x 1.5 x 1.5 mm): z target = 10th percentile, first kernels (1, 3, 3)."""
    case = next(c for c in PLANNER_CASES if c["name"] == "acdc_like")
    plans = plan_experiment(case["fingerprint"], case["dataset_json"])
    full = plans["configurations"]["3d_fullres"]
    z = [s[0] for s in case["fingerprint"]["spacings"]]
    assert full["spacing"][0] == pytest.approx(np.percentile(z, 10))  # 5.6, not the median 10
    assert full["architecture"]["arch_kwargs"]["kernel_sizes"][0] == [1, 3, 3]


def test_memory_estimate_matches_network_feature_maps() -> None:
    """feature_map_voxels = summed numel of the conv / transposed conv / head outputs."""
    import torch

    from course_lib.nnunet.network import PlainConvUNet

    topo = pool_and_conv_props((2.0, 1.0, 1.0), (12, 40, 36))
    feats = planning.features_per_stage(len(topo.strides), 3)
    net = PlainConvUNet(2, 3, feats, topo.kernel_sizes, topo.strides)
    total = 0

    def count(_module: torch.nn.Module, _inp: object, out: torch.Tensor) -> None:
        nonlocal total
        total += out[0].numel()  # one sample

    for m in net.modules():
        if isinstance(m, (torch.nn.Conv3d, torch.nn.ConvTranspose3d)):
            m.register_forward_hook(count)
    with torch.no_grad():
        net(torch.zeros(1, 2, *topo.patch_size))
    # the deep-supervision heads of the lower decoder stages exist but are not run without DS
    assert total == feature_map_voxels(topo.patch_size, feats, topo.strides, num_classes=3)


def test_target_spacing_median_and_anisotropy_rule() -> None:
    shapes = [[20, 200, 200]] * 4
    iso = fullres_target_spacing([[1, 1, 1], [2, 1, 1], [3, 1, 1], [4, 1, 1]], shapes)
    np.testing.assert_allclose(iso, [2.5, 1, 1])  # even count: mean of the middle two
    aniso = fullres_target_spacing([[4, 1, 1], [5, 1, 1], [6, 1, 1], [7, 1, 1]], shapes)
    np.testing.assert_allclose(aniso, [np.percentile([4, 5, 6, 7], 10), 1, 1])
    # many voxels along the coarse axis: no exception even with coarse spacing
    many = fullres_target_spacing([[4, 1, 1], [5, 1, 1]], [[100, 200, 200]] * 2)
    np.testing.assert_allclose(many, [4.5, 1, 1])


def test_transpose_is_a_permutation_and_inverse() -> None:
    forward, backward = transpose_axes([0.7, 5.0, 0.7])
    assert forward == [1, 0, 2]
    assert [forward[b] for b in backward] == [0, 1, 2]


@settings(max_examples=40, deadline=None)
@given(
    spacing=st.lists(st.floats(0.3, 8.0), min_size=3, max_size=3),
    patch=st.lists(st.integers(4, 300), min_size=3, max_size=3),
)
def test_topology_properties(spacing: list[float], patch: list[int]) -> None:
    topo = pool_and_conv_props(spacing, patch)
    assert len(topo.strides) == len(topo.kernel_sizes) >= 1 + max(topo.num_pool_per_axis)
    for axis in range(3):
        assert sum(s[axis] == 2 for s in topo.strides) == topo.num_pool_per_axis[axis]
        assert topo.patch_size[axis] % topo.divisible_by[axis] == 0
        assert patch[axis] <= topo.patch_size[axis] < patch[axis] + topo.divisible_by[axis]
        # the bottleneck feature map is never below 4 voxels along a pooled axis
        if topo.num_pool_per_axis[axis]:
            assert topo.patch_size[axis] / topo.divisible_by[axis] >= 4
    assert topo.kernel_sizes[-1] == (3, 3, 3)


def test_pad_to_multiple_keeps_multiples() -> None:
    assert pad_to_multiple((64, 65, 1), (32, 32, 1)) == (64, 96, 1)


def test_batch_size_floor_and_cap() -> None:
    kwargs = dict(
        num_classes=2,
        normalization_schemes=["CTNormalization"],
        use_mask_for_norm=[False],
        data_identifier="x",
    )
    tiny = plan_configuration((1.0, 1.0, 1.0), (32, 32, 32), 32**3 * 2, **kwargs)
    assert tiny["batch_size"] == 2  # the 5 % cap gives 0: the floor of 2 wins
    big = plan_configuration((1.0, 1.0, 1.0), (32, 32, 32), 32**3 * 10_000, **kwargs)
    est = feature_map_voxels(
        big["patch_size"],
        big["architecture"]["arch_kwargs"]["features_per_stage"],
        big["architecture"]["arch_kwargs"]["strides"],
        2,
    )
    assert big["batch_size"] == round(planning.REFERENCE_VAL_3D / est * planning.REFERENCE_BS_3D)


def test_shrinking_brings_the_estimate_under_the_reference() -> None:
    kwargs = dict(
        num_classes=3,
        normalization_schemes=["CTNormalization"],
        use_mask_for_norm=[False],
        data_identifier="x",
    )
    plan = plan_configuration((1.0, 1.0, 1.0), (400, 400, 400), 1e9, **kwargs)
    arch = plan["architecture"]["arch_kwargs"]
    est = feature_map_voxels(plan["patch_size"], arch["features_per_stage"], arch["strides"], 3)
    assert est <= planning.REFERENCE_VAL_3D
    assert math.prod(plan["patch_size"]) < 256**3


def test_normalization_mask_rule() -> None:
    assert normalization_and_mask({"0": "MRI"}, 0.74) == (["ZScoreNormalization"], [True])
    assert normalization_and_mask({"0": "MRI"}, 0.75) == (["ZScoreNormalization"], [False])
    assert normalization_and_mask({"0": "noNorm"}, 0.1) == (["NoNormalization"], [False])


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="spacing"):
        pool_and_conv_props((1.0, -1.0, 1.0), (10, 10, 10))
    with pytest.raises(ValueError, match="patch_size"):
        pool_and_conv_props((1.0, 1.0, 1.0), (10, 10))
    with pytest.raises(ValueError, match="spacings and shapes_after_crop"):
        fullres_target_spacing([[1, 1, 1]], [[1, 1]])
    with pytest.raises(ValueError, match="fingerprint lacks"):
        plan_experiment({}, {"channel_names": {}, "labels": {}, "numTraining": 1})
    with pytest.raises(ValueError, match="num_classes"):
        plan_configuration(
            (1, 1, 1),
            (10, 10, 10),
            1e6,
            num_classes=1,
            normalization_schemes=[],
            use_mask_for_norm=[],
            data_identifier="x",
        )


def test_against_installed_nnunetv2_topology() -> None:
    """Optional: compare with nnunetv2's own functions when it is importable (test-only env)."""
    topology = pytest.importorskip(
        "nnunetv2.experiment_planning.experiment_planners.network_topology"
    )
    rng = np.random.default_rng(0)
    for _ in range(200):
        spacing = rng.uniform(0.3, 8.0, 3).tolist()
        patch = rng.integers(4, 300, 3).tolist()
        npool, pools, convs, padded, _ = topology.get_pool_and_conv_props(spacing, patch, 4, 999999)
        ours = pool_and_conv_props(spacing, patch)
        assert ours.num_pool_per_axis == tuple(npool)
        assert ours.strides == tuple(tuple(p) for p in pools)
        assert ours.kernel_sizes == tuple(tuple(k) for k in convs)
        assert ours.patch_size == tuple(int(p) for p in padded)


def test_against_installed_nnunetv2_planner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Optional: run nnunetv2's ExperimentPlanner itself on fresh random fingerprints."""
    planner_module = pytest.importorskip(
        "nnunetv2.experiment_planning.experiment_planners.default_experiment_planner"
    )
    make = make_fixtures()
    monkeypatch.setattr(planner_module, "nnUNet_raw", str(tmp_path / "raw"))
    monkeypatch.setattr(planner_module, "nnUNet_preprocessed", str(tmp_path / "preprocessed"))
    rng = np.random.default_rng(2026)
    for k in range(4):
        case = make._planner_case(*make.random_planner_input(rng, f"fresh_{k}"))
        expected = make.run_nnunet_planner(tmp_path, f"Dataset{700 + k}_fresh", case)
        ours = plan_experiment(
            case["fingerprint"],
            case["dataset_json"],
            gpu_memory_target_gb=case["gpu_memory_target_gb"],
        )
        assert_plans_match(ours, expected)

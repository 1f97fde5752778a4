"""Properties every loss in course_lib.losses shares: gradients, extreme logits, half precision,
empty and fully ignored targets, 2D and 3D, module twins, bad input, CPU vs CUDA."""

from __future__ import annotations

import pytest
import torch

from course_lib import losses as L

# name: (function, keyword arguments, kind of net). "multi": C = 3 softmax classes; "binary": one
# sigmoid channel; "heatmap": regression targets of the prediction's shape.
CASES = {
    "cross_entropy": (L.cross_entropy, {"weight": [0.2, 1.0, 3.0]}, "multi"),
    "binary_cross_entropy": (L.binary_cross_entropy, {"pos_weight": 3.0}, "binary"),
    "focal_sigmoid": (L.focal_loss, {"activation": "sigmoid", "alpha": 0.25}, "multi"),
    "focal_softmax": (L.focal_loss, {"activation": "softmax", "gamma": 1.5}, "multi"),
    "dice": (L.dice_loss, {}, "multi"),
    "dice_squared_batch": (L.dice_loss, {"squared": True, "batch": True}, "multi"),
    "jaccard": (L.jaccard_loss, {"include_background": False}, "multi"),
    "tversky": (L.tversky_loss, {"alpha": 0.3, "beta": 0.7}, "multi"),
    "hardness_dice": (L.hardness_weighted_dice_loss, {}, "multi"),
    "lovasz_hinge": (L.lovasz_hinge, {}, "binary"),
    "lovasz_softmax": (L.lovasz_softmax, {"per_image": True}, "multi"),
    "boundary": (L.boundary_loss, {}, "multi"),
    "hausdorff_dt": (L.hausdorff_dt_loss, {}, "multi"),
    "dice_ce": (L.dice_ce_loss, {}, "multi"),
    "focal_dice": (L.focal_dice_loss, {}, "multi"),
    "bce_minus_log_jaccard": (L.bce_minus_log_jaccard, {}, "binary"),
    "ohem": (L.ohem_cross_entropy, {"neg_pos_ratio": 1.0}, "multi"),
    "heatmap_mse": (L.heatmap_mse_loss, {}, "heatmap"),
}
IGNORES = {"cross_entropy", "binary_cross_entropy", "focal_sigmoid", "focal_softmax", "dice",
           "jaccard", "tversky", "hardness_dice", "lovasz_hinge", "lovasz_softmax", "dice_ce",
           "focal_dice", "bce_minus_log_jaccard", "ohem"}  # fmt: skip


def make_inputs(kind, spatial, *, seed=0, dtype=torch.float64, scale=1.0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    channels = {"multi": 3, "binary": 1, "heatmap": 2}[kind]
    logits = scale * torch.randn(2, channels, *spatial, generator=g, dtype=dtype)
    if kind == "heatmap":
        target = torch.rand(2, channels, *spatial, generator=g, dtype=dtype)
    else:
        target = torch.randint(0, max(channels, 2), (2, *spatial), generator=g)
    return logits.to(device), target.to(device)


@pytest.mark.parametrize("spatial", [(4, 5), (3, 3, 4)], ids=["2d", "3d"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_gradcheck_float64(name, spatial):
    fn, kwargs, kind = CASES[name]
    logits, target = make_inputs(kind, spatial)
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: fn(x, target, **kwargs), (logits,))


@pytest.mark.parametrize("name", sorted(CASES))
def test_extreme_logits_stay_finite_in_float32(name):
    fn, kwargs, kind = CASES[name]
    logits, target = make_inputs(kind, (6, 6), dtype=torch.float32)
    logits = (1e4 * logits.sign()).requires_grad_(True)
    loss = fn(logits, target, **kwargs)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("name", sorted(CASES))
def test_bfloat16_autocast_gives_finite_float32_loss(name):
    fn, kwargs, kind = CASES[name]
    logits, target = make_inputs(kind, (6, 6), dtype=torch.float32, scale=1e4)
    logits = logits.to(torch.bfloat16).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = fn(logits, target, **kwargs)
    loss.backward()
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss) and torch.isfinite(logits.grad.float()).all()
    # Half-precision scores give (nearly) the float32 loss: the loss itself runs in float32.
    reference = fn(logits.detach().float(), target, **kwargs)
    assert torch.allclose(loss, reference, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("name", sorted(set(CASES) - {"heatmap_mse"}))
def test_empty_target_gives_finite_loss_and_gradient(name):
    fn, kwargs, kind = CASES[name]
    logits, _ = make_inputs(kind, (5, 5))
    logits.requires_grad_(True)
    loss = fn(logits, torch.zeros(2, 5, 5, dtype=torch.long), **kwargs)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("name", sorted(IGNORES))
def test_all_ignored_gives_zero_loss_and_zero_gradient(name):
    fn, kwargs, kind = CASES[name]
    logits, _ = make_inputs(kind, (4, 4))
    logits.requires_grad_(True)
    loss = fn(logits, torch.full((2, 4, 4), -1), ignore_index=-1, **kwargs)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(logits.grad, torch.zeros_like(logits))


@pytest.mark.parametrize("name", sorted(IGNORES))
def test_ignored_voxels_do_not_change_the_loss(name):
    """Changing the scores of ignored voxels changes nothing; ignore_index matches cropping them."""
    fn, kwargs, kind = CASES[name]
    logits, target = make_inputs(kind, (4, 6))
    target[:, :, 4:] = -1
    other = logits.clone()
    other[..., 4:] = 5.0
    assert torch.allclose(
        fn(logits, target, ignore_index=-1, **kwargs), fn(other, target, ignore_index=-1, **kwargs)
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_module_twin_equals_function(name):
    fn, kwargs, kind = CASES[name]
    module_class = next(
        cls
        for cls in vars(L).values()
        if isinstance(cls, type) and getattr(cls, "function", None) is fn
    )
    logits, target = make_inputs(kind, (4, 4))
    assert torch.equal(module_class(**kwargs)(logits, target), fn(logits, target, **kwargs))


def test_module_twin_rejects_unknown_keywords_and_moves_tensor_weights():
    with pytest.raises(ValueError, match="DiceLoss"):
        L.DiceLoss(smooth=1.0)
    module = L.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 3.0]))
    assert "weight" in dict(module.named_buffers())
    assert module.to(torch.float64).weight.dtype == torch.float64
    assert "ignore_index" in repr(L.CrossEntropyLoss(ignore_index=-1))


@pytest.mark.parametrize(
    "logits, target, match",
    [
        (torch.randn(2, 3, 4), torch.zeros(2, 4, dtype=torch.long), r"\(N, C, H, W\)"),
        (
            torch.zeros(2, 3, 4, 4, dtype=torch.long),
            torch.zeros(2, 4, 4, dtype=torch.long),
            "floating",
        ),
        (
            torch.randn(2, 3, 4, 4),
            torch.zeros(2, 5, 4, dtype=torch.long),
            r"shape \(N, \*spatial\)",
        ),
        (torch.randn(2, 3, 4, 4), torch.full((2, 4, 4), 3), r"\[0, 2\].*found \[3\]"),
        (torch.randn(2, 3, 4, 4), torch.zeros(2, 2, 4, 4), "logits' shape"),
        (torch.randn(2, 3, 4, 4), torch.full((2, 3, 4, 4), 2.0), r"\[0, 1\]"),
        ([[1.0]], torch.zeros(1), "torch.Tensor"),
    ],
)
@pytest.mark.parametrize("fn", [L.cross_entropy, L.dice_loss, L.focal_loss, L.tversky_loss])
def test_bad_input_raises_clear_value_error(fn, logits, target, match):
    with pytest.raises(ValueError, match=match):
        fn(logits, target)


def test_bad_options_raise_value_error():
    logits, target = make_inputs("multi", (4, 4))
    with pytest.raises(ValueError, match="reduction"):
        L.dice_loss(logits, target, reduction="avg")
    with pytest.raises(ValueError, match="activation"):
        L.dice_loss(logits, target, activation="relu")
    with pytest.raises(ValueError, match="single channel"):
        L.dice_loss(logits[:, :1], target.clamp(max=1), activation="softmax")
    # the default activation follows the channel count: sigmoid for one channel, softmax for more
    one = L.dice_loss(logits[:, :1], target.clamp(max=1))
    assert torch.equal(one, L.dice_loss(logits[:, :1], target.clamp(max=1), activation="sigmoid"))
    assert torch.equal(
        L.focal_loss(logits, target), L.focal_loss(logits, target, activation="softmax")
    )
    with pytest.raises(ValueError, match="ignore_index needs an integer"):
        L.dice_loss(logits, logits.softmax(1), ignore_index=-1)
    with pytest.raises(ValueError, match="smooth_nr"):
        L.dice_loss(logits, target, smooth_nr=-1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", sorted(CASES))
def test_same_result_on_cuda_as_on_cpu(name):
    fn, kwargs, kind = CASES[name]
    logits, target = make_inputs(kind, (8, 9), dtype=torch.float32)
    on_cpu = fn(logits, target, **kwargs)
    on_gpu = fn(logits.to("cuda"), target.to("cuda"), **kwargs)
    assert on_gpu.device.type == "cuda"
    assert torch.allclose(on_cpu, on_gpu.cpu(), rtol=1e-4, atol=1e-5)

"""nnU-Net v2's training augmentation (course_lib.nnunet.augmentation)."""

from __future__ import annotations

import pytest
import torch

from course_lib.nnunet.augmentation import (
    P_ELASTIC_V1,
    AugmentationParams,
    augment,
    augmentation_params,
)

OFF = {
    "p_rotation": 0.0,
    "p_scaling": 0.0,
    "p_gamma": 0.0,
    "p_gamma_inverted": 0.0,
    "p_mirror": 0.0,
}
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _blob(shape: tuple[int, ...], n: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """An off-centre box (label 1) with a smaller box (label 2) inside, and a smooth image."""
    label = torch.zeros(n, *shape, dtype=torch.int64)
    box = tuple(slice(s // 5, s // 2 + 1) for s in shape)
    label[(slice(None), *box)] = 1
    label[(slice(None), *(slice(s // 4, s // 3 + 1) for s in shape))] = 2
    axes = torch.meshgrid(*[torch.linspace(0, 1, s) for s in shape], indexing="ij")
    image = (sum(axes) + label.float()).unsqueeze(1) if n else label.float()
    return image.float(), label


def test_params_follow_v2_configuration() -> None:
    assert augmentation_params((48, 48)).rotation_deg == (180.0,)  # square: any angle
    assert augmentation_params((32, 64)).rotation_deg == (15.0,)  # elongated 2D patch
    iso = augmentation_params((48, 64, 64))
    assert (iso.rotation_deg, iso.dummy_2d, iso.mirror_axes) == ((30.0,) * 3, False, (0, 1, 2))
    aniso = augmentation_params((12, 64, 40))  # 64 / 12 > 3
    assert (aniso.rotation_deg, aniso.dummy_2d) == ((180.0,), True)
    # v2 switched elastic deformation off (v1: p = 0.2)
    assert iso.p_elastic == 0.0 < P_ELASTIC_V1
    with pytest.raises(ValueError, match="patch_size"):
        augmentation_params((64,))


@pytest.mark.parametrize("shape", [(24, 32), (8, 24, 24), (12, 14, 16)])
def test_label_stays_in_its_label_set(shape: tuple[int, ...]) -> None:
    params = augmentation_params(shape).replace(
        p_rotation=1.0, p_scaling=1.0, p_elastic=1.0, p_gamma=1.0, p_gamma_inverted=1.0
    )
    image, label = _blob(shape)
    label[:, 0] = -1  # "outside" survives as a value of its own
    out, out_label = augment(image, label, params, generator=_gen())
    assert set(out_label.unique().tolist()) <= {-1, 0, 1, 2}
    assert out.shape == image.shape and out_label.shape == label.shape
    assert out_label.dtype == label.dtype and out.dtype == image.dtype
    assert not torch.equal(out_label, label)  # something did move


@pytest.mark.parametrize("shape", [(24, 32), (8, 24, 24), (12, 14, 16)])
def test_identity_at_zero_strength(shape: tuple[int, ...]) -> None:
    image, label = _blob(shape)
    params = augmentation_params(shape)
    out, out_label = augment(image, label, params.replace(**OFF), generator=_gen())
    assert torch.equal(out, image) and torch.equal(out_label, label)
    # every transform applied, each with zero strength
    zero = params.replace(
        **{**OFF, "p_rotation": 1.0, "p_scaling": 1.0, "p_gamma": 1.0, "p_gamma_inverted": 1.0},
        rotation_deg=(0.0,) * len(params.rotation_deg),
        scaling=(1.0, 1.0),
        gamma=(1.0, 1.0),
    )
    out, out_label = augment(image, label, zero, generator=_gen())
    torch.testing.assert_close(out, image, atol=1e-4, rtol=1e-4)
    assert torch.equal(out_label, label)


def test_mirroring_is_its_own_inverse() -> None:
    image, label = _blob((6, 10, 12))
    params = augmentation_params((6, 10, 12)).replace(**{**OFF, "p_mirror": 1.0})
    once, once_label = augment(image, label, params, generator=_gen())
    assert torch.equal(once, image.flip(2, 3, 4)) and torch.equal(once_label, label.flip(1, 2, 3))
    twice, twice_label = augment(once, once_label, params, generator=_gen(1))
    assert torch.equal(twice, image) and torch.equal(twice_label, label)


def test_image_and_label_get_the_same_warp() -> None:
    # a binary label used as the image: linear interpolation > 0.5 is exactly the one-hot argmax
    label = torch.zeros(4, 32, 32, dtype=torch.int64)
    label[:, 6:20, 9:27] = 1
    params = augmentation_params((32, 32)).replace(**{**OFF, "p_rotation": 1.0, "p_scaling": 1.0})
    out, out_label = augment(label[:, None].float(), label, params, generator=_gen(3))
    assert not torch.equal(out_label, label)
    agree = ((out[:, 0] > 0.5) == (out_label == 1)).float().mean().item()
    assert agree > 0.999


def test_dummy_2d_transforms_each_slice_alike_and_never_mixes_slices() -> None:
    shape = (5, 32, 32)
    params = augmentation_params(shape).replace(
        **{**OFF, "p_rotation": 1.0, "p_scaling": 1.0, "p_elastic": 1.0}
    )
    assert params.dummy_2d
    image, label = _blob((32, 32), n=2)
    slices = image[:, :, None].repeat(1, 1, 5, 1, 1) * torch.arange(1.0, 6).view(1, 1, 5, 1, 1)
    label3 = label[:, None].repeat(1, 5, 1, 1)
    out, out_label = augment(slices, label3, params, generator=_gen())
    # slice k is k x slice 1 after the warp too, and every slice's label is the same
    ratio = torch.arange(1.0, 6).view(1, 1, 5, 1, 1)
    torch.testing.assert_close(out, out[:, :, :1] * ratio, atol=1e-4, rtol=1e-4)
    assert (out_label == out_label[:, :1]).all() and not torch.equal(out_label, label3)


@pytest.mark.parametrize("invert", [False, True])
def test_gamma_keeps_mean_and_std_of_each_channel(invert: bool) -> None:
    image = torch.rand(3, 2, 16, 16, generator=_gen()) ** 2 * 5 - 1
    label = torch.zeros(3, 16, 16, dtype=torch.int64)
    key = "p_gamma_inverted" if invert else "p_gamma"
    params = augmentation_params((16, 16)).replace(**{**OFF, key: 1.0})
    out, _ = augment(image, label, params, generator=_gen())
    assert (out - image).abs().max() > 0.05  # the curve changed
    torch.testing.assert_close(out.mean((2, 3)), image.mean((2, 3)), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.std((2, 3)), image.std((2, 3)), atol=1e-4, rtol=1e-4)


def test_v2_probabilities_per_sample() -> None:
    # rotation p = 0.2 and scaling p = 0.2 independently: 1 - 0.8^2 = 36 % of samples warped
    n = 200
    image = torch.rand(n, 1, 12, 12, generator=_gen())
    label = torch.zeros(n, 12, 12, dtype=torch.int64)
    params = augmentation_params((12, 12)).replace(p_gamma=0.0, p_gamma_inverted=0.0, p_mirror=0.0)
    out, _ = augment(image, label, params, generator=_gen())
    warped = ((out - image).flatten(1).abs().amax(1) > 1e-3).float().mean().item()
    assert abs(warped - 0.36) < 0.11  # 3.2 standard errors at n = 200


def test_seeded_generator_reproduces_and_differs() -> None:
    image, label = _blob((10, 20, 20), n=4)
    params = augmentation_params((10, 20, 20)).replace(p_rotation=1.0, p_gamma=1.0)
    a = augment(image, label, params, generator=_gen(7))
    b = augment(image, label, params, generator=_gen(7))
    c = augment(image, label, params, generator=_gen(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_device_and_dtype_are_kept(device: str, dtype: torch.dtype) -> None:
    image, label = _blob((16, 16), n=2)
    params = augmentation_params((16, 16)).replace(p_rotation=1.0, p_gamma=1.0)
    out, out_label = augment(
        image.to(device, dtype), label.to(device, torch.int8), params, generator=_gen()
    )
    assert out.dtype == dtype and out.device.type == device and out_label.dtype == torch.int8
    assert torch.isfinite(out.float()).all() and out_label.device.type == device


def test_bad_input_is_rejected_clearly() -> None:
    image, label = _blob((8, 8))
    params = augmentation_params((8, 8))
    with pytest.raises(ValueError, match="floating-point"):
        augment(label[:, None], label, params)
    with pytest.raises(ValueError, match="integer"):
        augment(image, label.float(), params)
    with pytest.raises(ValueError, match=r"shape \(N, \*spatial\)"):
        augment(image, label[:, :4], params)
    with pytest.raises(ValueError, match="dummy_2d"):
        augment(image, label, augmentation_params((4, 16, 16)))
    with pytest.raises(ValueError, match="does not fit"):
        augment(image, label, augmentation_params((8, 8, 8)).replace(p_rotation=1.0))
    with pytest.raises(ValueError, match="p_rotation"):
        AugmentationParams(rotation_deg=(30.0,), dummy_2d=False, mirror_axes=(0,), p_rotation=2)
    with pytest.raises(ValueError, match="scaling"):
        params.replace(scaling=(1.4, 0.7))
    with pytest.raises(ValueError, match="rotation_deg"):
        params.replace(rotation_deg=(10.0, 10.0))
    with pytest.raises(ValueError, match="axes"):
        augment(image, label, params.replace(mirror_axes=(2,)))

"""NIfTI round trip (data, spacing, axis order) and the nnU-Net v2 raw layout."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from course_lib.data import (
    CT_LABELS,
    UNLABELED,
    VolumeCase,
    make_mr_multichannel,
    make_volumes,
    read_nifti,
    read_nnunet_raw,
    write_nifti,
    write_nnunet_raw,
)


def test_round_trip_keeps_data_and_spacing(tmp_path):
    image = torch.randn(5, 6, 7, generator=torch.Generator().manual_seed(0)) * 300
    path = write_nifti(tmp_path / "img.nii.gz", image, (2.5, 0.7, 0.65))
    array, spacing = read_nifti(path)
    assert array.dtype == np.float32 and array.shape == (5, 6, 7)
    np.testing.assert_array_equal(array, image.numpy())
    assert spacing == (2.5, 0.7, 0.65)


def test_nifti_file_uses_x_y_z_order_and_mm(tmp_path):
    label = np.zeros((3, 4, 5), dtype=np.int64)
    label[2, 1, 0] = 2  # z = 2, y = 1, x = 0
    write_nifti(tmp_path / "lab.nii", label, (3.0, 1.0, 0.5))
    img = nib.load(tmp_path / "lab.nii")
    assert img.shape == (5, 4, 3)  # (x, y, z), as any NIfTI reader sees it
    assert img.header.get_zooms() == (0.5, 1.0, 3.0)
    assert img.header.get_xyzt_units()[0] == "mm"
    assert np.asanyarray(img.dataobj)[0, 1, 2] == 2
    back, _ = read_nifti(tmp_path / "lab.nii")
    assert back.dtype == np.uint8  # labels stored compactly
    np.testing.assert_array_equal(back, label)


def test_negative_and_large_labels_get_a_type_that_holds_them(tmp_path):
    label = np.array([[[-1, 0, 2]], [[300, 1, 0]]])
    write_nifti(tmp_path / "l.nii.gz", label, (1, 1, 1))
    back, _ = read_nifti(tmp_path / "l.nii.gz")
    assert back.dtype == np.int16
    np.testing.assert_array_equal(back, label)


@pytest.mark.parametrize(
    ("name", "array", "spacing", "match"),
    [
        ("a.nii.gz", np.zeros((3, 3)), (1, 1, 1), "3D"),
        ("a.nii.gz", np.zeros((3, 3, 3)), (1, 1), "spacing"),
        ("a.nii.gz", np.zeros((3, 3, 3)), (1, 0, 1), "spacing"),
        ("a.npy", np.zeros((3, 3, 3)), (1, 1, 1), ".nii"),
    ],
)
def test_write_rejects_bad_input(tmp_path, name, array, spacing, match):
    with pytest.raises(ValueError, match=match):
        write_nifti(tmp_path / name, array, spacing)


def test_read_rejects_missing_and_4d_files(tmp_path):
    with pytest.raises(ValueError, match="no NIfTI"):
        read_nifti(tmp_path / "missing.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 2), np.float32), np.eye(4)), tmp_path / "4d.nii")
    with pytest.raises(ValueError, match="3D"):
        read_nifti(tmp_path / "4d.nii")


def test_nnunet_raw_layout(tmp_path):
    cases = make_volumes(2, seed=0, shape=(10, 20, 20))
    root = write_nnunet_raw(tmp_path / "Dataset501_CourseCT", cases, labels=CT_LABELS)
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "CT"}
    assert meta["labels"] == {"background": 0, "organ": 1, "lesion": 2}
    assert meta["numTraining"] == 2 and meta["file_ending"] == ".nii.gz"
    assert sorted(p.name for p in (root / "imagesTr").iterdir()) == [
        "ct_000_0000.nii.gz",
        "ct_001_0000.nii.gz",
    ]
    assert sorted(p.name for p in (root / "labelsTr").iterdir()) == [
        "ct_000.nii.gz",
        "ct_001.nii.gz",
    ]
    back = read_nnunet_raw(root)
    for a, b in zip(cases, back, strict=True):
        assert a.case_id == b.case_id and a.spacing == b.spacing
        torch.testing.assert_close(a.image, b.image)
        assert torch.equal(a.label, b.label)


def test_nnunet_raw_multichannel_and_ignore_label(tmp_path):
    case = make_mr_multichannel(1, seed=0, shape=(8, 16, 16))[0]
    sparse = VolumeCase(
        case.case_id,
        case.image,
        torch.where(case.label > 0, case.label, UNLABELED),
        case.spacing,
        case.channel_names,
    )
    root = write_nnunet_raw(
        tmp_path / "Dataset502_Mr", [sparse], labels={"background": 0, "target": 1}
    )
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "T1", "1": "T2"}
    assert meta["labels"]["ignore"] == 2  # nnU-Net's ignore label: the highest id
    assert (root / "imagesTr" / f"{case.case_id}_0001.nii.gz").is_file()
    back = read_nnunet_raw(root)[0]
    assert torch.equal(back.label, sparse.label) and back.image.shape[0] == 2


def test_nnunet_raw_rejects_bad_input(tmp_path):
    cases = make_volumes(1, seed=0, shape=(8, 16, 16))
    with pytest.raises(ValueError, match="DatasetXXX"):
        write_nnunet_raw(tmp_path / "ct", cases, labels=CT_LABELS)
    with pytest.raises(ValueError, match="labels"):
        write_nnunet_raw(tmp_path / "Dataset001_X", cases, labels={"background": 0, "organ": 2})
    with pytest.raises(ValueError, match="at least one"):
        write_nnunet_raw(tmp_path / "Dataset001_X", [], labels=CT_LABELS)
    with pytest.raises(ValueError, match="unique"):
        write_nnunet_raw(tmp_path / "Dataset001_X", cases * 2, labels=CT_LABELS)
    with pytest.raises(ValueError, match="dataset.json"):
        read_nnunet_raw(tmp_path / "Dataset001_Y")

"""nnU-Net v2 itself on the raw datasets the course writes (run by tests/test_nnunet_handoff.py).

``python tests/_nnunet_handoff.py WORK`` expects nnU-Net's raw layout under ``WORK/raw`` (one or
more ``DatasetXXX_Name`` folders) and runs, per dataset, what ``nnUNetv2_plan_and_preprocess -d ID
--verify_dataset_integrity`` runs, through nnunetv2's own functions:

1. ``verify_dataset_integrity`` (raises on a dataset nnU-Net would not train on);
2. ``extract_fingerprint_dataset`` and ``plan_experiment_dataset``, which write
   ``WORK/preprocessed/DatasetXXX_Name/{dataset_fingerprint,nnUNetPlans}.json``;
3. ``DefaultPreprocessor.run_case`` on the first training case for every planned configuration,
   saved as ``WORK/out/<dataset>/<configuration>.npz`` (data, seg, bounding box).

A separate process because nnunetv2 reads its folders from environment variables when imported.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np


def main(work: Path) -> None:
    for sub in ("preprocessed", "results", "out"):
        (work / sub).mkdir(exist_ok=True)
    os.environ.update(
        nnUNet_raw=str(work / "raw"),
        nnUNet_preprocessed=str(work / "preprocessed"),
        nnUNet_results=str(work / "results"),
    )
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprint_dataset,
        plan_experiment_dataset,
    )
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity
    from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    for folder in sorted((work / "raw").iterdir()):
        dataset_id = int(folder.name[len("Dataset") : len("Dataset") + 3])
        verify_dataset_integrity(str(folder), num_processes=1)
        extract_fingerprint_dataset(dataset_id, num_processes=1, clean=True, verbose=False)
        plan_experiment_dataset(dataset_id)
        plans = json.loads((work / "preprocessed" / folder.name / "nnUNetPlans.json").read_text())
        manager = PlansManager(plans)
        dataset_json = json.loads((folder / "dataset.json").read_text())
        first = sorted((folder / "labelsTr").iterdir())[0].name[: -len(dataset_json["file_ending"])]
        images = sorted(str(p) for p in (folder / "imagesTr").glob(f"{first}_*"))
        out = work / "out" / folder.name
        out.mkdir()
        for configuration in manager.available_configurations:
            data, seg, props = DefaultPreprocessor(verbose=False).run_case(
                images,
                str(folder / "labelsTr" / f"{first}{dataset_json['file_ending']}"),
                manager,
                manager.get_configuration(configuration),
                dataset_json,
            )
            np.savez(
                out / f"{configuration}.npz",
                data=data,
                seg=seg,
                bbox=np.asarray(props["bbox_used_for_cropping"]),
            )


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""A sweep's folder: where everything of one sweep lives, and its saved spec. Everything that reads or writes a
sweep folder asks this module for the names, so nothing imports the Ray driver for a file name.

    STORAGE/NAME/                  a local folder or a URI (`storage` in the spec, `--storage`)
        sweep.json                 the validated spec (`SPEC_FILE`): `resume`, `report` and `best` need nothing else
        results/trial-ID.parquet   the results store, one file per trial (prunelab.sweep.store)
        deliverables/ID/           each trial's deliverables (prunelab.sweep.trial)
        study.journal              the Optuna study of a searched sweep (prunelab.sweep.study)
        wandb/                     the offline W&B runs (a URI's stay on the driver's disk, in ./wandb-offline/NAME)
        (Ray Tune's own experiment state, which `resume` restores)"""
from __future__ import annotations

import json
from pathlib import Path

from prunelab import storage
from prunelab.sweep.spec import SweepSpec

SPEC_FILE = "sweep.json"
RESULTS = "results"
DELIVERABLES = "deliverables"
STUDY_FILE = "study.journal"


def sweep_dir_for(spec: SweepSpec) -> str:
    """The sweep's location: storage/NAME, a local folder or a URI."""
    return storage.join(storage.absolute(spec.storage), spec.name)


def holds_sweep(sweep_dir: str) -> bool:
    return storage.exists(storage.join(sweep_dir, SPEC_FILE))


def read_spec(sweep_dir: str) -> SweepSpec:
    """The spec saved in a sweep folder."""
    return SweepSpec.model_validate(json.loads(storage.read_bytes(storage.join(sweep_dir, SPEC_FILE))))


def write_spec(sweep_dir: str, spec: SweepSpec) -> None:
    text = (json.dumps(spec.model_dump(), indent=2) + "\n").encode()
    storage.write(storage.join(sweep_dir, SPEC_FILE), lambda handle: handle.write(text))


def results_dir(sweep_dir: str) -> str:
    return storage.join(str(sweep_dir), RESULTS)


def trial_file(sweep_dir: str, trial_id: str) -> str:
    return storage.join(results_dir(sweep_dir), f"trial-{trial_id}.parquet")


def deliverables_dir(sweep_dir: str, trial_id: str) -> str:
    return storage.join(sweep_dir, DELIVERABLES, trial_id)


def study_path(sweep_dir: str) -> Path | None:
    """The journal file of a local sweep folder (None for a sweep on a remote URI: its study stays in Tune's
    saved searcher state only)."""
    local = storage.local_path(sweep_dir)
    return local / STUDY_FILE if local is not None else None


def wandb_dir(sweep_dir: str) -> Path:
    """W&B writes its offline runs to a local disk: inside a local sweep folder, else ./wandb-offline/NAME."""
    local = storage.local_path(sweep_dir)
    if local is not None:
        return local / "wandb"
    return Path("wandb-offline").resolve() / sweep_dir.rstrip("/").rsplit("/", 1)[-1]

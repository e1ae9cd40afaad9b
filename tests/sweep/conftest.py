"""Helpers of the sweep tests: the searcher's study read with Optuna's own API only (no prunelab code)."""
import optuna
import pandas as pd
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from prunelab.sweep.folder import STUDY_FILE


def load_study(folder, name):
    """The study as an Optuna user opens it: the journal file and the study name (the sweep's name)."""
    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(folder / STUDY_FILE))))


def assert_study_matches_results(folder, name):
    """Every complete trial of the results store is in the study once, with its objective and parameters."""
    study = load_study(folder, name)
    complete = [t for t in study.get_trials() if t.state == TrialState.COMPLETE and "trial_id" in t.user_attrs]
    frame = pd.read_parquet(folder / "results")
    frame = frame[frame.status == "complete"]
    ids = [t.user_attrs["trial_id"] for t in complete]
    assert sorted(ids) == sorted(frame.trial_id.unique()) and len(set(ids)) == len(ids)
    for trial in complete:
        rows = frame[frame.trial_id == trial.user_attrs["trial_id"]]
        assert trial.value == pytest.approx(rows.wer.mean(), rel=1e-12)
        assert trial.user_attrs["wer_mean"] == pytest.approx(rows.wer.mean(), rel=1e-12)
        assert sorted(trial.user_attrs["target_sizes"]) == sorted(rows.target_size)
        for key in ("criterion", "method", "scheduler"):
            assert trial.params[key] == rows[key].iloc[0]
    assert not [t for t in study.get_trials() if t.state == TrialState.RUNNING]
    return study


@pytest.fixture
def study_matches_results():
    return assert_study_matches_results


@pytest.fixture
def open_study():
    return load_study

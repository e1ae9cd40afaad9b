"""Report data built from result rows: Optuna's parameter importances over searched schedule shapes."""
import pytest

from prunelab.report.build import _importances

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)


def incremental_row(trial_id, shape, stages, exponent, budget_split, lr, wer, method="lowrank"):
    return {"trial_id": trial_id, "scheduler": "incremental", "method": method, "shape": shape, "stages": stages,
            "exponent": exponent, "budget_split": budget_split, "lr": lr, "wer": wer, "target_size": 0.3}


def test_importances_cover_searched_parameters_when_some_trials_lack_one():
    # exponential schedules have no exponent (None in the store): such trials must not break the importances
    rows = [incremental_row("t0", "polynomial", 2, 1.5, 0.8, 1e-4, 0.46),
            incremental_row("t1", "exponential", 3, None, 1.2, 3e-4, 0.45, method="structured"),
            incremental_row("t2", "polynomial", 4, 3.0, 1.0, 5e-4, 0.44),
            incremental_row("t3", "exponential", 5, None, 1.5, 1e-3, 0.47, method="structured"),
            incremental_row("t4", "polynomial", 6, 2.0, 0.7, 2e-4, 0.43)]
    importances = _importances(rows)
    assert {"stages", "budget_split", "lr"} <= set(importances)
    assert all(value >= 0 for value in importances.values()) and sum(importances.values()) > 0


def test_no_importances_for_fewer_than_four_searched_trials():
    rows = [incremental_row(f"t{i}", "polynomial", 2 + i, 1.0, 1.0, 3e-4, 0.45) for i in range(3)]
    assert _importances(rows) == {}

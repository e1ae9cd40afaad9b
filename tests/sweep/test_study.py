"""The searcher's Optuna study in the sweep folder's journal file, read with Optuna's own API only (no prunelab
code): the same trials and values as the Parquet store; warm starts from earlier sweeps; the Pareto set of
`best --by pareto` against Optuna's `study.best_trials`."""
import json
import os

import optuna
import pytest

from prunelab.cli import main
from prunelab.sweep.folder import STUDY_FILE

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)


def test_searched_sweep_keeps_its_study_in_the_sweep_folder(finished_sweep, study_matches_results):
    spec, folder = finished_sweep
    study = study_matches_results(folder, spec.name)
    assert len(study.trials) == spec.num_samples


def _spec(trained_lm, tmp_path, **changes):
    spec = dict(name="a", base=str(trained_lm[2]), data={"eval_test_utts": 20}, target_sizes=[0.5],
                criteria=["magnitude", "activation"], methods=["lowrank", "unstructured"], schedulers=["oneshot"],
                finetune_steps=2, calibration_sequences=4, search="random", num_samples=3, max_concurrent=2,
                wandb={"mode": "disabled"}, storage=str(tmp_path), seed=1)
    spec.update(changes)
    path = tmp_path / f"{spec['name']}.json"  # JSON is YAML
    path.write_text(json.dumps(spec))
    return path


@pytest.fixture(scope="module")
def earlier_and_warm(trained_lm, tmp_path_factory):
    """An earlier random sweep, then a TPE sweep warm-started from it (TPE's start-up: the earlier trials)."""
    tmp = tmp_path_factory.mktemp("warm")
    here = os.getcwd()
    os.chdir(tmp)  # the sweeps' reports go under the working folder
    try:
        assert main(["sweep", str(_spec(trained_lm, tmp))]) == 0
        warm = _spec(trained_lm, tmp, name="b", search="optuna-tpe", startup_trials=2, num_samples=2,
                     max_concurrent=1, warm_start=[str(tmp / "a")], seed=7)
        assert main(["sweep", str(warm)]) == 0
    finally:
        os.chdir(here)
    return tmp


def test_a_warm_started_study_holds_the_earlier_trials_before_its_first_new_trial(earlier_and_warm, open_study,
                                                                                  study_matches_results):
    earlier = open_study(earlier_and_warm / "a", "a")
    study = open_study(earlier_and_warm / "b", "b")
    trials = sorted(study.trials, key=lambda t: t.number)
    warm = [t for t in trials if "warm_start_from" in t.user_attrs]
    new = [t for t in trials if "trial_id" in t.user_attrs]
    assert len(warm) == 3 and len(new) == 2
    assert max(t.number for t in warm) < min(t.number for t in new)  # given to the sampler before it suggested
    by_id = {t.user_attrs["trial_id"]: t for t in earlier.trials}
    for trial in warm:  # the earlier measurements, unchanged
        source = by_id[trial.user_attrs["warm_start_trial_id"]]
        assert trial.value == source.value and trial.params == source.params
    study_matches_results(earlier_and_warm / "b", "b")


def test_the_first_new_suggestion_is_conditioned_on_the_warm_trials(earlier_and_warm, open_study):
    """TPE with 2 start-up trials and 3 warm trials models from its first suggestion on: the same seeded
    sampler on a study holding only the warm trials suggests the same parameters."""
    study = open_study(earlier_and_warm / "b", "b")
    trials = sorted(study.trials, key=lambda t: t.number)
    warm = [t for t in trials if "warm_start_from" in t.user_attrs]
    first_new = next(t for t in trials if "trial_id" in t.user_attrs)
    replay = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=7, n_startup_trials=2))
    replay.add_trials(warm)
    from prunelab.sweep.space import OptunaSpace
    from prunelab.sweep.spec import load_spec

    asked = replay.ask()
    OptunaSpace(load_spec(earlier_and_warm / "b.json"))(asked)
    assert asked.params == first_new.params


@pytest.mark.parametrize("problem, expected", [
    ("missing", "holds no sweep"),
    ("other-base", "is a sweep of base"),
    ("no-overlap", "has no completed trial that fits"),
    ("grid", "need an Optuna search"),
])
def test_bad_warm_start_is_one_line_and_writes_nothing(problem, expected, earlier_and_warm, trained_lm, tmp_path,
                                                         capsys, hf_base_folder, monkeypatch):
    monkeypatch.chdir(tmp_path)
    earlier = earlier_and_warm / "a"
    changes = {"missing": dict(warm_start=str(tmp_path / "nothing-here")),
               "other-base": dict(warm_start=str(earlier), base=str(hf_base_folder)),
               "no-overlap": dict(warm_start=str(earlier), methods=["structured"]),
               "grid": dict(warm_start=str(earlier), search="grid")}[problem]
    spec = _spec(trained_lm, tmp_path, name="c", **changes)
    assert main(["sweep", str(spec)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "c").exists()


def test_pareto_set_of_best_equals_optunas_best_trials(trained_lm, tmp_path, monkeypatch, open_study):
    """One target size, one-shot trials: each trial's objectives (WER, speed ratio) are its one deliverable's, so
    the Pareto set that `best --by pareto` marks from the Parquet store must be Optuna's `study.best_trials`."""
    from prunelab.sweep.query import best_configs

    monkeypatch.chdir(tmp_path)
    spec = _spec(trained_lm, tmp_path, name="p", search="optuna-nsga2", num_samples=4)
    assert main(["sweep", str(spec)]) == 0
    marked = {row["trial_id"] for row in best_configs(tmp_path / "p", 0.5, "pareto")}
    study = open_study(tmp_path / "p", "p")
    assert len(study.trials) == 4
    assert marked == {trial.user_attrs["trial_id"] for trial in study.best_trials}


def test_optuna_dashboard_lists_the_trials_of_the_demo_sweeps_study(trained_lm, tmp_path, headless_chromium,
                                                                     open_study, monkeypatch):
    """The shipped demo spec (on the test base, with a smaller budget), then `optuna-dashboard SWEEP/study.journal`
    as the README shows it, opened in headless Chromium."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    from prunelab.sweep.spec import load_spec
    from prunelab.sweep.tuner import run_sweep

    monkeypatch.chdir(tmp_path)
    spec = load_spec("demo", {"base": str(trained_lm[2]), "storage": str(tmp_path), "finetune_steps": 2,
                              "calibration_sequences": 4, "data": {"eval_test_utts": 20}, "wandb": {"mode": "disabled"}})
    run_sweep(spec)
    folder = tmp_path / "demo"
    trials = open_study(folder, spec.name).trials
    assert len(trials) == spec.num_samples == 4
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dashboard = subprocess.Popen([str(Path(sys.executable).parent / "optuna-dashboard"), str(folder / STUDY_FILE),
                                  "--host", "127.0.0.1", "--port", str(port)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                studies = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5))
                break
            except OSError:
                assert time.monotonic() < deadline and dashboard.poll() is None, "optuna-dashboard did not start"
                time.sleep(0.5)
        (study,) = studies["study_summaries"]
        assert study["study_name"] == spec.name
        headless_chromium.get(f"http://127.0.0.1:{port}/dashboard/studies/{study['study_id']}/trials")
        expected = [f"Trial {trial.number}" for trial in trials]
        deadline = time.monotonic() + 60
        while not all(name in (text := headless_chromium.find_element("tag name", "body").text) for name in expected):
            assert time.monotonic() < deadline, f"the dashboard page does not list {expected}: {text[:500]!r}"
            time.sleep(0.5)
        assert f"{len(trials)} Trials" in text
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)

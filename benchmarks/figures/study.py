"""Figures of the persistent study (issue 16), on the schedule-search objective table of `search.py` (every point a
real pruning run; its WER measured once, kept in reports/benchmarks.json):

  warm-start    trials TPE needs to come within 1% of the table's best WER, started cold vs warm-started with an
                earlier search's trials (given to the study with `add_trials`, as `warm_start:` does), median over seeds
  search-scale  one TPE suggestion's time with 100, 1,000 and 5,000 finished trials in a journal-file study (as a
                sweep keeps it), with and without `constant_liar` and 64 running trials, the journal's size, and the
                time a new process takes to open the study"""
from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState, create_trial

from figures.search import DISTRIBUTIONS, build_table, point_key

SEEDS, BUDGET, WITHIN, EARLIER_TRIALS, STARTUP = 20, 64, 0.01, 10, 3
SCALE_SIZES, RUNNING, ASKS = (100, 1_000, 5_000), 64, 5


def objective_table(args) -> dict[str, dict]:
    """The measured table: from reports/benchmarks.json when there, else measured (hours) by search.build_table."""
    saved = Path(args.out).with_suffix(".json")
    if saved.exists():
        table = json.loads(saved.read_text()).get("search", {}).get("table")
        if table:
            return table
    return build_table(Path(args.work))


def _params(key: str) -> dict:
    shape, stages, split = key.split("/")
    return {"shape": shape, "stages": int(stages), "budget_split": float(split)}


def _trial(key: str, table: dict) -> optuna.trial.FrozenTrial:
    return create_trial(params=_params(key), distributions=DISTRIBUTIONS, value=table[key]["wer"])


def trials_to_target(table: dict, seed: int, target: float, earlier: list[str]) -> int | None:
    """New trials a seeded TPE (3 start-up trials, as sweeps/schedule-search.yaml) needs until one is <= target."""
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=STARTUP))
    study.add_trials([_trial(key, table) for key in earlier])
    for n in range(1, BUDGET + 1):
        trial = study.ask(DISTRIBUTIONS)
        value = table[point_key(trial.params["shape"], trial.params["stages"], trial.params["budget_split"])]["wer"]
        study.tell(trial, value)
        if value <= target:
            return n
    return None


def measure_warm_start(args) -> dict:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = objective_table(args)
    best = min(v["wer"] for v in table.values())
    target = best * (1 + WITHIN)
    outside = sorted(k for k, v in table.items() if v["wer"] > target)
    runs = []
    for seed in range(SEEDS):
        rng = random.Random(10_000 + seed)
        missed = rng.sample(outside, EARLIER_TRIALS)       # an earlier search that missed the goal: none within 1%
        independent = rng.sample(sorted(table), EARLIER_TRIALS)  # an earlier random search of its own (other seed)
        runs.append({"seed": seed, "cold": trials_to_target(table, seed, target, []),
                     "warm_missed": trials_to_target(table, seed, target, missed),
                     "warm_independent": trials_to_target(table, seed, target, independent),
                     "independent_held_goal": any(table[k]["wer"] <= target for k in independent)})

    def summary(key: str) -> dict:
        reached = [r[key] for r in runs if r[key] is not None]
        return {"reached": len(reached), "median": statistics.median(reached) if reached else None,
                "mean": statistics.fmean(reached) if reached else None}

    return {"points": len(table), "table_best_wer": best, "within": WITHIN, "seeds": SEEDS, "budget": BUDGET,
            "earlier_trials": EARLIER_TRIALS, "startup_trials": STARTUP,
            "points_within": len(table) - len(outside),
            "cold": summary("cold"), "warm_missed": summary("warm_missed"),
            "warm_independent": summary("warm_independent"),
            "independent_held_goal": sum(r["independent_held_goal"] for r in runs), "runs": runs}


OPEN_STUDY = """
import sys, time
started = time.perf_counter()
import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
study = optuna.load_study(study_name="scale", storage=JournalStorage(JournalFileBackend(sys.argv[1])))
n = len(study.get_trials(deepcopy=False))
print(time.perf_counter() - started, n)
"""


def _ask_seconds(study, running: int) -> float:
    """Median time of one suggestion with `running` trials left open (as a sweep with that many in flight)."""
    open_trials = [study.ask(DISTRIBUTIONS) for _ in range(running)]
    times = []
    for _ in range(ASKS):
        started = time.perf_counter()
        trial = study.ask(DISTRIBUTIONS)
        times.append(time.perf_counter() - started)
        study.tell(trial, state=TrialState.FAIL)  # not counted as finished: the next ask sees the same history
    for trial in open_trials:
        study.tell(trial, state=TrialState.FAIL)
    return statistics.median(times)


def measure_scale(args) -> dict:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = objective_table(args)
    keys = sorted(table)
    rng = random.Random(0)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for liar in (False, True):
            path = Path(folder) / f"study-{liar}.journal"
            study = optuna.create_study(study_name="scale", storage=JournalStorage(JournalFileBackend(str(path))),
                                        sampler=optuna.samplers.TPESampler(seed=0, constant_liar=liar))
            finished = 0
            for size in SCALE_SIZES:
                started = time.perf_counter()
                study.add_trials([_trial(rng.choice(keys), table) for _ in range(size - finished)])
                add_s, finished = time.perf_counter() - started, size
                row = {"finished": size, "constant_liar": liar, "add_s": add_s,
                       "ask_s": _ask_seconds(study, RUNNING if liar else 0)}
                opened = subprocess.run([sys.executable, "-c", OPEN_STUDY, str(path)], capture_output=True, text=True,
                                        check=True).stdout.split()
                row.update({"open_s": float(opened[0]), "journal_mb": path.stat().st_size / 2**20})
                rows.append(row)
                print(f"  {size} finished, constant_liar={liar}: ask {1000 * row['ask_s']:.0f} ms, "
                      f"journal {row['journal_mb']:.1f} MB, open {row['open_s']:.1f} s", flush=True)
    return {"params": len(DISTRIBUTIONS), "running_with_liar": RUNNING, "asks": ASKS, "rows": rows}

"""Figure 4: Optuna TPE vs random search on the schedule-shape search at one small target size.

64 random trials of a real pruning run each, times several seeds, is far beyond 2 cores, so the objective is
a table: every point of a discrete schedule-shape space (shape with its exponent x stages x budget split) is
pruned and evaluated once for real (tiny base, activation low-rank, incremental to 0.3, 40 fine-tuning steps,
400 test utterances), and the searches then ask that table. Both samplers see the same categorical space; a
search "comes within 1%" when its best WER so far is <= 1.01 x the best WER of a 64-trial random search
with the same seed."""
from __future__ import annotations

import itertools
import json
import statistics
from pathlib import Path

import optuna
import torch

from prunelab.data.text import load_corpus
from prunelab.evaluate.evaluator import Benchmark, neural_scorer, rescore
from prunelab.evaluate.wer import wer
from prunelab.lm.base import train_or_load_base
from prunelab.lm.load import load_model
from prunelab.lm.score import perplexity
from prunelab.prune.run import PruneConfig, run_pruning
from prunelab.prune.schedules import Schedule

SHAPES = {"linear": ("polynomial", 1.0), "quadratic": ("polynomial", 2.0), "cubic": ("polynomial", 3.0),
          "quartic": ("polynomial", 4.0), "exponential": ("exponential", 1.0)}
STAGES = [2, 3, 4, 6]
BUDGET_SPLITS = [0.6, 1.0, 1.6]
TARGET, STEPS, TEST_UTTS, CRITERION, METHOD = 0.3, 40, 400, "activation", "lowrank"
RANDOM_BUDGET, SEEDS, WITHIN = 64, 20, 0.01


def point_key(shape: str, stages: int, budget_split: float) -> str:
    return f"{shape}/{stages}/{budget_split:g}"


def build_table(work: Path) -> dict[str, dict]:
    """Measure every point (resumable: each point is appended to work/search-table.json as it is measured)."""
    path = work / "search-table.json"
    table = json.loads(path.read_text()) if path.exists() else {}
    torch.set_num_threads(1)
    _, _, _, base_path = train_or_load_base("tiny")
    base = load_model(base_path)
    corpus, bench = load_corpus(), Benchmark.load(max_test_utts=TEST_UTTS)
    for shape, stages, split in itertools.product(SHAPES, STAGES, BUDGET_SPLITS):
        key = point_key(shape, stages, split)
        if key in table:
            continue
        kind, exponent = SHAPES[shape]
        config = PruneConfig(CRITERION, METHOD, "incremental", TARGET, schedule=Schedule(kind, stages, exponent,
                             budget_split=split), finetune_steps=STEPS, calibration_sequences=64)
        *_, last = run_pruning(base, corpus, config, log=lambda line: None)
        errors = rescore(bench, neural_scorer(last.model)).test_errors(bench.test)
        table[key] = {"wer": wer(errors, bench.test.ref_words), "ppl_valid": perplexity(last.model, corpus.valid)}
        print(f"{key}: WER {100 * table[key]['wer']:.2f}%", flush=True)
        work.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(table, indent=1))
        tmp.replace(path)
    return table


DISTRIBUTIONS = {"shape": optuna.distributions.CategoricalDistribution(list(SHAPES)),
                 "stages": optuna.distributions.CategoricalDistribution(STAGES),
                 "budget_split": optuna.distributions.CategoricalDistribution(BUDGET_SPLITS)}


def best_so_far(sampler: optuna.samplers.BaseSampler, table: dict[str, dict], trials: int) -> list[float]:
    study = optuna.create_study(sampler=sampler, direction="minimize")
    curve, best = [], float("inf")
    for _ in range(trials):
        trial = study.ask(DISTRIBUTIONS)
        value = table[point_key(trial.params["shape"], trial.params["stages"], trial.params["budget_split"])]["wer"]
        study.tell(trial, value)
        best = min(best, value)
        curve.append(best)
    return curve


def trials_to_reach(curve: list[float], threshold: float) -> int | None:
    return next((i + 1 for i, value in enumerate(curve) if value <= threshold), None)


def measure(args) -> dict:
    table = build_table(Path(args.work))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    runs = []
    for seed in range(SEEDS):
        reference = best_so_far(optuna.samplers.RandomSampler(seed=seed), table, RANDOM_BUDGET)[-1]
        threshold = reference * (1 + WITHIN)
        curves = {"tpe": best_so_far(optuna.samplers.TPESampler(seed=seed), table, RANDOM_BUDGET),
                  "tpe_startup3": best_so_far(optuna.samplers.TPESampler(seed=seed, n_startup_trials=3), table,
                                              RANDOM_BUDGET),
                  "random": best_so_far(optuna.samplers.RandomSampler(seed=10_000 + seed), table, RANDOM_BUDGET)}
        runs.append({"seed": seed, "reference_wer": reference,
                     **{f"{name}_trials": trials_to_reach(curve, threshold) for name, curve in curves.items()}})
    wers = sorted(v["wer"] for v in table.values())
    best = wers[0]

    def summary(key: str) -> dict:
        reached = [r[key] for r in runs if r[key] is not None]
        return {"reached": len(reached), "median": statistics.median(reached) if reached else None,
                "mean": statistics.fmean(reached) if reached else None}

    return {"points": len(table), "target_size": TARGET, "finetune_steps": STEPS, "n_test_utts": TEST_UTTS,
            "criterion": CRITERION, "method": METHOD, "random_budget": RANDOM_BUDGET, "seeds": SEEDS, "within": WITHIN,
            "table_best_wer": best, "table_worst_wer": wers[-1],
            "points_within_1pct_of_table_best": sum(w <= best * (1 + WITHIN) for w in wers),
            "tpe": summary("tpe_trials"), "tpe_startup3": summary("tpe_startup3_trials"),
            "random": summary("random_trials"), "runs": runs, "table": table}

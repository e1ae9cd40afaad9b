"""Everything a report shows, computed from the sweep's Parquet store (and, for the reference lines, from
evaluating the sweep's base model and the Kneser-Ney trigram on the same test utterances, cached in the
sweep folder as reference.json). With another N-best benchmark (`prunelab report --nbest`), the deliverables
are evaluated on it first (`prunelab.report.reevaluate`) and everything is computed from those figures."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from prunelab import storage
from prunelab.errors import PrunelabError
from prunelab.evaluate.evaluator import Benchmark, evaluate_model
from prunelab.evaluate.guard import GUARD_VERSION
from prunelab.lm.load import load_model
from prunelab.record import SCHEDULE_KEYS
from prunelab.report.findings import Finding, OneBestGain, all_findings, one_best_gain
from prunelab.report.reevaluate import cache_folder, reevaluated_rows
from prunelab.sweep.folder import read_spec, wandb_dir
from prunelab.sweep.query import pareto_front, rank_rows
from prunelab.sweep.spec import SweepSpec
from prunelab.sweep.store import read_results

REFERENCE_FILE = "reference.json"


@dataclass
class ReportData:
    sweep: str
    sweep_dir: str
    spec: SweepSpec
    rows: list[dict]
    references: dict
    best: dict[float, dict]
    fronts: dict[float, list[dict]]
    findings: list[Finding]
    wandb_runs: dict[str, str]
    importances: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    notes: str = ""  # the Discussion section (Markdown written by people, `prunelab report --notes`)
    reevaluated: bool = False  # the deliverables were evaluated on another benchmark than the sweep's own
    one_best: OneBestGain | None = None  # the base and the deliverables against the recogniser's 1-best


def load_spec_of(sweep_dir: str) -> SweepSpec:
    return read_spec(sweep_dir)


def reference_figures(sweep_dir: str, spec: SweepSpec, bench, log=print, other_benchmark: bool = False,
                      precision: str | None = None) -> dict:
    """WER of the unpruned base and of the Kneser-Ney trigram on the sweep's test utterances (computed once;
    on another benchmark, cached beside the deliverables' figures on it), in `precision` (default: the spec's
    `scoring_precision`)."""

    precision = precision or spec.data.scoring_precision

    location = storage.join(cache_folder(sweep_dir, bench) if other_benchmark else sweep_dir, REFERENCE_FILE)
    key = {"base": str(spec.base), "n_test_utts": len(bench.test.texts), "nbest_system": bench.nbest.system,
           "n_valid_sentences": len(bench.corpus.valid), "n_dev_utts": len(bench.dev.texts), "guard": GUARD_VERSION}
    if precision != "fp32":  # figures cached before the precision was a choice were fp32
        key["scoring_precision"] = precision
    if storage.exists(location):
        cached = json.loads(storage.read_bytes(location))
        if cached.get("key") == key and "utt_errors" in cached["base"]:  # figures from before had no per-utterance errors
            return cached
    log(f"evaluating the base {spec.base} and the trigram on {key['n_test_utts']} test utterances (once per sweep)")
    # no test-text perplexity: the report does not show it, and a 135M LM spends most of an hour on it on a CPU
    result = evaluate_model(load_model(spec.base), bench, trigram=True, speed=False, test_perplexity=False,
                            scoring_precision=precision)
    figures = {"key": key,
               "base": {k: result[k] for k in ("wer", "wer_ci_low", "wer_ci_high", "ppl_valid", "params_total",
                                               "wer_1best", "utt_errors", "kept_1best", "wer_unguarded", "wer_nolm",
                                               "wer_diff_nolm", "wer_diff_nolm_ci_low", "wer_diff_nolm_ci_high")},
               "trigram": {k: result["trigram"][k] for k in ("wer", "wer_ci_low", "wer_ci_high", "ppl_valid")}}
    text = json.dumps(figures, indent=2).encode()
    storage.write(location, lambda handle: handle.write(text))
    return figures


def _importances(rows: list[dict]) -> dict[str, float]:
    """Optuna's parameter importances (PED-ANOVA, which needs no scikit-learn) of the schedule shape for WER, over incremental deliverables of
    the sweep's searched trials (one value per trial: its mean WER over delivered sizes)."""
    import optuna  # deferred: optuna takes seconds to import

    per_trial: dict[str, list[dict]] = {}
    for r in rows:
        if r["scheduler"] == "incremental" and r["wer"] is not None and r["target_size"] is not None:
            per_trial.setdefault(r["trial_id"], []).append(r)
    categorical = ("shape", "method")
    seen = {k: {rs[0][k] for rs in per_trial.values() if rs[0][k] is not None}
            for k in (*categorical, "stages", "exponent", "budget_split", "lr")}
    keys = [k for k, values in seen.items() if len(values) > 1]
    if len(per_trial) < 4 or not keys:
        return {}

    def distribution(k: str):
        if k in categorical:
            return optuna.distributions.CategoricalDistribution(sorted(seen[k]))
        if k == "stages":
            return optuna.distributions.IntDistribution(1, 64)
        return optuna.distributions.FloatDistribution(1e-9, 1e3, log=(k == "lr"))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize")
    for rs in per_trial.values():
        # a parameter a trial does not have (the exponent of an exponential schedule) is left out of that trial;
        # Optuna then rates only the parameters every trial has
        params = {k: rs[0][k] for k in keys if rs[0][k] is not None}
        study.add_trial(optuna.trial.create_trial(params=params, distributions={k: distribution(k) for k in params},
                                                  value=float(np.mean([r["wer"] for r in rs]))))
    return {k: float(v) for k, v in optuna.importance.get_param_importances(study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()).items()}


def _wandb_runs(sweep_dir: str, trial_ids: set[str]) -> dict[str, str]:
    """Offline W&B run folders by trial (Ray names each run after its trial ID)."""
    found = {}
    folder = wandb_dir(sweep_dir)
    for run in folder.glob("**/offline-run-*") if folder.is_dir() else []:
        for trial_id in trial_ids:
            if run.name.endswith(trial_id):
                found[trial_id] = str(run)
    return found


def collect(sweep_dir: str, log=print, nbest: str | None = None) -> ReportData:
    """The report's figures; `nbest`: another N-best benchmark (a shipped name or a Parquet path) to evaluate the
    deliverables on, all of its test utterances (None: the sweep's own figures)."""

    spec = load_spec_of(sweep_dir)
    rows = read_results(sweep_dir).to_pylist()
    delivered = [r for r in rows if r["wer"] is not None and r["target_size"] is not None]
    if not delivered:
        raise PrunelabError(f"{sweep_dir} has no evaluated deliverable yet: nothing to report")
    if nbest is not None:
        bench = Benchmark.load(spec.data.corpus, nbest, max_valid_sentences=spec.data.ppl_valid_sentences)
        delivered = reevaluated_rows(sweep_dir, delivered, bench, log)
        evaluated = {(r["trial_id"], r["target_size"]): r for r in delivered}
        rows = [evaluated.get((r["trial_id"], r["target_size"]), r) for r in rows]
    else:
        bench = Benchmark.load(spec.data.corpus, spec.data.nbest, spec.data.eval_test_utts,
                               max_valid_sentences=spec.data.ppl_valid_sentences, max_dev_utts=spec.data.eval_dev_utts)
    for r in delivered:
        if r["utt_errors"] is not None and len(r["utt_errors"]) != len(bench.test.texts):
            raise PrunelabError(f"trial {r['trial_id']} was evaluated on {len(r['utt_errors'])} test utterances, "
                                f"the sweep's benchmark has {len(bench.test.texts)}: was the N-best file changed?")
    # the precision the deliverables were scored in (rows from before the column: fp32), so the base matches them
    precisions = {r.get("scoring_precision") or "fp32" for r in delivered}
    references = reference_figures(sweep_dir, spec, bench, log, other_benchmark=nbest is not None,
                                   precision=precisions.pop() if len(precisions) == 1 else None)
    best, fronts = {}, {}
    listing = [{k: v for k, v in r.items() if k != "utt_errors"} for r in delivered]
    for size in sorted({r["target_size"] for r in delivered}, reverse=True):
        try:
            best[size] = rank_rows(listing, size, "wer", 1)[0]
            fronts[size] = rank_rows(listing, size, "pareto", 1000)
        except PrunelabError:  # no deliverable within the size tolerance
            fronts[size] = pareto_front([r for r in delivered if r["target_size"] == size])
    statuses = [r["status"] for r in {r["trial_id"]: r for r in rows}.values()]
    counts = {"trials": len({r["trial_id"] for r in rows}), "deliverables": len(delivered),
              **{status: statuses.count(status) for status in ("complete", "stopped", "error", "running")}}
    importances = _importances(rows) if spec.search.startswith("optuna") else {}
    one_best = one_best_gain(delivered, references["base"]["utt_errors"], bench.test.errors[:, 0], bench.test.ref_words)
    return ReportData(spec.name, sweep_dir, spec, rows, references, best, fronts,
                      all_findings(delivered, bench.test.ref_words), _wandb_runs(sweep_dir, {r["trial_id"] for r in rows}),
                      importances, counts, reevaluated=nbest is not None, one_best=one_best)


def schedule_keys() -> list[str]:
    return [k for k in SCHEDULE_KEYS if k != "shape"]


def default_out(name: str, nbest: str | None = None) -> Path:
    """reports/NAME; a report on another benchmark than the sweep's goes inside it, reports/NAME/nbest-OTHER
    (OTHER: the shipped benchmark's name as given, `whisper`, or the Parquet file's stem)."""
    if nbest is None:
        return Path("reports") / name
    return Path("reports") / name / ("nbest-" + (re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(nbest).stem) or "other"))

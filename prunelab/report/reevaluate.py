"""A sweep's deliverables evaluated on another N-best benchmark than the one its trials used
(`prunelab report SWEEP --nbest whisper`): the same pruned models, another recogniser's hypotheses.

Each deliverable is loaded from its saved folder or checkpoint and rescored on the benchmark's dev (weights
tuned there) and test utterances. Perplexity on the valid sentences does not depend on the recogniser and speed
ratios do not either (the cost of scoring a sentence does not depend on which recogniser wrote it): both stay the
sweep's own. One JSON file per deliverable under `SWEEP/evaluations/SYSTEM/` caches the result, written atomically, so an
interrupted re-evaluation continues where it stopped and a second report costs nothing."""
from __future__ import annotations

import json
import re

from prunelab import storage
from prunelab.errors import PrunelabError
from prunelab.evaluate.evaluator import evaluate_model
from prunelab.evaluate.guard import GUARD_VERSION
from prunelab.lm.load import load_model

EVALUATIONS = "evaluations"
REEVALUATED_KEYS = ("wer", "wer_ci_low", "wer_ci_high", "kept_1best", "wer_unguarded", "utt_errors")


def _cache_name(row: dict) -> str:
    return f"{row['trial_id']}-size-{row['target_size']:.4f}.json"


def benchmark_key(bench) -> dict:
    return {"nbest_system": bench.nbest.system, "n_test_utts": len(bench.test.texts),
            "n_valid_sentences": len(bench.corpus.valid), "guard": GUARD_VERSION}


def cache_folder(sweep_dir: str, bench) -> str:
    system = re.sub(r"[^A-Za-z0-9_.-]+", "-", bench.nbest.system) or "nbest"
    return storage.join(sweep_dir, EVALUATIONS, system)


def reevaluated_rows(sweep_dir: str, delivered: list[dict], bench, log=print) -> list[dict]:
    """`delivered` (the sweep's rows of evaluated deliverables) with their WER, intervals, per-utterance errors
    and perplexity measured on `bench` instead."""

    folder, key = cache_folder(sweep_dir, bench), benchmark_key(bench)
    rows = []
    for done, row in enumerate(delivered, 1):
        location = storage.join(folder, _cache_name(row))
        cached = json.loads(storage.read_bytes(location)) if storage.exists(location) else None
        # as the sweep scored it (rows from before the column were scored in fp32)
        precision = row.get("scoring_precision") or "fp32"
        if cached is None or cached.get("key") != key or cached.get("checkpoint") != row["checkpoint"] \
                or cached.get("scoring_precision", "fp32") != precision:
            if not row.get("checkpoint") or not storage.exists(row["checkpoint"]):
                raise PrunelabError(f"trial {row['trial_id']}: its deliverable at size {row['target_size']:g} is not "
                                    f"at {row.get('checkpoint')!r}; it cannot be evaluated on another benchmark")
            log(f"evaluating deliverable {done}/{len(delivered)} ({row['trial_id']}, size {row['target_size']:g}) on "
                f"the {bench.nbest.system} benchmark")
            result = evaluate_model(load_model(row["checkpoint"]), bench, trigram=False, speed=False,
                                    test_perplexity=False, valid_perplexity=False, scoring_precision=precision)
            cached = {"key": key, "checkpoint": row["checkpoint"], "scoring_precision": precision,
                      **{k: result[k] for k in REEVALUATED_KEYS}}
            text = json.dumps(cached).encode()
            storage.write(location, lambda handle: handle.write(text))
        rows.append({**row, **{k: cached[k] for k in REEVALUATED_KEYS}})
    return rows

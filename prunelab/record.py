"""The record of one delivered model, defined once: its field names are the Parquet columns of a sweep's
results, the keys a trial reports to Tune (and so the W&B run keys), and the keys of `prunelab prune`'s
summary.json. A new figure is one line here."""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Field:
    name: str
    type: pa.DataType
    role: str  # "trial": who and where; "config": what was sampled; "metric": what was measured


FIELDS = (
    Field("sweep", pa.string(), "trial"), Field("trial_id", pa.string(), "trial"),
    Field("criterion", pa.string(), "config"), Field("method", pa.string(), "config"),
    Field("scheduler", pa.string(), "config"), Field("shape", pa.string(), "config"),
    Field("stages", pa.int64(), "config"), Field("exponent", pa.float64(), "config"),
    Field("budget_split", pa.float64(), "config"), Field("lr", pa.float64(), "config"),
    Field("incremental_mode", pa.string(), "config"),  # multi-size or per-size (incremental trials only)
    Field("recovery", pa.string(), "config"),  # finetune or distill (rows written before it: null, meaning finetune)
    # none or least-squares (prunelab.prune.reconstruct; rows written before it: null, meaning none)
    Field("reconstruction", pa.string(), "config"),
    Field("target_size", pa.float64(), "metric"), Field("achieved_size", pa.float64(), "metric"),
    Field("params_total", pa.int64(), "metric"), Field("ppl_valid", pa.float64(), "metric"),
    Field("wer", pa.float64(), "metric"), Field("wer_ci_low", pa.float64(), "metric"),
    # the guard (prunelab.evaluate.guard): the recogniser's 1-best kept because the LM's dev gain did not hold up,
    # and the WER at the dev-tuned weights without the guard (rows written before it: null)
    Field("kept_1best", pa.bool_(), "metric"), Field("wer_unguarded", pa.float64(), "metric"),
    Field("wer_ci_high", pa.float64(), "metric"), Field("utt_errors", pa.list_(pa.int32()), "metric"),
    Field("speed_ratio", pa.float64(), "metric"), Field("flop_ratio", pa.float64(), "metric"),
    Field("scoring_precision", pa.string(), "metric"),  # the precision its N-best lists were scored in
    Field("finetune_steps", pa.int64(), "metric"), Field("wall_s", pa.float64(), "metric"),
    Field("started_at", pa.float64(), "metric"), Field("node", pa.string(), "metric"),
    Field("status", pa.string(), "trial"), Field("checkpoint", pa.string(), "metric"),
)
# How a pruned model recovers between stages (prunelab.prune.run): the first is the default, and what a row
# written before the recovery axis existed means.
RECOVERIES = ("finetune", "distill")


def recovery_of(values: dict) -> str:
    """The recovery of a results row or trial config (rows from before the column fine-tuned)."""
    return values.get("recovery") or RECOVERIES[0]


# The closed-form refit after each stage's pruning (prunelab.prune.reconstruct). A row written before the axis
# existed was not reconstructed ("none"); new runs default to DEFAULT_RECONSTRUCTION, what the measurements favour
# (reports/benchmarks.md, "Reconstruction").
RECONSTRUCTIONS = ("none", "least-squares")
DEFAULT_RECONSTRUCTION = "least-squares"


def reconstruction_of(values: dict) -> str:
    """The reconstruction of a results row or trial config (rows from before the column: none)."""
    return values.get("reconstruction") or RECONSTRUCTIONS[0]


SCHEMA = pa.schema([(f.name, f.type) for f in FIELDS])
SCHEDULE_KEYS = ("shape", "stages", "exponent", "budget_split", "lr")  # config fields of incremental trials
METRIC_KEYS = tuple(f.name for f in FIELDS if f.role == "metric")
# the figures of `evaluate_model` that a deliverable's record carries
EVALUATION_KEYS = ("params_total", "ppl_valid", "wer", "wer_ci_low", "wer_ci_high", "kept_1best", "wer_unguarded",
                   "utt_errors", "speed_ratio",
                   "scoring_precision")

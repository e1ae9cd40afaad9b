"""Deliverables: the one writer of a pruned model and its info, for `prunelab prune` (which also writes a summary)
and for sweep trials. Every deliverable's info has one shape:

    {target_size, achieved_size, params_total, stage, finetune_steps, wall_s, criterion, method, scheduler,
     recovery, reconstruction, schedule,        # what the run did (StageResult.record)
     "base": the base it was pruned from, "config": the whole PruneConfig, "metrics": its evaluation or {},
     and for a sweep trial "sweep" and "trial_id"}"""
from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from prunelab import storage
from prunelab.atomic import atomic_write
from prunelab.data.text import Corpus
from prunelab.errors import PrunelabError
from prunelab.lm.adapter import ModelAdapter
from prunelab.lm.load import save_model
from prunelab.prune.run import PruneConfig, StageResult, run_pruning


def deliverable_name(size: float, suffix: str = ".pt") -> str:
    """`size-0.50.pt` (a word-LM checkpoint) or `size-0.50` (a Hugging Face deliverable folder)."""
    return f"size-{size:.2f}{suffix}"


def write_json_atomic(path: Path, data) -> None:
    atomic_write(path, lambda handle: handle.write((json.dumps(data, indent=2) + "\n").encode()))


def deliverable_info(deliverable: StageResult, config: PruneConfig, base: str, metrics: dict | None = None,
                     **provenance) -> dict:
    """A deliverable's info (the shape in the module text); `provenance`: e.g. the sweep and trial id."""
    return {**deliverable.record(config), "base": base, "config": config.to_dict(), "metrics": dict(metrics or {}),
            **provenance}


def save_deliverable(location: str | Path, lm: ModelAdapter, info: dict) -> str:
    """Save a deliverable with its info to a local path or a URI pyarrow opens; returns where it is."""
    local = storage.local_path(str(location))
    if local is not None:
        return str(save_model(lm, local, info))
    with tempfile.TemporaryDirectory() as folder:
        return storage.upload_path(save_model(lm, Path(folder) / ("model" + lm.suffix), info), str(location))


def prune_and_save(base: ModelAdapter, corpus: Corpus, config: PruneConfig, out: str | Path,
                   evaluate: Callable[[ModelAdapter], dict] | None = None, base_path: str = "",
                   force: bool = False, log: Callable[[str], None] = print) -> dict:
    """Each deliverable becomes `out/size-X.XX.pt` (its record and metrics in the checkpoint's info) and a
    row of `out/summary.json`, which is rewritten after every deliverable so that it is never torn."""
    out = Path(out)
    if (out / "summary.json").exists() and not force:
        raise PrunelabError(f"{out} already holds a pruning run (summary.json); use --force to overwrite it")
    summary = {"base": base_path, "base_params": base.param_counts()["params_total"], "config": config.to_dict(),
               "deliverables": []}
    for deliverable in run_pruning(base, corpus, config, log=log):
        if not deliverable.delivered:
            continue
        metrics = evaluate(deliverable.model) if evaluate is not None else {}
        if metrics:
            log(f"size {deliverable.target_size:g}: ppl_valid {metrics['ppl_valid']:.1f}, "
                f"wer {100 * metrics['wer']:.2f}%")
        info = deliverable_info(deliverable, config, base_path, metrics)
        out.mkdir(parents=True, exist_ok=True)  # only once there is a deliverable: a refused run leaves nothing
        path = save_deliverable(out / deliverable_name(deliverable.target_size, base.suffix), deliverable.model, info)
        summary["deliverables"].append({key: value for key, value in info.items() if key not in ("base", "config")}
                                       | {"checkpoint": path})
        write_json_atomic(out / "summary.json", summary)
    return summary

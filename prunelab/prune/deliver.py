"""`prunelab prune`: run one pruning configuration, evaluate and save every deliverable, write a summary."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from prunelab.atomic import atomic_write
from prunelab.data.text import Corpus
from prunelab.errors import PrunelabError
from prunelab.lm.adapter import ModelAdapter
from prunelab.prune.run import PruneConfig, run_pruning


def deliverable_name(size: float, suffix: str = ".pt") -> str:
    """`size-0.50.pt` (a word-LM checkpoint) or `size-0.50` (a Hugging Face deliverable folder)."""
    return f"size-{size:.2f}{suffix}"


def write_json_atomic(path: Path, data) -> None:
    atomic_write(path, lambda handle: handle.write((json.dumps(data, indent=2) + "\n").encode()))


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
        record = deliverable.record(config)
        if evaluate is not None:
            record["metrics"] = evaluate(deliverable.model)
            log(f"size {deliverable.target_size:g}: ppl_valid {record['metrics']['ppl_valid']:.1f}, "
                f"wer {100 * record['metrics']['wer']:.2f}%")
        out.mkdir(parents=True, exist_ok=True)  # only once there is a deliverable: a refused run leaves nothing
        path = deliverable.model.save(out / deliverable_name(deliverable.target_size, base.suffix),
                                      {**record, "base": base_path, "config": config.to_dict()})
        record["checkpoint"] = str(path)
        summary["deliverables"].append(record)
        write_json_atomic(out / "summary.json", summary)
    return summary

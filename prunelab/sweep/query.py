"""Queries over a sweep's results store: the best configurations for a target size."""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

from prunelab import storage
from prunelab.errors import PrunelabError
from prunelab.prune.size import SIZE_TOLERANCE
from prunelab.sweep.folder import SPEC_FILE
from prunelab.sweep.store import read_results

ORDERS = ("wer", "speed", "pareto")


def find_sweep(name_or_path: str, storage_root: str = "runs") -> str:
    """A sweep's location given its folder or URI, or its name under `storage_root`."""
    candidates = [name_or_path] if storage.is_uri(name_or_path) else [name_or_path, str(Path(storage_root) / name_or_path)]
    for candidate in candidates:
        if storage.exists(storage.join(candidate, SPEC_FILE)):
            return storage.absolute(candidate)
    raise PrunelabError(f"{name_or_path} is not a sweep (no {SPEC_FILE} in {' or in '.join(candidates)})")


def pareto_front(rows: list[dict]) -> list[dict]:
    """Rows no other row beats on both WER (lower) and speed_ratio (higher)."""
    front = []
    for row in rows:
        dominated = any(other["wer"] <= row["wer"] and other["speed_ratio"] >= row["speed_ratio"]
                        and (other["wer"] < row["wer"] or other["speed_ratio"] > row["speed_ratio"]) for other in rows)
        if not dominated:
            front.append(row)
    return sorted(front, key=lambda r: r["wer"])


def best_configs(sweep_dir: str | Path, target_size: float, by: str = "wer", top: int = 5) -> list[dict]:
    # per-utterance errors are for paired comparisons (reports), not for a listing
    rows = [r for r in read_results(sweep_dir).drop_columns(["utt_errors"]).to_pylist()
            if r["wer"] is not None and r["target_size"] is not None]
    return rank_rows(rows, target_size, by, top)


def rank_rows(rows: list[dict], target_size: float, by: str = "wer", top: int = 5) -> list[dict]:
    """The evaluated deliverables of `target_size` (within the size tolerance), best first by `by`."""
    if by not in ORDERS:
        raise PrunelabError(f"--by must be one of {', '.join(ORDERS)}, got {by!r}")
    sizes = sorted({r["target_size"] for r in rows}, reverse=True)
    matching = [r for r in rows if abs(r["target_size"] - target_size) < 1e-9
                and abs(r["achieved_size"] - target_size) <= SIZE_TOLERANCE]
    if not matching:
        have = ", ".join(f"{s:g}" for s in sizes) or "none yet"
        raise PrunelabError(f"no trial reached target size {target_size:g}; sizes with results: {have}")
    if by == "pareto":
        return pareto_front(matching)
    return sorted(matching, key=wer_order if by == "wer" else speed_order)[:top]


def _perplexity(row: dict) -> float:
    return row.get("ppl_valid") if row.get("ppl_valid") is not None else math.inf


def wer_order(row: dict) -> tuple:
    """WER, ties broken by valid perplexity (a finer measure of the same thing), then by speed."""
    return row["wer"], _perplexity(row), -row["speed_ratio"]


def speed_order(row: dict) -> tuple:
    return -row["speed_ratio"], row["wer"], _perplexity(row)


def export_best(sweep_dir: str, target_size: float, out: str | Path) -> dict:
    """Copy the best deliverable (by WER) at `target_size` to `out`: a word LM's checkpoint file as it is, a
    Hugging Face deliverable as a plain transformers folder (prunelab.lm.export). Returns its row."""
    from prunelab.lm.export import export_model  # deferred: transformers takes about a second to import
    from prunelab.lm.load import load_model

    out = Path(out)
    (row,) = best_configs(sweep_dir, target_size, "wer", 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    if storage.exists(storage.join(row["checkpoint"], "prunelab.json")):  # a Hugging Face deliverable folder
        with tempfile.TemporaryDirectory() as folder:
            export_model(load_model(storage.download(row["checkpoint"], Path(folder) / "deliverable")), out)
    else:
        storage.download(row["checkpoint"], out)
    return row

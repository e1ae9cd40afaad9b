"""Figure 5: the best pruned WER at each target size relative to the unpruned base (paper sweep's store)."""
from __future__ import annotations

import json

from prunelab import storage
from prunelab.report.build import REFERENCE_FILE
from prunelab.sweep.query import best_configs
from prunelab.sweep.store import read_results

GOALS = {0.5: 0.02, 0.25: 0.08}  # relative WER increase allowed at these sizes (issue 6)


def measure(args) -> dict:
    rows = [r for r in read_results(args.sweep).to_pylist() if r["wer"] is not None and r["target_size"] is not None]
    reference = json.loads(storage.read_bytes(storage.join(args.sweep, REFERENCE_FILE)))
    base = reference["base"]
    best = []
    for size in sorted({r["target_size"] for r in rows}, reverse=True):
        (winner,) = best_configs(args.sweep, size, "wer", 1)  # the same choice as `prunelab best` and the report
        best.append({"target_size": size, "achieved_size": winner["achieved_size"], "wer": winner["wer"],
                     "wer_ci_low": winner["wer_ci_low"], "wer_ci_high": winner["wer_ci_high"],
                     "relative": winner["wer"] / base["wer"] - 1, "speed_ratio": winner["speed_ratio"],
                     "config": f"{winner['criterion']} / {winner['method']} / {winner['scheduler']}",
                     "trial_id": winner["trial_id"],
                     "candidates": sum(r["target_size"] == size for r in rows)})
    return {"sweep": args.sweep, "base_wer": base["wer"], "base_wer_ci": [base["wer_ci_low"], base["wer_ci_high"]],
            "trigram_wer": reference["trigram"]["wer"], "n_test_utts": reference["key"]["n_test_utts"],
            "trials": len({r["trial_id"] for r in rows}), "goals": {str(k): v for k, v in GOALS.items()}, "best": best}

"""The study's benchmark figures, measured on this machine and written to reports/benchmarks.md.

Sections (each measured by this script, its raw figures kept in reports/benchmarks.json so that a section can
be re-measured alone and the Markdown regenerated from all of them):

  speed     scoring speed-up of each method at 0.5 and 0.25 size vs its MAC-ratio limit (small base, one process,
            pruned model and base timed alternately, median of repeats)
  delivery-compute, delivery-wer
            incremental low-rank delivering four sizes in one run vs four one-shot runs: CPU time of pruning and
            fine-tuning (evaluation excluded: each deliverable is evaluated once either way), and each
            deliverable's WER with its interval and the paired difference, from the paper sweep's store
  scaling   trials/hour of the demo sweep with 1 and 2 concurrent trials on one node, and with 2 concurrent
            trials on a two-node loopback cluster (1 CPU per node)
  search    Optuna TPE vs random search over a table of measured schedule shapes (every point a real pruning
            run, its WER measured once): trials needed to come within 1% (relative) of the best WER that 64
            random trials found, repeated over seeds
  quality   the best pruned WER per target size relative to the unpruned base, from the paper sweep's store
  memory    peak resident memory of one `prunelab prune` run of the small base (four deliverables, evaluated)
  warm-start, search-scale
            the persistent study: TPE cold vs warm-started from an earlier search on the search table; one TPE
            suggestion's time and the journal file's size at 100 to 5,000 finished trials (figures/study.py)

    python benchmarks/paper_figures.py [--sections speed,...,warm-start,search-scale] [--sweep runs/paper]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import delivery, memory, quality, render, scaling, search, speed, study  # noqa: E402

SECTIONS = {"speed": speed.measure, "delivery-compute": delivery.measure_compute, "delivery-wer": delivery.measure_wer,
            "scaling": scaling.measure, "search": search.measure, "quality": quality.measure,
            "memory": memory.measure, "warm-start": study.measure_warm_start, "search-scale": study.measure_scale}


def machine() -> str:
    return (f"{platform.machine()}, {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
            f"Python {platform.python_version()}, torch {torch.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    parser.add_argument("--sweep", default="runs/paper", help="the paper sweep's folder (delivery, quality)")
    parser.add_argument("--work", default="runs/benchmarks", help="folder for intermediate runs (search table)")
    parser.add_argument("--out", default="reports/benchmarks.md")
    args = parser.parse_args()
    wanted = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; expected some of {', '.join(SECTIONS)}")
    out = Path(args.out)
    data_path = out.with_suffix(".json")
    for name in wanted:
        print(f"== {name}", flush=True)
        started = time.time()
        figures_of_section = SECTIONS[name](args)
        measured = {"machine": machine(), "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "minutes": round((time.time() - started) / 60, 1), **figures_of_section}
        # re-read: another invocation may have measured other sections meanwhile
        figures = json.loads(data_path.read_text()) if data_path.exists() else {}
        render.write(out, data_path, {**figures, name: measured})
    figures = json.loads(data_path.read_text()) if data_path.exists() else {}
    render.write(out, data_path, figures)
    print(f"wrote {out} and {data_path}")


if __name__ == "__main__":
    main()

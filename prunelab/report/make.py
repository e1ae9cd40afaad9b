"""`prunelab report`: a sweep's local report written whole, from its results store."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from prunelab.errors import PrunelabError
from prunelab.report.build import collect, default_out
from prunelab.report.render import write_report
from prunelab.report.wandb_report import report_spec, write_spec


def make_report(sweep_dir: str, out: str | Path | None = None, entity: str | None = None, log=print,
                notes: str | Path | None = None, nbest: str | None = None) -> Path:
    """Write the local report of a sweep (index.html, report.md, PNGs, the W&B Report spec) into `out`
    (default reports/NAME, or reports/NAME/nbest-OTHER with `nbest`), whole: it is built in a temporary folder
    and swapped in. `notes`: a Markdown file whose text becomes the report's Discussion section. `nbest`: another
    N-best benchmark to evaluate the deliverables on (`prunelab.report.reevaluate`). Returns index.html."""

    notes_text = ""
    if notes is not None:
        try:
            notes_text = Path(notes).read_text()
        except OSError as error:
            raise PrunelabError(f"cannot read the notes file {notes}: {error.strerror}") from None
    data = collect(sweep_dir, log, nbest)
    data.notes = notes_text
    out = Path(out) if out is not None else default_out(data.sweep, nbest)
    building = out.with_name(f".{out.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    try:
        write_report(data, building)
        write_spec(report_spec(data, entity), building)
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if out.exists():
            for nested in out.glob("nbest-*"):  # reports on other benchmarks live inside: they stay
                if nested.is_dir() and not (building / nested.name).exists():
                    nested.rename(building / nested.name)
            out.rename(old)
        building.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return out / "index.html"

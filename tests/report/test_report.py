"""The local report of a real sweep: files written, numbers taken from the Parquet store, rendered by a real
headless Chromium without console errors and with every plot loaded; the W&B Report built offline."""
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prunelab.report.build import collect
from prunelab.report.make import make_report
from prunelab.report.wandb_report import SPEC_FILE, build_report, report_spec

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)


@pytest.fixture(scope="module")
def report(finished_sweep, tmp_path_factory):
    _, folder = finished_sweep
    return make_report(str(folder), tmp_path_factory.mktemp("reports") / "t")


def test_the_report_folder_holds_html_markdown_plots_and_the_wandb_spec(report):
    folder = report.parent
    assert report.name == "index.html" and (folder / "report.md").is_file()
    for name in ("wer_vs_size.png", "speed_vs_size.png", "pareto.png", "search_history.png", SPEC_FILE):
        assert (folder / name).stat().st_size > 1000
    page = report.read_text()
    assert "Findings" in page and "Best configuration per target size" in page
    assert "<script" not in page and 'src="http' not in page and 'href="http' not in page  # opens from disk, offline
    assert not list(folder.parent.glob(".t.*"))  # nothing left half-built


def test_a_changed_row_in_the_store_changes_the_report(finished_sweep, tmp_path):
    _, folder = finished_sweep
    copy = tmp_path / "t"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("wandb"))
    before = (make_report(str(copy), tmp_path / "before")).parent / "report.md"
    data = collect(str(copy))
    best_size, best_row = next(iter(data.best.items()))
    path = copy / "results" / f"trial-{best_row['trial_id']}.parquet"
    table = pq.read_table(path).to_pylist()
    for row in table:
        if row["target_size"] == best_size:
            row["wer"] = 0.01234  # 1.23%: a value no real trial reaches
    pq.write_table(pa.Table.from_pylist(table, schema=pq.read_schema(path)), path)
    after = make_report(str(copy), tmp_path / "after").parent / "report.md"
    assert "1.23%" not in before.read_text() and "1.23%" in after.read_text()


def test_the_wandb_report_is_built_offline_with_its_panels_and_filters(finished_sweep):
    spec, folder = finished_sweep
    description = report_spec(collect(str(folder)), entity="someone")
    report = build_report(description)
    grid = report.blocks[-1]
    assert [type(p).__name__ for p in grid.panels] == ["ScatterPlot", "ScatterPlot", "ScatterPlot",
                                                      "ParallelCoordinatesPlot", "ParameterImportancePlot", "LinePlot"]
    assert grid.panels[0].title == "WER vs achieved size" and grid.panels[4].with_respect_to == "wer"
    assert len(grid.runsets) == len(spec.methods)
    for runset, method in zip(grid.runsets, spec.methods):
        assert f'Metadata("group") == "{spec.name}"' in runset.filters and f'Config("method") == "{method}"' in runset.filters
    json.dumps(description)  # the spec written beside the HTML is plain JSON


def test_headless_chromium_renders_the_report_without_errors_and_loads_every_plot(report, headless_chromium):
    browser = headless_chromium
    browser.get(Path(report).resolve().as_uri())
    sizes = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight]);")
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    title = browser.title
    assert title.startswith("prunelab report")
    assert len(sizes) >= 3 and all(done and width > 100 and height > 100 for done, width, height in sizes)
    assert errors == []


def test_the_report_states_the_study_set_up_and_includes_the_discussion_escaped(finished_sweep, tmp_path):
    _, folder = finished_sweep
    notes = tmp_path / "discussion.md"
    notes.write_text("## Why it differs\n\nThe budget is small.\n\n- scale <script>x</script>\n- data\n")
    index = make_report(str(folder), tmp_path / "r", notes=notes)
    md, page = (index.parent / "report.md").read_text(), index.read_text()
    spec = collect(str(folder)).spec
    assert "## Study set-up" in md and f"Fine-tuning budget {spec.finetune_steps} optimizer steps" in md
    base = collect(str(folder)).references["base"]
    assert f"(no LM rescoring): WER {100 * base['wer_1best']:.2f}%" in md
    assert "## Discussion" in md and "The budget is small." in md
    assert "<h3>Why it differs</h3>" in page and "<li>scale &lt;script&gt;x&lt;/script&gt;</li>" in page
    assert "<script" not in page
    without = make_report(str(folder), tmp_path / "plain")
    assert "Discussion" not in without.read_text()


def _table_rows(report, heading: str, columns: int) -> set[tuple[str, ...]]:
    """The first `columns` cells of each row of the Markdown table under `## heading` in report.md."""
    section = (report.parent / "report.md").read_text().split(f"## {heading}")[1].split("\n## ")[0]
    return {tuple(cell.strip() for cell in line.strip("|").split("|")[:columns])
            for line in section.splitlines() if line.startswith("| 0.")}


def test_the_report_marks_the_pareto_set_of_each_target_size_as_best_does(report, finished_sweep):
    from prunelab.sweep.query import best_configs

    _, folder = finished_sweep
    listed = _table_rows(report, "Pareto set per target size (WER vs speed-up)", 2)
    sizes = {float(size) for size, _ in listed}
    expected = {(f"{size:g}", row["trial_id"]) for size in sizes for row in best_configs(folder, size, "pareto")}
    assert listed and listed == expected
    assert "Pareto set per target size" in report.read_text()


def test_the_report_lists_every_deliverable_with_its_valid_perplexity(report, finished_sweep):
    from prunelab.sweep.store import read_results

    _, folder = finished_sweep
    listed = _table_rows(report, "All deliverables", 8)
    stored = [r for r in read_results(str(folder)).to_pylist() if r["wer"] is not None and r["target_size"] is not None]
    assert listed and len(listed) == len(stored)
    for r in stored:
        assert (f"{r['target_size']:g}", r["trial_id"], r["criterion"], r["method"], r["scheduler"],
                str(r["finetune_steps"]), f"{r['achieved_size']:.4f}", f"{r['ppl_valid']:,.1f}") in listed
    data = collect(str(folder))
    base = data.references["base"]
    md = (report.parent / "report.md").read_text()
    assert f"valid perplexity {base['ppl_valid']:,.1f}" in md
    # each deliverable's paired difference against the recogniser's 1-best, from the test benchmark's rank-0 errors
    gains = _table_rows(report, "All deliverables", 10)
    for r in stored:
        c = data.one_best.deliverables[(r["trial_id"], r["target_size"])]
        assert any(cells[1] == r["trial_id"] and cells[9].startswith(f"{100 * c['diff']:+.2f}") for cells in gains)
    assert len(base["utt_errors"]) == len(stored[0]["utt_errors"])
    assert "## Rescoring gain over the recogniser's 1-best" in md and data.one_best.summary in md
    judged = [f for f in data.findings if f.status != "not covered"]
    assert md.count("(On WER that no LM here improves") == (len(judged) if data.one_best.base_gains is False else 0)
    assert "<h2>All deliverables</h2>" in report.read_text()

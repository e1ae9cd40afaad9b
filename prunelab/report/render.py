"""Write a report folder: the plots as PNG, `report.md`, and `index.html`, self-contained (plots embedded as
data URIs, no script, no network), all from a `ReportData`."""
from __future__ import annotations

import base64
import html
from datetime import UTC, datetime
from pathlib import Path

import prunelab.report.plots as plots
from prunelab.report.build import ReportData, schedule_keys
from prunelab.report.findings import NOT_COVERED

PLOTS = {"wer_vs_size.png": "WER vs achieved size", "speed_vs_size.png": "Speed-up vs size",
         "pareto.png": "WER / speed Pareto front per target size", "schedule_search.png": "Schedule shapes tried",
         "search_history.png": "Search history"}
ONE_BEST_TITLE = "Rescoring gain over the recogniser's 1-best"
STATUS_COLOURS = {"supported": "#1b7f3b", "not supported": "#b02a1f", "not covered": "#6b6b6b"}



def _budgets(spec) -> str:
    return " / ".join(str(b) for b in spec.budgets)

def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _best_table(data: ReportData) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """Header, plain cells and HTML cells (with links) of the best-per-size table."""
    header = ["target size", "achieved", "criterion", "method", "scheduler", "WER (95% CI)", "speed-up", "FLOP ratio",
              "steps", "trial", "checkpoint", "W&B run"]
    plain, linked = [], []
    for size, r in data.best.items():
        cells = [f"{size:g}", f"{r['achieved_size']:.4f}", r["criterion"], r["method"], r["scheduler"],
                 _wer_cell(r), f"{r['speed_ratio']:.2f}x",
                 f"{r['flop_ratio']:.3f}", str(r["finetune_steps"]), r["trial_id"]]
        run = data.wandb_runs.get(r["trial_id"])
        plain.append(cells + [r["checkpoint"] or "-", run or "-"])
        linked.append([html.escape(c) for c in cells]
                      + [f'<a href="{html.escape(_href(r["checkpoint"]))}">checkpoint</a>' if r["checkpoint"] else "-",
                         f'<a href="{html.escape(_href(run))}">offline run</a>' if run else "-"])
    return header, plain, linked


def _pareto_table(data: ReportData) -> tuple[list[str], list[list[str]]]:
    """The Pareto set per target size (no other deliverable of that size has both lower WER and higher speed-up),
    the same set as `prunelab best --by pareto`."""
    header = ["target size", "trial", "criterion", "method", "scheduler", "WER (95% CI)", "speed-up"]
    rows = [[f"{size:g}", r["trial_id"], r["criterion"], r["method"], r["scheduler"],
             _wer_cell(r), f"{r['speed_ratio']:.2f}x"]
            for size, front in sorted(data.fronts.items(), reverse=True) for r in front]
    return header, rows


def _wer_cell(r: dict) -> str:
    """WER and its interval; where the guard kept the recogniser's 1-best, so marked with the rescored figure."""
    cell = f"{_pct(r['wer'])} ({_pct(r['wer_ci_low'])}-{_pct(r['wer_ci_high'])})"
    if r.get("kept_1best"):
        cell += f" [1-best kept by the guard; rescored {_pct(r['wer_unguarded'])}]"
    return cell


def _ppl(value) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _deliverables_table(data: ReportData) -> tuple[list[str], list[list[str]]]:
    """Every evaluated deliverable, by target size (largest first), then WER, then valid perplexity: where WERs tie
    (a rescoring weight tuned to zero gives every deliverable the recogniser's own 1-best), perplexity still ranks
    them."""
    header = ["target size", "trial", "criterion", "method", "scheduler", "steps", "achieved", "valid perplexity",
              "WER (95% CI)", "minus 1-best, points (paired 95% CI; * excludes 0)", "speed-up"]
    gains = data.one_best.deliverables if data.one_best is not None else {}
    delivered = [r for r in data.rows if r["wer"] is not None and r["target_size"] is not None]
    delivered.sort(key=lambda r: (-r["target_size"], r["wer"], r["ppl_valid"] if r["ppl_valid"] is not None else float("inf")))
    rows = [[f"{r['target_size']:g}", r["trial_id"], r["criterion"], r["method"], r["scheduler"], str(r["finetune_steps"]),
             f"{r['achieved_size']:.4f}", _ppl(r["ppl_valid"]),
             _wer_cell(r), _gain_cell(gains.get((r["trial_id"], r["target_size"]))),
             "-" if r["speed_ratio"] is None else f"{r['speed_ratio']:.2f}x"] for r in delivered]
    return header, rows


def _caveat(data: ReportData, finding) -> str:
    """Before each judged finding where the unpruned base does not rescore better than the recogniser's 1-best."""
    if data.one_best is not None and data.one_best.base_gains is False and finding.status != NOT_COVERED:
        return "(On WER that no LM here improves over the 1-best: see the rescoring gain above.) "
    return ""


def _gain_cell(c: dict | None) -> str:
    """A paired difference against the 1-best, in points, starred where its interval excludes zero."""
    if c is None:
        return "-"
    star = "*" if c["better"] or c["worse"] else ""
    return f"{100 * c['diff']:+.2f}{star} ({100 * c['ci_low']:+.2f} to {100 * c['ci_high']:+.2f})"


def _href(location: str) -> str:
    return location if "://" in location else Path(location).resolve().as_uri()


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _context_lines(data: ReportData) -> list[str]:
    spec, refs, counts = data.spec, data.references, data.counts
    base, trigram = refs["base"], refs["trigram"]
    return [
        f"Sweep `{data.sweep}` ({data.sweep_dir}): {counts['trials']} trials ({counts['complete']} complete, "
        f"{counts['stopped']} stopped early, {counts['error']} failed, {counts['running']} unfinished), "
        f"{counts['deliverables']} evaluated deliverables; search `{spec.search}`, fine-tuning budget "
        f"{_budgets(spec)} steps per trial, base `{spec.base}`.",
        f"Test set: {refs['key']['n_test_utts']} utterances of the N-best benchmark "
        f"`{refs['key'].get('nbest_system', 'unknown')}` "
        + (f"(not the sweep's own, {data.spec.data.nbest or 'pocketsphinx'}: every deliverable was evaluated on it "
           f"for this report with `prunelab report --nbest`; perplexity and speed ratios are the sweep's). "
           if data.reevaluated else f"({data.spec.data.nbest or 'pocketsphinx'}). ")
        + f"Unpruned base: WER {_wer_cell(base)}, valid perplexity "
        f"{_ppl(base.get('ppl_valid'))}, {base['params_total']:,} parameters; Kneser-Ney trigram: WER "
        f"{_wer_cell(trigram)}, valid perplexity "
        f"{_ppl(trigram.get('ppl_valid'))}"
        + (f"; the recogniser's own first hypothesis (no LM rescoring): WER {_pct(base['wer_1best'])}."
           if "wer_1best" in base else "."),
        *_guard_lines(data),
    ]


def _guard_lines(data: ReportData) -> list[str]:
    """What the guard and the no-LM reference (prunelab.evaluate.guard) say about this report's figures."""
    base = data.references["base"]
    if "wer_nolm" not in base:
        return []
    delivered = [r for r in data.rows if r["wer"] is not None and r["target_size"] is not None]
    guarded = [r for r in delivered if r.get("kept_1best")]
    unknown = [r for r in delivered if r.get("kept_1best") is None]
    lines = [f"No-LM reference (the recogniser's scores with a word-insertion weight tuned on dev the same way, no "
             f"LM): WER {_pct(base['wer_nolm'])}; the unpruned base minus it: {100 * base['wer_diff_nolm']:+.2f} "
             f"points ({100 * base['wer_diff_nolm_ci_low']:+.2f} to {100 * base['wer_diff_nolm_ci_high']:+.2f}).",
             "Guard: an LM's rescoring is used only where its weights, cross-validated on dev, still beat the "
             "recogniser's 1-best there; otherwise the 1-best is kept. "
             + ("It kept the 1-best for the unpruned base"
                f" (rescored at its dev-tuned weights: {_pct(base['wer_unguarded'])})" if base.get("kept_1best")
                else "The unpruned base's gain held up")
             + f"; it kept the 1-best for {len(guarded)} of {len(delivered)} deliverables (marked in the table)."]
    if unknown:
        lines.append(f"{len(unknown)} deliverable(s) were evaluated before the guard existed: their figures are "
                     f"unguarded.")
    return lines


def _span(low: float, high: float) -> str:
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


def _setup_lines(data: ReportData) -> list[str]:
    """The study's choices, from the sweep's spec and its rows."""
    spec = data.spec
    hosts = sorted({(r.get("node") or "?").split("/")[0] for r in data.rows})
    schedule = spec.schedule
    return [
        f"Criteria {', '.join(spec.criteria)}; methods {', '.join(spec.methods)}; schedulers {', '.join(spec.schedulers)}; "
        f"target sizes {', '.join(f'{s:g}' for s in spec.target_sizes)} (fraction of the base's parameters kept, "
        f"embedding/output matrix {'pruned too' if spec.prune_embedding else 'kept'}).",
        f"Fine-tuning budget {_budgets(spec)} optimizer steps of {spec.finetune_batch} sequences per trial, equal for one-shot and incremental; "
        f"learning rate {_span(spec.lr.low, spec.lr.high)}; {spec.calibration_sequences} calibration sequences for the "
        f"data-driven criteria; incremental schedules: shapes {', '.join(schedule.shapes)}, stages "
        f"{_span(schedule.stages.low, schedule.stages.high)}, exponent {_span(schedule.exponent.low, schedule.exponent.high)}, "
        f"budget split {_span(schedule.budget_split.low, schedule.budget_split.high)}.",
        f"Deliverables evaluated on {'all' if data.reevaluated else spec.data.eval_test_utts or 'all'} test "
        f"utterances (rescoring weights tuned on {'all' if data.reevaluated else spec.data.eval_dev_utts or 'all'} dev "
        f"utterances); search `{spec.search}`"
        f"{'' if spec.search == 'grid' else f' ({spec.num_samples} samples)'}; {spec.max_concurrent} trials at once, "
        f"{spec.resources.cpu:g} CPU each; trials ran on host(s) {', '.join(hosts)}.",
        f"Valid perplexity: per word, on {f'the first {spec.data.ppl_valid_sentences}' if spec.data.ppl_valid_sentences else 'all'} "
        f"sentences of the corpus's validation text.",
    ]


def _notes_html(text: str) -> str:
    """The Discussion's Markdown as HTML: paragraphs and '- ' lists, everything escaped (no markup passes)."""
    parts = []
    for block in (b.strip() for b in text.split("\n\n")):
        if not block:
            continue
        lines = block.splitlines()
        if lines[0].startswith("#"):
            parts.append(f"<h3>{html.escape(lines[0].lstrip('#').strip())}</h3>")
            lines = lines[1:]
        if lines and all(line.startswith(("- ", "  ")) for line in lines):
            items, current = [], []
            for line in lines:
                if line.startswith("- ") and current:
                    items.append(" ".join(current))
                    current = []
                current.append(line[2:].strip() if line.startswith("- ") else line.strip())
            items.append(" ".join(current))
            parts.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>")
        elif lines:
            parts.append(f"<p>{html.escape(' '.join(line.strip() for line in lines))}</p>")
    return "".join(parts)


def write_plots(data: ReportData, out: Path) -> dict[str, Path]:
    written = {
        "wer_vs_size.png": plots.wer_vs_size(data.rows, data.references, out / "wer_vs_size.png"),
        "speed_vs_size.png": plots.speed_vs_size(data.rows, out / "speed_vs_size.png"),
        "pareto.png": plots.pareto_per_size(data.rows, data.fronts, out / "pareto.png"),
    }
    if any(r["scheduler"] == "incremental" and r["wer"] is not None for r in data.rows):
        written["schedule_search.png"] = plots.schedule_search(data.rows, schedule_keys(), out / "schedule_search.png")
    if data.spec.search != "grid" and any(r.get("started_at") is not None and r["wer"] is not None for r in data.rows):
        written["search_history.png"] = plots.search_history(data.rows, out / "search_history.png")
    return written


def write_report(data: ReportData, out: Path) -> Path:
    """Write PNGs, report.md and index.html into `out`; returns the path of index.html."""
    out.mkdir(parents=True, exist_ok=True)
    images = write_plots(data, out)
    header, plain, linked = _best_table(data)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    context = _context_lines(data)
    importances = ", ".join(f"{k} {v:.2f}" for k, v in data.importances.items())

    md = [f"# prunelab report: {data.sweep}", "", f"Generated {stamp} by `prunelab report` from the sweep's Parquet store.",
          "", *context, "", "## Study set-up", "", *(f"- {line}" for line in _setup_lines(data)), ""]
    if data.one_best is not None:
        md += [f"## {ONE_BEST_TITLE}", "", data.one_best.summary, ""]
    md += ["## Findings", ""]
    for f in data.findings:
        md += [f"### {f.title}", "", f"**{f.status}.** {_caveat(data, f)}{f.summary}", ""]
    if data.notes.strip():
        md += ["## Discussion", "", data.notes.strip(), ""]
    md += ["## Best configuration per target size", "", _md_table(header, plain), ""]
    pareto_header, pareto_rows = _pareto_table(data)
    if pareto_rows:
        md += ["## Pareto set per target size (WER vs speed-up)", "", _md_table(pareto_header, pareto_rows), ""]
    deliverables_header, deliverables_rows = _deliverables_table(data)
    md += ["## All deliverables", "", _md_table(deliverables_header, deliverables_rows), ""]
    for name, path in images.items():
        md += [f"## {PLOTS[name]}", "", f"![{PLOTS[name]}]({path.name})", ""]
    if importances:
        md += [f"Schedule-shape parameter importances for WER (Optuna PED-ANOVA): {importances}.", ""]
    (out / "report.md").write_text("\n".join(md))

    def img(path: Path) -> str:
        encoded = base64.b64encode(path.read_bytes()).decode()
        return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(PLOTS[path.name])}">'

    findings_html = "".join(
        f'<div class="finding"><h3>{html.escape(f.title)}</h3><p><span class="status" '
        f'style="background:{STATUS_COLOURS[f.status]}">{html.escape(f.status)}</span> {html.escape(_caveat(data, f) + f.summary)}</p></div>'
        for f in data.findings)
    sections = "".join(f"<h2>{html.escape(PLOTS[name])}</h2>{img(path)}" for name, path in images.items())
    if importances:
        sections += f"<p>Schedule-shape parameter importances for WER (Optuna PED-ANOVA): {html.escape(importances)}.</p>"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>prunelab report: {html.escape(data.sweep)}</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85em; }} td, th {{ border: 1px solid #ccc; padding: 3px 6px; }}
img {{ max-width: 100%; }} .status {{ color: white; padding: 1px 6px; border-radius: 3px; }}
code {{ background: #f3f3f3; }}
</style></head><body>
<h1>prunelab report: {html.escape(data.sweep)}</h1>
<p>Generated {stamp} by <code>prunelab report</code> from the sweep's Parquet store.</p>
{''.join(f'<p>{html.escape(line)}</p>' for line in context)}
<h2>Study set-up</h2><ul>{''.join(f'<li>{html.escape(line)}</li>' for line in _setup_lines(data))}</ul>
{f'<h2>{ONE_BEST_TITLE}</h2><p>{html.escape(data.one_best.summary)}</p>' if data.one_best is not None else ''}
<h2>Findings</h2>{findings_html}
{f'<h2>Discussion</h2>{_notes_html(data.notes)}' if data.notes.strip() else ''}
<h2>Best configuration per target size</h2>{_html_table(header, linked)}
{f'<h2>Pareto set per target size (WER vs speed-up)</h2>{_html_table(pareto_header, [[html.escape(c) for c in row] for row in pareto_rows])}' if pareto_rows else ''}
<h2>All deliverables</h2>{_html_table(deliverables_header, [[html.escape(c) for c in row] for row in deliverables_rows])}
{sections}
</body></html>
"""
    index = out / "index.html"
    index.write_text(page)
    return index

"""The report's plots (PNG, matplotlib's Agg backend: no display needed). Each takes result rows (dicts with
the Parquet column names) and writes one file."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METHOD_COLOURS = {"unstructured": "tab:blue", "structured": "tab:orange", "lowrank": "tab:green"}
CRITERION_MARKERS = {"magnitude": "o", "taylor": "s", "activation": "^"}
SCHEDULER_FILL = {"oneshot": "none", "incremental": "full"}


def _delivered(rows):
    return [r for r in rows if r.get("wer") is not None and r.get("target_size") is not None]


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def wer_vs_size(rows: list[dict], references: dict, path: Path) -> Path:
    """WER against achieved size: colour = method, marker = criterion, filled = incremental; CI error bars;
    the unpruned base and the Kneser-Ney trigram as reference lines."""
    fig, ax = plt.subplots(figsize=(8, 5))
    for r in _delivered(rows):
        colour = METHOD_COLOURS.get(r["method"], "grey")
        ax.errorbar(r["achieved_size"], 100 * r["wer"],
                    yerr=[[max(0.0, 100 * (r["wer"] - r["wer_ci_low"]))], [max(0.0, 100 * (r["wer_ci_high"] - r["wer"]))]],
                    fmt=CRITERION_MARKERS.get(r["criterion"], "x"), color=colour, ecolor=colour, alpha=0.8,
                    capsize=2, markerfacecolor=colour if r["scheduler"] == "incremental" else "white")
    for key, style, label in (("base", "-", "unpruned base"), ("trigram", "--", "Kneser-Ney trigram")):
        if references.get(key):
            ax.axhline(100 * references[key]["wer"], color="black", linestyle=style, linewidth=1, label=label)
    for method, colour in METHOD_COLOURS.items():
        ax.plot([], [], "s", color=colour, label=method)
    for criterion, marker in CRITERION_MARKERS.items():
        ax.plot([], [], marker, color="grey", label=criterion)
    ax.plot([], [], "o", color="grey", markerfacecolor="white", label="one-shot (open)")
    ax.set_xlabel("achieved size (fraction of the base's parameters)")
    ax.set_ylabel("rescoring WER (%)")
    ax.set_title("WER vs size (95% bootstrap intervals)")
    ax.invert_xaxis()
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def speed_vs_size(rows: list[dict], path: Path) -> Path:
    """Scoring speed-up against size per method, with each deliverable's FLOP-ratio limit (1 / flop_ratio)."""
    fig, ax = plt.subplots(figsize=(8, 5))
    for r in _delivered(rows):
        colour = METHOD_COLOURS.get(r["method"], "grey")
        ax.plot(r["achieved_size"], r["speed_ratio"], CRITERION_MARKERS.get(r["criterion"], "x"), color=colour)
        if r.get("flop_ratio"):
            ax.plot(r["achieved_size"], 1 / r["flop_ratio"], "_", color=colour, markersize=14)
    for method, colour in METHOD_COLOURS.items():
        ax.plot([], [], "s", color=colour, label=method)
    ax.plot([], [], "_", color="grey", markersize=14, label="FLOP limit (1 / flop_ratio)")
    ax.axhline(1.0, color="black", linewidth=1)
    ax.set_xlabel("achieved size")
    ax.set_ylabel("scoring speed-up vs the base (x)")
    ax.set_title("Speed-up vs size, measured side by side with the base")
    ax.invert_xaxis()
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def pareto_per_size(rows: list[dict], fronts: dict[float, list[dict]], path: Path) -> Path:
    """WER against speed-up per target size; the Pareto front of each size joined by a line."""
    sizes = sorted(fronts, reverse=True)
    fig, axes = plt.subplots(1, max(1, len(sizes)), figsize=(4 * max(1, len(sizes)), 4), squeeze=False)
    by_size = defaultdict(list)
    for r in _delivered(rows):
        by_size[r["target_size"]].append(r)
    for ax, size in zip(axes[0], sizes):
        for r in by_size[size]:
            ax.plot(r["speed_ratio"], 100 * r["wer"], CRITERION_MARKERS.get(r["criterion"], "x"),
                    color=METHOD_COLOURS.get(r["method"], "grey"), alpha=0.7)
        front = sorted(fronts[size], key=lambda r: r["speed_ratio"])
        ax.plot([r["speed_ratio"] for r in front], [100 * r["wer"] for r in front], "k-", linewidth=1)
        ax.set_title(f"target size {size:g}")
        ax.set_xlabel("speed-up (x)")
        ax.set_ylabel("WER (%)")
        ax.grid(alpha=0.3)
    return _save(fig, path)


def schedule_search(rows: list[dict], keys: list[str], path: Path) -> Path:
    """WER of incremental trials against each schedule-shape parameter (one panel per key)."""
    incremental = [r for r in _delivered(rows) if r["scheduler"] == "incremental"]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.5 * len(keys), 3.5), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for r in incremental:
            if r.get(key) is not None:
                ax.plot(r[key], 100 * r["wer"], "o", color=METHOD_COLOURS.get(r["method"], "grey"), alpha=0.7)
        ax.set_xlabel(key)
        ax.set_ylabel("WER (%)")
        if key == "lr":
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    return _save(fig, path)


def search_history(rows: list[dict], path: Path) -> Path:
    """Each trial's mean WER over its delivered sizes in the order trials started, with the best so far."""
    trials: dict[str, list[dict]] = defaultdict(list)
    for r in _delivered(rows):
        if r.get("started_at") is not None:
            trials[r["trial_id"]].append(r)
    ordered = sorted(trials.values(), key=lambda rs: rs[0]["started_at"])
    means = [100 * sum(r["wer"] for r in rs) / len(rs) for rs in ordered]
    best = [min(means[:i + 1]) for i in range(len(means))]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(range(1, len(means) + 1), means, "o", color="tab:blue", label="trial (mean WER over its sizes)")
    ax.step(range(1, len(best) + 1), best, where="post", color="black", label="best so far")
    ax.set_xlabel("trial, in the order started")
    ax.set_ylabel("WER (%)")
    ax.set_title("Search history")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)

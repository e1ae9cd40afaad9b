"""Does a sweep support the paper's claims? Each check reads result rows (Parquet columns, `utt_errors` included)
and compares configurations with a paired bootstrap over test utterances (both systems resampled with the
same utterances). A difference counts only when its 95% interval excludes zero.

(a) data-driven criteria (taylor, activation) beat magnitude in several settings;
(b) incremental beats one-shot, most of all at small target sizes;
(c) low-rank gives the best size/speed trade-off at moderate compression;
(d) one incremental low-rank run delivers several sizes for less compute (fine-tuning steps) than separate
    one-shot runs, at no worse WER.
Each gives `supported`, `not supported` or `not covered` (the sweep lacks the configurations to tell).

Before them, `one_best_gain` asks whether the LMs rescore better than the recogniser's own first hypothesis at
all: where the unpruned base does not, the findings compare deliverables that add nothing over no LM."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from prunelab.evaluate.wer import paired_bootstrap_diff
from prunelab.record import reconstruction_of, recovery_of  # rows are compared only with rows of the same ones

SUPPORTED, NOT_SUPPORTED, NOT_COVERED = "supported", "not supported", "not covered"
DATA_DRIVEN = ("taylor", "activation")
MODERATE_SIZES = (0.4, 0.75)  # target sizes counted as moderate compression for (c)


@dataclass
class Finding:
    claim: str
    title: str
    status: str
    summary: str
    comparisons: list[dict] = field(default_factory=list)


def _usable(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("wer") is not None and r.get("target_size") is not None
            and r.get("utt_errors") is not None]


def _best(rows: list[dict]) -> dict:
    return min(rows, key=lambda r: (r["wer"], -(r.get("speed_ratio") or 0)))


def _compare(a: dict, b: dict, ref_words: np.ndarray) -> dict:
    return _compare_errors(a["utt_errors"], b["utt_errors"], ref_words)


def _compare_errors(a, b, ref_words: np.ndarray) -> dict:
    """a - b: WER difference of two systems' per-utterance errors with its paired 95% interval."""
    diff, interval = paired_bootstrap_diff(np.asarray(a), np.asarray(b), ref_words)
    return {"diff": diff, "ci_low": interval.low, "ci_high": interval.high,
            "better": interval.high < 0, "worse": interval.low > 0}


def _wer_text(r: dict) -> str:
    interval = (f" ({100 * r['wer_ci_low']:.2f}-{100 * r['wer_ci_high']:.2f})"
                if r.get("wer_ci_low") is not None and r.get("wer_ci_high") is not None else "")
    return f"{100 * r['wer']:.2f}%{interval}"


def _pooled(pairs: list[tuple[dict, dict]], ref_words: np.ndarray) -> str:
    """Mean WER difference (a - b) over several pairs with its interval: per-utterance errors averaged over the
    pairs, then one paired bootstrap, so every pair is resampled with the same utterances."""
    a = np.mean([np.asarray(x["utt_errors"], dtype=float) for x, _ in pairs], axis=0)
    b = np.mean([np.asarray(y["utt_errors"], dtype=float) for _, y in pairs], axis=0)
    diff, interval = paired_bootstrap_diff(a, b, ref_words)
    return f"{_points(diff)} points ({_points(interval.low)} to {_points(interval.high)})"


def _tally(comparisons: list[dict]) -> tuple[int, int, int]:
    better = sum(c["better"] for c in comparisons)
    worse = sum(c["worse"] for c in comparisons)
    return better, worse, len(comparisons) - better - worse


def _points(value: float) -> str:
    return f"{100 * value:+.2f}"


def data_driven_vs_magnitude(rows: list[dict], ref_words: np.ndarray) -> Finding:
    title = "(a) data-driven criteria beat magnitude in several settings"
    cells = defaultdict(lambda: defaultdict(list))
    for r in _usable(rows):
        cells[(r["method"], r["scheduler"], r["target_size"], recovery_of(r), reconstruction_of(r))][r["criterion"]].append(r)
    comparisons, pairs = [], []
    for (method, scheduler, size, *_), by_criterion in sorted(cells.items()):
        if "magnitude" not in by_criterion:
            continue
        magnitude = _best(by_criterion["magnitude"])
        for criterion in DATA_DRIVEN:
            if criterion in by_criterion:
                pairs.append((_best(by_criterion[criterion]), magnitude))
                comparisons.append({"method": method, "scheduler": scheduler, "target_size": size,
                                    "criterion": criterion, **_compare(*pairs[-1], ref_words)})
    if not comparisons:
        return Finding("a", title, NOT_COVERED, "No setting (method, scheduler, target size) has both magnitude "
                       "and a data-driven criterion.")
    better, worse, same = _tally(comparisons)
    status = SUPPORTED if better >= 2 and better > worse else NOT_SUPPORTED
    best = min(comparisons, key=lambda c: c["diff"])
    summary = (f"Data-driven minus magnitude WER, {len(comparisons)} comparisons: significantly better in {better}, "
               f"worse in {worse}, no significant difference in {same}. Largest gain: {best['criterion']} "
               f"{best['method']} {best['scheduler']} at {best['target_size']:g}, {_points(best['diff'])} points "
               f"({_points(best['ci_low'])} to {_points(best['ci_high'])}). Mean over all comparisons: "
               f"{_pooled(pairs, ref_words)}; per target size: "
               + ", ".join(f"{size:g}: {_pooled([p for c, p in zip(comparisons, pairs) if c['target_size'] == size], ref_words)}"
                           for size in sorted({c["target_size"] for c in comparisons}, reverse=True)) + ".")
    return Finding("a", title, status, summary, comparisons)


def _per_size(r: dict) -> bool:
    """An incremental trial that pruned to one size with the whole budget (`incremental_mode: per-size`)."""
    return r["scheduler"] == "incremental" and r.get("incremental_mode") == "per-size"


def _multi_size(r: dict) -> bool:
    """A deliverable of an incremental run that delivered several sizes (rows of older sweeps have no mode)."""
    return r["scheduler"] == "incremental" and r.get("incremental_mode") in (None, "multi-size")


def incremental_vs_oneshot(rows: list[dict], ref_words: np.ndarray) -> Finding:
    """Only equal-budget pairs: a per-size incremental trial against the one-shot trial of the same criterion,
    method, target size and fine-tuning steps. Deliverables of multi-size runs never enter (a deliverable taken on
    the way down has spent part of the budget; (d) judges those runs)."""
    title = "(b) incremental beats one-shot, most of all at small target sizes"
    usable = _usable(rows)
    cells = defaultdict(lambda: defaultdict(list))
    for r in usable:
        if r["scheduler"] == "oneshot" or _per_size(r):
            cells[(r["criterion"], r["method"], r["target_size"], r.get("finetune_steps"), recovery_of(r),
                   reconstruction_of(r))][r["scheduler"]].append(r)
    pairs = [(_best(by["incremental"]), _best(by["oneshot"]))
             for _, by in sorted(cells.items(), key=lambda kv: tuple(str(k) for k in kv[0]))
             if "incremental" in by and "oneshot" in by]
    comparisons = [{"criterion": i["criterion"], "method": i["method"], "target_size": i["target_size"],
                    "steps": i.get("finetune_steps"), **_compare(i, o, ref_words)} for i, o in pairs]
    if not comparisons:
        multi = sum(_multi_size(r) for r in usable)
        reason = (f" The sweep's {multi} incremental deliverables come from multi-size runs (several sizes from one run "
                  f"and one budget), which are not an equal-budget comparison; `incremental_mode: per-size` runs one "
                  f"incremental trial per target size with the full budget." if multi else "")
        return Finding("b", title, NOT_COVERED, "No per-size incremental trial has a one-shot trial of the same "
                       "criterion, method, target size and fine-tuning budget." + reason)
    better, worse, same = _tally(comparisons)
    by_size, by_budget = defaultdict(list), defaultdict(lambda: defaultdict(list))
    for c, pair in zip(comparisons, pairs):
        by_size[c["target_size"]].append((c["diff"], pair))
        by_budget[c["steps"]][c["target_size"]].append(pair)
    mean_by_size = {size: float(np.mean([d for d, _ in entries])) for size, entries in sorted(by_size.items())}
    budgets_text = "; ".join(
        f"{steps} steps: " + ", ".join(f"{size:g} {_pooled(sizes[size], ref_words)}" for size in sorted(sizes, reverse=True))
        for steps, sizes in sorted(by_budget.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)))
    summary = (f"Incremental minus one-shot WER at equal budgets, {len(comparisons)} comparisons: significantly better "
               f"in {better}, worse in {worse}, no significant difference in {same}. Mean difference (points, 95% "
               f"interval) per budget and target size: {budgets_text}.")
    if len(mean_by_size) < 2:
        return Finding("b", title, NOT_COVERED, summary + " Only one target size has both schedulers, so whether the "
                       "gain grows at small sizes is not covered.", comparisons)
    smallest, largest = min(mean_by_size), max(mean_by_size)
    grows = mean_by_size[smallest] < mean_by_size[largest]
    status = SUPPORTED if better > worse and grows else NOT_SUPPORTED
    summary += (f" Over all budgets, the mean difference at the smallest size ({smallest:g}, "
                f"{_points(mean_by_size[smallest])}) is {'more' if grows else 'not more'} in incremental's favour "
                f"than at the largest ({largest:g}, {_points(mean_by_size[largest])}).")
    return Finding("b", title, status, summary, comparisons)


def lowrank_tradeoff(rows: list[dict], ref_words: np.ndarray, moderate: tuple[float, float] = MODERATE_SIZES) -> Finding:
    title = "(c) low-rank gives the best size/speed trade-off at moderate compression"
    by_size = defaultdict(lambda: defaultdict(list))
    for r in _usable(rows):
        if moderate[0] <= r["target_size"] <= moderate[1] and r.get("speed_ratio") is not None:
            by_size[r["target_size"]][r["method"]].append(r)
    comparisons = []
    for size, by_method in sorted(by_size.items(), reverse=True):
        if "lowrank" not in by_method or len(by_method) < 2:
            continue
        best_each = {method: _best(rs) for method, rs in by_method.items()}
        overall = _best(list(best_each.values()))
        # methods whose best WER is not significantly worse than the best at this size; the fastest of them wins
        accurate = {m: r for m, r in best_each.items() if r is overall or not _compare(r, overall, ref_words)["worse"]}
        winner = max(accurate, key=lambda m: accurate[m]["speed_ratio"])
        comparisons.append({"target_size": size, "winner": winner, "methods": sorted(best_each),
                            **{f"{m}_wer": r["wer"] for m, r in best_each.items()},
                            **{f"{m}_wer_text": _wer_text(r) for m, r in best_each.items()},
                            **{f"{m}_speed_ratio": r["speed_ratio"] for m, r in best_each.items()},
                            "accurate": sorted(accurate)})
    if not comparisons:
        return Finding("c", title, NOT_COVERED, f"No moderate target size ({moderate[0]:g}-{moderate[1]:g}) has "
                       "low-rank and another method.")
    wins = sum(c["winner"] == "lowrank" for c in comparisons)
    status = SUPPORTED if wins > len(comparisons) / 2 else NOT_SUPPORTED
    details = "; ".join(f"{c['target_size']:g}: fastest among the not-significantly-worse methods is {c['winner']} ("
                        + ", ".join(f"{m} {c[f'{m}_speed_ratio']:.2f}x at WER {c[f'{m}_wer_text']}"
                                    f"{'' if m in c['accurate'] else ', significantly worse'}"
                                    for m in sorted(c["methods"], key=lambda m: -c[f"{m}_speed_ratio"])) + ")"
                        for c in comparisons)
    summary = f"Low-rank has the best trade-off at {wins} of {len(comparisons)} moderate sizes. {details}."
    return Finding("c", title, status, summary, comparisons)


def multi_size_delivery(rows: list[dict], ref_words: np.ndarray) -> Finding:
    title = "(d) one incremental low-rank run delivers several sizes for less compute than separate runs"
    usable = _usable(rows)
    runs = defaultdict(list)
    for r in usable:
        if r["method"] == "lowrank" and _multi_size(r):
            runs[r["trial_id"]].append(r)
    runs = {t: rs for t, rs in runs.items() if len(rs) >= 2}
    oneshot = defaultdict(list)
    for r in usable:
        if r["method"] == "lowrank" and r["scheduler"] == "oneshot":
            oneshot[(r["criterion"], r["target_size"])].append(r)
    comparisons = []
    for trial_id, delivered in sorted(runs.items()):
        criterion = delivered[0]["criterion"]
        separate = [_best(oneshot[(criterion, r["target_size"])]) for r in delivered if oneshot[(criterion, r["target_size"])]]
        if len(separate) < len(delivered):
            continue
        pairs = [_compare(r, s, ref_words) for r, s in zip(delivered, separate)]
        # compute = fine-tuning steps (the run's dominant cost, fixed by the spec); a trial's wall_s also holds
        # the evaluation of the deliverables before it, so the wall-time ratio is shown but not judged
        compute = max(r["finetune_steps"] for r in delivered) / sum(s["finetune_steps"] for s in separate)
        wall = max(r["wall_s"] for r in delivered) / sum(s["wall_s"] for s in separate)
        comparisons.append({"trial_id": trial_id, "criterion": criterion, "sizes": len(delivered),
                            "per_size": [(r["target_size"], p) for r, p in zip(delivered, pairs)],
                            "compute_ratio": compute, "wall_ratio": wall, "worse_sizes": sum(p["worse"] for p in pairs),
                            "better_sizes": sum(p["better"] for p in pairs),
                            "diffs": [p["diff"] for p in pairs]})
    if not comparisons:
        return Finding("d", title, NOT_COVERED, "No incremental low-rank run delivered two or more sizes that "
                       "one-shot low-rank runs of the same criterion also reached.")
    ok = [c for c in comparisons if c["compute_ratio"] < 1 and c["worse_sizes"] == 0]
    status = SUPPORTED if len(ok) > len(comparisons) / 2 else NOT_SUPPORTED
    summary = "; ".join(f"{c['criterion']}: {c['sizes']} sizes in one run for {c['compute_ratio']:.2f}x the fine-tuning "
                        f"steps of the separate one-shot runs ({c['wall_ratio']:.2f}x their wall time, evaluation of the "
                        f"earlier deliverables included), significantly worse at {c['worse_sizes']} size(s), better at "
                        f"{c['better_sizes']}; incremental minus one-shot per size: "
                        + ", ".join(f"{size:g}: {_points(p['diff'])} ({_points(p['ci_low'])} to {_points(p['ci_high'])})"
                                    for size, p in c["per_size"])
                        for c in comparisons) + "."
    return Finding("d", title, status, summary, comparisons)


@dataclass
class OneBestGain:
    """Rescoring against no rescoring: the unpruned base and each deliverable minus the recogniser's 1-best."""
    base: dict | None  # the base's comparison (None: its per-utterance errors are unknown)
    deliverables: dict[tuple[str, float], dict]  # (trial_id, target_size) -> comparison
    summary: str

    @property
    def base_gains(self) -> bool | None:
        """Whether the unpruned base rescores significantly better than the 1-best (None: not known)."""
        return None if self.base is None else bool(self.base["better"])


def _diff_text(c: dict) -> str:
    return f"{_points(c['diff'])} points ({_points(c['ci_low'])} to {_points(c['ci_high'])})"


def one_best_gain(rows: list[dict], base_errors, one_best_errors, ref_words: np.ndarray) -> OneBestGain:
    """Does rescoring with the LMs beat the recogniser's own first hypothesis? Paired differences (over test
    utterances) of the unpruned base and of every deliverable against the 1-best; a study whose base gains nothing
    compares pruned models by noise around the 1-best, and the summary says so."""
    base = None if base_errors is None else _compare_errors(base_errors, one_best_errors, ref_words)
    deliverables = {(r["trial_id"], r["target_size"]): _compare_errors(r["utt_errors"], one_best_errors, ref_words)
                    for r in _usable(rows)}
    parts = []
    if base is not None:
        verdict = ("it rescores significantly better" if base["better"] else
                   "significantly worse than no rescoring" if base["worse"] else "not significantly different")
        parts.append(f"Unpruned base minus the recogniser's 1-best: {_diff_text(base)}, {verdict}.")
    by_size = defaultdict(list)
    for (_, size), c in deliverables.items():
        by_size[size].append(c)
    better = sum(c["better"] for c in deliverables.values())
    worse = sum(c["worse"] for c in deliverables.values())
    parts.append(f"Deliverables significantly better than the 1-best: {better} of {len(deliverables)} ("
                 + ", ".join(f"{size:g}: {sum(c['better'] for c in cs)} of {len(cs)}"
                             for size, cs in sorted(by_size.items(), reverse=True))
                 + f"); significantly worse: {worse}.")
    if base is not None and not base["better"]:
        parts.append("The unpruned base does not beat the 1-best on this benchmark: the LM adds nothing here, so "
                     "the findings below compare deliverables by rescoring noise around the recogniser's own first "
                     "hypothesis, not by what pruning kept of a useful LM; perplexity still ranks them.")
    return OneBestGain(base, deliverables, " ".join(parts))


def all_findings(rows: list[dict], ref_words: np.ndarray) -> list[Finding]:
    return [check(rows, ref_words) for check in
            (data_driven_vs_magnitude, incremental_vs_oneshot, lowrank_tradeoff, multi_size_delivery)]

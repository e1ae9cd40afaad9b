"""The findings logic on crafted results where each claim holds, fails, or is not covered."""
import numpy as np
import pytest

from prunelab.report.findings import (
    NOT_COVERED,
    NOT_SUPPORTED,
    SUPPORTED,
    data_driven_vs_magnitude,
    incremental_vs_oneshot,
    lowrank_tradeoff,
    multi_size_delivery,
    one_best_gain,
)

N = 300
REF_WORDS = np.full(N, 10)
BASE = np.random.default_rng(0).integers(1, 5, N)


def errors(shift: int) -> list[int]:
    """Per-utterance errors `shift` words better (negative) or worse (positive) on every other utterance."""
    changed = BASE.copy()
    changed[::2] = np.clip(changed[::2] + shift, 0, None)
    return changed.tolist()


def row(criterion="magnitude", method="lowrank", scheduler="oneshot", size=0.5, shift=0, speed=1.5,
        trial_id=None, wall_s=100.0, steps=200, mode="per-size"):
    utt = errors(shift)
    return {"criterion": criterion, "method": method, "scheduler": scheduler, "target_size": size,
            "incremental_mode": mode if scheduler == "incremental" else None,
            "wer": sum(utt) / REF_WORDS.sum(), "speed_ratio": speed, "utt_errors": utt, "wall_s": wall_s,
            "finetune_steps": steps,
            "trial_id": trial_id or f"{criterion}-{method}-{scheduler}-{size}", "status": "complete"}


def test_a_holds_when_data_driven_wins_in_several_settings():
    rows = [r for s in (0.5, 0.3) for r in (row(size=s), row("taylor", size=s, shift=-1))]
    finding = data_driven_vs_magnitude(rows, REF_WORDS)
    assert finding.status == SUPPORTED and len(finding.comparisons) == 2
    assert all(c["better"] and c["diff"] < 0 for c in finding.comparisons)


def test_a_fails_when_magnitude_wins_and_is_not_covered_without_pairs():
    rows = [r for s in (0.5, 0.3) for r in (row(size=s), row("activation", size=s, shift=1))]
    assert data_driven_vs_magnitude(rows, REF_WORDS).status == NOT_SUPPORTED
    assert data_driven_vs_magnitude([row("taylor"), row("activation")], REF_WORDS).status == NOT_COVERED


def test_a_ignores_rows_without_a_deliverable():
    rows = [row(), {**row("taylor", shift=-1), "target_size": None, "wer": None}]
    assert data_driven_vs_magnitude(rows, REF_WORDS).status == NOT_COVERED


def test_b_holds_when_incremental_gains_most_at_the_smallest_size():
    rows = [row(size=0.7), row(scheduler="incremental", size=0.7, shift=-1),
            row(size=0.2), row(scheduler="incremental", size=0.2, shift=-3)]
    finding = incremental_vs_oneshot(rows, REF_WORDS)
    assert finding.status == SUPPORTED, finding.summary


def test_b_never_compares_multi_size_deliverables():
    # a multi-size run: its 0.7 deliverable spent 50 steps, its 0.2 deliverable all 200 (as the one-shot runs)
    multi = [row(scheduler="incremental", size=0.7, shift=-2, steps=50, trial_id="multi", mode="multi-size"),
             row(scheduler="incremental", size=0.2, shift=-3, steps=200, trial_id="multi", mode="multi-size"),
             {**row(scheduler="incremental", size=0.5, shift=-3, trial_id="old"), "incremental_mode": None}]
    oneshot = [row(size=0.7), row(size=0.2), row(size=0.5)]
    finding = incremental_vs_oneshot(oneshot + multi, REF_WORDS)
    assert finding.status == NOT_COVERED and not finding.comparisons
    assert "3 incremental deliverables come from multi-size runs" in finding.summary
    per_size = [row(scheduler="incremental", size=0.7, shift=-1), row(scheduler="incremental", size=0.2, shift=-2)]
    finding = incremental_vs_oneshot(oneshot + multi + per_size, REF_WORDS)
    assert len(finding.comparisons) == 2 and finding.status == SUPPORTED
    assert {c["target_size"] for c in finding.comparisons} == {0.7, 0.2}  # the multi-size 0.5 row has no partner


def test_b_pairs_only_equal_budgets_and_states_each_budget():
    rows = [row(size=s, steps=b) for s in (0.5, 0.2) for b in (200, 800)]
    rows += [row(scheduler="incremental", size=0.5, steps=200), row(scheduler="incremental", size=0.2, steps=200, shift=-1),
             row(scheduler="incremental", size=0.5, steps=800, shift=-1), row(scheduler="incremental", size=0.2, steps=800, shift=-3),
             row(scheduler="incremental", size=0.3, steps=2000, shift=-3)]  # no one-shot at 2,000 steps
    finding = incremental_vs_oneshot(rows, REF_WORDS)
    assert len(finding.comparisons) == 4 and all(c["steps"] in (200, 800) for c in finding.comparisons)
    assert "200 steps: 0.5 +0.00 points" in finding.summary and "800 steps: 0.5 " in finding.summary


def test_b_fails_when_the_gain_shrinks_at_small_sizes_and_one_size_is_not_enough():
    rows = [row(size=0.7), row(scheduler="incremental", size=0.7, shift=-3),
            row(size=0.2), row(scheduler="incremental", size=0.2, shift=-1)]
    assert incremental_vs_oneshot(rows, REF_WORDS).status == NOT_SUPPORTED
    one_size = [row(size=0.5), row(scheduler="incremental", size=0.5, shift=-2)]
    finding = incremental_vs_oneshot(one_size, REF_WORDS)
    assert finding.status == NOT_COVERED and "Only one target size" in finding.summary
    assert incremental_vs_oneshot([row(), row(size=0.3)], REF_WORDS).status == NOT_COVERED


def test_c_lowrank_wins_when_fastest_at_equal_accuracy_and_loses_when_much_less_accurate():
    rows = [row(method="lowrank", speed=1.8), row(method="structured", speed=1.5), row(method="unstructured", speed=1.0)]
    finding = lowrank_tradeoff(rows, REF_WORDS)
    assert finding.status == SUPPORTED and finding.comparisons[0]["winner"] == "lowrank"
    rows = [row(method="lowrank", speed=1.8, shift=2), row(method="structured", speed=1.5)]
    finding = lowrank_tradeoff(rows, REF_WORDS)
    assert finding.status == NOT_SUPPORTED and finding.comparisons[0]["winner"] == "structured"


def test_c_is_not_covered_outside_moderate_sizes_or_without_lowrank():
    assert lowrank_tradeoff([row(size=0.2), row(method="structured", size=0.2)], REF_WORDS).status == NOT_COVERED
    assert lowrank_tradeoff([row(method="structured"), row(method="unstructured")], REF_WORDS).status == NOT_COVERED


def test_d_multi_size_run_against_separate_oneshot_runs():
    separate = [row(size=s, wall_s=100) for s in (0.5, 0.3)]
    cheap = [row(scheduler="incremental", mode="multi-size", size=s, trial_id="inc", wall_s=w, steps=n)
             for s, w, n in ((0.5, 60, 100), (0.3, 110, 200))]
    finding = multi_size_delivery(separate + cheap, REF_WORDS)
    assert finding.status == SUPPORTED and finding.comparisons[0]["compute_ratio"] == pytest.approx(200 / 400)
    assert finding.comparisons[0]["wall_ratio"] == pytest.approx(110 / 200)
    worse = [row(scheduler="incremental", mode="multi-size", size=s, trial_id="inc", shift=2, wall_s=50) for s in (0.5, 0.3)]
    assert multi_size_delivery(separate + worse, REF_WORDS).status == NOT_SUPPORTED
    assert multi_size_delivery(separate, REF_WORDS).status == NOT_COVERED


def test_one_best_gain_counts_deliverables_that_beat_the_first_hypothesis():
    one_best = errors(2)  # the recogniser's 1-best: two more errors on every other utterance than BASE
    rows = [row(size=0.5), row(size=0.5, method="structured", shift=2), row(size=0.3, shift=4)]
    gain = one_best_gain(rows, errors(0), one_best, REF_WORDS)
    assert gain.base_gains and gain.base["diff"] < 0
    assert [gain.deliverables[(r["trial_id"], r["target_size"])]["better"] for r in rows] == [True, False, False]
    assert gain.deliverables[(rows[2]["trial_id"], 0.3)]["worse"]
    assert "better than the 1-best: 1 of 3 (0.5: 1 of 2, 0.3: 0 of 1); significantly worse: 1." in gain.summary
    assert "does not beat the 1-best" not in gain.summary


def test_one_best_gain_warns_when_the_unpruned_base_does_not_beat_the_first_hypothesis():
    gain = one_best_gain([row(shift=-1)], errors(0), errors(0), REF_WORDS)
    assert gain.base_gains is False and gain.base["diff"] == 0
    assert "not significantly different" in gain.summary and "does not beat the 1-best" in gain.summary
    unknown = one_best_gain([row()], None, errors(0), REF_WORDS)
    assert unknown.base_gains is None and "Unpruned base" not in unknown.summary

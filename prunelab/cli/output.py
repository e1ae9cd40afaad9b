"""What the commands print: an evaluation, a result row, the best configuration per target size."""
from __future__ import annotations

from prunelab.errors import PrunelabError


def format_report(name: str, m: dict) -> str:
    lines = [f"model {name}",
             f"  parameters      {m['params_total']:,} (embedding {m['params_embedding']:,}, blocks {m['params_blocks']:,})",
             f"  perplexity      valid {m['ppl_valid']:.1f}   test {m['ppl_test']:.1f}",
             f"  rescoring WER   {100 * m['wer']:.2f}%  (95% CI {100 * m['wer_ci_low']:.2f}-{100 * m['wer_ci_high']:.2f}) "
             f"on {m['n_test_utts']:,} test utterances / {m['n_test_words']:,} words "
             f"[lm_scale {m['lm_scale']:.3g}, word_insertion {m['word_insertion']:.3g}, tuned on {m['n_dev_utts']} dev; "
             f"scored in {m['scoring_precision']}]",
             f"  recogniser      1-best {100 * m['wer_1best']:.2f}%   oracle {100 * m['wer_oracle']:.2f}%   ({m['system']}); "
             f"model - 1-best {100 * m['wer_diff_1best']:+.2f} points ({100 * m['wer_diff_1best_ci_low']:+.2f} to "
             f"{100 * m['wer_diff_1best_ci_high']:+.2f})",
             "  guard           " + (f"the LM's dev gain did not hold up (cross-validated, "
                                      f"{100 * m['wer_dev_cv_diff_1best']:+.2f} points): the 1-best is kept; rescored "
                                      f"at the tuned weights it would be {100 * m['wer_unguarded']:.2f}%"
                                      if m["kept_1best"] else
                                      f"the LM's dev gain holds up (cross-validated, {100 * m['wer_dev_cv_diff_1best']:+.2f} "
                                      f"points, {100 * m['wer_dev_cv_diff_1best_ci_low']:+.2f} to "
                                      f"{100 * m['wer_dev_cv_diff_1best_ci_high']:+.2f})"),
             f"  no-LM reference WER {100 * m['wer_nolm']:.2f}% (insertion weight tuned on dev, no LM); model - no-LM "
             f"{100 * m['wer_diff_nolm']:+.2f} points ({100 * m['wer_diff_nolm_ci_low']:+.2f} to "
             f"{100 * m['wer_diff_nolm_ci_high']:+.2f})"]
    if "trigram" in m:
        t = m["trigram"]
        lines.append(f"  KN trigram      valid ppl {t['ppl_valid']:.1f}   test ppl {t['ppl_test']:.1f}   WER {100 * t['wer']:.2f}% "
                     f"(95% CI {100 * t['wer_ci_low']:.2f}-{100 * t['wer_ci_high']:.2f}); model - trigram "
                     f"{100 * t['wer_diff']:+.2f} points ({100 * t['wer_diff_ci_low']:+.2f} to {100 * t['wer_diff_ci_high']:+.2f})")
    if "vs" in m:
        v = m["vs"]
        lines.append(f"  vs other        other WER {100 * v['wer']:.2f}% (ppl valid {v['ppl_valid']:.1f}); difference at its weights "
                     f"{100 * m['wer_diff']:+.2f} points (95% CI {100 * m['wer_diff_ci_low']:+.2f} to {100 * m['wer_diff_ci_high']:+.2f}); "
                     f"re-tuned {100 * v['wer_diff_retuned']:+.2f} ({100 * v['wer_diff_retuned_ci_low']:+.2f} to "
                     f"{100 * v['wer_diff_retuned_ci_high']:+.2f})")
    if "tokens_per_s" in m:
        ratio = f"   speed_ratio {m['speed_ratio']:.2f}x vs reference" if "speed_ratio" in m else ""
        lines.append(f"  scoring speed   {m['tokens_per_s']:,.0f} tokens/s (median of {m['speed_repeats']}, "
                     f"{m['speed_threads']} thread){ratio}")
    return "\n".join(lines)


def format_result_row(row: dict) -> str:
    return (f"WER {100 * row['wer']:.2f}% ({100 * row['wer_ci_low']:.2f}-{100 * row['wer_ci_high']:.2f}), "
            f"speed_ratio {row['speed_ratio']:.2f}x, {row['criterion']} / {row['method']} / {row['scheduler']}, "
            f"trial {row['trial_id']}")


def print_best_per_size(sweep_dir) -> None:
    from prunelab.sweep.query import best_configs
    from prunelab.sweep.store import read_results

    sizes = sorted({s for s in read_results(sweep_dir).column("target_size").to_pylist() if s is not None}, reverse=True)
    print(f"best configuration per target size ({sweep_dir}):")
    for size in sizes:
        try:
            (row,) = best_configs(sweep_dir, size, top=1)
        except PrunelabError:
            continue
        print(f"  {size:g}: {format_result_row(row)}")

"""One-shot pruning of a pretrained LM without recovery: what reconstruction (and budgets set by measured
sensitivity) buy; written to reports/benchmarks.md (section 9) and reports/benchmarks.json.

Each row is the command a user runs, `prunelab prune MODEL --scheduler oneshot --finetune-steps 0 --no-eval
--keep-embedding --calibration-sequences N --reconstruction R`, in a child process (its peak resident memory from
the kernel's accounting of that child: bytes per parameter of the base), then the deliverable's per-word
perplexity on the first 300 valid sentences, as a multiple of the base's. A row already measured is kept, so an
interrupted run continues where it stopped.

    python benchmarks/reconstruction.py [--models smollm2-135m-domain,random-0.5b] [--rows all|quick] [--only 0,2]
        [--calibration-sequences 128]

`random-0.5b` is a randomly initialised model of a stock config (Qwen2-0.5B's shapes, 494M parameters) for the
memory row only (its perplexity means nothing). About 5-10 minutes a SmolLM2 row on 2 cores (128 calibration sequences), 15 for the 0.5B row.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from figures import render  # noqa: E402
from paper_figures import machine  # noqa: E402

from prunelab.data.text import load_corpus  # noqa: E402
from prunelab.lm.load import load_model  # noqa: E402
from prunelab.lm.score import perplexity  # noqa: E402

PPL_SENTENCES = 300
CALIBRATION_SEQUENCES = 128  # 64 gave ppl 132 where 128 gave 122 (activation structured 0.7, FFN neurons)
# (criterion, method, size, reconstruction): the figures before reconstruction, and after
ROWS = [(c, m, s, r) for s in (0.7, 0.5) for m in ("structured", "lowrank") for c in ("activation", "magnitude")
        for r in ("none", "least-squares")]
QUICK = [("activation", "structured", 0.7, "least-squares"), ("activation", "structured", 0.5, "least-squares"),
         ("activation", "lowrank", 0.7, "least-squares"), ("activation", "structured", 0.7, "none"),
         ("activation", "lowrank", 0.7, "none"), ("activation", "lowrank", 0.5, "least-squares")]
MEMORY_ROWS = [("activation", "structured", 0.7, "least-squares"), ("magnitude", "structured", 0.7, "least-squares")]
THREADS = 2


def random_qwen2_folder(folder: Path) -> Path:
    """A randomly initialised model of Qwen2-0.5B's stock shapes with SmolLM2's tokenizer, saved as a folder."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from prunelab.lm.hf_presets import ensure_hf_preset

    if (folder / "config.json").exists():
        return folder
    tokenizer_source = ensure_hf_preset("smollm2-135m")
    config = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                         tie_word_embeddings=True, rope_theta=1e6)
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer_source).save_pretrained(folder)
    return folder


def prune_row(model: str, criterion: str, method: str, size: float, reconstruction: str, out: Path,
              calibration: int) -> dict:
    prunelab = str(Path(sys.executable).with_name("prunelab"))
    command = [prunelab, "prune", model, "--criterion", criterion, "--method", method, "--scheduler", "oneshot",
               "--target-size", f"{size:g}", "--finetune-steps", "0", "--no-eval", "--keep-embedding",
               "--calibration-sequences", str(calibration), "--reconstruction", reconstruction, "--out", str(out),
               "--force"]
    started = time.monotonic()
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS)}
    _, status, usage = os.wait4(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL).pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{' '.join(command)} exited with {os.waitstatus_to_exitcode(status)}")
    return {"command": " ".join(["prunelab", *command[1:-3]]), "peak_rss_mb": usage.ru_maxrss / 1024,
            "wall_s": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="smollm2-135m-domain")
    parser.add_argument("--rows", choices=["all", "quick"], default="all")
    parser.add_argument("--out", default="reports/benchmarks.md")
    parser.add_argument("--work", default="runs/benchmarks/reconstruction")
    parser.add_argument("--calibration-sequences", type=int, default=CALIBRATION_SEQUENCES)
    parser.add_argument("--only", default="", help="comma-separated ROWS indices to measure (default: the --rows set)")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    out, work = Path(args.out), Path(args.work)
    corpus = load_corpus()
    valid = corpus.valid[:PPL_SENTENCES]
    for name in [m for m in args.models.split(",") if m]:
        memory_only = name == "random-0.5b"
        model = str(random_qwen2_folder(work / "random-0.5b")) if memory_only else name
        base = load_model(model)
        params = base.param_counts()["params_total"]
        base_ppl = None if memory_only else perplexity(base, valid)
        del base
        rows = MEMORY_ROWS if memory_only else (ROWS if args.rows == "all" else QUICK)
        if args.only and not memory_only:
            rows = [QUICK[int(i)] for i in args.only.split(",")]
        calibration = 16 if memory_only else args.calibration_sequences
        for criterion, method, size, reconstruction in rows:
            key = f"{name} {criterion} {method} {size:g} {reconstruction}"
            if calibration != 64:  # rows measured with 64 sequences before keep their keys
                key += f" {calibration}"
            if key in render.load(out).get("reconstruction", {}).get("rows", {}):
                continue
            print(f"== {key}", flush=True)
            started = time.time()
            with tempfile.TemporaryDirectory() as folder:
                measured = prune_row(model, criterion, method, size, reconstruction, Path(folder) / "run", calibration)
                ppl = None
                if not memory_only:
                    ppl = perplexity(load_model(Path(folder) / "run" / f"size-{size:.2f}"), valid)
            measured.update({"model": name, "criterion": criterion, "method": method, "target_size": size,
                             "reconstruction": reconstruction, "params": params, "base_ppl_valid": base_ppl,
                             "ppl_valid": ppl, "x_base": None if ppl is None else ppl / base_ppl,
                             "bytes_per_param": measured["peak_rss_mb"] * 2**20 / params,
                             "calibration_sequences": calibration, "ppl_sentences": PPL_SENTENCES,
                             "machine": machine(), "minutes": round((time.time() - started) / 60, 1),
                             "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
            print({k: measured[k] for k in ("ppl_valid", "x_base", "bytes_per_param", "wall_s")}, flush=True)
            render.merge_section(out, "reconstruction", "rows", key, measured)
    print(f"wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()

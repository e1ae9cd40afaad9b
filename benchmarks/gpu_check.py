"""GPU check on a model of SmolLM2-135M's exact shape (random weights: speed does not depend on the values).

Run by benchmarks/gpu_check.sh on a machine with one GPU and no network (only PyTorch, transformers, pyarrow and
numpy installed); on a machine without CUDA it runs the same steps on the CPU, smaller, as a dry run. Steps:

1. GPU vs CPU: sentence log-probs of the dense model in float32 on the CPU and on the GPU (bf16 autocast, as
   trials run there); the largest difference relative to the sentence's log-prob is checked against BF16_RTOL.
2. Each method (activation criterion, one-shot) prunes to 0.5 and 0.25 on the device; sizes and times printed.
3. The sweep's trial function once on the device without Ray (`prunelab.sweep.trial.prune_trial`, a small
   N-best subset), checking that it delivers and reports like a trial under Tune.
4. Batched scoring speed of each pruned model against the dense one, timed alternately between CUDA
   synchronisations after a warm-up, median of repeats; beside each model's MAC ratio.

Writes reports/benchmarks-gpu.md (or --out)."""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

BF16_RTOL = 0.02  # bf16 keeps 8 bits of mantissa: about 0.4% per product, summed over a sentence's tokens
SMOLLM2_135M = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                    num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192, rope_theta=100000.0,
                    rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)


def smollm2_shaped(corpus, layers: int):
    """SmolLM2-135M's architecture with random weights and a BPE tokenizer trained here on the corpus (its ids
    stay below the model's 49,152-entry vocabulary, which is what scoring cost depends on)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from prunelab.lm.hf_load import adapter_for

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(corpus.train[:50000], trainers.BpeTrainer(
        vocab_size=8000, special_tokens=["<pad>", "<s>", "</s>", "<unk>"], show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**{**SMOLLM2_135M, "num_hidden_layers": layers}))
    with torch.no_grad():  # a random model's log-probs are all near -ln(V); scale up so that sentences differ
        model.model.embed_tokens.weight.mul_(20)
    return adapter_for(model, fast, source="smollm2-135m-shaped (random weights)")


def small_nbest(path: Path, dev: int, test: int) -> Path:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from prunelab.data.nbest import shipped_nbest_path

    table = pq.read_table(shipped_nbest_path())
    keep = []
    for split, count in (("dev", dev), ("test", test)):
        ids = sorted(set(table.filter(pc.equal(table["split"], split))["utt_id"].to_pylist()))[:count]
        keep += ids
    pq.write_table(table.filter(pc.is_in(table["utt_id"], value_set=pa.array(keep))), path)
    return path


def small_corpus(folder: Path, corpus) -> Path:
    """The corpus with its valid split cut to 400 sentences: a trial measures perplexity on the whole valid split,
    which a check needs only to run, not to be precise."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, sentences in (("train", corpus.train[:20000]), ("valid", corpus.valid[:400]), ("test", corpus.test[:400])):
        (folder / f"{split}.txt").write_text("\n".join(sentences) + "\n")
    return folder


def timed(function):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    result = function()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="reports/benchmarks-gpu.md")
    parser.add_argument("--repeats", type=int, default=None, help="speed repeats (default: 10 on a GPU, 3 on CPU)")
    args = parser.parse_args()
    from prunelab.data.text import load_corpus
    from prunelab.evaluate.flops import flop_ratio
    from prunelab.evaluate.speed import measure_speed
    from prunelab.lm.load import model_payload
    from prunelab.lm.score import sentence_logprobs
    from prunelab.prune.run import PruneConfig, run_pruning
    from prunelab.sweep.spec import parse_spec
    from prunelab.sweep.trial import prune_trial

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    # the CPU dry run keeps SmolLM2's widths and vocabulary but 4 of its 30 layers, so that it ends in minutes
    layers = SMOLLM2_135M["num_hidden_layers"] if cuda else 4
    repeats = args.repeats or (10 if cuda else 3)
    calibration = 16 if cuda else 4
    n_speed = 256 if cuda else 48
    started = time.time()
    lines = [f"# GPU check: SmolLM2-135M-shaped model ({'GPU' if cuda else 'CPU dry run, no CUDA here'})", "",
             f"Generated by `benchmarks/gpu_check.sh` on {platform.node()}: "
             f"{torch.cuda.get_device_name(0) if cuda else 'no GPU'}, torch {torch.__version__}, "
             f"Python {platform.python_version()}. Random weights, SmolLM2-135M's shape "
             f"({layers} of its 30 layers{'' if cuda else ' in this dry run'}; hidden 576, 9 query / 3 key-value "
             f"heads, FFN 1536, vocabulary 49,152, tied embedding).", ""]
    corpus = load_corpus()
    dense = smollm2_shaped(corpus, layers)
    counts = dense.param_counts()
    base_payload = model_payload(dense)  # what a sweep sends its trials
    lines += [f"Parameters: {counts['params_total']:,}; activation criterion calibrated on {calibration} sequences.", ""]
    print(lines[2], flush=True)

    # 1. GPU vs CPU log-probs
    sentences = corpus.test[:64]
    cpu_logprobs = sentence_logprobs(dense, sentences)
    on_device = dense.clone().to(device) if cuda else dense
    with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=cuda):
        device_logprobs = sentence_logprobs(on_device, sentences)
    worst = max(abs(a - b) / abs(a) for a, b in zip(cpu_logprobs, device_logprobs))
    agree = worst <= BF16_RTOL
    lines += ["## 1. Sentence log-probs, CPU float32 vs device" + (" bf16 autocast" if cuda else " (same CPU)"), "",
              f"{len(sentences)} test sentences: largest relative difference {worst:.2e} (tolerance {BF16_RTOL:g}: "
              f"{'within' if agree else 'EXCEEDED'}).", ""]
    print(lines[-2], flush=True)

    # 2. each method to 0.5 and 0.25 on the device
    lines += ["## 2. One-shot pruning on the device (activation criterion, no fine-tuning)", "",
              "| method | target | achieved | MAC ratio | pruning time |", "|---|---|---|---|---|"]
    pruned = {}
    for method in ("unstructured", "structured", "lowrank"):
        for size in (0.5, 0.25):
            config = PruneConfig("activation", method, "oneshot", size, finetune_steps=0,
                                 calibration_sequences=calibration)
            seconds, stages = timed(lambda: list(run_pruning(on_device, corpus, config, log=lambda line: None)))
            model = stages[-1].model
            pruned[(method, size)] = model
            lines.append(f"| {method} | {size:g} | {stages[-1].achieved_size:.4f} | {flop_ratio(model, on_device):.3f} | "
                         f"{seconds:.1f} s |")
            print(lines[-1], flush=True)
    lines.append("")

    # 3. the trial function without Ray
    with tempfile.TemporaryDirectory() as folder:
        nbest = small_nbest(Path(folder) / "nbest.parquet", dev=20, test=20)
        text = small_corpus(Path(folder) / "corpus", corpus)
        spec = parse_spec(dict(name="gpu-check", base="smollm2-135m-shaped", data={"nbest": str(nbest), "corpus": str(text)},
                               target_sizes=[0.5], criteria=["activation"], methods=["lowrank"],
                               schedulers=["oneshot"], finetune_steps=2, calibration_sequences=calibration,
                               resources={"cpu": 1, "gpu": 1 if cuda else 0}))
        config = {"criterion": "activation", "method": "lowrank", "scheduler": "oneshot", "target_size": 0.5,
                  "lr": 3e-4, "finetune_steps": 2, "seed": 0}
        reports = []
        seconds, _ = timed(lambda: prune_trial(config, base_payload, spec.model_dump(), folder, "gpu-check-1",
                                               platform.node(), None, lambda metrics, _: reports.append(metrics)))
        final = reports[-1]
        lines += ["## 3. The trial function on the device, without Ray", "",
                  f"One-shot activation low-rank to 0.5 with 2 fine-tuning steps, evaluated on 20 dev / 20 test "
                  f"utterances (perplexity on 400 valid sentences): {len(reports)} report(s), achieved size {final['achieved_size']:.4f}, WER "
                  f"{100 * final['wer']:.2f}%, speed ratio {final['speed_ratio']:.2f}x, in {seconds:.1f} s "
                  f"(random weights: the WER means nothing; the run's completion does).", ""]
        print(lines[-2], flush=True)

    # 4. speed against the dense model, alternately timed
    lines += [f"## 4. Batched scoring speed vs the dense model ({'CUDA-synchronised, ' if cuda else ''}warm-up, "
              f"median of {repeats} alternating repeats, {n_speed} test sentences)", "",
              "| method | size | speed-up | MAC-ratio limit | share of the limit |", "|---|---|---|---|---|"]
    speed_sentences = corpus.test[:n_speed]
    for (method, size), model in pruned.items():
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=cuda):
            ratio = measure_speed(model, speed_sentences, repeats=repeats, threads=2 if not cuda else 1,
                                  reference=on_device)["speed_ratio"]
        limit = 1 / flop_ratio(model, on_device)
        lines.append(f"| {method} | {size:g} | {ratio:.2f}x | {limit:.2f}x | {ratio / limit:.0%} |")
        print(lines[-1], flush=True)
    lines += ["", f"_Total {(time.time() - started) / 60:.1f} min._", ""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print(json.dumps({"out": str(out), "agree": agree}))
    if not agree:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

"""The `prunelab` command line: thin argument parsing, one function per command."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from prunelab.data.benchmarks import NBEST_HELP, RECOGNISERS
from prunelab.errors import PrunelabError


def cmd_train_base(args) -> int:
    from prunelab.data.text import load_corpus
    from prunelab.lm.base import train_or_load_base

    corpus = load_corpus(args.corpus) if args.corpus else None
    train_or_load_base(args.preset, args.out, args.minutes, args.steps, corpus=corpus, force=args.force,
                       threads=args.threads, more=args.more)
    return 0


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
             f"{100 * m['wer_diff_1best_ci_high']:+.2f})"]
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


def cmd_eval(args) -> int:
    from prunelab.evaluate.evaluator import Benchmark, evaluate_model
    from prunelab.lm.load import load_model

    if args.hypothesis_text == "raw" and not args.no_trigram:
        raise PrunelabError("--hypothesis-text raw goes with --no-trigram: the word trigram scores normalised text only")
    model = load_model(args.model)
    vs = load_model(args.vs) if args.vs else None
    speed_vs = load_model(args.speed_vs) if args.speed_vs else None
    bench = Benchmark.load(args.corpus, args.nbest, args.max_test_utts, max_dev_utts=args.max_dev_utts,
                           max_valid_sentences=args.ppl_sentences, max_test_sentences=args.ppl_sentences,
                           hypothesis_text=args.hypothesis_text)
    metrics = evaluate_model(model, bench, vs=vs, speed_vs=speed_vs, trigram=not args.no_trigram,
                             speed=not args.no_speed, speed_repeats=args.repeats, threads=args.threads,
                             scoring=args.scoring, scoring_precision=args.scoring_precision)
    print(json.dumps(metrics, indent=2) if args.json else format_report(args.model, metrics))
    return 0


def cmd_adapt(args) -> int:
    from prunelab.data.text import load_training_text
    from prunelab.lm.adapt import AdaptConfig, adapt, check_out, state_folder
    from prunelab.lm.load import load_model

    out = Path(args.out)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    config = None
    if not args.resume:
        given = {key: getattr(args, key) for key in ("steps", "method", "lora_rank", "lr", "batch_size",
                                                       "checkpoint_minutes", "precision", "seed")}
        config = AdaptConfig(**{key: value for key, value in given.items() if value is not None})
    elif any(getattr(args, key) is not None for key in ("steps", "method", "lora_rank", "lr", "batch_size")):
        raise PrunelabError(f"--resume continues {state_folder(out)} with the settings it started with; "
                            f"drop --steps, --method, --lora-rank, --lr and --batch-size")
    check_out(out, args.resume)
    corpus = load_training_text(args.corpus)
    base = load_model(args.base)
    adapt(base, corpus, out, config, resume=args.resume,
          source={"base": args.base, "corpus": args.corpus or "the shipped corpus"},
          log=lambda line: print(line, flush=True))
    print(f"wrote {out}: a Hugging Face folder (eval, prune, a spec's base: and transformers load it)")
    return 0


def cmd_demo(args) -> int:
    """The main job on the embedded default: the tiny base (trained once, then cached), its evaluation,
    then the demo sweep (resumed if an earlier demo was interrupted, shown if it finished)."""
    from prunelab.evaluate.evaluator import Benchmark, evaluate_model
    from prunelab.lm.base import train_or_load_base
    from prunelab.lm.word_adapter import WordLM
    from prunelab.sweep.folder import holds_sweep, sweep_dir_for
    from prunelab.sweep.spec import load_spec
    from prunelab.sweep.tuner import resume_sweep, run_sweep, sweep_finished

    load_spec(args.spec)  # a missing or bad spec fails here, in seconds, before any training
    model, vocab, _, path = train_or_load_base("tiny", minutes=args.minutes, steps=args.steps)
    print(format_report(str(path), evaluate_model(WordLM.of(model, vocab), Benchmark.load())), flush=True)
    spec = load_spec(args.spec, overrides={"base": str(path)})
    sweep_dir = sweep_dir_for(spec)
    if not holds_sweep(sweep_dir):
        print(f"running the demo sweep {args.spec} into {sweep_dir}", flush=True)
        run_sweep(spec)
    elif sweep_finished(sweep_dir):
        print(f"the demo sweep in {sweep_dir} has finished (delete that folder to run it again)")
    else:
        print(f"resuming the unfinished demo sweep in {sweep_dir}", flush=True)
        resume_sweep(sweep_dir)
    print_best_per_size(sweep_dir)
    report_after(sweep_dir)
    return 0


def _count(text: str) -> int:
    """A positive whole number for an option such as --max-test-utts."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _sizes(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise PrunelabError(f"--deliver must be comma-separated sizes such as 0.7,0.5,0.3, got {text!r}") from error


def cmd_prune(args) -> int:
    from prunelab.data.text import load_corpus
    from prunelab.evaluate.evaluator import Benchmark, evaluate_model
    from prunelab.lm.load import load_model
    from prunelab.prune.deliver import prune_and_save
    from prunelab.prune.run import PruneConfig
    from prunelab.prune.schedules import Schedule

    base = load_model(args.base)
    try:
        schedule = Schedule(args.shape, args.stages, args.exponent, _sizes(args.fractions or ""), args.budget_split)
        config = PruneConfig(args.criterion, args.method, args.scheduler, args.target_size,
                             deliver=tuple(s for s in _sizes(args.deliver or "") if s != args.target_size),
                             schedule=schedule, finetune_steps=args.finetune_steps, lr=args.lr,
                             batch_size=args.finetune_batch,
                             calibration_sequences=args.calibration_sequences,
                             prune_embedding=not args.keep_embedding, seed=args.seed, recovery=args.recovery,
                             distill_temperature=args.distill_temperature,
                             distill_lm_loss_weight=args.distill_lm_loss_weight, reconstruction=args.reconstruction)
    except ValueError as error:
        raise PrunelabError(str(error)) from error
    corpus = load_corpus(args.corpus)
    evaluate = None
    if not args.no_eval:
        bench = Benchmark.load(args.corpus, args.nbest, args.eval_test_utts, corpus=corpus)

        def evaluate(model):
            return evaluate_model(model, bench, trigram=False, speed_vs=base, speed_repeats=3)

    summary = prune_and_save(base, corpus, config, args.out, evaluate, base.source, args.force)
    print(json.dumps(summary, indent=2) if args.json else f"wrote {len(summary['deliverables'])} deliverable(s) to {args.out}")
    return 0


def cmd_sweep(args) -> int:
    from prunelab.sweep.folder import sweep_dir_for
    from prunelab.sweep.spec import load_spec
    from prunelab.sweep.tuner import run_sweep

    if args.list:
        return list_specs()
    if not args.spec:
        raise PrunelabError("give a sweep spec (a shipped name such as demo, or a YAML path), or --list")
    spec = load_spec(args.spec, overrides={"storage": args.storage, "name": args.name})
    run_sweep(spec, args.address)
    return _after_sweep(sweep_dir_for(spec))


def list_specs() -> int:
    from prunelab.paths import shipped_specs

    print("shipped sweep specs (run one with `prunelab sweep NAME`):")
    for name, path in shipped_specs().items():
        first = path.read_text().splitlines()[0].lstrip("# ").strip() if path.read_text().startswith("#") else ""
        print(f"  {name:<16} {first}")
    return 0


INTERRUPTED = 130  # the shell's code for a command ended by Ctrl-C


def _after_sweep(sweep_dir) -> int:
    """Best configuration per size and the report; if trials are left unfinished (Ctrl-C, failures), say how
    to continue and exit with 130."""
    from prunelab.sweep.tuner import sweep_finished

    print_best_per_size(sweep_dir)
    report_after(sweep_dir)
    if not sweep_finished(sweep_dir):
        print(f"the sweep stopped before all its trials finished; its state is saved. Continue it with:\n"
              f"  prunelab resume {sweep_dir}")
        return INTERRUPTED
    return 0


def report_after(sweep_dir) -> None:
    """A sweep ends by generating its local report (reports/NAME)."""
    from prunelab.report.make import make_report

    try:
        print(f"report: {make_report(str(sweep_dir))}")
    except PrunelabError as error:
        print(f"no report: {error}")


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


def cmd_resume(args) -> int:
    from prunelab.sweep.query import find_sweep
    from prunelab.sweep.tuner import resume_sweep

    sweep_dir = find_sweep(args.sweep)
    resume_sweep(sweep_dir, args.address)
    return _after_sweep(sweep_dir)


def cmd_export(args) -> int:
    from prunelab import storage
    from prunelab.sweep.query import best_configs, find_sweep

    out = Path(args.output)
    if out.exists() and not args.force:
        raise PrunelabError(f"{out} exists; use --force to overwrite it")
    (row,) = best_configs(find_sweep(args.sweep), args.target_size, "wer", 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    if storage.exists(storage.join(row["checkpoint"], "prunelab.json")):  # a Hugging Face deliverable folder
        import tempfile

        from prunelab.lm.export import export_model
        from prunelab.lm.load import load_model

        with tempfile.TemporaryDirectory() as folder:
            export_model(load_model(storage.download(row["checkpoint"], Path(folder) / "deliverable")), out)
    else:
        storage.download(row["checkpoint"], out)
    print(f"exported trial {row['trial_id']} ({row['criterion']} / {row['method']} / {row['scheduler']}, "
          f"size {row['achieved_size']:.4f}, WER {100 * row['wer']:.2f}%) to {out}")
    return 0


def cmd_export_model(args) -> int:
    from prunelab.lm.export import export_model
    from prunelab.lm.load import load_model

    out = Path(args.output)
    if out.exists() and not args.force:
        raise PrunelabError(f"{out} exists; use --force to overwrite it")
    result = export_model(load_model(args.deliverable), out)
    how = ("AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True) (per-layer shapes: modeling_prunelab.py)"
           if result["remote_code"] else "AutoModelForCausalLM.from_pretrained(DIR) (stock config, no remote code)")
    print(f"exported {args.deliverable} to {out}; load it with {how}")
    return 0


def cmd_best(args) -> int:
    from prunelab.sweep.query import best_configs, find_sweep

    rows = best_configs(find_sweep(args.sweep), args.target_size, args.by, args.top)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{format_result_row(row)}, size {row['achieved_size']:.4f}, {row['checkpoint']}")
    return 0


def cmd_report(args) -> int:
    import json as json_module

    from prunelab.report.make import make_report
    from prunelab.report.wandb_report import SPEC_FILE, publish

    if args.publish:
        spec = json_module.loads(Path(args.publish).read_text())
        if args.wandb_entity:
            spec["entity"] = args.wandb_entity
        print(f"published the W&B Report: {publish(spec)}")
        return 0
    if not args.sweep:
        raise PrunelabError("give a sweep (NAME|PATH) to report on, or --publish SPEC")
    from prunelab.sweep.query import find_sweep

    index = make_report(find_sweep(args.sweep), args.out, args.wandb_entity, notes=args.notes, nbest=args.nbest)
    print(f"wrote the report {index} (and report.md, PNG plots, {SPEC_FILE})")
    if args.wandb:
        if not _wandb_logged_in():
            print(f"not logged in to W&B: the W&B Report's spec is in {index.parent / SPEC_FILE}; publish it later "
                  f"with `wandb login` and `prunelab report --publish {index.parent / SPEC_FILE} --wandb-entity ENTITY`")
            return 0
        spec = json_module.loads((index.parent / SPEC_FILE).read_text())
        print(f"published the W&B Report: {publish(spec)}")
    return 0


def _wandb_logged_in() -> bool:
    import os

    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        import wandb

        return bool(wandb.Api().api_key)
    except Exception:  # no key, no network, or no server: not logged in for our purpose
        return False


def cmd_cluster_start(args) -> int:
    from prunelab import cluster

    state = cluster.start(args.folder, args.nodes, args.cpus_per_node, args.object_store_mb)
    print(f"started {state['nodes']} Ray node(s) with {state['cpus_per_node']} CPU(s) each at {state['address']} "
          f"(loopback, token auth, no dashboard)")
    print("use it from this shell with:")
    for key, value in cluster.auth_env(args.folder).items():
        print(f"  export {key}={value}")
    print(f"  prunelab sweep SPEC --address {state['address']}")
    return 0


def cmd_cluster_stop(args) -> int:
    from prunelab import cluster

    pids = cluster.stop(args.folder)
    print(f"stopped the cluster in {args.folder} ({len(pids)} processes)")
    return 0


def cmd_cluster_env(args) -> int:
    from prunelab import cluster

    cluster.read_state(args.folder)
    for key, value in cluster.auth_env(args.folder).items():
        print(f"export {key}={value}")
    return 0


def cmd_build_corpus(args) -> int:
    if args.source == "amazon-queen":
        from prunelab.data.build_amazon_queen import build_game_text

        build_game_text(args.out, exclude_nbest=None if args.exclude_nbest == "none" else args.exclude_nbest)
        return 0
    if args.exclude_nbest != "amazon-queen":
        raise PrunelabError("--exclude-nbest goes with --source amazon-queen")
    from prunelab.data.build_corpus import build_corpus

    manifest = build_corpus(args.out)
    print(json.dumps(manifest["total_words"]))
    return 0


def cmd_build_nbest(args) -> int:
    if args.source == "amazon-queen":
        from prunelab.data.build_amazon_queen import build_amazon_queen

        build_amazon_queen(args.out, recogniser=args.recogniser or "whisper-base", n_dev=args.dev or 400,
                           n_test=args.test or 1200, workers=args.workers, seed=args.seed)
        return 0
    from prunelab.data.build_nbest import build_nbest

    if args.recogniser not in (None, *RECOGNISERS):
        raise PrunelabError(f"--source synthetic takes --recogniser {' or '.join(RECOGNISERS)}, not {args.recogniser!r}")
    args.recogniser, args.dev, args.test = args.recogniser or "pocketsphinx", args.dev or 600, args.test or 3000
    build_nbest(args.out, n_dev=args.dev, n_test=args.test, workers=args.workers, seed=args.seed, corpus_dir=args.corpus,
                recogniser=args.recogniser)
    return 0


def cmd_import_nbest(args) -> int:
    from prunelab.data.import_nbest import import_nbest

    out = Path(args.out)
    if out.exists() and not args.force:
        raise PrunelabError(f"{out} exists; use --force to overwrite it")
    result = import_nbest(args.format, args.src, out, args.references, args.split, args.system)
    print(f"wrote {result['out']}: {result['utterances']:,} utterances ({result['dev']:,} dev, {result['test']:,} test), "
          f"{result['hypotheses']:,} hypotheses; use it with --nbest {result['out']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from prunelab.evaluate.evaluator import SCORINGS
    from prunelab.lm.precision import PRECISIONS
    from prunelab.lm.presets import preset_names, presets_help
    from prunelab.paths import shipped_specs
    from prunelab.prune.criteria import CRITERIA
    from prunelab.prune.methods import METHODS
    from prunelab.prune.schedulers import SCHEDULERS
    from prunelab.record import DEFAULT_RECONSTRUCTION, RECONSTRUCTIONS, RECOVERIES

    parser = argparse.ArgumentParser(prog="prunelab", description="Find the best way to shrink a Transformer LM for ASR rescoring.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="the main job on the embedded default: the tiny base, its evaluation, "
                                            "and the demo sweep")
    demo.add_argument("--minutes", type=float, default=None, help="training budget if the tiny base is not cached")
    demo.add_argument("--steps", type=int, default=None, help="training steps if the tiny base is not cached (default 1200)")
    demo.add_argument("--spec", default="demo", help="sweep spec to run: a shipped name or a YAML path (default demo)")
    demo.set_defaults(func=cmd_demo)

    train = commands.add_parser("train-base", help="train a base LM of a preset and cache its checkpoint")
    train.add_argument("--preset", required=True, choices=preset_names("word"), help=presets_help("word"))
    train.add_argument("--minutes", type=float, default=None, help="wall-clock training budget (default: small 75)")
    train.add_argument("--steps", type=int, default=None, help="training steps (default: tiny 1200)")
    train.add_argument("--out", default=None, help="checkpoint path (default $PRUNELAB_HOME/models/PRESET.pt, "
                                                   "PRUNELAB_HOME defaulting to ~/.cache/prunelab)")
    train.add_argument("--corpus", default=None, help="corpus folder with train/valid/test(.txt|.txt.xz); default: shipped")
    train.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    train.add_argument("--force", action="store_true", help="retrain from scratch even if the checkpoint exists")
    train.add_argument("--more", action="store_true", help="train the cached checkpoint for --minutes more")
    train.set_defaults(func=cmd_train_base)

    ev = commands.add_parser("eval", help="evaluate a model: size, perplexity, rescoring WER with CI, trigram, speed")
    ev.add_argument("model", help=f"a preset ({presets_help()}), a prunelab checkpoint, a Hugging Face model folder "
                                  f"(save_pretrained layout) or a .gguf file")
    ev.add_argument("--nbest", default=None, help=NBEST_HELP)
    ev.add_argument("--corpus", default=None, help="corpus folder (default: shipped)")
    ev.add_argument("--vs", default=None, help="paired comparison against this reference model (its dev-tuned weights)")
    ev.add_argument("--speed-vs", default=None, help="measure speed_ratio against this model, alternately in one process")
    ev.add_argument("--json", action="store_true", help="print one JSON document (keys documented in the README)")
    ev.add_argument("--no-trigram", action="store_true", help="skip the Kneser-Ney trigram baseline")
    ev.add_argument("--no-speed", action="store_true", help="skip the speed measurement")
    ev.add_argument("--repeats", type=int, default=5, help="timed repeats for the speed median (default 5)")
    ev.add_argument("--threads", type=int, default=1, help="torch threads while timing (default 1)")
    ev.add_argument("--scoring", choices=SCORINGS, default="prefix-tree",
                    help="N-best scoring: each utterance's hypotheses as a prefix tree, shared prefixes computed once "
                         "(default), or each hypothesis on its own (same log-probs to float rounding)")
    ev.add_argument("--scoring-precision", choices=PRECISIONS, default="auto",
                    help="precision of the N-best scoring: auto (default) = bf16 where the processor or GPU has bf16 "
                         "instructions, fp32 elsewhere (the output layer stays fp32); perplexity and the speed timing use it too")
    ev.add_argument("--hypothesis-text", choices=["normalised", "raw"], default="normalised",
                    help="what the LMs score: the normalised hypotheses (default) or the recogniser's own cased, "
                         "punctuated text (the raw_hypothesis column, e.g. amazon-queen; for subword LMs); errors are "
                         "counted on the normalised text either way")
    ev.add_argument("--max-test-utts", type=_count, default=None, help="evaluate on the first N test utterances only")
    ev.add_argument("--max-dev-utts", type=_count, default=None,
                    help="tune the rescoring weights on the first N dev utterances only")
    ev.add_argument("--ppl-sentences", type=_count, default=None,
                    help="measure perplexity on the first N valid and the first N test sentences only")
    ev.set_defaults(func=cmd_eval)

    ad = commands.add_parser("adapt", help="continued training of a Hugging Face causal LM on a corpus's train text "
                                           "(domain adaptation); writes a Hugging Face folder")
    ad.add_argument("base", help=f"a Hugging Face preset ({', '.join(preset_names('converted', 'adapter'))}), model "
                                 f"folder or .gguf file")
    ad.add_argument("--out", required=True, help="the adapted model's folder (must not exist)")
    ad.add_argument("--corpus", default=None,
                    help="in-domain text: a corpus folder with train/valid/test(.txt|.txt.xz), or plain text of your "
                         "own, a .txt file or a folder of them (every 50th sentence held out for the progress line's "
                         "perplexity); default: the shipped corpus")
    ad.add_argument("--steps", type=_count, default=None, help="optimizer steps (default 600)")
    ad.add_argument("--method", choices=["lora", "full"], default=None,
                    help="lora (default): a rank --lora-rank update of every block matrix, merged into the weights at "
                         "the end and also saved alone as adapter.safetensors; full: every weight")
    ad.add_argument("--lora-rank", type=_count, default=None, help="LoRA rank (default 16)")
    ad.add_argument("--lr", type=float, default=None, help="peak learning rate (default: lora 1e-3, full 5e-5)")
    ad.add_argument("--batch-size", type=_count, default=None, help="sequences of 128 tokens per step (default 16)")
    ad.add_argument("--checkpoint-minutes", type=float, default=None,
                    help="minutes between checkpoints in OUT.adapt-state/ (default 5; 0: every step)")
    ad.add_argument("--precision", choices=PRECISIONS, default=None,
                    help="auto (default): bf16 autocast where the processor or GPU has bf16 instructions")
    ad.add_argument("--seed", type=int, default=None, help="data order and LoRA initialisation (default 0)")
    ad.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ad.add_argument("--resume", action="store_true", help="continue an interrupted run from OUT.adapt-state/")
    ad.set_defaults(func=cmd_adapt)

    pr = commands.add_parser("prune", help="prune a base model to a target size (and deliver sizes on the way)")
    pr.add_argument("base", help=f"a preset ({', '.join(preset_names())}), a prunelab checkpoint, a Hugging Face "
                                 f"model folder or a .gguf file")
    pr.add_argument("--criterion", required=True, choices=list(CRITERIA))
    pr.add_argument("--method", required=True, choices=list(METHODS))
    pr.add_argument("--scheduler", required=True, choices=list(SCHEDULERS))
    pr.add_argument("--target-size", type=float, required=True, help="fraction of the base's stored parameters to keep")
    pr.add_argument("--deliver", default=None, help="incremental only: further sizes to save on the way, e.g. 0.7,0.5")
    pr.add_argument("--out", required=True, help="folder for the deliverables and summary.json")
    pr.add_argument("--shape", default="polynomial", choices=["polynomial", "exponential", "explicit"])
    pr.add_argument("--stages", type=int, default=4, help="incremental stages K (default 4)")
    pr.add_argument("--exponent", type=float, default=3.0, help="polynomial exponent p (1 linear, 3 cubic)")
    pr.add_argument("--fractions", default=None, help="explicit shape: sizes after each stage, e.g. 0.8,0.6")
    pr.add_argument("--budget-split", type=float, default=1.0,
                    help="stage k gets steps proportional to budget_split**k (1 = equal)")
    pr.add_argument("--finetune-steps", type=int, default=300, help="total fine-tuning optimizer steps (default 300)")
    pr.add_argument("--lr", type=float, default=3e-4, help="fine-tuning learning rate (default 3e-4)")
    pr.add_argument("--finetune-batch", type=_count, default=32,
                    help="sequences of the model's context per fine-tuning step (default 32)")
    pr.add_argument("--recovery", choices=RECOVERIES, default="finetune",
                    help="how the pruned model recovers: finetune (default) on the next-token loss, or distill from "
                         "the unpruned base (KL divergence to its next-token distribution; the base stays in memory)")
    pr.add_argument("--reconstruction", choices=RECONSTRUCTIONS, default=DEFAULT_RECONSTRUCTION,
                    help="after pruning, refit the remaining weights in closed form to reproduce the unpruned layer's "
                         f"output on calibration text, layer by layer (default {DEFAULT_RECONSTRUCTION}; none: no refit)")
    pr.add_argument("--distill-temperature", type=float, default=1.0, help="distill: softmax temperature (default 1)")
    pr.add_argument("--distill-lm-loss-weight", type=float, default=0.0,
                    help="distill: share of the plain next-token loss mixed into the KL loss (default 0)")
    pr.add_argument("--calibration-sequences", type=int, default=128, help="calibration sequences for data-driven criteria and reconstruction (default 128)")
    pr.add_argument("--keep-embedding", action="store_true", help="do not prune the embedding / output matrix")
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--corpus", default=None, help="corpus folder (default: shipped)")
    pr.add_argument("--nbest", default=None, help=NBEST_HELP + " for evaluating deliverables")
    pr.add_argument("--eval-test-utts", type=_count, default=None, help="evaluate on the first N test utterances only")
    pr.add_argument("--no-eval", action="store_true", help="save deliverables without evaluating them")
    pr.add_argument("--force", action="store_true", help="overwrite an earlier run in --out")
    pr.add_argument("--json", action="store_true", help="print the summary as JSON")
    pr.set_defaults(func=cmd_prune)

    sw = commands.add_parser("sweep", help="run a sweep spec on Ray Tune (local Ray unless --address)")
    sw.add_argument("spec", nargs="?", help=f"a shipped spec by name ({', '.join(shipped_specs())}; see --list) "
                                            f"or a YAML path")
    sw.add_argument("--list", action="store_true", help="list the shipped sweep specs and exit")
    sw.add_argument("--address", default=None, help="join this Ray cluster instead of starting a local one")
    sw.add_argument("--storage", default=None, help="where the sweep folder goes (default: the spec's storage, runs)")
    sw.add_argument("--name", default=None, help="sweep name (default: the spec's name)")
    sw.set_defaults(func=cmd_sweep)

    rs = commands.add_parser("resume", help="continue an interrupted sweep (finished trials are not rerun)")
    rs.add_argument("sweep", help="sweep name (under runs/) or folder")
    rs.add_argument("--address", default=None, help="join this Ray cluster instead of starting a local one")
    rs.set_defaults(func=cmd_resume)

    ex = commands.add_parser("export", help="write the best model for a target size: a word-LM checkpoint, or for a "
                                            "Hugging Face base a folder that plain transformers loads")
    ex.add_argument("sweep", help="sweep name (under runs/) or folder")
    ex.add_argument("--target-size", type=float, required=True)
    ex.add_argument("-o", "--output", required=True, help="checkpoint path (word LM) or folder (Hugging Face) to write")
    ex.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    ex.set_defaults(func=cmd_export)

    em = commands.add_parser("export-model", help="write a Hugging Face deliverable as a folder that "
                                                  "AutoModelForCausalLM.from_pretrained loads without prunelab")
    em.add_argument("deliverable", help="a deliverable folder (from prunelab prune or a sweep)")
    em.add_argument("-o", "--output", required=True, help="folder to write")
    em.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    em.set_defaults(func=cmd_export_model)

    best = commands.add_parser("best", help="the best configurations for a target size in a sweep's results")
    best.add_argument("sweep", help="sweep name (under runs/) or folder")
    best.add_argument("--target-size", type=float, required=True)
    best.add_argument("--by", default="wer", choices=["wer", "speed", "pareto"],
                      help="wer (default): lowest WER first, equal WERs by valid perplexity, then speed; speed: "
                           "fastest first, then WER, then perplexity; pareto: the set no other beats on WER and speed")
    best.add_argument("--top", type=int, default=5)
    best.add_argument("--json", action="store_true", help="a list of objects with the Parquet column names")
    best.set_defaults(func=cmd_best)

    rp = commands.add_parser("report", help="generate a sweep's report: reports/NAME/index.html, report.md, PNG plots, "
                                            "and a W&B Report")
    rp.add_argument("sweep", nargs="?", help="sweep name (under runs/), folder or URI")
    rp.add_argument("--out", default=None, help="report folder (default reports/NAME; with --nbest, "
                                                "reports/NAME/nbest-OTHER)")
    rp.add_argument("--nbest", default=None, help="evaluate every deliverable on another N-best benchmark than the "
                                                  "sweep's (a shipped one by name: pocketsphinx, whisper, amazon-queen; or a Parquet "
                                                  "path), all its test utterances, and report on those figures "
                                                  "(cached in the sweep folder under evaluations/)")
    rp.add_argument("--wandb", action="store_true", help="also publish a W&B Report (needs `wandb login`; otherwise "
                                                         "says how to publish the written spec later)")
    rp.add_argument("--wandb-entity", default=None, help="W&B user or team that owns the report")
    rp.add_argument("--notes", default=None, metavar="FILE",
                    help="a Markdown file included as the report's Discussion section (e.g. sweeps/paper-discussion.md)")
    rp.add_argument("--publish", default=None, metavar="SPEC", help="publish a written wandb-report.json and exit")
    rp.set_defaults(func=cmd_report)

    cl = commands.add_parser("cluster", help="a local multi-node Ray cluster on loopback with token auth (tests, laptops)")
    cl_commands = cl.add_subparsers(dest="cluster_command", required=True)
    cs = cl_commands.add_parser("start", help="start a head and worker nodes on 127.0.0.2")
    cs.add_argument("--nodes", type=int, default=2, help="number of nodes, head included (default 2)")
    cs.add_argument("--cpus-per-node", type=int, default=1)
    cs.add_argument("--object-store-mb", type=int, default=200, help="object store per node in MB (default 200)")
    cs.set_defaults(func=cmd_cluster_start)
    cp = cl_commands.add_parser("stop", help="end exactly the processes of the cluster recorded in --folder")
    cp.set_defaults(func=cmd_cluster_stop)
    ce = cl_commands.add_parser("env", help="print the export lines a driver needs (token auth)")
    ce.set_defaults(func=cmd_cluster_env)
    for sub_parser in (cs, cp, ce):
        sub_parser.add_argument("--folder", default=".ray-cluster", help="state, token and address (default .ray-cluster)")

    data = commands.add_parser("data", help="rebuild the shipped data (needs the [asr] extra and apt packages)")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    bc = data_commands.add_parser("build-corpus", help="build the text corpus from Debian-packaged public-domain text, "
                                  "or the game's dialogue as in-domain text for `prunelab adapt --corpus`")
    bc.add_argument("--out", required=True, help="public-domain: the corpus folder; amazon-queen: a .txt file")
    bc.add_argument("--source", choices=["public-domain", "amazon-queen"], default="public-domain",
                    help="public-domain: the shipped corpus' Debian-packaged public-domain text (default); amazon-queen: every line of the game's "
                         "dialogue (Debian's flight-of-the-amazon-queen, fetched with apt-get download)")
    bc.add_argument("--exclude-nbest", default="amazon-queen",
                    help="amazon-queen: leave out the lines that are references of this N-best benchmark, dev and test "
                         "(default: the shipped amazon-queen; none keeps every line)")
    bc.set_defaults(func=cmd_build_corpus)
    bn = data_commands.add_parser("build-nbest", help="build an N-best benchmark (flite speech decoded by pocketsphinx "
                                  "or Whisper tiny.en, or real recorded speech decoded by Whisper), resumable")
    bn.add_argument("--out", required=True, help="Parquet path; shards are kept beside it in OUT.shards/")
    bn.add_argument("--source", choices=["synthetic", "amazon-queen"], default="synthetic",
                    help="synthetic: the corpus' sentences spoken by flite (default); amazon-queen: the voice acting of "
                         "Debian's flight-of-the-amazon-queen (fetched with apt-get download; extra [whisper])")
    bn.add_argument("--recogniser", choices=[*RECOGNISERS, "whisper-base", "whisper-tiny.en"], default=None,
                    help="synthetic: pocketsphinx (extra [asr], the default) or whisper (tiny.en, extras [asr,whisper]); "
                         "amazon-queen: whisper-base (the default) or whisper-tiny.en")
    bn.add_argument("--dev", type=int, default=None, help="dev utterances (default 600 synthetic, 400 amazon-queen)")
    bn.add_argument("--test", type=int, default=None, help="test utterances (default 3000 synthetic, 1200 amazon-queen)")
    bn.add_argument("--workers", type=int, default=2)
    bn.add_argument("--seed", type=int, default=0)
    bn.add_argument("--corpus", default=None, help="corpus folder whose valid/test sentences are spoken (default: shipped)")
    bn.set_defaults(func=cmd_build_nbest)
    im = data_commands.add_parser("import-nbest", help="convert another recogniser's N-best lists (ESPnet, NeMo, "
                                                       "JSONL) into prunelab's N-best Parquet")
    im.add_argument("src", help="espnet: the decoding folder with 1best_recog/ ...; nemo: the beams TSV; jsonl: the file")
    im.add_argument("--format", required=True, choices=["espnet", "nemo", "jsonl"])
    im.add_argument("--out", required=True, help="N-best Parquet path to write")
    im.add_argument("--references", default=None, help="espnet: a Kaldi text file; nemo: the manifest JSONL")
    im.add_argument("--split", default=None, choices=["dev", "test", "hash"],
                    help="all utterances to dev or test, or hash: a fixed fifth by id to dev (default: hash, or "
                         "the JSONL's own split fields)")
    im.add_argument("--system", default=None, help="recogniser name stored in the system column (default: the format)")
    im.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    im.set_defaults(func=cmd_import_nbest)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PrunelabError as error:
        print(f"prunelab: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

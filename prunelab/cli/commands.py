"""One function per command: each takes the parsed arguments, does the work and returns the exit code.

A command imports the subsystem it runs (pruning, Ray Tune, transformers, W&B) when it runs, not when the CLI
starts: `prunelab --help` and the one-line errors for bad arguments stay fast (about 2 s, where importing every
subsystem takes 5 s)."""
from __future__ import annotations

import json
from pathlib import Path

from prunelab.cli.output import format_report, format_result_row, print_best_per_size
from prunelab.data.benchmarks import RECOGNISERS
from prunelab.errors import PrunelabError


def _sizes(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise PrunelabError(f"--deliver must be comma-separated sizes such as 0.7,0.5,0.3, got {text!r}") from error


def cmd_train_base(args) -> int:
    from prunelab.data.text import load_corpus
    from prunelab.lm.base import train_or_load_base

    corpus = load_corpus(args.corpus) if args.corpus else None
    train_or_load_base(args.preset, args.out, args.minutes, args.steps, corpus=corpus, force=args.force,
                       threads=args.threads, more=args.more)
    return 0


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
    from prunelab.sweep.folder import sweep_dir_for
    from prunelab.sweep.spec import load_spec
    from prunelab.sweep.tuner import run_or_resume

    load_spec(args.spec)  # a missing or bad spec fails here, in seconds, before any training
    model, vocab, _, path = train_or_load_base("tiny", minutes=args.minutes, steps=args.steps)
    print(format_report(str(path), evaluate_model(WordLM.of(model, vocab), Benchmark.load())), flush=True)
    spec = load_spec(args.spec, overrides={"base": str(path)})
    sweep_dir = sweep_dir_for(spec)
    run_or_resume(spec, log=lambda line: print(line, flush=True))
    print_best_per_size(sweep_dir)
    report_after(sweep_dir)
    return 0


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


def cmd_resume(args) -> int:
    from prunelab.sweep.query import find_sweep
    from prunelab.sweep.tuner import resume_sweep

    sweep_dir = find_sweep(args.sweep)
    resume_sweep(sweep_dir, args.address)
    return _after_sweep(sweep_dir)


def cmd_export(args) -> int:
    from prunelab.sweep.query import export_best, find_sweep

    out = Path(args.output)
    if out.exists() and not args.force:
        raise PrunelabError(f"{out} exists; use --force to overwrite it")
    row = export_best(find_sweep(args.sweep), args.target_size, out)
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
    from prunelab.report.wandb_report import SPEC_FILE, logged_in, publish

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
        if not logged_in():
            print(f"not logged in to W&B: the W&B Report's spec is in {index.parent / SPEC_FILE}; publish it later "
                  f"with `wandb login` and `prunelab report --publish {index.parent / SPEC_FILE} --wandb-entity ENTITY`")
            return 0
        spec = json_module.loads((index.parent / SPEC_FILE).read_text())
        print(f"published the W&B Report: {publish(spec)}")
    return 0


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

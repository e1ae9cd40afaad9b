"""The command line's arguments: one subcommand per command of `prunelab.cli.commands`."""
from __future__ import annotations

import argparse

import prunelab.cli.commands as c
from prunelab.data.benchmarks import NBEST_HELP, RECOGNISERS


def _count(text: str) -> int:
    """A positive whole number for an option such as --max-test-utts."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value




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
    demo.set_defaults(func=c.cmd_demo)

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
    train.set_defaults(func=c.cmd_train_base)

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
    ev.set_defaults(func=c.cmd_eval)

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
    ad.set_defaults(func=c.cmd_adapt)

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
    pr.set_defaults(func=c.cmd_prune)

    sw = commands.add_parser("sweep", help="run a sweep spec on Ray Tune (local Ray unless --address)")
    sw.add_argument("spec", nargs="?", help=f"a shipped spec by name ({', '.join(shipped_specs())}; see --list) "
                                            f"or a YAML path")
    sw.add_argument("--list", action="store_true", help="list the shipped sweep specs and exit")
    sw.add_argument("--address", default=None, help="join this Ray cluster instead of starting a local one")
    sw.add_argument("--storage", default=None, help="where the sweep folder goes (default: the spec's storage, runs)")
    sw.add_argument("--name", default=None, help="sweep name (default: the spec's name)")
    sw.set_defaults(func=c.cmd_sweep)

    rs = commands.add_parser("resume", help="continue an interrupted sweep (finished trials are not rerun)")
    rs.add_argument("sweep", help="sweep name (under runs/) or folder")
    rs.add_argument("--address", default=None, help="join this Ray cluster instead of starting a local one")
    rs.set_defaults(func=c.cmd_resume)

    ex = commands.add_parser("export", help="write the best model for a target size: a word-LM checkpoint, or for a "
                                            "Hugging Face base a folder that plain transformers loads")
    ex.add_argument("sweep", help="sweep name (under runs/) or folder")
    ex.add_argument("--target-size", type=float, required=True)
    ex.add_argument("-o", "--output", required=True, help="checkpoint path (word LM) or folder (Hugging Face) to write")
    ex.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    ex.set_defaults(func=c.cmd_export)

    em = commands.add_parser("export-model", help="write a Hugging Face deliverable as a folder that "
                                                  "AutoModelForCausalLM.from_pretrained loads without prunelab")
    em.add_argument("deliverable", help="a deliverable folder (from prunelab prune or a sweep)")
    em.add_argument("-o", "--output", required=True, help="folder to write")
    em.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    em.set_defaults(func=c.cmd_export_model)

    best = commands.add_parser("best", help="the best configurations for a target size in a sweep's results")
    best.add_argument("sweep", help="sweep name (under runs/) or folder")
    best.add_argument("--target-size", type=float, required=True)
    best.add_argument("--by", default="wer", choices=["wer", "speed", "pareto"],
                      help="wer (default): lowest WER first, equal WERs by valid perplexity, then speed; speed: "
                           "fastest first, then WER, then perplexity; pareto: the set no other beats on WER and speed")
    best.add_argument("--top", type=int, default=5)
    best.add_argument("--json", action="store_true", help="a list of objects with the Parquet column names")
    best.set_defaults(func=c.cmd_best)

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
    rp.set_defaults(func=c.cmd_report)

    cl = commands.add_parser("cluster", help="a local multi-node Ray cluster on loopback with token auth (tests, laptops)")
    cl_commands = cl.add_subparsers(dest="cluster_command", required=True)
    cs = cl_commands.add_parser("start", help="start a head and worker nodes on 127.0.0.2")
    cs.add_argument("--nodes", type=int, default=2, help="number of nodes, head included (default 2)")
    cs.add_argument("--cpus-per-node", type=int, default=1)
    cs.add_argument("--object-store-mb", type=int, default=200, help="object store per node in MB (default 200)")
    cs.set_defaults(func=c.cmd_cluster_start)
    cp = cl_commands.add_parser("stop", help="end exactly the processes of the cluster recorded in --folder")
    cp.set_defaults(func=c.cmd_cluster_stop)
    ce = cl_commands.add_parser("env", help="print the export lines a driver needs (token auth)")
    ce.set_defaults(func=c.cmd_cluster_env)
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
    bc.set_defaults(func=c.cmd_build_corpus)
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
    bn.set_defaults(func=c.cmd_build_nbest)
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
    im.set_defaults(func=c.cmd_import_nbest)
    return parser

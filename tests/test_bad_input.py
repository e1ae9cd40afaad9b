"""Bad input through the CLI, as a user types it: a one-line error naming the problem, exit code 2, and
nothing written (no sweep folder, no output file)."""
import json

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from prunelab.cli import main
from prunelab.data.nbest import shipped_nbest_path
from prunelab.sweep.folder import SPEC_FILE
from prunelab.sweep.store import write_trial_rows


def spec(base, **change):
    return {**dict(name="bad", base=str(base), target_sizes=[0.5], criteria=["magnitude"], methods=["lowrank"],
                   schedulers=["oneshot"], finetune_steps=2, num_samples=1, wandb={"mode": "disabled"}), **change}


def fails(capsys, argv, fragment):
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("prunelab: error: ") and fragment in err[0], err
    return err[0]


def sweep_fails(tmp_path, capsys, content, fragment):
    path = tmp_path / "spec.yaml"
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    runs = tmp_path / "runs"
    fails(capsys, ["sweep", path, "--storage", runs], fragment)
    assert not runs.exists() or not any(runs.iterdir())  # nothing written


@pytest.mark.parametrize("change, fragment", [
    ("malformed", "malformed YAML"),
    (dict(colour="red"), "unknown key 'colour'"),
    (dict(criteria=["magnitud"]), "criteria.0: 'magnitud' is not allowed; expected 'magnitude', 'taylor' or 'activation'"),
    (dict(methods=["pruned"]), "methods.0: 'pruned' is not allowed"),
    (dict(schedulers=["cubic"]), "schedulers.0: 'cubic' is not allowed"),
    (dict(target_sizes=[0.0]), "target_sizes: each target size must be between 0 and 1"),
    (dict(target_sizes=[1.0]), "target_sizes: each target size must be between 0 and 1"),
    (dict(target_sizes=[-0.3]), "target_sizes: each target size must be between 0 and 1"),
    (dict(target_sizes=[]), "target_sizes: List should have at least 1 item"),
    (dict(num_samples=0), "num_samples: Input should be greater than or equal to 1"),
    (dict(max_concurrent=0), "max_concurrent: Input should be greater than or equal to 1"),
    (dict(data={"eval_dev_utts": 0}), "data.eval_dev_utts: Input should be greater than or equal to 1"),
    (dict(finetune_batch=0), "finetune_batch: Input should be greater than or equal to 1"),
])
def test_invalid_specs(trained_lm, tmp_path, capsys, change, fragment):
    content = "name: [unclosed\n" if change == "malformed" else spec(trained_lm[2], **change)
    sweep_fails(tmp_path, capsys, content, fragment)


def test_base_checkpoint_missing_truncated_or_foreign(trained_lm, tmp_path, capsys):
    sweep_fails(tmp_path, capsys, spec(tmp_path / "none.pt"), "does not exist")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(trained_lm[2].read_bytes()[:5000])
    sweep_fails(tmp_path, capsys, spec(truncated), "truncated.pt")
    foreign = tmp_path / "foreign.pt"
    __import__("torch").save({"weights": [1, 2, 3]}, foreign)
    sweep_fails(tmp_path, capsys, spec(foreign), "not a prunelab checkpoint")


def test_nbest_without_a_column_or_without_dev_and_corpus_without_train(trained_lm, tmp_path, capsys):
    table = pq.read_table(shipped_nbest_path())
    pq.write_table(table.drop_columns(["acoustic_score"]), tmp_path / "no-column.parquet")
    sweep_fails(tmp_path, capsys, spec(trained_lm[2], data={"nbest": str(tmp_path / "no-column.parquet")}),
                "missing column(s): acoustic_score")
    pq.write_table(table.filter(pc.equal(table["split"], "test")), tmp_path / "no-dev.parquet")
    sweep_fails(tmp_path, capsys, spec(trained_lm[2], data={"nbest": str(tmp_path / "no-dev.parquet")}), "dev")
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "valid.txt").write_text("a sentence\n")
    sweep_fails(tmp_path, capsys, spec(trained_lm[2], data={"corpus": str(tmp_path / "corpus")}), "train")


def test_storage_that_is_not_writable(trained_lm, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec(trained_lm[2])))
    fails(capsys, ["sweep", path, "--storage", blocker / "runs"], "is not writable")
    assert blocker.read_text() == "not a folder"


def test_resume_or_report_of_a_folder_that_is_not_a_sweep(tmp_path, capsys):
    fails(capsys, ["resume", tmp_path], "is not a sweep")
    fails(capsys, ["report", tmp_path, "--out", tmp_path / "report"], "is not a sweep")
    assert not (tmp_path / "report").exists()


def test_best_for_a_size_no_trial_reached_names_the_sizes_that_exist(tmp_path, capsys):
    (tmp_path / SPEC_FILE).write_text(json.dumps({"name": "s"}))
    row = dict(sweep="s", trial_id="a", criterion="magnitude", method="lowrank", scheduler="oneshot",
               target_size=0.5, achieved_size=0.5, wer=0.4, wer_ci_low=0.39, wer_ci_high=0.41, speed_ratio=1.2,
               flop_ratio=0.5, status="complete", checkpoint=str(tmp_path / "x.pt"))
    write_trial_rows(tmp_path, "a", [row, {**row, "target_size": 0.3, "achieved_size": 0.3}])
    fails(capsys, ["best", tmp_path, "--target-size", "0.2"], "no trial reached target size 0.2; sizes with results: 0.5, 0.3")


def test_export_to_an_existing_path_is_refused_without_force(tmp_path, capsys):
    (tmp_path / SPEC_FILE).write_text(json.dumps({"name": "s"}))
    out = tmp_path / "model.pt"
    out.write_text("keep me")
    fails(capsys, ["export", tmp_path, "--target-size", "0.5", "-o", out], "exists; use --force")
    assert out.read_text() == "keep me"


def test_prune_and_eval_refuse_bad_arguments(trained_lm, tmp_path, capsys):
    fails(capsys, ["eval", tmp_path / "none.pt"], "does not exist")
    fails(capsys, ["prune", trained_lm[2], "--criterion", "magnitude", "--method", "lowrank", "--scheduler", "oneshot",
                   "--target-size", "1.5", "--out", tmp_path / "out"], "target")
    assert not (tmp_path / "out").exists()
    # a size the method cannot reach (the kept embedding alone is most of the word LM): found mid-run, still one line
    fails(capsys, ["prune", trained_lm[2], "--criterion", "activation", "--method", "structured", "--scheduler", "oneshot",
                   "--target-size", "0.05", "--keep-embedding", "--no-eval", "--out", tmp_path / "out"], "below what")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag", ["--max-test-utts", "--max-dev-utts", "--ppl-sentences"])
@pytest.mark.parametrize("value", ["0", "-5", "many"])
def test_eval_subset_flags_take_positive_counts(tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit) as stopped:
        main(["eval", str(tmp_path / "none.pt"), flag, value])
    assert stopped.value.code == 2
    assert f"argument {flag}: expected a whole number of at least 1, got {value!r}" in capsys.readouterr().err

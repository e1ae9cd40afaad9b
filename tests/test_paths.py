"""prunelab works from any folder: shipped specs by name, presets from the cache or the package, sweeps under ./runs."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from prunelab.errors import PrunelabError
from prunelab.lm.presets import resolve_model
from prunelab.paths import SHIPPED_MODELS_DIR, cached_model_path, home, resolve_spec, shipped_specs
from prunelab.sweep.spec import load_spec

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)


def prunelab_cli(*args, cwd, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "prunelab.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_home_follows_prunelab_home(monkeypatch, tmp_path):
    monkeypatch.setenv("PRUNELAB_HOME", str(tmp_path / "cache"))
    assert home() == tmp_path / "cache"
    assert cached_model_path("tiny") == tmp_path / "cache" / "models" / "tiny.pt"


def test_shipped_specs_resolve_by_name_from_any_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert {"demo", "paper", "schedule-search"} <= shipped_specs().keys()
    assert load_spec("demo").name == "demo"
    assert resolve_spec("sweeps/paper.yaml") == shipped_specs()["paper"]
    (tmp_path / "mine.yaml").write_text("name: mine\n")
    assert resolve_spec("mine.yaml") == Path("mine.yaml")  # a path is taken as given
    with pytest.raises(PrunelabError, match="sweep spec nope does not exist .*shipped: .*demo"):
        resolve_spec("nope")


def test_small_resolves_to_the_shipped_model_outside_the_checkout(monkeypatch, tmp_path):
    monkeypatch.setenv("PRUNELAB_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.chdir(tmp_path)
    assert resolve_model("small") == SHIPPED_MODELS_DIR / "small.pt"
    with pytest.raises(PrunelabError, match="no tiny base in .*empty-cache.*train-base --preset tiny"):
        resolve_model("tiny")


def test_a_model_trained_here_takes_precedence_over_the_shipped_one(monkeypatch, tmp_path, trained_lm):
    monkeypatch.setenv("PRUNELAB_HOME", str(tmp_path))
    cached_model_path("small").parent.mkdir(parents=True)
    cached_model_path("small").write_bytes(Path(trained_lm[2]).read_bytes())
    assert resolve_model("small") == cached_model_path("small")


def test_sweep_list_names_the_shipped_specs(tmp_path):
    result = prunelab_cli("sweep", "--list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in ("demo", "paper", "schedule-search"))


def test_demo_with_a_missing_spec_fails_in_seconds_before_any_training(tmp_path):
    started = time.monotonic()
    result = prunelab_cli("demo", "--spec", "missing.yaml", cwd=tmp_path, env={"PRUNELAB_HOME": str(tmp_path / "cache")})
    # no training happened: nothing in the model cache, and far less time than the tiny base's minutes of training
    # (a generous bound: the suite runs beside other work)
    assert not (tmp_path / "cache" / "models").exists() and time.monotonic() - started < 60
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "prunelab: error: sweep spec missing.yaml does not exist (neither a file nor a shipped spec; "
        f"shipped: {', '.join(shipped_specs())})"]
    assert not (tmp_path / "cache").exists() and not (tmp_path / "models").exists()


def test_a_spec_that_is_a_yaml_list_is_a_one_line_error(tmp_path):
    (tmp_path / "list.yaml").write_text("- name: x\n- base: tiny\n")
    result = prunelab_cli("sweep", "list.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "prunelab: error: list.yaml: a sweep spec is a YAML mapping of keys, not a list"]


def test_a_sweep_run_outside_the_checkout_writes_under_that_folders_runs(trained_lm, tmp_path):
    spec = dict(name="elsewhere", base=str(trained_lm[2]), data={"eval_test_utts": 20}, target_sizes=[0.5],
                criteria=["magnitude"], methods=["lowrank"], schedulers=["oneshot"], finetune_steps=2,
                calibration_sequences=4, search="random", num_samples=1, wandb={"mode": "offline"})
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(spec))
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = prunelab_cli("sweep", str(tmp_path / "tiny.yaml"), cwd=workdir)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (workdir / "runs" / "elsewhere" / "results").is_dir()
    assert (workdir / "reports" / "elsewhere" / "index.html").is_file()

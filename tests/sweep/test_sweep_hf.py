"""A real sweep (Ray, Optuna, offline W&B, Parquet, report) whose base is a Hugging Face folder, then
`prunelab best` and `prunelab export` on it: the export loads in plain transformers."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from prunelab.lm.load import load_model
from prunelab.lm.score import sentence_logprobs

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)

SENTENCES = ["the cat sat on the mat", "of the people"]


@pytest.fixture(scope="module")
def hf_sweep(hf_base_folder, tmp_path_factory):
    from prunelab.sweep.spec import parse_spec
    from prunelab.sweep.tuner import run_sweep

    storage = tmp_path_factory.mktemp("runs")
    spec = parse_spec(dict(
        name="hf", base=str(hf_base_folder), data={"eval_test_utts": 20}, target_sizes=[0.5],
        criteria=["activation"], methods=["lowrank", "structured"], schedulers=["oneshot"], finetune_steps=2,
        calibration_sequences=4, search="optuna-tpe", num_samples=2, max_concurrent=2,
        wandb={"mode": "offline"}, storage=str(storage), seed=5))
    run_sweep(spec)
    return storage / "hf"


def test_a_sweep_on_a_hugging_face_folder_delivers_folders(hf_sweep):
    frame = pd.read_parquet(hf_sweep / "results")
    assert frame.trial_id.nunique() == 2 and (frame.status == "complete").all()
    assert ((frame.achieved_size - frame.target_size).abs() <= 0.01).all()
    for path in frame.checkpoint:
        manifest = json.loads((Path(path) / "prunelab.json").read_text())
        assert manifest["layout"] == "llama"
        assert load_model(path).param_counts()["params_total"] == manifest["params"]["params_total"]
    assert list((hf_sweep / "wandb").glob("**/offline-run-*"))


def test_best_and_export_work_on_it(hf_sweep, tmp_path):
    cli = [sys.executable, "-m", "prunelab.cli"]
    best = subprocess.run(cli + ["best", str(hf_sweep), "--target-size", "0.5", "--json"], capture_output=True,
                          text=True, timeout=300)
    assert best.returncode == 0, best.stderr
    (top, *_) = json.loads(best.stdout)
    out = tmp_path / "exported"
    done = subprocess.run(cli + ["export", str(hf_sweep), "--target-size", "0.5", "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer  # in this process: the export is a plain folder

    model = AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    ours = sentence_logprobs(load_model(top["checkpoint"]), SENTENCES)
    with torch.no_grad():
        for sentence, score in zip(SENTENCES, ours):
            ids = torch.tensor([[tokenizer.bos_token_id] + tokenizer.encode(sentence, add_special_tokens=False)
                                + [tokenizer.eos_token_id]])
            logprobs = torch.log_softmax(model(ids).logits.float(), -1)[0, :-1]
            assert float(logprobs.gather(1, ids[0, 1:, None]).sum()) == pytest.approx(score, abs=1e-4)


def test_the_report_builds_for_it(hf_sweep, tmp_path):
    done = subprocess.run([sys.executable, "-m", "prunelab.cli", "report", str(hf_sweep), "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "r" / "index.html").exists()

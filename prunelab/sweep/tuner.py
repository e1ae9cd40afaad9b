"""Set up and run a sweep on Ray Tune: searcher, early stopping, callbacks, storage; and resume it."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from prunelab import storage
from prunelab.data.nbest import load_nbest
from prunelab.data.text import load_corpus
from prunelab.errors import PrunelabError
from prunelab.faults import fault_point
from prunelab.lm.load import load_model, model_payload
from prunelab.sweep.callbacks import ProgressCallback, ResultsStoreCallback, WandbRunsCallback
from prunelab.sweep.folder import holds_sweep, read_spec, sweep_dir_for, wandb_dir, write_spec
from prunelab.sweep.space import OptunaSpace, grid_configs
from prunelab.sweep.spec import SEARCH_METRIC, SweepSpec
from prunelab.sweep.store import read_results
from prunelab.sweep.study import NSGAIISampler, make_searcher, restored_search_alg
from prunelab.sweep.trial import run_trial
from prunelab.sweep.warm_start import load_warm_start

WANDB_HEADER_BYTES = 7  # an offline run file holding nothing but its header


def remove_empty_wandb_runs(sweep_dir: str) -> list[Path]:
    """Offline W&B runs left header-only by a killed driver (wandb had not flushed a single record) hold no data;
    they are removed on resume, where the interrupted trials open their runs again."""
    removed = []
    for run_file in wandb_dir(sweep_dir).glob("**/offline-run-*/run-*.wandb"):
        if run_file.stat().st_size <= WANDB_HEADER_BYTES:
            shutil.rmtree(run_file.parent)
            removed.append(run_file.parent)
    return removed


def _wandb_env(sweep_dir: str, mode: str) -> dict[str, str]:
    folder = wandb_dir(sweep_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return {"WANDB_MODE": mode, "WANDB_DIR": str(folder), "WANDB_CONFIG_DIR": str(folder / "config"),
            "WANDB_CACHE_DIR": str(folder / "cache"), "WANDB_DATA_DIR": str(folder / "data"), "WANDB_SILENT": "true"}


def _init_ray(address: str | None, env: dict[str, str]) -> None:
    import ray  # deferred: ray takes seconds to import

    os.environ.update(env)
    # Ray starts workers at niceness 15; trials are the sweep's main work and must not yield the CPU to
    # whatever else runs on the host (measured here: 20x slower scoring beside two busy processes).
    os.environ.setdefault("RAY_worker_niceness", "0")
    # Every stage checkpoint forces an experiment snapshot (CheckpointConfig(num_to_keep=1)): that is what lets
    # `resume` continue from the last stage, so Tune's warning about frequent snapshots is noise here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if address:
        ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False)
    else:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, _node_ip_address="127.0.0.1",
                 runtime_env={"env_vars": env}, log_to_driver=False, configure_logging=False)


def _search(spec: SweepSpec, sweep_dir: str, warm_trials: list = ()):
    """The searcher (None for a grid): Optuna's sampler in Ray's OptunaSearch, its study in the sweep folder's
    journal file (prunelab/sweep/study.py), warm-started from `warm_trials`."""
    import optuna  # deferred: optuna takes seconds to import
    from ray.tune.search import ConcurrencyLimiter  # deferred: ray takes seconds to import


    if spec.search == "grid":
        return None
    if spec.search == "optuna-nsga2":
        metric, mode = [SEARCH_METRIC, "speed_ratio_mean"], ["min", "max"]
        sampler = NSGAIISampler(seed=spec.seed)
    else:
        metric, mode = SEARCH_METRIC, "min"
        sampler = (optuna.samplers.TPESampler(seed=spec.seed, n_startup_trials=spec.startup_trials,
                                              constant_liar=spec.constant_liar) if spec.search == "optuna-tpe"
                   else optuna.samplers.RandomSampler(seed=spec.seed))
    searcher = make_searcher(OptunaSpace(spec), metric, mode, sampler, sweep_dir, spec.name, warm_trials)
    return ConcurrencyLimiter(searcher, max_concurrent=spec.max_concurrent)


def sweep_finished(sweep_dir: str) -> bool:
    """Whether every trial the spec asks for exists in Tune's saved state and has terminated."""
    from ray.tune import ExperimentAnalysis  # deferred: ray takes seconds to import


    spec = read_spec(sweep_dir)
    expected = len(grid_configs(spec)) if spec.search == "grid" else spec.num_samples
    try:
        trials = ExperimentAnalysis(str(sweep_dir)).trials
    except Exception:  # no readable experiment state yet (Tune raises several types): not finished
        return False
    return len(trials) >= expected and all(t.status == "TERMINATED" for t in trials)


def load_inputs(spec: SweepSpec):
    """The base model (its adapter), after checking that the base, the corpus and the N-best file load:
    bad input is refused before anything is written or started."""

    model = load_model(spec.base)
    load_corpus(spec.data.corpus)
    load_nbest(spec.data.nbest)
    return model


def _trainable(spec: SweepSpec, sweep_dir: str, model):
    from ray import tune  # deferred: ray takes seconds to import


    trainable = tune.with_parameters(run_trial, base=model_payload(model), spec=spec.model_dump(),
                                     sweep_dir=str(sweep_dir))
    resources = {"cpu": spec.resources.cpu}
    if spec.resources.gpu:
        resources["gpu"] = spec.resources.gpu
    return tune.with_resources(trainable, resources)


def _callbacks(spec: SweepSpec, sweep_dir: str) -> list:
    callbacks = [ResultsStoreCallback(spec.name, str(sweep_dir)), ProgressCallback(spec, str(sweep_dir))]
    if spec.wandb.mode != "disabled":
        callbacks.append(WandbRunsCallback(spec.wandb.project, spec.name, spec.wandb.mode, str(wandb_dir(sweep_dir)),
                                           excludes=("utt_errors",)))
    return callbacks


def _run_config(spec: SweepSpec, sweep_dir: str):
    from ray import tune  # deferred: ray takes seconds to import

    return tune.RunConfig(name=spec.name, storage_path=storage.absolute(spec.storage), callbacks=_callbacks(spec, sweep_dir),
                          checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                          failure_config=tune.FailureConfig(max_failures=2), verbose=0)


def run_sweep(spec: SweepSpec, address: str | None = None):
    """Run the sweep to the end; returns Tune's ResultGrid. Results land in storage/NAME."""
    sweep_dir = sweep_dir_for(spec)
    if holds_sweep(sweep_dir):
        raise PrunelabError(f"{sweep_dir} already holds a sweep; `prunelab resume {sweep_dir}` continues it")
    model = load_inputs(spec)
    warm = load_warm_start(spec)
    storage.check_writable(sweep_dir)
    write_spec(sweep_dir, spec)
    fault_point("spec-written")
    if warm.trials:
        print(warm.summary(), flush=True)
    return _fit_new(spec, sweep_dir, model, address, warm.trials)


def _fit_new(spec: SweepSpec, sweep_dir: str, model, address: str | None, warm_trials: list = ()):
    from ray import tune  # deferred: ray takes seconds to import
    from ray.tune.schedulers import ASHAScheduler  # deferred: ray takes seconds to import


    _init_ray(address, _wandb_env(sweep_dir, spec.wandb.mode))
    try:
        search = _search(spec, sweep_dir, warm_trials)
        scheduler = (ASHAScheduler(time_attr="training_iteration", metric="ppl_valid", mode="min", grace_period=1,
                                   max_t=64) if spec.early_stopping else None)
        param_space = {"trial": tune.grid_search(grid_configs(spec))} if search is None else None
        tuner = tune.Tuner(_trainable(spec, sweep_dir, model), param_space=param_space,
                           tune_config=tune.TuneConfig(search_alg=search, scheduler=scheduler,
                                                       num_samples=1 if search is None else spec.num_samples,
                                                       max_concurrent_trials=spec.max_concurrent,
                                                       reuse_actors=True),  # no new worker process per trial
                           run_config=_run_config(spec, sweep_dir))
        return tuner.fit()
    finally:
        import ray  # deferred: ray takes seconds to import

        ray.shutdown()


def resume_sweep(sweep_dir: str, address: str | None = None):
    """Continue an interrupted sweep: finished trials are kept, unfinished ones continue from their last
    stage checkpoint, errored ones are resumed, and the searcher (with its Optuna history) is restored.
    A sweep interrupted before Tune recorded anything (and before any result) starts from its saved spec."""
    from ray import tune  # deferred: ray takes seconds to import
    from ray.tune.search import ConcurrencyLimiter  # deferred: ray takes seconds to import


    spec = read_spec(sweep_dir)
    model = load_inputs(spec)
    if not tune.Tuner.can_restore(str(sweep_dir)):
        if read_results(sweep_dir).num_rows:
            raise PrunelabError(f"{sweep_dir} has results but no Tune experiment state to resume them from; "
                                f"start a new sweep under another name")
        return _fit_new(spec, sweep_dir, model, address, load_warm_start(spec).trials)
    removed = remove_empty_wandb_runs(sweep_dir)
    if removed:
        print(f"removed {len(removed)} empty W&B offline run(s) left by the interrupted driver", flush=True)
    _init_ray(address, _wandb_env(sweep_dir, spec.wandb.mode))
    try:
        tuner = tune.Tuner.restore(str(sweep_dir), trainable=_trainable(spec, sweep_dir, model),
                                   resume_unfinished=True, resume_errored=True)
        restored = restored_search_alg(tuner)  # guard: an upstream regression once replaced it
        if spec.search != "grid" and not isinstance(restored, ConcurrencyLimiter):
            raise PrunelabError(f"resuming {sweep_dir} did not restore its searcher (got {type(restored).__name__})")
        return tuner.fit()
    finally:
        import ray  # deferred: ray takes seconds to import

        ray.shutdown()


def run_or_resume(spec: SweepSpec, log=print) -> str:
    """Run the sweep, continue it if an earlier run of it was interrupted, or leave a finished one as it is (the
    demo's behaviour on every call); returns what it did: "ran", "resumed" or "finished"."""
    sweep_dir = sweep_dir_for(spec)
    if not holds_sweep(sweep_dir):
        log(f"running the sweep {spec.name} into {sweep_dir}")
        run_sweep(spec)
        return "ran"
    if sweep_finished(sweep_dir):
        log(f"the sweep in {sweep_dir} has finished (delete that folder to run it again)")
        return "finished"
    log(f"resuming the unfinished sweep in {sweep_dir}")
    resume_sweep(sweep_dir)
    return "resumed"

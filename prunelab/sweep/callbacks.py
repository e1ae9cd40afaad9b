"""Driver-side Tune callbacks: the Parquet results store, and W&B offline runs that are flushed whole."""
from __future__ import annotations

from ray import tune

from prunelab.faults import fault_point
from prunelab.record import METRIC_KEYS, SCHEDULE_KEYS, reconstruction_of, recovery_of
from prunelab.sweep.store import read_results, read_trial_rows, write_trial_rows
from prunelab.sweep.trial import trial_config


class ResultsStoreCallback(tune.Callback):
    """One row per (trial, deliverable) in `sweep_dir/results/trial-ID.parquet`, rewritten atomically."""

    def __init__(self, sweep: str, sweep_dir: str):
        self.sweep, self.sweep_dir = sweep, sweep_dir

    def _rows(self, trial) -> list[dict]:
        return read_trial_rows(self.sweep_dir, trial.trial_id)

    def _row(self, trial, result: dict, status: str) -> dict:
        config = trial_config(trial.config)
        return {"sweep": self.sweep, "trial_id": trial.trial_id, "criterion": config["criterion"],
                "method": config["method"], "scheduler": config["scheduler"],
                **{key: config.get(key) for key in SCHEDULE_KEYS}, "incremental_mode": config.get("incremental_mode"),
                "recovery": recovery_of(config), "reconstruction": reconstruction_of(config),
                **{key: result.get(key) for key in METRIC_KEYS}, "status": status}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        fault_point("trial-result")
        if not result.get("delivered"):
            return
        # "complete" only once Tune has the trial's last checkpoint (on_trial_complete): this callback runs before
        # Tune registers the checkpoint of this result, and a driver killed in between reruns the trial on resume
        row = self._row(trial, result, "running")
        write_trial_rows(self.sweep_dir, trial.trial_id, self._rows(trial) + [row])

    def _finish(self, trial, status: str) -> None:
        rows = self._rows(trial)
        if not rows and status != "complete" and trial.last_result:
            # stopped (or failed) before its first deliverable: one row without a target size records how far it got
            last = {**trial.last_result, "target_size": None, "checkpoint": None}
            write_trial_rows(self.sweep_dir, trial.trial_id, [self._row(trial, last, status)])
        elif rows and any(row["status"] != status for row in rows):  # unchanged files are not rewritten
            write_trial_rows(self.sweep_dir, trial.trial_id, [{**row, "status": status} for row in rows])

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        fault_point("checkpoint")

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._finish(trial, "complete" if (trial.last_result or {}).get("final") else "stopped")
        fault_point("trial-complete")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finish(trial, "error")


class WandbRunsCallback(tune.Callback):
    """One W&B run per trial (grouped by sweep, id = trial ID, config = the trial's config, one history step
    per reported stage, summary = the last figures), written from the driver process itself.

    Ray's own WandbLoggerCallback starts two Ray actors per trial (a queue and a logging process, each
    importing wandb: several CPU-seconds per trial, taken from the trials) and could leave header-only run
    files when Ray ended them before wandb flushed. Here wandb runs share the driver's one wandb service,
    and `finish()` returns once a run's file is complete."""

    def __init__(self, project: str, group: str, mode: str, folder: str, excludes: tuple[str, ...] = ()):
        self.project, self.group, self.mode, self.folder = project, group, mode, folder
        self.excludes = set(excludes)
        self._runs: dict[str, object] = {}

    def _run(self, trial):
        import wandb  # deferred: wandb takes seconds to import

        if trial.trial_id not in self._runs:
            self._runs[trial.trial_id] = wandb.init(
                project=self.project, group=self.group, id=trial.trial_id, name=str(trial), mode=self.mode,
                dir=self.folder, config=trial_config(trial.config), reinit="create_new", resume="allow",
                settings=wandb.Settings(silent=True, console="off"))
        return self._runs[trial.trial_id]

    def on_trial_start(self, iteration, trials, trial, **info):
        self._run(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        metrics = {key: value for key, value in result.items()
                   if key not in self.excludes and isinstance(value, int | float) and not isinstance(value, bool)}
        self._run(trial).log(metrics)

    def _finish(self, trial, exit_code: int) -> None:
        run = self._runs.pop(trial.trial_id, None)
        if run is not None:
            run.finish(exit_code=exit_code)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._finish(trial, 0)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finish(trial, 1)

    def on_experiment_end(self, trials, **info):
        import wandb  # deferred: wandb takes seconds to import

        for trial in trials:  # trials left unfinished (interrupted sweep): their runs are closed, resumable later
            self._finish(trial, 1)
        wandb.teardown()  # ends the driver's wandb service once every run file is written


class ProgressCallback(tune.Callback):
    """A line per delivered result: trials done / running and the best WER per target size so far."""

    def __init__(self, spec, sweep_dir: str):
        self.spec, self.sweep_dir = spec, sweep_dir

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get("delivered"):
            self._print(trials)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._print(trials, finished=trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._print(trials, finished=trial)

    def _print(self, trials, finished=None) -> None:
        done = sum(t.status in ("TERMINATED", "ERROR") or t is finished for t in trials)
        running = sum(t.status == "RUNNING" and t is not finished for t in trials)
        rows = read_results(self.sweep_dir).to_pylist()
        best = {}
        for row in rows:
            if row["wer"] is not None and row["target_size"] is not None and (row["target_size"] not in best or row["wer"] < best[row["target_size"]]):
                best[row["target_size"]] = row["wer"]
        sizes = "  ".join(f"{size:g}: {100 * wer:.2f}%" for size, wer in sorted(best.items(), reverse=True))
        print(f"[{self.spec.name}] trials done {done}, running {running}; best WER per target size  {sizes or '-'}",
              flush=True)

"""Driver-side Tune callbacks: the Parquet results store, and W&B offline runs that are flushed whole."""
from __future__ import annotations

from ray import tune
from ray.air.integrations.wandb import WandbLoggerCallback, _WandbLoggingActor

from prunelab.sweep.store import SCHEDULE_KEYS, read_trial_rows, write_trial_rows
from prunelab.sweep.trial import trial_config

ROW_METRICS = ("target_size", "achieved_size", "params_total", "ppl_valid", "wer", "wer_ci_low", "wer_ci_high",
               "utt_errors", "speed_ratio", "flop_ratio", "finetune_steps", "wall_s", "node", "checkpoint")


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
                **{key: config.get(key) for key in SCHEDULE_KEYS},
                **{key: result.get(key) for key in ROW_METRICS}, "status": status}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if not result.get("delivered"):
            return
        row = self._row(trial, result, "complete" if result.get("final") else "running")
        write_trial_rows(self.sweep_dir, trial.trial_id, self._rows(trial) + [row])

    def _finish(self, trial, status: str) -> None:
        rows = self._rows(trial)
        if not rows and status != "complete" and trial.last_result:
            # stopped (or failed) before its first deliverable: one row without a target size records how far it got
            last = {**trial.last_result, "target_size": None, "checkpoint": None}
            write_trial_rows(self.sweep_dir, trial.trial_id, [self._row(trial, last, status)])
        elif rows and any(row["status"] != status for row in rows):  # unchanged files are not rewritten
            write_trial_rows(self.sweep_dir, trial.trial_id, [{**row, "status": status} for row in rows])

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._finish(trial, "complete" if (trial.last_result or {}).get("final") else "stopped")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finish(trial, "error")


class _FlushedWandbActor(_WandbLoggingActor):
    """Tears wandb down after the run finishes, so that the offline run file is complete before Ray ends
    the actor (without it, about 1 run in 9 was left header-only)."""

    def run(self):
        super().run()
        self._wandb.teardown()


class FlushedWandbLoggerCallback(WandbLoggerCallback):
    _logger_actor_cls = _FlushedWandbActor

    def on_experiment_end(self, trials, **info):
        """Stop every logging actor still open (a trial that ended abnormally never got its stop signal),
        then wait a bounded time for their runs to be written: never hang the driver."""
        for trial in list(self._trial_logging_actors):
            self._signal_logging_actor_stop(trial=trial)
        self._cleanup_logging_actors(timeout=120, kill_on_timeout=True)

    def __del__(self):  # the parent's __del__ touches Ray after interpreter shutdown has begun
        try:
            super().__del__()
        except AttributeError:
            pass


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
        from prunelab.sweep.store import read_results

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

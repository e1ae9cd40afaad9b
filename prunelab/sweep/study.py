"""The searcher's Optuna study, kept in a journal file inside the sweep folder.

`study.journal` (prunelab.sweep.folder.STUDY_FILE) is an Optuna `JournalStorage` log: Optuna's own API (`optuna.load_study`) and `optuna-dashboard PATH`
open it, and it works on a shared file system without a database server. Each study trial carries user attributes
that tie it to the results store: `trial_id` (the Parquet / Tune trial id), `target_sizes`, and the objectives
`wer_mean` and `speed_ratio_mean`. Trials given by `warm_start` carry `warm_start_from` (the earlier sweep) and
`warm_start_trial_id` instead of a `trial_id`.

Ray's OptunaSearch tells a trial to the study when Tune reports it complete. A driver killed between that and
Tune's next snapshot sees the trial complete again after `resume`; the study keeps its first (and only) record,
which the results store matches (the trial is not rerun: its last checkpoint is its end). Trials that the study
opened but Tune never recorded (a kill right after a suggestion) are closed as FAIL on resume, so every finished
trial is in the study once.

This module is the one place that reaches into private attributes of Ray Tune and Optuna (checked against Ray
2.60.0 and Optuna 5.1.0): OptunaSearch's `_ot_study`, `_ot_trials`, `_completed_trials`, `_space` and
`_setup_study`; an Optuna trial's `_trial_id` and a study's `_storage`; a restored Tuner's search algorithm
(`restored_search_alg`). A test of each behaviour that relies on them (tests/sweep/test_study.py,
test_resume.py, test_faults.py) fails if an upgrade moves them."""
from __future__ import annotations

import threading
from pathlib import Path

import optuna
from ray.tune.search.optuna import OptunaSearch

from prunelab.sweep.folder import study_path


def journal_storage(path: Path):
    from optuna.storages import JournalStorage  # deferred: optuna takes seconds to import
    from optuna.storages.journal import JournalFileBackend  # deferred: optuna takes seconds to import

    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def make_searcher(space, metric, mode, sampler, sweep_dir: str, study_name: str, warm_trials: list = ()):
    """OptunaSearch with the study in the sweep folder's journal (in memory for a remote sweep folder)."""
    path = study_path(sweep_dir)
    return SweepSearch(space, metric=metric, mode=mode, sampler=sampler, study_name=study_name,
                       storage=journal_storage(path) if path is not None else None, warm_trials=list(warm_trials))


class SweepSearch(OptunaSearch):
    """Ray's OptunaSearch, plus: warm-start trials added before the first suggestion, user attributes linking
    study trials to the results store, no second record of a trial completed again after a resume, and trials
    orphaned by a killed driver closed."""

    def __init__(self, *args, warm_trials: list = (), **kwargs):
        self._warm_trials = list(warm_trials)  # read by _setup_study, which OptunaSearch.__init__ calls
        super().__init__(*args, **kwargs)

    def _setup_study(self, mode):
        super()._setup_study(mode)
        self._close_orphans(known=set())
        if self._warm_trials and not any("warm_start_from" in t.user_attrs for t in self._ot_study.get_trials(deepcopy=False)):
            self._ot_study.add_trials(self._warm_trials)

    def _close_orphans(self, known: set[int]) -> None:
        """Study trials still RUNNING that no Tune trial will complete: marked FAIL, with the reason."""
        from optuna.trial import TrialState  # deferred: optuna takes seconds to import

        storage_ = self._ot_study._storage
        for trial in self._ot_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial._trial_id not in known:
                storage_.set_trial_user_attr(trial._trial_id, "closed_by", "resume: its sweep driver was killed "
                                             "before Tune recorded the trial")
                storage_.set_trial_state_values(trial._trial_id, TrialState.FAIL)

    def suggest(self, trial_id: str):
        new = trial_id not in self._ot_trials
        config = super().suggest(trial_id)
        if new and config is not None:
            ot_trial = self._ot_trials[trial_id]
            ot_trial.set_user_attr("trial_id", trial_id)
            ot_trial.set_user_attr("target_sizes", target_sizes(config, self._space.spec))
        return config

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False):
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is not None and trial_id not in self._completed_trials:
            stored = self._ot_study._storage.get_trial(ot_trial._trial_id)
            if stored.state.is_finished():  # told before a driver kill: the study keeps its one record
                self._completed_trials.add(trial_id)
                return
            for key in ("wer_mean", "speed_ratio_mean"):
                value = (result or {}).get(key)
                if isinstance(value, float) and value == value:  # not NaN
                    ot_trial.set_user_attr(key, value)
        super().on_trial_complete(trial_id, result=result, error=error)

    def restore(self, checkpoint_path: str):
        super().restore(checkpoint_path)
        if self._ot_study is not None:
            self._close_orphans(known={t._trial_id for t in self._ot_trials.values()})


class NSGAIISampler(optuna.samplers.NSGAIISampler):
    """Optuna's NSGA-II sampler, picklable: Optuna 5.1 gave it a thread lock, which pickle cannot save, and Tune
    pickles the searcher with the sweep (to resume it). The lock is left out and made anew on load."""

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_thread_lock", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._thread_lock = threading.Lock()


def restored_search_alg(tuner):
    """The search algorithm a `tune.Tuner.restore` brought back (to check that resuming restored the searcher:
    an upstream regression once replaced it with a fresh one)."""
    return tuner._local_tuner._tune_config.search_alg


def target_sizes(config: dict, spec) -> list[float]:
    """The sizes a trial config delivers: its sampled size, or every target size of a multi-size incremental run."""
    return [config["target_size"]] if "target_size" in config else list(spec.target_sizes)

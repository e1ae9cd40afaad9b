"""The search space and grid: what each scheduler samples, and what a trial prunes to."""
import optuna

from prunelab.sweep.space import OptunaSpace, grid_configs, prune_config
from prunelab.sweep.spec import parse_spec

SPEC = dict(name="s", base="tiny", target_sizes=[0.7, 0.5, 0.2], criteria=["magnitude"], methods=["lowrank"],
            schedulers=["oneshot", "incremental"], finetune_steps=800)


def test_multi_size_incremental_trials_deliver_every_size_from_one_run():
    spec = parse_spec(SPEC)
    incremental = [c for c in grid_configs(spec) if c["scheduler"] == "incremental"]
    assert len(incremental) == 1 and incremental[0]["incremental_mode"] == "multi-size"
    config = prune_config(incremental[0], spec)
    assert (config.target_size, config.deliver, config.finetune_steps) == (0.2, (0.7, 0.5), 800)


def test_per_size_incremental_trials_prune_one_size_each_with_the_whole_budget():
    spec = parse_spec({**SPEC, "incremental_mode": "per-size"})
    incremental = [c for c in grid_configs(spec) if c["scheduler"] == "incremental"]
    assert sorted(c["target_size"] for c in incremental) == [0.2, 0.5, 0.7]
    for trial_config in incremental:
        config = prune_config(trial_config, spec)
        assert config.deliver == () and config.target_size == trial_config["target_size"]
        assert config.finetune_steps == 800  # the same budget as a one-shot trial
    # the searched space samples a target size for per-size incremental trials too
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    space = OptunaSpace(spec)
    for _ in range(12):
        trial = study.ask()
        constants = space(trial)
        if trial.params["scheduler"] == "incremental":
            assert trial.params["target_size"] in spec.target_sizes and constants["incremental_mode"] == "per-size"
        study.tell(trial, 0.5)


def test_a_list_of_budgets_is_an_axis_of_the_grid_and_of_the_search():
    spec = parse_spec({**SPEC, "finetune_steps": [200, 800], "incremental_mode": "per-size"})
    configs = grid_configs(spec)
    assert len(configs) == 2 * (3 + 3)  # each budget: 3 one-shot sizes and 3 per-size incremental trials
    assert sorted({c["finetune_steps"] for c in configs}) == [200, 800]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(10):
        trial = study.ask()
        OptunaSpace(spec)(trial)
        seen.add(trial.params["finetune_steps"])
        study.tell(trial, 0.5)
    assert seen == {200, 800}


def test_every_trial_fine_tunes_with_the_spec_s_batch():
    assert {prune_config(c, parse_spec(SPEC)).batch_size for c in grid_configs(parse_spec(SPEC))} == {32}
    spec = parse_spec({**SPEC, "finetune_batch": 8})
    assert {prune_config(c, spec).batch_size for c in grid_configs(spec)} == {8}


def test_recoveries_are_an_axis_of_the_grid_and_reach_the_prune_config():
    spec = parse_spec({**SPEC, "recoveries": ["finetune", "distill"], "distill_temperature": 2.0})
    configs = grid_configs(spec)
    assert len(configs) == 2 * len(grid_configs(parse_spec(SPEC)))
    by_recovery = {c["recovery"] for c in configs}
    assert by_recovery == {"finetune", "distill"}
    distilled = prune_config(next(c for c in configs if c["recovery"] == "distill"), spec)
    assert (distilled.recovery, distilled.distill_temperature) == ("distill", 2.0)
    assert prune_config(grid_configs(parse_spec(SPEC))[0], parse_spec(SPEC)).recovery == "finetune"


def test_an_unknown_recovery_in_a_spec_is_one_line():
    import pytest

    from prunelab.errors import PrunelabError

    with pytest.raises(PrunelabError, match=r"recoveries\.0: 'retrain' is not allowed; expected 'finetune' or 'distill'"):
        parse_spec({**SPEC, "recoveries": ["retrain"]})


def test_reconstructions_are_an_axis_of_the_grid_and_of_the_search_and_reach_the_prune_config():
    import optuna

    spec = parse_spec({**SPEC, "reconstructions": ["none", "least-squares"]})
    configs = grid_configs(spec)
    assert len(configs) == 2 * len(grid_configs(parse_spec(SPEC)))
    assert {prune_config(c, spec).reconstruction for c in configs} == {"none", "least-squares"}
    assert prune_config(grid_configs(parse_spec(SPEC))[0], parse_spec(SPEC)).reconstruction == "least-squares"
    trial = optuna.create_study().ask()
    OptunaSpace(spec)(trial)
    assert trial.params["reconstruction"] in ("none", "least-squares")


def test_an_unknown_reconstruction_in_a_spec_is_one_line():
    import pytest

    from prunelab.errors import PrunelabError

    with pytest.raises(PrunelabError, match=r"reconstructions\.0: 'svd' is not allowed"):
        parse_spec({**SPEC, "reconstructions": ["svd"]})

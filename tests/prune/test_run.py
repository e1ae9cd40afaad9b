import pytest
import torch

from prunelab.prune.run import PruneConfig, Resume, run_pruning
from prunelab.prune.schedules import Schedule

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)


def test_incremental_run_delivers_each_size_once_in_decreasing_order(trained_lm, small_corpus):
    model, vocab, _ = trained_lm
    config = PruneConfig("magnitude", "lowrank", "incremental", 0.3, deliver=(0.7, 0.5), finetune_steps=6,
                         batch_size=4, schedule=Schedule("polynomial", 3, 1.0))
    stages = list(run_pruning(model, small_corpus, config, log=lambda line: None))
    deliverables = [s for s in stages if s.delivered]
    assert [d.target_size for d in deliverables] == [0.7, 0.5, 0.3]
    assert len(stages) == 5  # 0.767, 0.7, 0.533, 0.5, 0.3
    assert [d.finetune_steps for d in deliverables][-1] == 6
    params = [d.params for d in deliverables]
    assert params == sorted(params, reverse=True)
    for d in deliverables:
        assert abs(d.achieved_size - d.target_size) <= 0.01


def test_masked_weights_stay_zero_after_fine_tuning(trained_lm, small_corpus):
    model, vocab, _ = trained_lm
    config = PruneConfig("taylor", "unstructured", "oneshot", 0.6, finetune_steps=5, batch_size=4,
                         calibration_sequences=8)
    (deliverable,) = run_pruning(model, small_corpus, config, log=lambda line: None)
    lm = deliverable.model
    for name, mask in lm.masks.items():
        weight = lm.slot(name.removesuffix(".weight")).view()
        assert torch.all(weight[~mask] == 0)
        assert torch.count_nonzero(weight[mask]) > 0.99 * mask.sum()
    assert not torch.equal(lm.slot("blocks.0.ff.up").view(), model.slot("blocks.0.ff.up").view())


@pytest.mark.parametrize("kwargs, message", [
    (dict(criterion="random"), "unknown criterion"),
    (dict(scheduler="cubic"), "unknown scheduler"),
    (dict(target_size=1.0), "between 0 and 1"),
    (dict(target_size=0.0), "between 0 and 1"),
    (dict(deliver=(0.7,)), "needs the incremental scheduler"),
    (dict(recovery="prayer"), "unknown recovery 'prayer'; expected one of finetune, distill"),
    (dict(recovery="distill", distill_temperature=0.0), "temperature must be > 0"),
])
def test_invalid_configs_name_the_problem(kwargs, message):
    values = dict(criterion="magnitude", method="lowrank", scheduler="oneshot", target_size=0.5) | kwargs
    with pytest.raises(ValueError, match=message):
        PruneConfig(**values)


def test_a_resumed_run_continues_exactly_where_the_interrupted_one_was(trained_lm, small_corpus):
    model, vocab, _ = trained_lm
    config = PruneConfig("activation", "structured", "incremental", 0.4, finetune_steps=6, batch_size=4,
                         calibration_sequences=8, schedule=Schedule("polynomial", 3, 2.0))
    quiet = dict(log=lambda line: None)
    full = list(run_pruning(model, small_corpus, config, **quiet))
    after_two = full[1]
    resumed = list(run_pruning(model, small_corpus, config, resume=Resume(after_two.model, 2,
                                                                               after_two.finetune_steps, 0.0), **quiet))
    assert [r.stage for r in resumed] == [3]
    assert resumed[-1].finetune_steps == full[-1].finetune_steps == 6
    tokens = torch.randint(0, len(vocab), (2, 10))
    assert torch.allclose(resumed[-1].model.model(tokens), full[-1].model.model(tokens), atol=1e-5)


def test_a_deliver_size_that_a_schedule_stage_reaches_is_one_stage():
    # cubic 4 stages from 1.0 to 0.2 passes 0.2 + 0.8 * 0.5**3 = 0.30000000000000004: the same stage as deliver 0.3
    config = PruneConfig("magnitude", "lowrank", "incremental", 0.2, deliver=(0.7, 0.5, 0.3),
                         schedule=Schedule("polynomial", 4, 3.0))
    assert config.stage_sizes() == [0.7, 0.5375, 0.5, 0.3, 0.2125, 0.2]


def _kl_to(teacher, student, sentences) -> float:
    """Mean KL(teacher || student) of next-token distributions over the sentences' positions."""
    import torch.nn.functional as F

    total, count = 0.0, 0
    with torch.no_grad():
        for sentence in sentences:
            tokens = torch.tensor([teacher.tokenizer.ids(sentence)[: teacher.context]])
            t = F.log_softmax(teacher.decode(teacher.hidden(tokens)), -1)
            s = F.log_softmax(student.decode(student.hidden(tokens)), -1)
            total += F.kl_div(s, t, log_target=True, reduction="sum").item()
            count += tokens.shape[1]
    return total / count


def test_distillation_recovery_moves_the_pruned_model_towards_the_unpruned_one(trained_lm, small_corpus):
    model, vocab, _ = trained_lm
    common = dict(criterion="magnitude", method="structured", scheduler="oneshot", target_size=0.5, batch_size=8)
    (unrecovered,) = run_pruning(model, small_corpus, PruneConfig(**common, finetune_steps=0), log=lambda line: None)
    (distilled,) = run_pruning(model, small_corpus, PruneConfig(**common, finetune_steps=25, lr=3e-3,
                                                                recovery="distill"), log=lambda line: None)
    (finetuned,) = run_pruning(model, small_corpus, PruneConfig(**common, finetune_steps=25, lr=3e-3),
                               log=lambda line: None)
    sentences = small_corpus.valid[:40]
    before, after = _kl_to(model, unrecovered.model, sentences), _kl_to(model, distilled.model, sentences)
    assert after < 0.8 * before, (before, after)
    assert not torch.equal(distilled.model.slot("blocks.0.ff.up").view(), finetuned.model.slot("blocks.0.ff.up").view())


def test_the_distillation_loss_is_zero_for_the_teacher_itself_and_chunking_does_not_change_it(trained_lm):
    from prunelab.lm.train import summed_distill_loss

    model, _, _ = trained_lm
    tokens = torch.tensor([model.tokenizer.ids("and god said let there be light and there was light")])
    hidden = model.hidden(tokens)
    assert summed_distill_loss(model.decode, hidden, model.decode, hidden).item() == pytest.approx(0, abs=1e-4)
    noisy = hidden + torch.randn_like(hidden)
    whole = summed_distill_loss(model.decode, noisy, model.decode, hidden, temperature=2.0, chunk=10_000)
    chunked = summed_distill_loss(model.decode, noisy, model.decode, hidden, temperature=2.0, chunk=3)
    assert whole.item() > 0.01 and chunked.item() == pytest.approx(whole.item(), rel=1e-4)

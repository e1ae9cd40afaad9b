import pytest

from prunelab.prune.schedules import Schedule, split_integer


@pytest.mark.parametrize("schedule", [Schedule("polynomial", 4, 1.0), Schedule("polynomial", 5, 3.0),
                                      Schedule("exponential", 3), Schedule("explicit", fractions=(0.9, 0.75))])
@pytest.mark.parametrize("target", [0.7, 0.3, 0.2])
def test_sizes_start_at_one_decrease_and_end_exactly_at_target(schedule, target):
    sizes = schedule.sizes(target)
    assert sizes[0] == 1.0 and sizes[-1] == target
    assert all(b <= a for a, b in zip(sizes, sizes[1:]))


def test_known_shapes():
    assert Schedule("polynomial", 4, 1.0).sizes(0.2) == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2])
    cubic = Schedule("polynomial", 2, 3.0).sizes(0.2)
    assert cubic == pytest.approx([1.0, 0.2 + 0.8 * 0.125, 0.2])  # prunes fast early, slowly late
    assert Schedule("exponential", 2).sizes(0.25) == pytest.approx([1.0, 0.5, 0.25])


def test_invalid_schedules_are_refused():
    with pytest.raises(ValueError, match="unknown schedule shape"):
        Schedule("cosine")
    with pytest.raises(ValueError, match="must decrease"):
        Schedule("explicit", fractions=(0.5, 0.8)).sizes(0.3)
    with pytest.raises(ValueError, match="stages"):
        Schedule("polynomial", 0)


def test_budget_split_sums_exactly_and_follows_the_weights():
    assert split_integer(10, [1, 1, 1]) == [4, 3, 3]
    assert sum(Schedule(budget_split=1.7).stage_steps(301, 4)) == 301
    back_loaded = Schedule(budget_split=2.0).stage_steps(150, 4)
    assert back_loaded == [10, 20, 40, 80]

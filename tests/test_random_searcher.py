from collections import Counter

from hpo.history import History
from hpo.space import Choice, Float, Int, Space
from hpo.trial import Trial, TrialStatus
from searchers.random import RandomSearcher


def _complete(history: History, configs) -> History:
    trials = list(history.trials)
    for c in configs:
        trials.append(Trial(len(trials), c, TrialStatus.COMPLETED, curve=((1, {"loss": 0.0}),)))
    return history.with_trials(tuple(trials))


def test_finite_space_is_exhausted_without_duplicates_then_finished():
    space = Space({"n": Int(1, 4), "c": Choice(["a", "b", "c"])})
    searcher = RandomSearcher(space, seed=1)
    history = History(space, "loss")
    seen = []
    for _ in range(12):
        config = searcher.suggest(history)
        assert config is not None
        seen.append(space.key(config))
        history = _complete(history, [config])
    assert len(set(seen)) == 12
    assert searcher.suggest(history) is None and searcher.is_finished(history)


def test_pending_trials_are_not_suggested_again():
    space = Space({"n": Int(1, 3)})
    searcher = RandomSearcher(space, seed=0)
    batch = searcher.suggest_batch(History(space, "loss"), 5)
    assert sorted(c["n"] for c in batch) == [1, 2, 3]


def test_suggestions_are_a_function_of_space_history_and_seed():
    space = Space({"lr": Float(1e-5, 1e-1, log=True), "n": Int(1, 64)})
    first = RandomSearcher(space, seed=7)
    history = History(space, "loss")
    configs = []
    for _ in range(10):
        c = first.suggest(history)
        configs.append(c)
        history = _complete(history, [c])
    # a fresh searcher (a resumed sweep) continues the same sequence from the stored history
    resumed = RandomSearcher(space, seed=7)
    assert resumed.suggest(history) == first.suggest(history)
    assert RandomSearcher(space, seed=8).suggest(History(space, "loss")) != configs[0]


def test_sobol_covers_the_cube_evenly():
    space = Space({"x": Float(0, 1), "y": Float(0, 1)})
    searcher = RandomSearcher(space, seed=0)
    configs = searcher.suggest_batch(History(space, "loss"), 64)
    cells = Counter((int(c["x"] * 4), int(c["y"] * 4)) for c in configs)
    assert len(cells) == 16 and set(cells.values()) == {4}  # a (0, m, 2) net: exactly 4 points per cell


def test_placeholders_that_never_became_trials_are_forgotten_and_a_new_history_starts_afresh():
    space = Space({"n": Int(1, 4)})
    searcher = RandomSearcher(space, seed=3)
    first, dropped = searcher.suggest_batch(History(space, "loss"), 2)  # the second is never started
    history = _complete(History(space, "loss"), [first])
    seen = [first["n"]]
    while (config := searcher.suggest(history)) is not None:
        seen.append(config["n"])
        history = _complete(history, [config])
    assert sorted(seen) == [1, 2, 3, 4] and dropped["n"] in seen
    # A whole batch of placeholders dropped: the space is not exhausted by configs that never ran.
    batch = searcher.suggest_batch(History(space, "loss"), 4)
    searcher.is_finished(History(space, "loss").with_pending(batch[0]).with_pending(batch[1]).with_pending(batch[2])
                         .with_pending(batch[3]))
    assert not searcher.is_finished(_complete(History(space, "loss"), batch[:1]))
    # The same searcher on another, empty sweep answers as a fresh one does.
    assert searcher.suggest(History(space, "loss")) == RandomSearcher(space, seed=3).suggest(History(space, "loss"))


def test_uniform_design_is_seeded_independent_points_and_a_bad_design_names_the_choices():
    import numpy as np
    import pytest

    space = Space({"x": Float(0, 1), "y": Float(0, 1)})
    configs = RandomSearcher(space, seed=0, design="uniform").suggest_batch(History(space, "loss"), 64)
    again = RandomSearcher(space, seed=0, design="uniform").suggest_batch(History(space, "loss"), 64)
    assert configs == again  # a function of (seed, trial index), so a resumed sweep continues it
    X = np.array([[c["x"], c["y"]] for c in configs])
    np.testing.assert_allclose(X, np.random.default_rng([0, 0]).random((64, 2)))
    cells = Counter((int(x * 4), int(y * 4)) for x, y in X)
    assert set(cells.values()) != {4}  # not the Sobol net: independent points clump and leave gaps
    assert RandomSearcher(space, seed=1, design="uniform").suggest(History(space, "loss")) != configs[0]
    with pytest.raises(ValueError, match="'sobol' or 'uniform'"):
        RandomSearcher(space, design="latin")

"""AEGiS (De Ath, Everson, Fieldsend, UAI 2021): its move rule, its Pareto set, and that it optimizes."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
import torch

from hpo.executors import SimulatedExecutor
from hpo.history import History
from hpo.orchestrator import Budget, Orchestrator
from hpo.space import Choice, Float, Int, Space
from hpo.storage import Storage
from hpo.surrogates.gp import GPSurrogate
from hpo.trial import Trial, TrialStatus
from schedulers.fifo import FIFOScheduler
from searchers.aegis import AEGiSSearcher, Move, aegis_epsilon, choose_move, nsga2_mean_std, pareto_front_mask

SPACE2 = Space({"x": Float(-1.0, 1.0), "y": Float(-1.0, 1.0)})


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small GPs gain nothing from a second thread, and on a shared 2-core machine its spin-waits cost several
    times the work itself."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def quadratic(config):
    return (config["x"] - 0.3) ** 2 + (config["y"] + 0.2) ** 2


def run(searcher, space, fn, n, workers=1, seed=0):
    with tempfile.TemporaryDirectory() as d, Storage(d) as storage:
        return Orchestrator(
            fn,
            space,
            "loss",
            "min",
            searcher,
            FIFOScheduler(space, "loss", "min"),
            SimulatedExecutor(workers, duration="exponential", seed=seed),
            storage,
            Budget(max_trials=n),
        ).run()


def history_of(space, points, values, pending=()):
    trials = []
    for i, (cfg, v) in enumerate(zip(points, values, strict=True)):
        if v is None:
            trials.append(Trial(i, cfg, TrialStatus.FAILED, error="boom"))
        else:
            trials.append(Trial(i, cfg, TrialStatus.COMPLETED, curve=((1, {"loss": v}),)))
    for j, cfg in enumerate(pending):
        trials.append(Trial(len(points) + j, cfg, TrialStatus.RUNNING))
    return History(space, "loss", "min", tuple(trials))


def test_papers_epsilon_is_inverse_sqrt_dimension_floored_at_four_and_the_default_is_a_quarter():
    assert aegis_epsilon(1) == aegis_epsilon(2) == aegis_epsilon(4) == 0.5
    assert aegis_epsilon(10) == pytest.approx(1 / np.sqrt(10))
    assert AEGiSSearcher(SPACE2).epsilon == 0.25
    assert AEGiSSearcher(SPACE2, epsilon="paper").epsilon == 0.5


@pytest.mark.parametrize("bad", ["sqrtd", 0.6, -0.1, None, True, [0.25]])
def test_aegis_rejects_an_epsilon_it_cannot_use_and_says_what_works(bad):
    with pytest.raises(ValueError, match=r"epsilon.*(\[0, 0\.5\]|'paper')"):
        AEGiSSearcher(SPACE2, epsilon=bad)


@pytest.mark.parametrize("epsilon", [0.1, 1 / np.sqrt(10), 0.5])
def test_aegis_shares_of_moves_match_epsilon(epsilon):
    rng = np.random.default_rng(42)
    moves = [choose_move(rng, epsilon) for _ in range(1000)]
    shares = {m: moves.count(m) / 1000 for m in (Move.EXPLOIT, Move.THOMPSON, Move.PARETO)}
    # four binomial standard deviations at n = 1000 is at most 0.064
    assert shares[Move.EXPLOIT] == pytest.approx(1 - 2 * epsilon, abs=0.064)
    assert shares[Move.THOMPSON] == pytest.approx(epsilon, abs=0.064)
    assert shares[Move.PARETO] == pytest.approx(epsilon, abs=0.064)


def test_eta_splits_the_exploratory_moves_between_thompson_and_pareto():
    rng = np.random.default_rng(7)
    moves = [choose_move(rng, 0.25, eta=0.8) for _ in range(1000)]
    # shares 1 - 2 eps = 0.5, 2 eps eta = 0.4, 2 eps (1 - eta) = 0.1; tolerances are four binomial standard deviations
    assert moves.count(Move.EXPLOIT) / 1000 == pytest.approx(0.5, abs=0.064)
    assert moves.count(Move.THOMPSON) / 1000 == pytest.approx(0.4, abs=0.062)
    assert moves.count(Move.PARETO) / 1000 == pytest.approx(0.1, abs=0.038)
    assert Move.PARETO not in {choose_move(rng, 0.5, eta=1.0) for _ in range(200)}
    with pytest.raises(ValueError, match="eta"):
        AEGiSSearcher(SPACE2, eta=1.5)


def test_move_rule_rejects_an_epsilon_that_leaves_no_room_for_exploitation():
    with pytest.raises(ValueError, match="0.5"):
        choose_move(np.random.default_rng(0), 0.6)


def test_pareto_front_mask_keeps_exactly_the_non_dominated_points():
    F = np.array([[0.0, 3.0], [1.0, 1.0], [2.0, 2.0], [3.0, 0.0], [1.0, 1.0], [0.5, 3.0]])
    assert pareto_front_mask(F).tolist() == [True, True, False, True, False, False]


def test_nsga2_front_spans_the_posterior_mean_minimum_to_the_most_uncertain_point():
    rng = np.random.default_rng(0)
    X = 0.2 + 0.6 * rng.random((12, 2))  # data in the middle: the corners are the most uncertain
    gp = GPSurrogate(d=2).fit(X, ((X - 0.3) ** 2).sum(1))
    X_front, F = nsga2_mean_std(gp, np.random.default_rng(1))
    assert pareto_front_mask(np.stack([F[:, 0], -F[:, 1]], 1)).all()  # mutually non-dominated
    grid = np.stack(np.meshgrid(np.linspace(0, 1, 101), np.linspace(0, 1, 101)), -1).reshape(-1, 2)
    mu, sigma = gp.predict(grid)
    # both ends of the trade-off are found: within 2% of the grid's range of the best mean and the largest std
    assert F[:, 0].min() <= mu.min() + 0.02 * np.ptp(mu)
    assert F[:, 1].max() >= sigma.max() - 0.02 * np.ptp(sigma)
    assert len(X_front) >= 10


def test_aegis_gets_within_1e_3_of_a_quadratics_optimum_in_40_evaluations():
    history = run(AEGiSSearcher(SPACE2, seed=0), SPACE2, quadratic, 40)
    assert len(history.completed) == 40
    assert history.best_value() < 1e-3


def test_aegis_with_four_workers_suggests_no_duplicates_and_improves_on_its_initial_design():
    searcher = AEGiSSearcher(SPACE2, seed=1)
    history = run(searcher, SPACE2, quadratic, 24, workers=4, seed=1)
    keys = [SPACE2.key(t.config) for t in history]
    assert len(set(keys)) == len(keys)
    initial = min(quadratic(t.config) for t in history.trials[:4])
    assert history.best_value() < 0.1 * initial
    used = {used for _, _, used in searcher.moves}
    assert Move.INITIAL in used and (Move.THOMPSON in used or Move.PARETO in used)


def test_a_batch_for_several_free_workers_holds_distinct_configs_away_from_pending_work():
    rng = np.random.default_rng(0)
    points = [SPACE2.decode(u) for u in rng.random((10, 2))]
    h = history_of(SPACE2, points, [quadratic(c) for c in points])
    batch = AEGiSSearcher(SPACE2, seed=0, epsilon=0.0).suggest_batch(h, 4)  # epsilon 0: every draw is exploit
    X = np.stack([SPACE2.encode(c) for c in batch])
    assert len(batch) == 4
    assert min(np.linalg.norm(X[i] - X[j]) for i in range(4) for j in range(i)) > 1e-3


@pytest.mark.parametrize("case", ["one point", "duplicates", "constant y", "nan and inf", "all failed"])
def test_aegis_suggests_a_valid_config_from_degenerate_histories(case):
    space = Space({"lr": Float(1e-4, 1e-1, log=True), "act": Choice(["relu", "gelu"]), "layers": Int(1, 4)})
    rng = np.random.default_rng(0)
    points = [space.decode(u) for u in rng.random((8, 3))]
    values: list = list(rng.normal(size=8))
    if case == "one point":
        points, values = points[:1], values[:1]
    elif case == "duplicates":
        points = [points[0]] * 8
    elif case == "constant y":
        values = [1.0] * 8
    elif case == "nan and inf":
        values[1], values[2], values[3] = None, float("inf"), float("nan")
    else:
        values = [None] * 8
    searcher = AEGiSSearcher(space, seed=0, n_initial=1)
    for epsilon in (0.0, 0.5):  # exploit, then the two exploratory moves
        searcher.epsilon = epsilon
        for k in range(3):
            config = searcher.suggest(history_of(space, points, values, pending=points[:k]))
            space.validate(config)


@pytest.mark.parametrize("design", ["sobol", "uniform"])
def test_the_initial_design_is_the_random_searchers_and_the_model_takes_over_after_it(design):
    from searchers.random import RandomSearcher

    space = Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0), "z": Float(0.0, 1.0)})
    searcher = AEGiSSearcher(space, seed=4, initial_design=design)
    history = run(searcher, space, lambda c: {"loss": sum((v - 0.3) ** 2 for v in c.values())}, 8)
    configs = [t.config for t in history]
    assert configs[:6] == RandomSearcher(space, seed=4, design=design).suggest_batch(History(space, "loss"), 6)
    assert [m[1] for m in searcher.moves[:6]] == [Move.INITIAL] * 6
    assert all(m[1] is not Move.INITIAL for m in searcher.moves[6:]) and len(searcher.moves) == 8

"""GP-EI, the asynchronous baseline: log EI, with pending trials integrated out as joint fantasies."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
import torch

from hpo.executors import SimulatedExecutor
from hpo.history import History
from hpo.orchestrator import Budget, Orchestrator
from hpo.space import Choice, Float, Space
from hpo.storage import Storage
from hpo.trial import Trial, TrialStatus
from schedulers.fifo import FIFOScheduler
from searchers.gp_ei import GPEISearcher

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


def test_gp_ei_finds_a_quadratics_optimum():
    with tempfile.TemporaryDirectory() as d, Storage(d) as storage:
        history = Orchestrator(
            quadratic,
            SPACE2,
            "loss",
            "min",
            GPEISearcher(SPACE2, seed=0),
            FIFOScheduler(SPACE2, "loss", "min"),
            SimulatedExecutor(1, duration="exponential", seed=0),
            storage,
            Budget(max_trials=25),
        ).run()
    assert history.best_value() < 1e-3


def completed(space, configs, fn):
    return tuple(Trial(i, c, TrialStatus.COMPLETED, curve=((1, {"loss": fn(c)}),)) for i, c in enumerate(configs))


def test_gp_ei_sends_a_free_worker_away_from_a_pending_point_at_the_incumbent():
    rng = np.random.default_rng(0)
    configs = [SPACE2.decode(u) for u in rng.random((12, 2))]
    history = History(SPACE2, "loss", "min", completed(SPACE2, configs, quadratic))
    searcher = GPEISearcher(SPACE2, seed=0)
    first = searcher.suggest(history)
    second = searcher.suggest(history.with_pending(first))
    a, b = SPACE2.encode(first), SPACE2.encode(second)
    # EI alone would suggest the same point again; with the pending point's fantasies, a different one
    assert np.linalg.norm(a - b) > 0.02


@pytest.mark.parametrize("values", ["nan", "constant", "all failed"])
def test_gp_ei_suggests_valid_configs_from_degenerate_histories(values):
    space = Space({"lr": Float(1e-4, 1e-1, log=True), "act": Choice(["relu", "gelu"])})
    rng = np.random.default_rng(1)
    configs = [space.decode(u) for u in rng.random((6, 2))]
    trials = []
    for i, c in enumerate(configs):
        if values == "all failed" or (values == "nan" and i % 2):
            trials.append(Trial(i, c, TrialStatus.FAILED, error="diverged"))
        else:
            v = 1.0 if values == "constant" else float(i)
            trials.append(Trial(i, c, TrialStatus.COMPLETED, curve=((1, {"loss": v}),)))
    history = History(space, "loss", "min", tuple(trials))
    for config in GPEISearcher(space, seed=0, n_initial=2).suggest_batch(history, 2):
        space.validate(config)

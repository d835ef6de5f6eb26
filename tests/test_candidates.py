"""Searchers restricted to a finite list of configs (a tabulated benchmark's settings, a user's shortlist)."""

from __future__ import annotations

import tempfile

import pytest

import hpo
from hpo.candidates import Candidates
from hpo.executors.simulated import SimulatedExecutor
from hpo.history import History
from hpo.space import Fidelity, Float, Int, Space
from hpo.storage import Storage
from searchers.random import RandomSearcher
from tests.helpers import curve_trainable

GRID = [-1.7, -1.1, -0.6, -0.2, 0.05, 0.25, 0.45, 0.9, 1.3, 1.8]


def test_candidates_are_deduplicated_and_bad_ones_are_named():
    space = Space({"lr": Float(1e-4, 1e-1, log=True), "n": Int(1, 4)})
    c = Candidates(space, [{"lr": 1e-3, "n": 2}, {"lr": 1e-3, "n": 2, "epoch": 5}, {"lr": 1e-2, "n": 1}])
    assert len(c) == 2 and c.U.shape == (2, 2)
    assert c.row({"lr": 1e-2, "n": 1}) == 1 and c.row({"lr": 5e-2, "n": 1}) is None
    with pytest.raises(ValueError, match=r"candidates\[1\].*lr"):
        Candidates(space, [{"lr": 1e-3, "n": 2}, {"lr": 5.0, "n": 2}])
    with pytest.raises(ValueError, match=r"candidates\[0\].*'n'"):
        Candidates(space, [{"lr": 1e-3}])
    with pytest.raises(ValueError, match="candidates is empty"):
        Candidates(space, [])


def test_random_searcher_draws_each_candidate_once_in_a_seeded_order_then_is_finished():
    space = Space({"x": Float(-2.0, 2.0)})
    configs = [{"x": x} for x in GRID]
    h = History(space, "loss")
    out = RandomSearcher(space, seed=3, candidates=configs).suggest_batch(h, 15)
    assert sorted(c["x"] for c in out) == sorted(GRID)  # all ten, none twice, nothing else
    again = RandomSearcher(space, seed=3, candidates=configs).suggest_batch(h, 15)
    other = RandomSearcher(space, seed=4, candidates=configs).suggest_batch(h, 15)
    assert again == out and other != out
    s = RandomSearcher(space, seed=3, candidates=configs)
    for c in out:
        h = h.with_pending(space.complete(c))
    assert s.is_finished(h) and s.suggest(h) is None


def test_freeze_thaw_with_candidates_starts_only_them_once_each_then_trains_the_best_on():
    space = Space({"x": Float(-2.0, 2.0)}, fidelity=Fidelity("epoch", 1, 9))
    configs = [{"x": x} for x in GRID]
    with tempfile.TemporaryDirectory() as d:
        result = hpo.run(
            curve_trainable, space, metric="loss", directory=d,
            searcher={"name": "freeze_thaw", "n_initial": 3, "candidates": configs},
            scheduler={"name": "freeze_thaw", "acquisition": "promote", "promote_by": "value", "segment_growth": 3,
                       "n_initial": 3},
            max_cost=200, executor=SimulatedExecutor(num_workers=2, duration="constant", seed=0), display=False,
        )
        with Storage(d, readonly=True) as st:
            kinds = [e["kind"] for e in st.events()]
    xs = [t.config["x"] for t in result.history]
    assert sorted(xs) == sorted(GRID), "every candidate started exactly once, nothing else"
    # 10 trials cannot spend 200 steps to epoch 9 (90 at most): once every candidate was tried, paused ones ran on
    # to the end instead of the sweep stopping with trials left paused.
    assert all(t.last_step == 9 for t in result.history)
    assert kinds.count("resumed") >= 5
    assert result.history.best().config["x"] == 0.25  # the candidate nearest the optimum x = 0.3

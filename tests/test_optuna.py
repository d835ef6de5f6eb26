"""The Optuna plug-ins: HpoSampler (an Optuna sampler wrapping any hpo searcher) and HpoFreezeThawPruner."""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
import time

import numpy as np
import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from hpo.integrations.optuna import HpoFreezeThawPruner, HpoSampler, history_from_study
from hpo.integrations.optuna import _SpaceCache as SpaceCache
from hpo.space import Choice, Float, Int, Space
from hpo.trial import TrialStatus

optuna.logging.set_verbosity(optuna.logging.WARNING)

SEARCH_SPACE = {
    "x": FloatDistribution(-1.0, 1.0),
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
    "n": IntDistribution(1, 8),
    "act": CategoricalDistribution(["relu", "tanh"]),
}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small GPs gain nothing from a second thread on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def loss_of(c) -> float:
    return (c["x"] - 0.3) ** 2 + (math.log10(c["lr"]) + 2) ** 2 + 0.1 * c["n"] + (0.5 if c["act"] == "tanh" else 0)


def objective(trial) -> float:
    return loss_of({
        "x": trial.suggest_float("x", -1.0, 1.0),
        "lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True),
        "n": trial.suggest_int("n", 1, 8),
        "act": trial.suggest_categorical("act", ["relu", "tanh"]),
    })


@pytest.mark.parametrize("searcher", ["random", "gp_ei", "aegis"])
def test_sampler_suggests_what_hpo_run_suggests_for_the_same_searcher_and_seed(searcher, tmp_path):
    import hpo
    from hpo.executors.simulated import SimulatedExecutor

    n, options = 8, {"n_initial": 4} if searcher in ("gp_ei", "aegis") else {}
    space = Space({"x": Float(-1, 1), "lr": Float(1e-4, 1e-1, log=True), "n": Int(1, 8), "act": Choice(["relu",
                                                                                                       "tanh"])})
    native = hpo.run(loss_of, space, metric="loss", directory=tmp_path, searcher={"name": searcher, **options},
                     seed=3, max_trials=n, executor=SimulatedExecutor(1), display=False)
    sampler = HpoSampler(searcher, seed=3, search_space=SEARCH_SPACE, searcher_options=options)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=n)
    assert [t.params for t in study.trials] == [{k: t.config[k] for k in SEARCH_SPACE} for t in native.history]


def test_values_are_python_scalars_inside_bounds_and_on_the_step_grid():
    dists = {
        "wd": FloatDistribution(0.0, 0.3, step=0.1),
        "lr": FloatDistribution(1e-5, 1.0, log=True),
        "bs": IntDistribution(16, 256, step=16),
        "layers": IntDistribution(1, 64, log=True),
        "opt": CategoricalDistribution([None, True, 3, 0.5, "adam"]),
    }

    def obj(trial):
        trial.suggest_float("wd", 0.0, 0.3, step=0.1)
        trial.suggest_float("lr", 1e-5, 1.0, log=True)
        trial.suggest_int("bs", 16, 256, step=16)
        trial.suggest_int("layers", 1, 64, log=True)
        trial.suggest_categorical("opt", [None, True, 3, 0.5, "adam"])
        assert set(trial.relative_params) == set(dists)  # every value comes from the hpo searcher
        return 0.0

    study = optuna.create_study(sampler=HpoSampler("random", seed=0, search_space=dists))
    study.optimize(obj, n_trials=40)
    for t in study.trials:
        for n, d in dists.items():
            v = t.params[n]
            assert d._contains(d.to_internal_repr(v)), (n, v)
            assert type(v) in (int, float, bool, str, type(None)), (n, type(v))
        assert round(t.params["wd"] * 10, 9) in (0, 1, 2, 3) and t.params["bs"] % 16 == 0
    assert {round(t.params["wd"], 9) for t in study.trials} == {0.0, 0.1, 0.2, 0.3}  # the grid's ends too
    assert len({t.params["opt"] for t in study.trials if t.params["opt"] is not True} | {True}) == 5


def test_conditional_define_by_run_spaces_search_the_shared_parameters_and_sample_branches_independently():
    def conditional(trial):
        kind = trial.suggest_categorical("kind", ["svm", "forest"])
        shared = trial.suggest_float("shared", 0.0, 1.0)
        if kind == "svm":
            return (trial.suggest_float("c", 1e-3, 1e3, log=True) - 1) ** 2 / 1e6 + shared
        return trial.suggest_int("depth", 2, 16) / 16 + shared

    sampler = HpoSampler("gp_ei", seed=1, searcher_options={"n_initial": 4})
    study = optuna.create_study(sampler=sampler)
    study.optimize(conditional, n_trials=12)
    assert len(study.trials) == 12 and all(t.state == TrialState.COMPLETE for t in study.trials)
    assert {t.params["kind"] for t in study.trials} == {"svm", "forest"}
    # the relative space is what every trial shares; the branches' parameters are sampled independently
    last = study.trials[-1]
    space = sampler.infer_relative_search_space(study, last)
    assert sorted(space) == ["kind", "shared"]
    assert len(sampler._searchers) >= 1  # the hpo searcher was asked


def test_nan_objectives_fail_their_trials_and_the_searcher_goes_on():
    def sometimes_nan(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        return math.nan if x > 0.6 else (x - 0.3) ** 2

    sampler = HpoSampler("gp_ei", seed=0, search_space={"x": FloatDistribution(0.0, 1.0)},
                         searcher_options={"n_initial": 3})
    study = optuna.create_study(sampler=sampler)
    study.optimize(sometimes_nan, n_trials=12)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert failed and len(study.trials) == 12
    entry = SpaceCache(None).get({"x": FloatDistribution(0.0, 1.0)})
    h = history_from_study(study.trials, entry["space"], entry["axes"], "min")
    assert len(h.failed) == len(failed)
    assert study.best_value < 0.01  # the GP learned where the optimum is in spite of the NaNs


def test_trial_states_map_to_hpo_statuses_with_curves():
    dist = {"x": FloatDistribution(0.0, 1.0)}
    study = optuna.create_study(direction="maximize")
    study.add_trial(create_trial(params={"x": 0.1}, distributions=dist, value=0.9,
                                 intermediate_values={0: 0.5, 1: 0.7}, user_attrs={"cost": 3.0}))
    study.add_trial(create_trial(params={"x": 0.2}, distributions=dist, state=TrialState.PRUNED,
                                 intermediate_values={0: 0.4}))
    study.add_trial(create_trial(params={"x": 0.3}, distributions=dist, state=TrialState.FAIL))
    running = study.ask(dist)
    study.enqueue_trial({"x": 0.5})
    entry = SpaceCache(4).get(dist)
    h = history_from_study(study.trials, entry["space"], entry["axes"], "max", cost_attr="cost")
    assert h.mode == "max" and [t.status for t in h] == [
        TrialStatus.COMPLETED, TrialStatus.STOPPED, TrialStatus.FAILED, TrialStatus.RUNNING, TrialStatus.PENDING
    ]
    # Optuna's step s is hpo's step s + 1; a completed trial's value sits at the full budget
    assert [(s, m["value"]) for s, m in h[0].curve] == [(1, 0.5), (2, 0.7), (4, 0.9)]
    assert [(s, m["value"]) for s, m in h[1].curve] == [(1, 0.4)] and h[0].cost["cost"] == 3.0
    assert h[running.number].config["x"] == running.params["x"] and h[4].config["x"] == 0.5
    assert h.pending_points().shape == (2, 1)


def test_parallel_jobs_see_each_others_suggestions_as_pending():
    def slow(trial):
        time.sleep(0.05)
        return trial.suggest_int("n", 1, 4) + (trial.suggest_categorical("c", ["a", "b"]) == "a")

    dists = {"n": IntDistribution(1, 4), "c": CategoricalDistribution(["a", "b"])}
    study = optuna.create_study(sampler=HpoSampler("random", seed=0, search_space=dists))
    study.optimize(slow, n_trials=8, n_jobs=2)
    # 8 configs in an 8-config space: a duplicate would mean a thread did not see the other's pending trial
    assert len({(t.params["n"], t.params["c"]) for t in study.trials}) == 8


def test_a_pickled_sampler_continues_as_the_original_would():
    sampler = HpoSampler("gp_ei", seed=2, search_space=SEARCH_SPACE, searcher_options={"n_initial": 3})
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=4)
    clone = pickle.loads(pickle.dumps(sampler))
    clone.reseed_rng()  # as Optuna does for n_jobs > 1: only the independent sampler's state changes
    copy = optuna.create_study(sampler=clone)
    copy.add_trials(study.trials)
    assert copy.ask().relative_params == study.ask().relative_params


SCRIPT = """
import json, math, optuna
from hpo.integrations.optuna import HpoSampler
optuna.logging.set_verbosity(optuna.logging.WARNING)
def f(t):
    return (t.suggest_float("x", -1, 1) - 0.3) ** 2 + math.log(t.suggest_int("n", 1, 64, log=True))
study = optuna.create_study(sampler=HpoSampler("gp_ei", seed=11, searcher_options={"n_initial": 3}))
study.optimize(f, n_trials=6)
PARAMS = [t.params for t in study.trials]
"""


def test_the_same_seed_suggests_the_same_values_in_another_process():
    there = subprocess.run([sys.executable, "-c", SCRIPT + "print(json.dumps(PARAMS))"], capture_output=True,
                           text=True, check=True, timeout=300)
    here: dict = {}
    exec(SCRIPT, here)  # the first trial is independent (RandomSampler), the next five come from GP-EI
    assert json.loads(there.stdout) == here["PARAMS"] and len({p["x"] for p in here["PARAMS"]}) == 6


def test_a_curve_searcher_without_max_step_says_where_the_fidelity_goes():
    study = optuna.create_study(sampler=HpoSampler("freeze_thaw", seed=0, search_space={"x": SEARCH_SPACE["x"]}))
    with pytest.raises(ValueError, match="max_step"):
        study.optimize(lambda t: t.suggest_float("x", -1.0, 1.0), n_trials=1)


def test_a_multi_objective_study_is_refused_with_what_to_do_for_a_cost():
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=HpoSampler("random", seed=0))
    with pytest.raises(ValueError, match="set_user_attr"):
        study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=1)


def test_carbs_reads_the_cost_from_the_cost_user_attribute():
    def costly(trial):
        x, width = trial.suggest_float("x", 0.0, 1.0), trial.suggest_int("width", 8, 512, log=True)
        trial.set_user_attr("cost", float(width))  # e.g. FLOPs, growing with the model width
        return (x - 0.3) ** 2 + 10.0 / width

    dists = {"x": FloatDistribution(0.0, 1.0), "width": IntDistribution(8, 512, log=True)}
    sampler = HpoSampler("carbs", seed=0, search_space=dists)
    study = optuna.create_study(sampler=sampler)
    study.optimize(costly, n_trials=10)
    searcher = next(iter(sampler._searchers.values()))
    assert searcher.cost_key == "cost" and len(study.trials) == 10

    def no_cost(trial):
        return trial.suggest_float("x", 0.0, 1.0) + trial.suggest_int("width", 8, 512, log=True) * 0

    study = optuna.create_study(sampler=HpoSampler("carbs", seed=0, search_space=dists))
    with pytest.raises(ValueError, match="set_user_attr\\('cost'"):
        study.optimize(no_cost, n_trials=3)


# -- the pruner -----------------------------------------------------------------------------------------------------

MAX_STEP = 20


def curve(x: float, step: int) -> float:
    """Exponentially decaying curves whose asymptote is 4 (x - 0.3)^2: the ranking at the end is not the ranking
    at the start (the decay rate grows with x), as with learning rates."""
    rate = 0.1 + 0.5 * x
    return 4 * (x - 0.3) ** 2 + 2.0 * math.exp(-rate * step)


def test_freeze_thaw_pruner_stops_runs_that_will_not_beat_the_best_and_keeps_the_best():
    def run(pruner):
        seen = {"steps": 0, "wrong": 0}

        def obj(trial):
            x = trial.suggest_float("x", 0.0, 1.0)
            for step in range(MAX_STEP):
                seen["steps"] += 1
                trial.report(curve(x, step + 1), step)
                if trial.should_prune():
                    best = trial.study.best_value
                    seen["wrong"] += curve(x, MAX_STEP) < best  # pruned although it would have won
                    raise optuna.TrialPruned()
            return curve(x, MAX_STEP)

        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), pruner=pruner)
        study.optimize(obj, n_trials=24)
        return study, seen

    pruner = HpoFreezeThawPruner(MAX_STEP, n_startup_trials=4, n_warmup_steps=3, interval_steps=2, seed=0)
    pruned_study, seen = run(pruner)
    full_study, full = run(optuna.pruners.NopPruner())
    n_pruned = sum(t.state == TrialState.PRUNED for t in pruned_study.trials)
    print(f"pruned {n_pruned}/24, steps {seen['steps']}/{full['steps']}, wrongly pruned {seen['wrong']}")
    assert n_pruned >= 8
    assert seen["steps"] < 0.5 * full["steps"]
    assert seen["wrong"] == 0
    assert pruned_study.best_value == pytest.approx(full_study.best_value)


def test_pruner_without_enough_completed_trials_or_a_shared_parameter_prunes_nothing_and_does_not_crash():
    pruner = HpoFreezeThawPruner(MAX_STEP, n_startup_trials=3)
    rng = np.random.default_rng(0)

    def obj(trial):
        name = f"p{trial.number % 2}"  # no parameter is shared by every trial
        x = trial.suggest_float(name, 0.0, 1.0)
        for step in range(MAX_STEP):
            trial.report(curve(x, step + 1) + 0.01 * rng.normal(), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return curve(x, MAX_STEP)

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1), pruner=pruner)
    study.optimize(obj, n_trials=8)
    assert all(t.state == TrialState.COMPLETE for t in study.trials[:3])
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"searcher": "rnd"}, "unknown searcher 'rnd'; choose one of"),
        ({"searcher_options": {"sed": 1}}, r"RandomSearcher has no option \['sed'\]; its options are"),
        ({"searcher": {"name": "gp_ei", "n_init": 3}}, r"GPEISearcher has no option \['n_init'\]"),
        ({"max_step": -1}, "max_step must be the number of reports of a full run"),
    ],
)
def test_a_misspelled_searcher_or_option_fails_at_construction_not_after_a_trial(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HpoSampler(**kwargs)

"""The Ray Tune plug-ins: HpoSearch (a Tune Searcher) and HpoScheduler (a TrialScheduler that pauses and resumes).

Most behaviours are checked by calling Tune's hooks directly (what Tune calls, in Tune's order); two real Tune runs on
the shared local Ray check the rest: suggestions equal to hpo.run's, and ASHA pausing and resuming the digits
quickstart from its checkpoints.
"""

from __future__ import annotations

import math
import pickle
from types import SimpleNamespace

import pytest
from ray import tune
from ray.tune.experiment import Trial as TuneTrial
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher

from hpo.integrations.ray_tune import HpoScheduler, HpoSearch, space_from_tune
from hpo.space import Choice, Float, Int
from hpo.trial import TrialStatus

NESTED = {
    "opt": {"lr": tune.loguniform(1e-4, 1e-1), "betas": [0.9, 0.999]},
    "x": tune.uniform(-1.0, 1.0),
    "width": tune.randint(16, 65),
    "act": tune.choice(["relu", "gelu"]),
    "seed": 7,
}


def loss_of(config) -> float:
    """A smooth objective over NESTED's parameters, NaN where x > 0.8 (a diverged run)."""
    if config["x"] > 0.8:
        return math.nan
    lr = config["opt"]["lr"]
    return (config["x"] - 0.3) ** 2 + (math.log10(lr) + 2.5) ** 2 / 4 + abs(config["width"] - 40) / 100 + (
        0.2 if config["act"] == "gelu" else 0.0
    )


def tune_objective(config):
    tune.report({"loss": loss_of(config)})


def native_objective(config):
    return {"loss": loss_of({**config, "opt": {"lr": config["opt/lr"]}})}


def drive(search: HpoSearch, n: int, fn=loss_of, start: int = 0) -> list[dict]:
    """Call HpoSearch's hooks as Tune does for n trials run one after another (Tune ids t<start>, ...)."""
    configs = []
    for i in range(start, start + n):
        config = search.suggest(f"t{i}")
        if config in (None, Searcher.FINISHED):
            configs.append(config)
            break
        value = fn(config)
        result = {**(value if isinstance(value, dict) else {"loss": value}), "training_iteration": 1,
                  "time_total_s": 0.5}
        search.on_trial_result(f"t{i}", result)
        search.on_trial_complete(f"t{i}", result)
        configs.append(config)
    return configs


# -- search space ---------------------------------------------------------------------------------------------------


def test_tune_domains_become_hpo_parameters_with_tunes_bounds_and_grids():
    space, axes, paths, template = space_from_tune({
        "a": tune.uniform(0, 1), "b": tune.loguniform(1e-4, 1e-1), "c": tune.randint(1, 5),
        "d": tune.qrandint(2, 20, 4), "e": tune.quniform(0.2, 1.0, 0.2), "f": tune.qlograndint(4, 64, 4),
        "g": tune.lograndint(1, 100), "h": tune.choice([[1, 2], {"k": 1}]), "n": {"m": tune.choice(["x", "y"])},
        "layers": [tune.randint(1, 3), 5], "const": {"v": [1, 2]},
    })
    p = space.params
    assert p["a"] == Float(0, 1) and p["b"] == Float(1e-4, 1e-1, log=True)
    assert p["c"] == Int(1, 4)  # randint's upper bound is exclusive
    assert p["d"] == Int(4, 20, step=4)  # qrandint: multiples of q, upper bound inclusive
    assert p["g"] == Int(1, 99, log=True)
    assert p["n/m"] == Choice(["x", "y"]) and p["layers/0"] == Int(1, 2)
    assert [axes["e"].to_user(k) for k in range(p["e"].low, p["e"].high + 1)] == pytest.approx([0.2, 0.4, 0.6, 0.8,
                                                                                                  1.0])
    assert [axes["f"].to_user(k) for k in (p["f"].low, p["f"].high)] == [4, 64] and p["f"].log
    assert axes["h"].to_user(1) == {"k": 1} and paths["n/m"] == ("n", "m")
    assert template["const"] == {"v": [1, 2]} and template["layers"] == [None, 5]


@pytest.mark.parametrize("domain", [tune.randn(0, 1), tune.sample_from(lambda _: 1), tune.grid_search([1, 2])])
def test_unbounded_function_and_grid_domains_are_refused_with_what_to_use(domain):
    with pytest.raises(ValueError, match="tune.uniform|tune.choice"):
        space_from_tune({"x": domain, "y": tune.uniform(0, 1)})


# -- the searcher, driven through Tune's hooks ----------------------------------------------------------------------


def test_suggestions_keep_constants_and_nesting_and_lie_in_the_space():
    search = HpoSearch("random", "loss", "min", space=NESTED, seed=0)
    for config in drive(search, 12):
        assert config["seed"] == 7 and config["opt"]["betas"] == [0.9, 0.999]
        assert 1e-4 <= config["opt"]["lr"] <= 1e-1 and 16 <= config["width"] <= 64
        assert type(config["width"]) is int and type(config["x"]) is float


def test_nan_inf_errors_and_missing_metrics_fail_the_trial_and_the_sweep_goes_on():
    search = HpoSearch("gp_ei", "loss", "min", space={"x": tune.uniform(0, 1)}, seed=0,
                       searcher_options={"n_initial": 6})
    outcomes = [math.nan, math.inf, "error", "missing", 0.5, 0.2]
    for i, out in enumerate(outcomes):
        assert isinstance(search.suggest(f"t{i}"), dict)
        if out == "error":
            search.on_trial_complete(f"t{i}", None, error=True)
            continue
        result = {"training_iteration": 1} if out == "missing" else {"loss": out, "training_iteration": 1}
        search.on_trial_result(f"t{i}", result)
        search.on_trial_complete(f"t{i}", result)
    h = search.history()
    assert [t.status for t in h] == [TrialStatus.FAILED] * 4 + [TrialStatus.COMPLETED] * 2
    assert "diverged" in h[0].error and "diverged" in h[1].error
    assert isinstance(search.suggest("t6"), dict)  # the GP copes with four failures out of six


def test_pending_trials_are_in_the_history_and_a_finite_space_ends_with_finished():
    search = HpoSearch("random", "loss", "min", space={"n": tune.randint(1, 4), "c": tune.choice(["a", "b"])})
    configs = [search.suggest(f"t{i}") for i in range(6)]  # none has finished: all pending
    assert len({(c["n"], c["c"]) for c in configs}) == 6
    assert len(search.history().pending) == 6
    assert search.suggest("t6") == Searcher.FINISHED


def test_max_trials_and_max_concurrent_hold_back_suggestions_but_paused_trials_do_not_count():
    search = HpoSearch("random", "loss", "min", space={"x": tune.uniform(0, 1)}, max_trials=3)
    limiter = ConcurrencyLimiter(search, max_concurrent=1)  # defers to HpoSearch's own limit
    assert search.max_concurrent == 1
    assert isinstance(limiter.suggest("a"), dict) and limiter.suggest("b") is None
    search.on_trial_result("a", {"loss": 1.0, "training_iteration": 1})
    search.on_pause("a")  # as HpoScheduler does on PAUSE: the worker is free
    assert isinstance(limiter.suggest("b"), dict)
    search.on_trial_complete("b", {"loss": 0.5, "training_iteration": 1})
    assert isinstance(limiter.suggest("c"), dict)
    search.on_trial_complete("c", {"loss": 0.4, "training_iteration": 1})
    assert limiter.suggest("d") == Searcher.FINISHED
    search.on_trial_complete("a")  # a paused trial that Tune ends without a result stopped early
    assert search.history()[0].status is TrialStatus.STOPPED


def test_restore_without_set_search_properties_continues_the_same_sequence(tmp_path):
    first = HpoSearch("gp_ei", "loss", "min", space=NESTED, seed=3, searcher_options={"n_initial": 3})
    drive(first, 4)
    path = str(tmp_path / "searcher.pkl")
    first.save(path)
    restored = HpoSearch()  # no space, metric or mode: all come from the file
    restored.restore(path)
    assert restored.set_search_properties(None, None, NESTED)  # Tune passes the same param_space again: fine
    assert not restored.set_search_properties(None, None, {"x": tune.uniform(0, 2)})  # another one: refused
    assert drive(restored, 3, start=4) == drive(first, 3, start=4)
    assert repr(pickle.loads(pickle.dumps(restored)).history()) == repr(restored.history())  # NaN != NaN


def test_add_evaluated_point_and_points_to_evaluate_enter_the_history():
    search = HpoSearch("random", "loss", "min", space=NESTED,
                       points_to_evaluate=[{"opt": {"lr": 1e-3}, "x": 0.1, "width": 32, "act": "relu"}])
    search.add_evaluated_point({"opt/lr": 1e-2, "x": 0.5, "width": 20, "act": "gelu"}, 0.7,
                               intermediate_values=[0.9, 0.8])
    first = search.suggest("t0")
    assert first["opt"]["lr"] == 1e-3 and first["x"] == 0.1 and first["seed"] == 7
    h = search.history()
    assert h[0].status is TrialStatus.COMPLETED and [p[1]["loss"] for p in h[0].curve] == [0.9, 0.8, 0.7]
    assert h[1].status is TrialStatus.PENDING


# -- the scheduler, driven through Tune's hooks ---------------------------------------------------------------------


class FakeController:
    """What Tune hands a scheduler: the trials, the search algorithm, stop_trial."""

    def __init__(self, finished=False):
        self.trials, self.stopped = [], []
        self.search_alg = SimpleNamespace(is_finished=lambda: finished, searcher=None)

    def get_trials(self):
        return self.trials

    def add(self, sched, name):
        t = SimpleNamespace(trial_id=name, status=TuneTrial.RUNNING)
        self.trials.append(t)
        sched.on_trial_add(self, t)
        return t

    def stop_trial(self, t):
        self.stopped.append(t.trial_id)
        t.status = TuneTrial.TERMINATED
        return None


def report(sched, ctl, t, step, loss):
    decision = sched.on_trial_result(ctl, t, {"loss": loss, "training_iteration": step, "should_checkpoint": True})
    if decision == TrialScheduler.PAUSE:
        t.status = TuneTrial.PAUSED
    return decision


def test_asha_pauses_at_rungs_promotes_the_top_third_and_stops_leftovers_at_the_end():
    sched = HpoScheduler("asha", "loss", "min", max_t=9, reduction_factor=3)
    ctl = FakeController()
    a = ctl.add(sched, "a")
    assert report(sched, ctl, a, 1, 0.5) == TrialScheduler.PAUSE  # alone at rung 1: nothing to compare with
    b = ctl.add(sched, "b")
    assert report(sched, ctl, b, 1, 0.9) == TrialScheduler.PAUSE
    c = ctl.add(sched, "c")
    assert report(sched, ctl, c, 1, 0.7) == TrialScheduler.PAUSE
    # three at rung 1: a is in the top third, so a free worker resumes it, up to rung 3
    assert sched.choose_trial_to_run(ctl) is a
    a.status = TuneTrial.RUNNING
    assert report(sched, ctl, a, 2, 0.4) == TrialScheduler.CONTINUE
    assert report(sched, ctl, a, 3, 0.3) == TrialScheduler.PAUSE
    d = ctl.add(sched, "d")
    d.status = TuneTrial.PENDING
    assert sched.choose_trial_to_run(ctl) is d  # b and c are not in the top third: the free worker takes a new trial
    d.status = TuneTrial.TERMINATED
    ctl.search_alg.is_finished = lambda: True
    assert sched.choose_trial_to_run(ctl) is None and sorted(ctl.stopped) == ["a", "b", "c"]


def test_a_nan_result_stops_the_trial_as_failed():
    sched = HpoScheduler("asha", "loss", "min", max_t=9)
    ctl = FakeController()
    t = ctl.add(sched, "a")
    assert sched.on_trial_result(ctl, t, {"loss": math.nan, "training_iteration": 1}) == TrialScheduler.STOP
    assert sched.history()[0].status is TrialStatus.FAILED


def test_idle_workers_with_a_search_that_counts_paused_trials_resume_the_best_paused_trial():
    sched = HpoScheduler("asha", "loss", "min", max_t=9, reduction_factor=3)
    ctl = FakeController(finished=False)
    a, b = ctl.add(sched, "a"), ctl.add(sched, "b")
    report(sched, ctl, a, 1, 0.9)
    report(sched, ctl, b, 1, 0.2)
    # nothing runs, nothing is pending, nothing is promotable (2 < eta), the search offers nothing: no deadlock
    assert sched.choose_trial_to_run(ctl) is b


def test_freeze_thaw_scheduler_shares_the_searchers_space_and_model_when_their_fidelities_match():
    from hpo.surrogates.freeze_thaw import shared_policy

    search = HpoSearch("freeze_thaw", "loss", "min", space={"x": tune.uniform(0, 1)}, time_attr="epoch", max_t=12)
    sched = HpoScheduler("freeze_thaw", "loss", "min", time_attr="epoch", max_t=12, segment_steps=3)
    ctl = FakeController()
    ctl.search_alg.searcher = ConcurrencyLimiter(search, max_concurrent=2)
    search.suggest("a")
    ctl.add(sched, "a")
    assert sched._space is search.space and shared_policy(search.space, "loss") is sched._hpo.policy


def test_freeze_thaw_searcher_without_max_t_says_where_the_fidelity_goes():
    search = HpoSearch("freeze_thaw", "loss", "min", space={"x": tune.uniform(0, 1)})
    with pytest.raises(ValueError, match="max_t"):
        search.suggest("a")


@pytest.mark.parametrize("searcher", ["aegis", "carbs"])
def test_every_model_searcher_suggests_through_tunes_hooks_what_hpo_run_suggests(searcher, tmp_path):
    import hpo
    from hpo.executors.simulated import SimulatedExecutor

    def with_cost(config):  # CARBS's cost: a reported metric, the same on both paths
        return {"loss": loss_of(config), "flops": config["width"] * 1e6}

    n = 7
    options = {"n_initial": 4} if searcher == "aegis" else {"num_random_samples": 4, "cost_metric": "flops"}
    search = HpoSearch(searcher, "loss", "min", space=NESTED, seed=2, searcher_options=options)
    tune_configs = drive(search, n, fn=with_cost)
    native = hpo.run(lambda c: with_cost({**c, "opt": {"lr": c["opt/lr"]}}), search.space, metric="loss",
                     directory=tmp_path, seed=2, max_trials=n,
                     searcher={"name": searcher, **options}, executor=SimulatedExecutor(1), display=False)
    assert [search._to_hpo(c) for c in tune_configs] == [{k: t.config[k] for k in search.space.names}
                                                          for t in native.history]
    assert len({search.space.key(search._to_hpo(c)) for c in tune_configs}) == n


# -- real Tune runs -------------------------------------------------------------------------------------------------


def test_tune_run_suggests_what_hpo_run_suggests_for_the_same_searcher_and_seed(ray_local, tmp_path):
    import hpo
    from hpo.executors.simulated import SimulatedExecutor

    n, options = 7, {"n_initial": 4}
    search = HpoSearch("gp_ei", seed=5, searcher_options=options)
    tuner = tune.Tuner(
        tune_objective,
        param_space=NESTED,
        tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=n, reuse_actors=True,
                                    search_alg=ConcurrencyLimiter(search, max_concurrent=1)),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "tune"), verbose=0),
    )
    results = tuner.fit()
    by_id = {search._ids[r.metrics["trial_id"]]: r.config for r in results}
    tune_configs = [by_id[i] for i in range(n)]
    assert all(c["seed"] == 7 and c["opt"]["betas"] == [0.9, 0.999] for c in tune_configs)

    native = hpo.run(native_objective, search.space, metric="loss", directory=tmp_path / "native",
                     searcher={"name": "gp_ei", **options}, seed=5, max_trials=n, executor=SimulatedExecutor(1),
                     display=False)
    native_configs = [{k: t.config[k] for k in search.space.names} for t in native.history]
    assert [search._to_hpo(c) for c in tune_configs] == native_configs
    assert [t.status for t in search.history()] == [t.status for t in native.history]  # NaN trials failed in both
    assert any(t.status is TrialStatus.FAILED for t in native.history)

    # Tune saved the searcher with the experiment; a fresh HpoSearch restores it without a param_space.
    restored = HpoSearch()
    restored.restore_from_dir(str(next((tmp_path / "tune").iterdir())))
    assert repr(restored.history()) == repr(search.history())


def test_asha_pauses_and_resumes_the_digits_quickstart_from_its_checkpoints(ray_local, tmp_path):
    from examples.ray_tune_quickstart import run

    sched = HpoScheduler("asha", time_attr="epoch", max_t=9, reduction_factor=3)
    run(num_samples=9, max_t=9, searcher="random", max_concurrent=1, scheduler=sched,
        storage_path=str(tmp_path), verbose=0)
    trials = list(sched.history())
    assert len(trials) == 9
    resumed = []
    for t in trials:
        epochs = [int(m["epoch"]) for _, m in t.curve]
        assert epochs == list(range(1, len(epochs) + 1))  # every epoch once: resumed, not retrained
        starts = sorted({int(m["resumed_from"]) for _, m in t.curve})
        if starts != [0]:
            resumed.append(t)
            # each later segment started at a rung, from the checkpoint taken there
            assert set(starts) <= {0, 1, 3}
            first_resumed = next(m for _, m in t.curve if m["resumed_from"] > 0)
            assert first_resumed["epoch"] == first_resumed["resumed_from"] + 1
    assert resumed, "no trial was paused and resumed"
    # ASHA: all 9 reached rung 1, at most a third go past rung 3
    assert sum(t.last_step >= 9 for t in trials) <= 3 < sum(t.last_step >= 1 for t in trials)
    assert {t.status for t in trials} <= {TrialStatus.COMPLETED, TrialStatus.STOPPED}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_trials": -1}, "max_trials must be an integer >= 1"),
        ({"max_concurrent": 0}, "max_concurrent must be an integer >= 1"),
        ({"searcher": "gp-ei"}, "unknown searcher 'gp-ei'"),
        ({"searcher_options": {"sed": 1}}, r"has no option \['sed'\]"),
    ],
)
def test_impossible_limits_and_misspelled_searchers_are_refused_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HpoSearch(metric="loss", mode="min", **kwargs)

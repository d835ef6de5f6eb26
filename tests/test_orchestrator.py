import math
import tempfile

import pytest

import hpo
from hpo.executors.simulated import SimulatedExecutor
from hpo.orchestrator import Budget, utilization
from hpo.storage import Storage, SweepLockedError
from hpo.trial import TrialStatus
from tests.helpers import SPACE_1D, curve_space, curve_trainable, quadratic, run_simulated


def test_every_free_slot_is_filled_at_once():
    _, events, _ = run_simulated(quadratic, SPACE_1D, workers=8, max_trials=30)
    first_starts = [e for e in events if e["kind"] == "started"][:8]
    assert [e["data"]["clock"] for e in first_starts] == [0.0] * 8


def test_idle_worker_time_is_under_one_percent_while_trials_remain():
    _, events, _ = run_simulated(quadratic, SPACE_1D, workers=8, max_trials=200, duration="pareto")
    assert utilization(events, num_workers=8) > 0.99


def test_budget_of_trials_is_respected_and_all_complete():
    history, _, _ = run_simulated(quadratic, SPACE_1D, workers=3, max_trials=17)
    assert len(history) == 17
    assert all(t.status is TrialStatus.COMPLETED for t in history)
    assert history.best_value() == min(t.value("loss") for t in history)


def test_cost_budget_stops_starting_new_work():
    history, _, _ = run_simulated(quadratic, SPACE_1D, workers=2, max_trials=1000, max_cost=10.0,
                                  duration="constant")
    spent = sum(t.cost["wall_seconds"] for t in history)
    assert 10.0 <= spent <= 12.0  # the two segments in flight when the budget ran out still finish


def test_exception_in_user_code_fails_that_trial_and_the_sweep_goes_on():
    def train(config):
        if config["x"] > 1.0:
            raise RuntimeError("CUDA out of memory (simulated)")
        return {"loss": config["x"] ** 2}

    history, _, _ = run_simulated(train, SPACE_1D, workers=2, max_trials=20)
    failed = history.failed
    assert failed and len(history.completed) == 20 - len(failed)
    first_line, _, tb = failed[0].error.partition("\n")
    assert first_line == "RuntimeError: CUDA out of memory (simulated)"
    assert "Traceback" in tb and "raise RuntimeError" in tb


def test_non_finite_metric_fails_the_trial_with_a_one_line_reason():
    def train(config):
        for step in range(1, 4):
            hpo.report({"loss": math.nan if config["x"] > 1.0 and step == 2 else 1.0 / step}, step=step)

    space = curve_space(3)
    history, _, _ = run_simulated(train, space, workers=2, max_trials=20)
    failed = history.failed
    assert failed
    assert failed[0].error == "metric 'loss' is nan at step 2: the trial diverged"
    assert failed[0].last_step == 2
    assert all(t.last_step == 3 for t in history.completed)


class DivergingTable:
    """A simulated problem (tabulated curves) whose curve for x > 1 turns NaN at step 2."""

    def __call__(self, config):
        raise AssertionError("the simulated executor calls simulate()")

    def simulate(self, config, start, stop):
        points = [(s, {"loss": math.nan if config["x"] > 1.0 and s >= 2 else 1.0 / s}) for s in range(start + 1,
                                                                                                       stop + 1)]
        return points, float(stop - start)


def test_a_simulated_problem_that_diverges_fails_its_trial_as_a_real_one_does():
    history, _, _ = run_simulated(DivergingTable(), curve_space(3), workers=2, max_trials=20)
    failed = history.failed
    assert failed and all(t.error == "metric 'loss' is nan at step 2: the trial diverged" for t in failed)
    assert all(t.last_step == 2 and t.config["x"] > 1.0 for t in failed)
    assert all(t.config["x"] <= 1.0 and t.last_step == 3 for t in history.completed)


def test_missing_metric_is_named():
    history, _, _ = run_simulated(lambda c: {"accuracy": 0.5}, SPACE_1D, workers=1, max_trials=1)
    assert "reported ['accuracy'] at step 1 but not the sweep's metric 'loss'" in history.trials[0].error


def test_asha_pauses_at_rungs_and_resumes_promoted_trials_from_their_checkpoints():
    history, events, _ = run_simulated(curve_trainable, curve_space(27), workers=4, max_trials=27, scheduler="asha")
    reached = {r: sum(t.last_step >= r for t in history) for r in (1, 3, 9, 27)}
    assert reached[1] == 27 and reached[3] >= 9 and reached[9] >= 3 and reached[27] >= 1
    resumed = [e for e in events if e["kind"] == "resumed"]
    assert resumed, "ASHA never resumed a paused trial"
    for e in resumed:
        t = history[e["trial_id"]]
        # the resumed segment started from the checkpoint, not from scratch, and no step was reported twice
        assert any(m["resumed_from"] == e["data"]["start_step"] for s, m in t.curve if s > e["data"]["start_step"])
        steps = [s for s, _ in t.curve]
        assert steps == list(range(1, t.last_step + 1))


def test_resumed_sweep_repeats_no_completed_trial():
    d = tempfile.mkdtemp()
    first, _, _ = run_simulated(quadratic, SPACE_1D, directory=d, workers=2, max_trials=10)
    second, events, _ = run_simulated(quadratic, SPACE_1D, directory=d, workers=2, max_trials=25)
    assert len(second) == 25 and all(t.status is TrialStatus.COMPLETED for t in second)
    for t in first:
        assert second[t.trial_id].curve == t.curve
        assert sum(e["kind"] == "completed" for e in events if e["trial_id"] == t.trial_id) == 1
    assert {e["kind"] for e in events if e["trial_id"] is None} >= {"sweep_started", "sweep_resumed"}


def test_ctrl_c_stops_cleanly_and_the_sweep_resumes_without_loss():
    d = tempfile.mkdtemp()
    calls = {"n": 0}

    def train(config):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return {"loss": config["x"] ** 2}

    history, events, orch = run_simulated(train, SPACE_1D, directory=d, workers=1, max_trials=12)
    assert orch.interrupted
    done_before = {t.trial_id: t.curve for t in history.completed}
    assert len(done_before) == 6 and events[-1]["kind"] == "sweep_interrupted"
    resumed, _, _ = run_simulated(train, SPACE_1D, directory=d, workers=1, max_trials=12)
    assert len(resumed.completed) == 12
    assert all(resumed[i].curve == c for i, c in done_before.items())


def test_a_second_driver_on_the_same_storage_is_refused():
    d = tempfile.mkdtemp()
    with Storage(d):
        with pytest.raises(SweepLockedError, match="is in use by another driver"):
            Storage(d)
    Storage(d).close()  # released on close


def test_mode_max_promotes_and_reports_the_largest_values():
    def train(config):
        for step in range(1, config["epoch"] + 1):
            hpo.report({"loss": -((config["x"] - 0.3) ** 2) - 1.0 / step}, step=step)

    history, _, _ = run_simulated(train, curve_space(9), workers=2, max_trials=18, scheduler="asha", mode="max")
    assert history.best_value() == max(t.value("loss") for t in history.completed)
    at_rung_1 = sorted(history, key=lambda t: -t.value("loss", 1))
    promoted = {t.trial_id for t in history if t.last_step >= 3}
    assert promoted <= {t.trial_id for t in at_rung_1[: len(promoted) + 2]}  # the largest values went up


def test_checkpoints_can_live_under_an_fsspec_url():
    from hpo.checkpoint import CheckpointStore

    store = CheckpointStore("memory://hpo-test/ckpt")
    store.save(3, 5, {"w": [1, 2]}, points=[(5, {"loss": 0.1})])
    store.save(3, 7, {"w": [3, 4]})
    store.save(3, 9, {"w": [5, 6]})
    latest = store.latest(3)
    assert (latest.step, latest.state) == (9, {"w": [5, 6]})
    assert store.latest(3, max_step=8).step == 7  # keep=2: step 5 was pruned
    assert store.latest(3, max_step=6) is None and store.latest(4) is None


def test_results_export_to_csv_and_pandas(tmp_path):
    import pandas as pd

    from hpo.executors.simulated import SimulatedExecutor

    result = hpo.run(quadratic, SPACE_1D, metric="loss", directory=tmp_path / "s", max_trials=6, display=False,
                     executor=SimulatedExecutor(2, seed=0))
    df = hpo.load_results(tmp_path / "s")
    assert list(df["trial_id"]) == list(range(6)) and set(df["status"]) == {"completed"}
    assert df["loss"].min() == result.best_value
    csv = pd.read_csv(tmp_path / "s" / "results.csv")
    assert csv["config/x"].tolist() == df["config/x"].tolist()
    assert (tmp_path / "s" / "results.json").exists()


def _run(directory, trainable=quadratic, space=SPACE_1D, **kw):
    kw.setdefault("max_trials", 4)
    return hpo.run(trainable, space, metric="loss", directory=directory, executor=SimulatedExecutor(2, seed=0),
                   display=False, **kw)


def test_resuming_does_not_run_points_to_evaluate_again(tmp_path):
    points = [{"x": 0.25}, {"x": 0.5}]
    _run(tmp_path, points_to_evaluate=points, max_trials=3)
    result = _run(tmp_path, points_to_evaluate=points, max_trials=6)
    xs = [t.config["x"] for t in result.history]
    assert len(xs) == 6 and xs[:2] == [0.25, 0.5]
    assert xs.count(0.25) == 1 and xs.count(0.5) == 1


def test_a_sweep_refused_at_setup_leaves_its_directory_to_the_corrected_one(tmp_path):
    space = {"x": {"type": "float", "low": 0, "high": 1}}
    with pytest.raises(ValueError, match="fidelity"):
        _run(tmp_path, space=space, scheduler="asha")
    fixed = {"params": space, "fidelity": {"name": "epoch", "low": 1, "high": 3}}
    result = _run(tmp_path, trainable=curve_trainable, space=fixed, scheduler="asha")
    assert len(result.history) == 4


def test_a_metric_that_is_not_a_number_is_named_with_its_type():
    history, _, _ = run_simulated(lambda c: {"loss": "0.5"}, SPACE_1D, workers=1, max_trials=1)
    assert history.trials[0].error.startswith("metric 'loss' is '0.5' (str) at step 1, not a number")


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ({"max_trials": 2.5}, "max_trials must be a whole number of trials, got 2.5"),
        ({"max_trials": "ten"}, "max_trials must be a whole number of trials, got 'ten'"),
        ({"max_seconds": "600"}, "max_seconds must be a positive number, got '600'"),
        ({"max_cost": -1}, "max_cost must be a positive number, got -1"),
    ],
)
def test_budget_values_of_the_wrong_kind_are_named(budget, message):
    with pytest.raises(ValueError, match=message):
        Budget(**budget)


def test_a_cost_key_that_no_trial_reports_stops_the_sweep_with_its_name():
    message = r"cost_key 'wall_second' is not a cost the trials report \(\['wall_seconds'\]"
    with pytest.raises(ValueError, match=message):
        run_simulated(quadratic, SPACE_1D, workers=2, max_trials=20, max_cost=2, cost_key="wall_second")


def test_the_time_budget_leaves_running_trials_to_resume_and_says_so(tmp_path):
    space = {"params": {"x": {"type": "float", "low": 0, "high": 1}}, "fidelity": {"name": "epoch", "high": 27}}
    result = _run(tmp_path, trainable=curve_trainable, space=space, max_trials=None, max_seconds=5)
    assert result.interrupted and not result.cancelled
    assert any(t.status is TrialStatus.RUNNING for t in result.history)
    resumed = _run(tmp_path, trainable=curve_trainable, space=space, max_trials=2)
    assert not resumed.interrupted
    assert all(t.status is TrialStatus.COMPLETED and t.last_step == 27 for t in resumed.history)

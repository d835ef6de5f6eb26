"""The benchmark harness: problems answer as declared, peers run through hpo's loop, runs are reproducible."""

from __future__ import annotations

import itertools
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import optuna
import pytest

from benchmarks import metrics
from benchmarks.__main__ import main
from benchmarks.harness import result_path, run_one, run_specs
from benchmarks.peers import build_method, parse_method
from benchmarks.problems import get_problem
from benchmarks.problems.synthetic import SyntheticFunction
from benchmarks.problems.taskset import TASKS, TaskSetProblem, TrialDiverged
from benchmarks.suites import SUITES, RunSpec, expand
from hpo.executors.simulated import SimulatedExecutor
from hpo.history import History
from hpo.orchestrator import Budget, Orchestrator
from hpo.storage import Storage
from hpo.trial import TrialStatus

TASK = "taskset/patch32_GRU64_avg_bs128"


def test_synthetic_functions_reach_their_optimum_at_the_known_minimizer():
    branin = SyntheticFunction("branin")
    assert branin({"x0": math.pi, "x1": 2.275})["loss"] == pytest.approx(branin.optimum, abs=1e-5)
    hartmann = SyntheticFunction("hartmann6")
    x = [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]
    assert hartmann({f"x{i}": v for i, v in enumerate(x)})["loss"] == pytest.approx(-3.32237, abs=1e-4)


def test_taskset_answers_a_tabulated_setting_with_its_own_curve_and_others_by_nearest_neighbour():
    p = TaskSetProblem(TASKS[0])
    finite = np.flatnonzero(np.isfinite(p.valid).all(axis=1))
    i = int(finite[7])
    points, duration = p.simulate(p.config(i), 0, 50)
    assert [s for s, _ in points] == list(range(1, 51)) and duration == 50.0
    assert [m["valid_loss"] for _, m in points] == pytest.approx(p.valid[i].tolist())
    nudged = {**p.config(i), "learning_rate": p.hp[i, 0] * 1.001}  # not tabulated: nearest is still row i
    assert p.lookup(nudged) == i
    points, duration = p.simulate(p.config(i), 9, 27)  # a resumed segment costs its own steps
    assert points[0][0] == 10 and points[-1][0] == 27 and duration == 18.0


def test_taskset_diverged_curve_fails_after_the_steps_it_ran():
    p = TaskSetProblem(TASKS[0])
    row = next(i for i in range(len(p.valid)) if np.isnan(p.valid[i]).any() and np.isfinite(p.valid[i, :2]).all())
    first_nan = int(np.flatnonzero(np.isnan(p.valid[row]))[0]) + 1  # as a step, 1-based
    with pytest.raises(TrialDiverged):
        p.simulate(p.config(row), 0, 50)
    assert p.failure_duration(np.random.default_rng(0)) == first_nan


def _sweep(problem_name: str, method: str, seed: int, workers: int, budget: Budget):
    """Run a method on a problem through the orchestrator; the history and the searcher and scheduler used."""
    problem = get_problem(problem_name)
    searcher, scheduler = build_method(method, problem.space, problem.metric, problem.mode, seed)
    trainable = problem.make()
    duration = problem.executor_duration(trainable) if problem.executor_duration else "exponential"
    executor = SimulatedExecutor(workers, duration, seed=seed)
    with tempfile.TemporaryDirectory() as d, Storage(d) as st:
        history = Orchestrator(
            trainable, problem.space, problem.metric, problem.mode, searcher, scheduler, executor, st, budget
        ).run()
    return history, searcher, scheduler


def test_optuna_searcher_tells_each_finished_trial_to_the_optuna_trial_it_asked():
    history, searcher, _ = _sweep("hartmann6", "optuna_tpe", seed=1, workers=4, budget=Budget(max_trials=16))
    searcher.sync(history)
    study_trials = searcher.study.get_trials()
    assert len(study_trials) == 16
    for t in history:
        ot = searcher.optuna_trial(history, t.trial_id)
        assert ot is not None and ot.params == {n: t.config[n] for n in history.space.names}
        assert study_trials[ot.number].value == pytest.approx(t.value("loss"))


def test_pruner_scheduler_stops_trials_only_at_rung_steps():
    history, searcher, scheduler = _sweep(TASK, "optuna_tpe+sha", seed=0, workers=4, budget=Budget(max_cost=8 * 50))
    assert scheduler.check_steps == [1, 3, 9, 27, 50]
    stopped = [t for t in history if t.status is TrialStatus.STOPPED]
    assert len(stopped) >= len(history) // 2  # successive halving at eta = 3 stops most trials early
    assert {t.last_step for t in stopped} <= {1, 3, 9, 27}
    pruned = searcher.study.get_trials(states=(optuna.trial.TrialState.PRUNED,))
    assert len(pruned) >= len(stopped) - 4  # told at the next suggestion; the last few may not have been yet
    curve = dict(pruned[0].intermediate_values)
    assert sorted(curve) == list(range(1, max(curve) + 1))  # every step of the curve was reported


def test_same_seed_gives_identical_results():
    specs = (
        RunSpec("test", "branin", "optuna_tpe", seed=3, workers=4, budget=20),
        RunSpec("test", TASK, "random+asha", seed=3, workers=4, budget=4),
        RunSpec("test", TASK, "optuna_tpe+hyperband", seed=3, workers=4, budget=4),
    )
    for spec in specs:
        a, b = run_one(spec), run_one(spec)
        assert a["status"] == b["status"] == "ok"
        assert a["trace"] == b["trace"] and a["summary"] == b["summary"]
        if spec.problem == "branin":
            first = a
    other = run_one(RunSpec("test", "branin", "optuna_tpe", seed=4, workers=4, budget=20))
    assert other["trace"]["best"] != first["trace"]["best"]  # and the seed matters


def test_table_method_proposes_only_tabulated_settings_and_is_not_applicable_elsewhere():
    problem = get_problem(f"taskset/{TASKS[4].replace('FixedTextRNNClassification_imdb_', '')}")
    searcher, scheduler = build_method("freeze_thaw+benchmarks.freeze_thaw_variants:FreezeThawPromoteValue@table",
                                       problem.space, problem.metric, problem.mode, 5, problem.candidates)
    assert len(searcher.candidates) == 1000 and scheduler.policy.seed == 5  # the run's seed seeds the scheduler
    random, _ = build_method("random+asha@table", problem.space, problem.metric, problem.mode, 0, problem.candidates)
    table = TaskSetProblem(TASKS[4])
    configs = random.suggest_batch(History(problem.space, problem.metric), 50)
    rows = [table.lookup(c) for c in configs]
    assert len(set(rows)) == 50 and all(table.config(r)["learning_rate"] == c["learning_rate"]
                                        for r, c in zip(rows, configs, strict=True))
    na = run_one(RunSpec("test", "branin", "random@table", seed=0, workers=1, budget=5))
    assert na["status"] == "n/a" and "tabulated" in na["message"]
    with pytest.raises(Exception, match="cannot be restricted"):
        build_method("optuna_tpe+asha@table", problem.space, problem.metric, problem.mode, 0, problem.candidates)


def test_unwritten_or_inapplicable_method_is_reported_not_raised():
    missing = run_one(RunSpec("test", "branin", "searchers.not_written_yet:Nothing", seed=0, workers=1, budget=5))
    assert missing["status"] == "missing" and "not_written_yet" in missing["message"]
    na = run_one(RunSpec("test", "branin", "random+asha", seed=0, workers=1, budget=5))
    assert na["status"] == "n/a"
    assert parse_method("freeze_thaw").scheduler == "freeze_thaw"
    with pytest.raises(ValueError, match="unknown searcher"):
        parse_method("no_such_searcher")


def test_regret_floor_step_function_and_hypervolume():
    assert metrics.log10_regret(1.5, 0.5) == pytest.approx(0.0)
    assert metrics.log10_regret(0.5, 0.5) == pytest.approx(math.log10(metrics.REGRET_FLOOR))
    assert np.isnan(metrics.log10_regret(math.nan, 0.5))
    np.testing.assert_array_equal(metrics.value_at([1, 3], [5.0, 2.0], [0, 1, 2, 3, 9]), [np.nan, 5, 5, 2, 2])
    # (1, 2) and (2, 1) dominate a 2 x 1 and a 1 x 2 box below (3, 3) that overlap in a 1 x 1 box: 2 + 2 - 1 = 3;
    # (2.5, 2.5) is dominated and adds nothing
    assert metrics.hypervolume([(1.0, 2.0), (2.0, 1.0), (2.5, 2.5)], ref=(3.0, 3.0)) == pytest.approx(3.0)
    assert metrics.hypervolume([(4.0, 0.0)], ref=(3.0, 3.0)) == 0.0


def test_suggestion_latency_is_recorded_per_call_against_finished_trials():
    record = run_one(RunSpec("test", "branin", "random", seed=0, workers=4, budget=10))
    calls = record["timing"]["latency"]
    assert calls[0][:2] == [0, 4]  # the first call fills the 4 workers at once, having seen nothing
    assert sum(n for _, n, _ in calls) == 10
    assert all(later >= earlier for (earlier, _, _), (later, _, _) in itertools.pairwise(calls))
    assert record["summary"]["utilization"] == pytest.approx(1.0)


def test_quick_suite_runs_resumes_and_reports(tmp_path):
    assert main(["run", "quick", "--out", str(tmp_path)]) == 0
    specs = expand("quick")
    stored = json.loads(result_path(specs[0], tmp_path).read_text())
    assert stored["spec"] == specs[0].to_dict()
    assert run_specs(specs, out=tmp_path, log=lambda s: None) == []  # everything stored: nothing runs again
    assert main(["report", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "average rank" in report and "branin" in report
    assert list(tmp_path.glob("*.png"))


def test_suite_sizes_nest_so_the_full_grid_reuses_the_default_and_quick_runs():
    for name in SUITES:
        quick, default, full = ({s.key() for s in expand(name, **k)} for k in ({"quick": True}, {}, {"full": True}))
        assert default <= full, name  # --full after the default size reruns nothing
        assert len(quick) <= len(default) <= len(full)
    full = expand("synthetic", full=True)
    assert {s.workers for s in full} == {1, 4, 8, 16}
    assert {s.seed for s in full} == set(range(10)) and {s.budget for s in full} == {100}
    assert {s.workers for s in expand("synthetic")} == {4}
    more = expand("synthetic", full=True, first_seed=10, seeds=20)  # more seeds beside the stored ones
    assert {s.seed for s in more} == set(range(10, 30)) and not {s.key() for s in more} & {s.key() for s in full}
    assert len({s.problem for s in expand("taskset", full=True)}) == len(TASKS) == 12
    with pytest.raises(ValueError, match="one of them"):
        expand("synthetic", quick=True, full=True)
    with pytest.raises(SystemExit):
        main(["run", "synthetic", "--quick", "--full"])


def test_report_holds_a_run_that_finished_early_at_its_final_regret_and_cuts_one_with_a_smaller_budget():
    from benchmarks.freeze_thaw_report import _median_trace

    name = f"taskset/{TASKS[4].replace('FixedTextRNNClassification_imdb_', '')}"

    def run(budget, costs, best):
        return {"spec": {"problem": name, "budget": budget}, "trace": {"cost": costs, "best": best}}

    grid = np.array([100.0, 2500.0, 4000.0, 5000.0])
    early = run(100, [50.0, 1500.0], [0.9, 0.5])  # its table ran out at 1500 of its 5000 steps
    half = run(50, [50.0, 2500.0], [0.9, 0.4])  # ran to its budget of 50 full runs = 2500 steps
    assert _median_trace([early], grid, 0.0).tolist() == [0.9, 0.5, 0.5, 0.5]
    out = _median_trace([half], grid, 0.0)
    assert out[:2].tolist() == [0.9, 0.4] and np.isnan(out[2:]).all()


def test_aegis_summary_paired_comparison_counts_seeds_and_signs():
    """The seed-paired line behind issue 4's verdicts: a method lower on every shared seed is significant with a
    negative interval; one equal to its peer up to a coin-flip sign is not; unshared seeds are ignored."""
    from benchmarks.aegis_summary import _paired

    theirs = {s: float(s) for s in range(12)}
    better = _paired({s: s - 0.5 for s in range(10)}, theirs)
    assert better.startswith("lower on 10 of 10 seeds (sign test p = 0.00)")
    assert "CI [-0.50, -0.50]" in better
    flip = _paired({s: s + (0.1 if s % 2 else -0.1) for s in range(10)}, theirs)
    assert flip.startswith("lower on 5 of 10 seeds (sign test p = 1.00)")
    assert _paired({99: 0.0}, theirs) == "no shared seeds"


def test_aegis_summary_counts_runs_below_a_threshold():
    from benchmarks.aegis_summary import _below

    assert _below({0: -4.0, 1: -0.92, 2: -3.0, 3: -0.9}, -1.0) == "2/4 (median -3.50)"
    assert _below({0: -0.92}, -1.0) == "0/1"


def test_aegis_summary_scores_an_ablation_in_place_of_aegis():
    """``--ours`` puts an ablation through the issue's criteria instead of the default, and ``--versus`` pairs it
    with the default seed by seed, on the seeds both ran."""
    from benchmarks.aegis_summary import report

    data = {
        ("branin", "aegis", 4): {s: -4.0 for s in range(6)},
        ("branin", "variant", 4): {**{s: -5.0 for s in range(4)}, **{s: -4.8 for s in range(20, 25)}},
        ("branin", "optuna_gp", 4): {s: -4.5 for s in range(6)},
        ("hartmann6", "variant", 4): {0: -2.0},
        ("hartmann6", "aegis", 4): {1: -2.0},
    }
    default = report(data, [4], ["aegis", "optuna_gp"])
    assert "- branin: AEGiS -4.00 vs best peer optuna_gp -4.50: ABOVE" in default
    assert "at or below the best peer on 0 of 1" in default
    ablation = report(data, [4], ["aegis", "optuna_gp"], ours="variant", versus="aegis")
    # the criteria use all nine of the variant's seeds; the pairing only the four it shares with aegis
    assert "- branin: AEGiS -4.80 vs best peer optuna_gp -4.50: at or below; lower on 4 of 4 seeds" in ablation
    assert "at or below the best peer on 1 of 1" in ablation
    assert "- branin: variant -5.00 vs aegis -4.00 on the same 4 seeds; lower on 4 of 4 seeds" in ablation
    assert "- hartmann6: variant and aegis share no seed at 4 worker(s)" in ablation


def test_aegis_summary_plots_one_figure_per_worker_count_that_has_runs(tmp_path):
    from benchmarks.aegis_summary import plot

    results = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    paths = plot([results], seeds=2, workers=[4, 3], methods=["random", "optuna_tpe"], prefix=tmp_path / "fig")
    assert paths == [tmp_path / "fig_w4.png"]  # nobody ran 3 workers
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

"""The harness: run one :class:`~benchmarks.suites.RunSpec` on simulated workers and store what it measured.

Each run builds the problem, the method's searcher and scheduler, a :class:`~hpo.executors.simulated.
SimulatedExecutor` with ``workers`` slots and a fresh :class:`~hpo.storage.Storage`, runs the
:class:`~hpo.orchestrator.Orchestrator` to the budget, and writes one JSON file under ``results/raw/<spec.key()>``.

Determinism: the seed of a spec seeds the searcher (and the Optuna sampler), the executor's duration draws and
nothing else; problems are deterministic functions of the config (real-training problems are seeded, but their
measured CPU time is not reproducible). So a spec on a synthetic or tabulated problem gives the same trace, to the
bit, on every run; the measured quantities (``latency``, ``run_seconds``, ``cpu_seconds``) are kept apart under
``"timing"``.

Resumable: a spec whose file exists (same spec) is skipped. ``jobs > 1`` runs specs in that many processes, each
with one torch thread.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import metrics
from benchmarks.peers import MethodMissing, MethodNotApplicable, build_method
from benchmarks.problems import get_problem
from benchmarks.problems.base import Problem
from benchmarks.suites import RunSpec
from hpo.executors.simulated import SimulatedExecutor
from hpo.orchestrator import Budget, Orchestrator
from hpo.storage import Storage

__all__ = ["RESULTS", "budget_of", "result_path", "run_one", "run_specs"]

RESULTS = Path(__file__).resolve().parent / "results"
FORMAT = 1


def budget_of(problem: Problem, budget: float | None) -> tuple[Budget, float]:
    """The orchestrator's :class:`~hpo.orchestrator.Budget` and the budget in cost units (``inf`` for trials)."""
    b = problem.budget if budget is None else budget
    if problem.budget_unit == "trials":
        return Budget(max_trials=int(b)), math.inf
    if problem.budget_unit == "full_runs":
        return Budget(max_cost=b * problem.full_run_cost), b * problem.full_run_cost
    if problem.budget_unit == "seconds":
        return Budget(max_cost=float(b)), float(b)
    raise ValueError(f"problem {problem.name}: unknown budget unit {problem.budget_unit!r}")


def _set_threads() -> None:
    import torch

    torch.set_num_threads(1)


def run_one(spec: RunSpec) -> dict[str, Any]:
    """Run one spec; the result record (also for a missing or inapplicable method, with its ``status``)."""
    _set_threads()
    problem = get_problem(spec.problem)
    record: dict[str, Any] = {"format": FORMAT, "spec": spec.to_dict(), "problem": _problem_info(problem)}
    try:
        searcher, scheduler = build_method(spec.method, problem.space, problem.metric, problem.mode, spec.seed,
                                           problem.candidates)
    except MethodMissing as e:
        return {**record, "status": "missing", "message": str(e)}
    except MethodNotApplicable as e:
        return {**record, "status": "n/a", "message": str(e)}
    timed = metrics.TimedSearcher(searcher)
    trainable = problem.make()
    duration: Any = spec.duration
    if problem.executor_duration is not None:
        duration = problem.executor_duration(trainable)
    executor = SimulatedExecutor(num_workers=spec.workers, duration=duration, seed=spec.seed)
    budget, budget_cost = budget_of(problem, spec.budget)
    t0, cpu0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as d, Storage(d) as storage:
        try:
            history = Orchestrator(
                trainable, problem.space, problem.metric, problem.mode, timed, scheduler, executor, storage, budget
            ).run()
        except Exception as e:  # a method's crash is a result to report, not the end of a suite
            return {
                **record,
                "status": "error",
                "message": f"{type(e).__name__}: {e}",
                "traceback": traceback.format_exc(),
            }
        events = storage.events()
    run_seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    tr = metrics.trace(history, events)
    record.update(status="ok", trace=tr)
    record["summary"] = _summary(problem, spec, history, tr, events, budget_cost)
    if problem.kind == "cost" and problem.cost_metric:
        pts = metrics.cost_points(history, problem.cost_metric)
        record["cost_points"] = [[c, f] for _, c, f in pts]
        record["summary"]["hypervolume"] = metrics.hypervolume([(c, f) for _, c, f in pts], problem.hv_ref)
        record["hv_trace"] = _hv_trace(history, events, problem)
    record["timing"] = {
        "run_seconds": run_seconds,
        "cpu_seconds": cpu_seconds,
        "latency": [list(c) for c in timed.calls],
    }
    return record


def _problem_info(problem: Problem) -> dict[str, Any]:
    return {
        "name": problem.name,
        "kind": problem.kind,
        "metric": problem.metric,
        "optimum": problem.optimum,
        "budget_unit": problem.budget_unit,
        "full_run_cost": problem.full_run_cost,
        "max_step": problem.space.max_step,
        "notes": problem.notes,
    }


def _summary(
    problem: Problem, spec: RunSpec, history, tr: dict[str, list[float]], events: list, budget_cost: float
) -> dict[str, Any]:
    """Final numbers: best value within the budget, regret, evaluations, clock, cost, utilization."""
    cost = np.asarray(tr["cost"])
    within = np.flatnonzero(cost <= budget_cost * (1 + 1e-9)) if math.isfinite(budget_cost) else np.arange(len(cost))
    last = int(within[-1]) if within.size else None
    best = tr["best"][last] if last is not None else math.nan
    out: dict[str, Any] = {
        "best": best,
        "evals": len([t for t in history if t.status.is_finished]),
        "trials": len(history),
        "failed": len(history.failed),
        "clock": tr["clock"][-1] if tr["clock"] else 0.0,
        "cost": tr["cost"][-1] if tr["cost"] else 0.0,
        "utilization": metrics.utilization(events, spec.workers),
    }
    if problem.optimum is not None:
        out["regret"] = best - problem.optimum if math.isfinite(best) else math.nan
        out["log10_regret"] = float(metrics.log10_regret(best, problem.optimum))
    return out


def _hv_trace(history, events: list, problem: Problem) -> dict[str, list[float]]:
    """Hypervolume after each completed trial, against the cumulative cost."""
    pts, cost, out = [], 0.0, {"cost": [], "hv": []}
    for e in events:
        if e["kind"] not in ("segment_ended", "paused", "completed", "stopped", "failed") or not e["data"]:
            continue
        cost += float(e["data"].get("cost", {}).get("wall_seconds", 0.0))
        t = history[e["trial_id"]]
        if e["kind"] == "completed" and t.curve:
            m = t.curve[-1][1]
            if problem.cost_metric in m and math.isfinite(m.get(problem.metric, math.nan)):
                pts.append((math.log10(m[problem.cost_metric]), float(m[problem.metric])))
        out["cost"].append(cost)
        out["hv"].append(metrics.hypervolume(pts, problem.hv_ref))
    return out


def result_path(spec: RunSpec, out: Path = RESULTS) -> Path:
    return Path(out) / "raw" / spec.key()


def _clean(obj: Any) -> Any:
    """JSON without NaN/inf (as null), so that other tools read the files."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    return obj


def _run_and_store(spec: RunSpec, out: str) -> tuple[RunSpec, str, float]:
    t0 = time.perf_counter()
    record = run_one(spec)
    path = result_path(spec, Path(out))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # two processes may run the same spec: never share a tmp file
    tmp.write_text(json.dumps(_clean(record)))
    os.replace(tmp, path)  # a killed run leaves no half-written result behind
    return spec, record["status"], time.perf_counter() - t0


def _init_worker() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _set_threads()


def _expected_cost(spec: RunSpec) -> float:
    # Longest first keeps the processes busy to the end: GP samplers and real training dominate.
    slow = 10.0 if ("gp" in spec.method or "aegis" in spec.method or "carbs" in spec.method) else 1.0
    real = 20.0 if spec.problem in ("digits_mlp", "charlm", "charlm_cost") else 1.0
    return slow * real * (spec.budget or 100)


def run_specs(
    specs: Sequence[RunSpec],
    out: Path = RESULTS,
    jobs: int = 1,
    resume: bool = True,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
) -> list[tuple[RunSpec, str, float]]:
    """Run every spec not already stored; ``(spec, status, seconds)`` for those run."""
    todo = [s for s in specs if not (resume and _stored(s, out))]
    log(f"{len(specs) - len(todo)} of {len(specs)} runs already stored; running {len(todo)} with {jobs} job(s)")
    # Seed by seed (a suite cut short still leaves complete seeds to compare), the longest runs of a seed first.
    todo.sort(key=lambda spec: (spec.seed, -_expected_cost(spec)))
    done: list[tuple[RunSpec, str, float]] = []
    t0 = time.perf_counter()

    def note(i: int, item: tuple[RunSpec, str, float]) -> None:
        spec, status, seconds = item
        done.append(item)
        log(
            f"[{i}/{len(todo)} {time.perf_counter() - t0:7.1f}s] {spec.problem} {spec.method} w={spec.workers} "
            f"{spec.duration} seed={spec.seed}: {status} ({seconds:.1f}s)"
        )

    if jobs <= 1:
        _init_worker()
        for i, spec in enumerate(todo, 1):
            note(i, _run_and_store(spec, str(out)))
    else:
        with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker) as pool:
            futures = [pool.submit(_run_and_store, spec, str(out)) for spec in todo]
            for i, fut in enumerate(as_completed(futures), 1):
                note(i, fut.result())
    return done


def _stored(spec: RunSpec, out: Path) -> bool:
    path = result_path(spec, out)
    if not path.exists():
        return False
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    # A method that was missing when stored is run again once its module exists.
    return record.get("spec") == spec.to_dict() and record.get("status") != "missing"

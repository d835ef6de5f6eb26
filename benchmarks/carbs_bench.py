"""CARBS benchmarks: the (cost, loss) front found at equal total cost against peers, and suggestion time.

Notation
--------
- ``C``: the total-cost budget of a sweep (summed trial costs, virtual seconds); every method is scored on the trials
  that had finished when the summed cost of finished trials first reached ``C`` (trials end at
  ``created_at + cost`` on the simulated clock).
- ``HV``: hypervolume (area) dominated by the (log10 cost, loss) points of successful trials, up to the reference
  point ``(log10 max cost of one run, loss_ref)`` and above ``log10 min cost``; larger is better. Log cost because
  costs span 4.7 decades and a front is read per decade of compute.

Methods: ``carbs`` (ours), ``carbs_reference`` (``mode="reference"``), ``random`` (scrambled Sobol),
``tpe`` / ``nsga2``: Optuna's multi-objective samplers on (cost, loss) with their defaults (TPE: constant liar, on
by default in Optuna 5, for parallel workers; NSGA-II: population 50).

Usage::

    nice -n 10 python -m benchmarks.carbs_bench compare --seeds 10 --workers 4 --budget 30000 \
        --out benchmarks/results/carbs_synthetic.jsonl
    nice -n 10 python -m benchmarks.carbs_bench report benchmarks/results/carbs_synthetic.jsonl
    nice -n 10 python -m benchmarks.carbs_bench timing --n 200 --out benchmarks/results/carbs_timing.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import numpy as np

from hpo.executors.simulated import SimulatedExecutor
from hpo.history import History
from hpo.orchestrator import Budget, Orchestrator
from hpo.searcher import Searcher
from hpo.space import Float, Int, Space
from hpo.storage import Storage
from hpo.trial import Trial, TrialStatus

__all__ = ["OptunaMOSearcher", "hypervolume", "main", "run_one"]

METHODS = ("carbs", "carbs_reference", "random", "tpe", "nsga2")
#: Not run by default: the paper's EI (``improvement="pareto"``), the default before 26 Nov 2026.
EXTRA_METHODS = ("carbs_pareto",)


class OptunaMOSearcher(Searcher):
    """Optuna's multi-objective TPE or NSGA-II on (cost, objective), through ask/tell on the history.

    Our trial ``i`` is Optuna trial ``i`` (both number trials in creation order); finished trials are told as they
    appear in the history, a failed or non-finite one as FAIL.
    """

    def __init__(self, space: Space, seed: int = 0, sampler: str = "tpe", cost_key: str = "wall_seconds") -> None:
        import optuna

        super().__init__(space, seed)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        s = optuna.samplers.TPESampler(seed=seed) if sampler == "tpe" else optuna.samplers.NSGAIISampler(seed=seed)
        self.study = optuna.create_study(directions=["minimize", "minimize"], sampler=s)
        self.cost_key = cost_key
        self.dists = {}
        for name, p in space.params.items():
            if isinstance(p, Float):
                self.dists[name] = optuna.distributions.FloatDistribution(p.low, p.high, log=p.log)
            elif isinstance(p, Int):
                self.dists[name] = optuna.distributions.IntDistribution(p.low, p.high, log=p.log, step=p.step)
            else:
                self.dists[name] = optuna.distributions.CategoricalDistribution(list(p.choices))
        self._asked: dict[int, Any] = {}
        self._told: set[int] = set()

    def suggest(self, history: History) -> dict[str, Any]:
        import optuna

        for t in history:
            if t.trial_id in self._told or not t.status.is_finished or t.trial_id not in self._asked:
                continue
            y = history.objective(t)
            c = t.cost.get(self.cost_key)
            if t.status is TrialStatus.COMPLETED and y is not None and math.isfinite(y) and c is not None:
                self.study.tell(self._asked[t.trial_id], [float(c), float(y)])
            else:
                self.study.tell(self._asked[t.trial_id], state=optuna.trial.TrialState.FAIL)
            self._told.add(t.trial_id)
        next_id = history.trials[-1].trial_id + 1 if len(history) else 0
        trial = self.study.ask(self.dists)
        self._asked[next_id] = trial
        return dict(trial.params)


class OptunaMOTPE(OptunaMOSearcher):
    """Optuna's multi-objective TPE on (cost, objective), for the harness (``benchmarks.carbs_bench:OptunaMOTPE``)."""

    def __init__(self, space: Space, seed: int = 0) -> None:
        super().__init__(space, seed, sampler="tpe")


class OptunaNSGAII(OptunaMOSearcher):
    """Optuna's NSGA-II on (cost, objective), for the harness (``benchmarks.carbs_bench:OptunaNSGAII``)."""

    def __init__(self, space: Space, seed: int = 0) -> None:
        super().__init__(space, seed, sampler="nsga2")


def _carbs_reference(space: Space, seed: int = 0) -> Searcher:
    from searchers.carbs import CARBSSearcher

    return CARBSSearcher(space, seed=seed, mode="reference")


class CARBSReference:
    """``CARBSSearcher(mode="reference")`` under a name the harness can import
    (``benchmarks.carbs_bench:CARBSReference``)."""

    @classmethod
    def from_options(cls, space: Space, options: dict[str, Any]) -> Searcher:
        return _carbs_reference(space, **options)


class CARBSHalfCost:
    """``CARBSSearcher(cost_exponent=0.5)``: the acquisition divided by the square root of the predicted cost (an
    ablation of the default's EI per unit cost, ``benchmarks.carbs_bench:CARBSHalfCost``)."""

    @classmethod
    def from_options(cls, space: Space, options: dict[str, Any]) -> Searcher:
        from searchers.carbs import CARBSSearcher

        return CARBSSearcher(space, cost_exponent=0.5, improvement="pareto", **options)


class CARBSParetoEI:
    """``CARBSSearcher(improvement="pareto")``: the paper's EI over the Pareto value at the candidate's predicted cost
    instead of the default's expected hypervolume improvement (``benchmarks.carbs_bench:CARBSParetoEI``,
    ``carbs_pareto`` in ``compare``; the default until 26 Nov 2026)."""

    @classmethod
    def from_options(cls, space: Space, options: dict[str, Any]) -> Searcher:
        from searchers.carbs import CARBSSearcher

        return CARBSSearcher(space, improvement="pareto", **options)


class CARBSNoCap:
    """``CARBSSearcher(max_cost_growth=None)``: no cap on a suggestion's predicted cost relative to the cost spent
    (an ablation, ``benchmarks.carbs_bench:CARBSNoCap``)."""

    @classmethod
    def from_options(cls, space: Space, options: dict[str, Any]) -> Searcher:
        from searchers.carbs import CARBSSearcher

        return CARBSSearcher(space, max_cost_growth=None, improvement="pareto", **options)


def hypervolume(costs: np.ndarray, losses: np.ndarray, cost_range: tuple[float, float], loss_ref: float) -> float:
    """Area dominated by the points ``(log10 c, loss)`` within ``[log10 c_min, log10 c_max] x [-inf, loss_ref]``."""
    lo, hi = math.log10(cost_range[0]), math.log10(cost_range[1])
    pts = sorted(
        (max(math.log10(c), lo), y)
        for c, y in zip(costs, losses, strict=True)
        if math.isfinite(y) and y < loss_ref and c <= cost_range[1]
    )
    area, best = 0.0, loss_ref
    # sweep cost from cheap to dear; the front's loss at cost x is the best loss among points cheaper than x
    xs = [p[0] for p in pts] + [hi]
    for i, (x, y) in enumerate(pts):
        best = min(best, y)
        area += (xs[i + 1] - x) * (loss_ref - best)
    return area


def _searcher(method: str, space: Space, seed: int) -> Searcher:
    if method in ("carbs", "carbs_reference"):
        from searchers.carbs import CARBSSearcher

        return CARBSSearcher(space, seed=seed, mode="reference" if method == "carbs_reference" else "carbs")
    if method == "carbs_pareto":
        from searchers.carbs import CARBSSearcher

        return CARBSSearcher(space, seed=seed, improvement="pareto")
    if method == "random":
        from searchers.random import RandomSearcher

        return RandomSearcher(space, seed=seed)
    if method in ("tpe", "nsga2"):
        return OptunaMOSearcher(space, seed=seed, sampler=method)
    raise ValueError(f"unknown method {method!r}; choose from {METHODS + EXTRA_METHODS}")


class _Timed(Searcher):
    """Records the wall time of each ``suggest`` of a wrapped searcher."""

    def __init__(self, inner: Searcher) -> None:
        super().__init__(inner.space, inner.seed)
        self.inner, self.times = inner, []

    def suggest(self, history: History) -> dict[str, Any] | None:
        t0 = time.perf_counter()
        out = self.inner.suggest(history)
        self.times.append((len(history), time.perf_counter() - t0))
        return out


def _problem(name: str, seed: int):
    if name == "synthetic":
        from benchmarks.carbs_problems import ScalingLawProblem

        return ScalingLawProblem(seed=seed)
    raise ValueError(f"unknown problem {name!r}")


def scored_trials(trials: Sequence[Trial], budget: float) -> list[Trial]:
    """Trials that had finished by the time finished trials' summed cost first reached ``budget``."""
    done = sorted(
        (t for t in trials if t.status.is_finished),
        key=lambda t: (t.created_at + t.cost.get("wall_seconds", 0.0), t.trial_id),
    )
    out, spent = [], 0.0
    for t in done:
        spent += t.cost.get("wall_seconds", 0.0)
        if spent > budget and out:
            break
        out.append(t)
    return out


def run_one(problem: str, method: str, seed: int, workers: int, budget: float, max_trials: int) -> dict[str, Any]:
    """One sweep of ``method`` on ``problem``; returns its scores and its front."""
    import warnings

    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(1)
    prob = _problem(problem, seed)
    searcher = _Timed(_searcher(method, prob.space, seed))
    from schedulers.fifo import FIFOScheduler

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d, Storage(d) as st:
        orch = Orchestrator(
            prob,
            prob.space,
            prob.metric,
            prob.mode,
            searcher,
            FIFOScheduler(prob.space, prob.metric, prob.mode),
            SimulatedExecutor(workers, seed=seed),
            st,
            Budget(max_trials=max_trials, max_cost=budget * 1.5),
        )
        history = orch.run()
    scored = scored_trials(history.trials, budget)
    ok = [t for t in scored if (y := history.objective(t)) is not None and math.isfinite(y)]
    costs = np.array([t.cost["wall_seconds"] for t in ok])
    losses = np.array([history.objective(t) for t in ok])
    true = np.array([prob.loss(dict(t.config)) for t in ok])
    hv = hypervolume(costs, losses, prob.cost_range, prob.loss_ref)
    hv_true = hypervolume(costs, true, prob.cost_range, prob.loss_ref)
    times = [s for n, s in searcher.times]
    return {
        "problem": problem,
        "method": method,
        "seed": seed,
        "workers": workers,
        "budget": budget,
        "hv": hv,
        "hv_true": hv_true,
        "n_scored": len(scored),
        "n_failed": len(scored) - len(ok),
        "spent": float(sum(t.cost.get("wall_seconds", 0.0) for t in scored)),
        "best_loss": float(losses.min()) if len(losses) else None,
        "n_trials": len(history),
        "suggest_median_s": float(np.median(times)) if times else None,
        "wall_s": time.perf_counter() - t0,
        "front": [[float(c), float(y)] for c, y in zip(costs, losses, strict=True)],
        "trials": [
            [float(t.cost["wall_seconds"]), float(history.objective(t)), {k: t.config[k] for k in prob.space.names}]
            for t in ok
        ],
    }


def _compare(args: argparse.Namespace) -> None:
    jobs = [(m, s) for s in range(args.seeds) for m in args.methods.split(",")]
    done = set()
    if os.path.exists(args.out):
        for line in open(args.out):
            r = json.loads(line)
            done.add((r["method"], r["seed"]))
    jobs = [j for j in jobs if j not in done]
    with ProcessPoolExecutor(args.jobs) as pool, open(args.out, "a") as f:
        futs = {
            pool.submit(run_one, args.problem, m, s, args.workers, args.budget, args.max_trials): (m, s)
            for m, s in jobs
        }
        for fut in as_completed(futs):
            r = fut.result()
            f.write(json.dumps(r) + "\n")
            f.flush()
            print(
                f"{r['method']:16s} seed {r['seed']}: HV {r['hv']:.3f} (true {r['hv_true']:.3f}) "
                f"trials {r['n_scored']} failed {r['n_failed']} best {r['best_loss']} "
                f"suggest {r['suggest_median_s']:.3f}s wall {r['wall_s']:.0f}s",
                flush=True,
            )


def report(path: str) -> str:
    """A markdown table of HV per method (median, IQR) and the median of paired ratios against carbs."""
    rows = [json.loads(line) for line in open(path)]
    by: dict[str, dict[int, dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["method"], {})[r["seed"]] = r
    out = [
        "| method | seeds | HV median [q25, q75] | true-loss HV median | trials scored | failed | best loss | "
        "suggest median (s) | paired wins of carbs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ours = by.get("carbs", {})
    for m in METHODS + EXTRA_METHODS:
        if m not in by:
            continue
        hv = np.array([r["hv"] for r in by[m].values()])
        hvt = np.array([r["hv_true"] for r in by[m].values()])
        wins = ""
        if m != "carbs" and ours:
            common = sorted(set(ours) & set(by[m]))
            w = sum(ours[s]["hv"] > by[m][s]["hv"] for s in common)
            wins = f"{w}/{len(common)}"
        out.append(
            f"| {m} | {len(hv)} | {np.median(hv):.3f} [{np.quantile(hv, 0.25):.3f}, {np.quantile(hv, 0.75):.3f}] | "
            f"{np.median(hvt):.3f} | {np.median([r['n_scored'] for r in by[m].values()]):.0f} | "
            f"{np.median([r['n_failed'] for r in by[m].values()]):.0f} | "
            f"{np.median([r['best_loss'] for r in by[m].values()]):.3f} | "
            f"{np.median([r['suggest_median_s'] for r in by[m].values()]):.3f} | {wins} |"
        )
    return "\n".join(out)


def timing(n: int, repeats: int, pending: int, modes: Sequence[str]) -> dict[str, Any]:
    """Suggestion time at ``n`` .. ``n + repeats - 1`` completed trials (plus ``pending`` in flight) of the synthetic
    problem, one fresh history per suggestion, so the hyperparameter schedule's refits are included where they fall.
    The histories come from a scrambled Sobol design (the model's cost does not depend on where the points are)."""
    import warnings

    warnings.filterwarnings("ignore")
    from benchmarks.carbs_problems import ScalingLawProblem
    from searchers.carbs import CARBSSearcher

    prob = ScalingLawProblem(seed=0)
    space = prob.space
    U = space.sobol(n + repeats + pending, seed=0)
    trials = []
    for i, u in enumerate(U):
        config = space.decode(u)
        points, cost = prob.simulate(config, 0, 1)
        status = TrialStatus.COMPLETED if i < n + repeats else TrialStatus.RUNNING
        trials.append(
            Trial(i, config, status, tuple(points) if status is TrialStatus.COMPLETED else (), {"wall_seconds": cost})
        )
    out: dict[str, Any] = {
        "n": n,
        "repeats": repeats,
        "pending": pending,
        "torch_threads_outside": __import__("torch").get_num_threads(),
    }
    for mode in modes:
        # resample_frequency=0: every suggestion is a model step (a resample costs nothing to time)
        searcher = CARBSSearcher(space, seed=0, mode=mode, resample_frequency=0)
        wall, cpu, phases = [], [], []
        for j in range(repeats):
            done = trials[: n + j]
            running = [Trial(10_000 + i, t.config, TrialStatus.RUNNING) for i, t in enumerate(trials[n + repeats :])]
            h = History(space, "loss", "min", tuple(done) + tuple(running))
            t0, c0 = time.perf_counter(), time.process_time()
            searcher.suggest(h)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            phases.append(searcher.last_info.get("phase"))
        out[mode] = {
            "wall_median_s": float(np.median(wall)),
            "wall_mean_s": float(np.mean(wall)),
            "wall_max_s": float(np.max(wall)),
            "cpu_median_s": float(np.median(cpu)),
            "cpu_mean_s": float(np.mean(cpu)),
            "wall_s": [round(w, 4) for w in wall],
            "phases": sorted(set(phases)),
        }
    return out


def harness_summary(directory: str, full_runs: float = 4.0) -> str:
    """HV of each harness run under ``directory`` at equal total cost (``full_runs`` full runs, the cost suite's
    default budget), from the run's ``hv_trace``."""
    import glob

    lines = []
    for f in sorted(glob.glob(os.path.join(directory, "raw", "**", "*.json"), recursive=True)):
        d = json.load(open(f))
        tr, s = d.get("hv_trace"), d["summary"]
        if not tr:
            continue
        budget = full_runs * d["problem"]["full_run_cost"] if d["problem"]["budget_unit"] == "full_runs" else math.inf
        within = [h for c, h in zip(tr["cost"], tr["hv"], strict=True) if c <= budget * (1 + 1e-9)]
        n = len(within)
        lines.append(
            f"{d['spec']['method']:40s} seed {d['spec']['seed']}: HV at equal cost {max(within or [0.0]):.3f} over {n} "
            f"trials (all {s['trials']}: {s['hypervolume']:.3f}), best loss {s['best']:.3f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.carbs_bench", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare", help="HV of the (cost, loss) front at equal total cost, per method and seed")
    c.add_argument("--problem", default="synthetic")
    c.add_argument("--methods", default=",".join(METHODS))
    c.add_argument("--seeds", type=int, default=10)
    c.add_argument("--workers", type=int, default=4)
    c.add_argument("--budget", type=float, default=30000.0)
    c.add_argument("--max-trials", type=int, default=300)
    c.add_argument("--jobs", type=int, default=2, help="sweeps run at once (processes)")
    c.add_argument("--out", required=True, help="JSON lines, appended; finished (method, seed) pairs are skipped")
    r = sub.add_parser("report", help="markdown table of a compare file")
    r.add_argument("path")
    t = sub.add_parser("timing", help="suggestion time at n observations")
    t.add_argument("--n", type=int, default=200)
    t.add_argument("--repeats", type=int, default=21)
    t.add_argument("--pending", type=int, default=3)
    t.add_argument("--modes", default="carbs,reference")
    t.add_argument("--out")
    hs = sub.add_parser("harness-summary", help="HV at equal cost of `python -m benchmarks run cost` results")
    hs.add_argument("directory")
    hs.add_argument("--full-runs", type=float, default=4.0, help="the budget the runs were given, in full runs")
    args = ap.parse_args(argv)
    if args.cmd == "harness-summary":
        print(harness_summary(args.directory, args.full_runs))
    elif args.cmd == "compare":
        _compare(args)
    elif args.cmd == "report":
        print(report(args.path))
    else:
        res = timing(args.n, args.repeats, args.pending, args.modes.split(","))
        text = json.dumps(res, indent=1)
        print(text)
        if args.out:
            with open(args.out, "w") as f:
                f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

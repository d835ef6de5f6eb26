"""Diagnostics for AEGiS on Hartmann-6 (issue 4): where the suggestions go, what the GP believes, whether the
acquisition optimizer is the weak link.

``runs``: AEGiS with searcher options (JSON) on synthetic problems, through the harness's orchestrator and simulated
workers (the same trace as ``python -m benchmarks run`` for the same seed), printing the final log10 regret::

    python -m benchmarks.aegis_diag runs --problems hartmann6 --workers 4 --seeds 0 1 2 --opts '{"eta": 1.0}'

``model``: one AEGiS run on Hartmann-6 (seed, workers), then the GP refitted on its first ``n`` observations: the
fitted lengthscales, the posterior at the global optimum ``x*``, and where Thompson samples land (within 0.35 of
``x*`` or of the local optimum), each sample minimized by the searcher's default optimizer and by a dense one::

    python -m benchmarks.aegis_diag model --seed 0 --n 30 40 60 --samples 30

``init``: whose initial design decides a run. Each method runs once with its own initial design and once with the
other's, given as points to evaluate first: ours (``2 d`` scrambled Sobol points, :class:`RandomSearcher`) and
Optuna's (the first ``n_startup_trials = 10`` draws of ``RandomSampler(seed)``, GPSampler's initial design)::

    python -m benchmarks.aegis_diag init --method gp_ei --problem hartmann6 --workers 1 --seeds 0 1 2 3 4 5 6 7 8 9
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time

import numpy as np
import optuna
import torch
from botorch.sampling.pathwise import draw_matheron_paths

from benchmarks.peers import build_method, optuna_distributions, parse_method
from benchmarks.problems import get_problem
from hpo.executors.simulated import SimulatedExecutor
from hpo.history import History
from hpo.orchestrator import Budget, Orchestrator
from hpo.storage import Storage
from hpo.surrogates.gp import GPSurrogate
from searchers.aegis import AEGiSSearcher
from searchers.random import RandomSearcher

# Hartmann-6's global minimizer (f = -3.32237) and the local one it is usually confused with (f = -3.2032).
X_GLOBAL = np.array([0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573])
X_LOCAL = np.array([0.4047, 0.8828, 0.8461, 0.5740, 0.1389, 0.0385])


def run(problem_name: str, options: dict, seed: int, workers: int, budget: int = 100):
    """One AEGiS run; ``(log10 regret, seconds, searcher, history)``."""
    problem = get_problem(problem_name)
    _, scheduler = build_method("random", problem.space, problem.metric, problem.mode, seed)
    searcher = AEGiSSearcher.from_options(problem.space, {"seed": seed, **options})
    executor = SimulatedExecutor(num_workers=workers, duration="exponential", seed=seed)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d, Storage(d) as storage:
        history = Orchestrator(
            problem.make(), problem.space, problem.metric, problem.mode, searcher, scheduler, executor, storage,
            Budget(max_trials=budget),
        ).run()
    best = min(t.curve[-1][1][problem.metric] for t in history if t.curve)
    return math.log10(max(best - problem.optimum, 1e-12)), time.perf_counter() - t0, searcher, history


def optuna_initial_design(space, seed: int, n: int = 10) -> list[dict]:
    """The first ``n`` configs Optuna's ``RandomSampler(seed)`` draws on ``space``: GPSampler's initial design."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    dists = optuna_distributions(space)
    return [study.ask(dists).params for _ in range(n)]


def sobol_initial_design(space, seed: int) -> list[dict]:
    """Our searchers' initial design: the first ``2 d`` points of :class:`RandomSearcher`'s scrambled Sobol sequence."""
    return RandomSearcher(space, seed).suggest_batch(History(space, "loss"), max(2 * space.dim, 2))


def run_method(problem_name: str, method: str, seed: int, workers: int, points: list[dict], budget: int = 100):
    """One run of a benchmark method with ``points`` evaluated first; its final log10 regret."""
    problem = get_problem(problem_name)
    searcher, scheduler = build_method(method, problem.space, problem.metric, problem.mode, seed)
    executor = SimulatedExecutor(num_workers=workers, duration="exponential", seed=seed)
    with tempfile.TemporaryDirectory() as d, Storage(d) as storage:
        history = Orchestrator(
            problem.make(), problem.space, problem.metric, problem.mode, searcher, scheduler, executor, storage,
            Budget(max_trials=budget), points_to_evaluate=points,
        ).run()
    best = min(t.curve[-1][1][problem.metric] for t in history if t.curve)
    return math.log10(max(best - problem.optimum, 1e-12))


def cmd_init(args: argparse.Namespace) -> None:
    space = get_problem(args.problem).space
    ours_short = parse_method(args.method)
    ours_short.searcher_options["n_initial"] = 10  # Optuna's 10 points are its whole initial design
    # (label, method, initial design of a seed)
    variants = [
        (f"{args.method}, own design", args.method, lambda s: []),
        (f"{args.method}, Optuna's design", ours_short, lambda s: optuna_initial_design(space, s)),
        ("optuna_gp, own design", "optuna_gp", lambda s: []),
        ("optuna_gp, our design", "optuna_gp", lambda s: sobol_initial_design(space, s)),
    ]
    results: dict[str, list[float]] = {label: [] for label, _, _ in variants}
    for s in args.seeds:
        for label, method, design in variants:
            results[label].append(run_method(args.problem, method, s, args.workers, design(s)))
        print(f"seed {s}: " + "; ".join(f"{k} {v[-1]:.2f}" for k, v in results.items()), flush=True)
    for label, v in results.items():
        v = np.array(v)
        print(f"== {args.problem} w={args.workers} {label}: median {np.median(v):.2f}, "
              f"below {args.threshold} on {int((v < args.threshold).sum())} of {v.size}")


def cmd_runs(args: argparse.Namespace) -> None:
    options = json.loads(args.opts)
    for p in args.problems:
        res = []
        for s in args.seeds:
            lr, sec, _, _ = run(p, options, s, args.workers)
            res.append(lr)
            print(f"{args.opts} {p} w={args.workers} seed={s} log10 regret {lr:.2f} ({sec:.0f}s)", flush=True)
        print(f"== {args.opts} {p} w={args.workers} median {np.median(res):.2f} all {[round(r, 2) for r in res]}")


def cmd_model(args: argparse.Namespace) -> None:
    _, _, _, history = run("hartmann6", {}, args.seed, args.workers)
    X, y = history.observations(include_failed=True)
    for n in args.n:
        gp = GPSurrogate(6).fit(X[:n], y[:n])
        mu, sd = gp.predict(X_GLOBAL[None])
        rng = np.random.default_rng(0)
        near = {"default": [0, 0], "dense": [0, 0]}
        gain = []
        for k in range(args.samples):
            torch.manual_seed(k)
            path = draw_matheron_paths(gp.model, sample_shape=torch.Size([1]))

            def neg(Z: torch.Tensor, path=path) -> torch.Tensor:
                return -path(Z).reshape(Z.shape[:-2])

            x1, v1 = gp.maximize(neg, rng, 256, 6, 50)  # the searcher's defaults
            x2, v2 = gp.maximize(neg, rng, 6000, 10, 200)  # the authors' 1000 d raw samples, more restarts
            for name, x in (("default", x1), ("dense", x2)):
                near[name][0] += np.linalg.norm(x - X_GLOBAL) < 0.35
                near[name][1] += np.linalg.norm(x - X_LOCAL) < 0.35
            gain.append(v2 - v1)
        print(
            f"n={n} lengthscales {np.round(gp.hyperparameters['lengthscale'], 2).tolist()} "
            f"at x*: mu {mu[0]:.2f} sd {sd[0]:.2f} (best z {gp.z_best:.2f}); Thompson argmin near x* / near local: "
            f"default optimizer {near['default'][0]}/{near['default'][1]}, dense {near['dense'][0]}/"
            f"{near['dense'][1]} of {args.samples}; dense found a lower sample minimum by {max(gain):.3f} at most",
            flush=True,
        )


def main() -> None:
    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("runs")
    r.add_argument("--problems", nargs="+", default=["hartmann6"])
    r.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    r.add_argument("--workers", type=int, default=4)
    r.add_argument("--opts", default="{}", help="AEGiSSearcher options as JSON, e.g. '{\"eta\": 1.0}'")
    m = sub.add_parser("model")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--workers", type=int, default=4)
    m.add_argument("--n", nargs="+", type=int, default=[30, 40, 60])
    m.add_argument("--samples", type=int, default=30)
    i = sub.add_parser("init")
    i.add_argument("--method", default="gp_ei", help="our method (aegis, gp_ei)")
    i.add_argument("--problem", default="hartmann6")
    i.add_argument("--workers", type=int, default=1)
    i.add_argument("--seeds", nargs="+", type=int, default=list(range(10)))
    i.add_argument("--threshold", type=float, default=-1.5, help="log10 regret counted as out of the local basin")
    args = ap.parse_args()
    {"runs": cmd_runs, "model": cmd_model, "init": cmd_init}[args.cmd](args)


if __name__ == "__main__":
    main()

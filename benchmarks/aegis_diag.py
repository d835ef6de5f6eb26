"""Diagnostics for AEGiS on Hartmann-6 (issue 4): where the suggestions go, what the GP believes, whether the
acquisition optimizer is the weak link.

``runs``: AEGiS with searcher options (JSON) on synthetic problems, through the harness's orchestrator and simulated
workers (the same trace as ``python -m benchmarks run`` for the same seed), printing the final log10 regret::

    python -m benchmarks.aegis_diag runs --problems hartmann6 --workers 4 --seeds 0 1 2 --opts '{"eta": 1.0}'

``model``: one AEGiS run on Hartmann-6 (seed, workers), then the GP refitted on its first ``n`` observations: the
fitted lengthscales, the posterior at the global optimum ``x*``, and where Thompson samples land (within 0.35 of
``x*`` or of the local optimum), each sample minimized by the searcher's default optimizer and by a dense one::

    python -m benchmarks.aegis_diag model --seed 0 --n 30 40 60 --samples 30
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time

import numpy as np
import torch
from botorch.sampling.pathwise import draw_matheron_paths

from benchmarks.peers import build_method
from benchmarks.problems import get_problem
from hpo.executors.simulated import SimulatedExecutor
from hpo.orchestrator import Budget, Orchestrator
from hpo.storage import Storage
from hpo.surrogates.gp import GPSurrogate
from searchers.aegis import AEGiSSearcher

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
    args = ap.parse_args()
    (cmd_runs if args.cmd == "runs" else cmd_model)(args)


if __name__ == "__main__":
    main()

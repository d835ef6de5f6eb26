"""Suggestion latency of AEGiS and GP-EI at a given number of observations.

For each ``n`` in ``--obs``: a history of ``n`` completed Hartmann-6 evaluations at Sobol points plus ``--pending``
running trials; the searcher is warmed up (one suggestion at ``n - 1``, so the GP's hyperparameters exist), then
``--calls`` consecutive suggestions are timed, each after one more completed evaluation, so the moves, the refit
schedule and the warm starts are those of a sweep. Prints and writes (``--out``) the median and quartiles of
wall-clock and CPU time, and the machine's load.

Usage: ``python -m benchmarks.aegis_latency --obs 100 500 --calls 21 --threads 1``
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from botorch.test_functions import Hartmann

from hpo.history import History
from hpo.registry import resolve
from hpo.space import Float, Space
from hpo.trial import Trial, TrialStatus


def history_at(space: Space, X: np.ndarray, y: np.ndarray, n: int, pending: int) -> History:
    trials = [
        Trial(i, space.decode(X[i]), TrialStatus.COMPLETED, curve=((1, {"loss": float(y[i])}),)) for i in range(n)
    ]
    trials += [Trial(n + j, space.decode(X[n + j]), TrialStatus.RUNNING) for j in range(pending)]
    return History(space, "loss", "min", tuple(trials))


def measure(method: str, n: int, calls: int, pending: int, seed: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of ``calls`` consecutive suggestions from ``n`` observations on. CPU time is
    what the suggestion costs on an idle machine with this many threads; wall time on a shared one can be far
    larger."""
    space = Space({f"x{i}": Float(0.0, 1.0) for i in range(6)})
    X = space.sobol(n + calls + pending + 1, seed=seed)
    y = Hartmann(dim=6).evaluate_true(torch.as_tensor(X)).numpy()
    searcher = resolve("searcher", method)(space, seed=seed)
    searcher.suggest(history_at(space, X, y, n - 1, pending))
    wall, cpu = [], []
    for k in range(calls):
        h = history_at(space, X, y, n + k, pending)
        t0, c0 = time.perf_counter(), time.process_time()
        searcher.suggest(h)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", nargs="+", default=["aegis", "gp_ei"])
    ap.add_argument("--obs", nargs="+", type=int, default=[100, 500])
    ap.add_argument("--calls", type=int, default=21)
    ap.add_argument("--pending", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/aegis_latency.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for method in args.methods:
        for n in args.obs:
            wall, cpu = measure(method, n, args.calls, args.pending, args.seed)
            t, c = np.asarray(wall), np.asarray(cpu)
            row = {
                "method": method,
                "observations": n,
                "pending": args.pending,
                "threads": torch.get_num_threads(),
                "calls": len(t),
                "median_s": float(np.median(t)),
                "q25_s": float(np.quantile(t, 0.25)),
                "q75_s": float(np.quantile(t, 0.75)),
                "max_s": float(t.max()),
                "median_cpu_s": float(np.median(c)),
                "q25_cpu_s": float(np.quantile(c, 0.25)),
                "q75_cpu_s": float(np.quantile(c, 0.75)),
                "load_average_1min": os.getloadavg()[0],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()

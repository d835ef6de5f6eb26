"""How well the freeze-thaw GP forecasts TaskSet's final (step-50) validation losses from partial curves.

    python -m benchmarks.freeze_thaw_calibration [--tasks 4 9 0] [--seeds 0 1] [--n 300]

For each task and seed: ``n`` random tabulated settings (diverged ones left out), observed as a sweep would leave
them (most for one step; those with the best 20% first values for 3-5 steps, the best 5% for 10-30), the model fitted
on them, then for each curve its forecast of the step-50 value (mean, sd, with observation noise) against the truth:
the share inside the 95% interval, the mean z-score, and the rank correlation of the forecasts with the truth beside
that of the plain last observed value (what ASHA ranks by).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.stats import spearmanr

from benchmarks.problems.taskset import TASKS, TaskSetProblem
from hpo.surrogates.freeze_thaw import CurveData, fit_freeze_thaw_gp

_DTYPE = torch.float64


def calibration(task: str, seed: int, n: int = 300) -> list[dict]:
    """One row per group of curve lengths (all, 1 step, 3-5, 10-30)."""
    p = TaskSetProblem(task)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(p.H), n, replace=False)
    V = p.valid[idx]
    ok = np.isfinite(V).all(1)
    idx, V = idx[ok], V[ok]
    rank = np.argsort(np.argsort(V[:, 0])) / len(idx)
    L = np.where(rank < 0.05, rng.choice([10, 20, 30], len(idx)), np.where(rank < 0.2, rng.choice([3, 5], len(idx)), 1))
    curves = [(np.arange(1, k + 1), V[i, :k]) for i, k in enumerate(L)]
    t0 = time.perf_counter()
    gp = fit_freeze_thaw_gp(CurveData.from_curves(p.H[idx], curves, 50))
    with torch.no_grad():
        m, v = gp.marginal(torch.arange(gp.data.n), gp.data.X, torch.ones(gp.data.n, dtype=_DTYPE), noisy=True)
    fit_s = time.perf_counter() - t0
    mean = gp.data.unstandardize(m.numpy())
    sd = np.sqrt(v.numpy()) * gp.data.scale
    truth, last = V[:, -1], np.array([c[1][-1] for c in curves])
    z = (truth - mean) / sd
    rows = []
    for name, sel in [("all", L > 0), ("1 step", L == 1), ("3-5 steps", (L == 3) | (L == 5)), ("10-30 steps", L >= 10)]:
        rows.append({
            "task": task, "seed": seed, "curves": name, "n": int(sel.sum()),
            "cover95": float(np.mean(np.abs(z[sel]) < 1.96)), "mean_z": float(np.mean(z[sel])),
            "rho_forecast": float(spearmanr(mean[sel], truth[sel]).correlation),
            "rho_last": float(spearmanr(last[sel], truth[sel]).correlation),
            "mae_forecast": float(np.mean(np.abs(truth[sel] - mean[sel]))),
            "mae_last": float(np.mean(np.abs(truth[sel] - last[sel]))), "fit_s": fit_s,
        })
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, nargs="+", default=[4, 9, 0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print("| task | seed | curves | n | in 95% | mean z | rank corr. forecast / last value | MAE forecast / last |")
    print("|---|---|---|---|---|---|---|---|")
    for t in args.tasks:
        for s in args.seeds:
            for r in calibration(TASKS[t], s, args.n):
                print(f"| {r['task'][31:]} | {s} | {r['curves']} | {r['n']} | {r['cover95']:.2f} | {r['mean_z']:+.2f} "
                      f"| {r['rho_forecast']:.2f} / {r['rho_last']:.2f} | {r['mae_forecast']:.3f} / "
                      f"{r['mae_last']:.3f} |", flush=True)


if __name__ == "__main__":
    main()

"""Time of one freeze-thaw decision with 1000 trials of 50 steps each: model fit plus the plan.

    python -m benchmarks.freeze_thaw_timing [--trials 1000] [--steps 50] [--acquisition entropy] [--threads 2]

The history: ``trials`` paused trials with ``steps`` reported points each (of a 100-step budget) on an 8-d space,
curves ``f(x) + a(x) / step^c(x)`` plus noise, and four running trials. The clock covers what the scheduler does
when a worker frees: build the curve data, fit the hyperparameters from their defaults (the most expensive case: a
sweep refits only when its data grew by ``refit_growth``, warm-started) and the per-curve amplitudes, then score
the basket and the candidates and decide. Wall and CPU seconds are printed with the machine's load average, since
the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from hpo.history import History
from hpo.space import Fidelity, Float, Space
from hpo.trial import Trial, TrialStatus
from schedulers.freeze_thaw import FreezeThawScheduler


def history(n_trials: int, steps: int, seed: int = 0) -> History:
    rng = np.random.default_rng(seed)
    space = Space({f"x{i}": Float(0.0, 1.0) for i in range(8)}, fidelity=Fidelity("step", 1, 2 * steps))
    trials = []
    for i in range(n_trials):
        x = rng.uniform(size=8)
        f = 0.5 + np.sin(3 * x[0]) * x[1] + 0.3 * x[2] ** 2
        a, c = 0.5 + x[3], 0.3 + x[4]
        s = np.arange(1, steps + 1)
        y = f + a / s**c + 0.01 * rng.normal(size=steps)
        status = TrialStatus.RUNNING if i >= n_trials - 4 else TrialStatus.PAUSED
        config = space.complete({f"x{k}": float(x[k]) for k in range(8)})
        trials.append(Trial(i, config, status, tuple((int(k), {"loss": float(v)}) for k, v in zip(s, y, strict=True)),
                            cost={"wall_seconds": float(steps)}))
    return History(space, "loss", "min", tuple(trials))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=1000)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--acquisition", default="entropy")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-curves", type=int, default=None,
                   help="the model's curve cap (default: every trial, so that all 1000 curves are modelled)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    h = history(args.trials, args.steps)
    out = []
    for r in range(args.repeats):
        sched = FreezeThawScheduler(h.space, "loss", acquisition=args.acquisition, seed=r,
                                    max_curves=args.max_curves or args.trials)
        w0, c0 = time.perf_counter(), time.process_time()
        tid = sched.choose_trial_to_run(h)
        w1, c1 = time.perf_counter(), time.process_time()
        n = sched.policy.model(h).data.n
        out.append({"wall_s": w1 - w0, "cpu_s": c1 - c0, "decision": tid, "curves": n, "load": os.getloadavg()[0]})
        print(json.dumps(out[-1]))
    best = min(o["wall_s"] for o in out)
    print(f"{args.trials} trials x {args.steps} steps, {args.acquisition}, {args.threads} threads: "
          f"fit + decision {best:.2f} s wall (best of {args.repeats}), median CPU "
          f"{np.median([o['cpu_s'] for o in out]):.2f} s, load average {np.mean([o['load'] for o in out]):.1f}")


if __name__ == "__main__":
    main()

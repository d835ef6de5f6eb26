"""Does the scaling readout of a CARBS sweep recover the true scaling of the synthetic problem?

The truth: for each total cost ``c`` the compute-optimal (width, steps, batch) of
:class:`~benchmarks.carbs_problems.ScalingLawProblem` (found on a fine grid with the best learning rate, warm-up and
schedule at each point) and its best learning rate ``lr*(c)``; a line through ``log10 lr*`` vs ``log10 c`` gives the
true exponent. The truth is computed over costs 1 to 2,000, the range the sweeps' fronts cover at the benchmark
budget: above it the space's bounds (10,000 steps, width 1,024) force larger batches and the true exponent flattens
(-0.23 over 3 to 20,000). The readout: :func:`hpo.scaling.fit_scaling` on each sweep of a ``carbs_bench compare``
file.

Usage::

    python -m benchmarks.carbs_scaling benchmarks/results/carbs_synthetic.jsonl \\
        --plot benchmarks/results/carbs_scaling.png
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence

import numpy as np

from benchmarks.carbs_problems import ScalingLawProblem
from hpo.history import History
from hpo.scaling import fit_scaling
from hpo.trial import Trial, TrialStatus


def true_front(costs: np.ndarray) -> list[dict]:
    """The noiseless compute-optimal config at each cost (log grid over width, steps and batch)."""
    p = ScalingLawProblem(noise=0.0)
    widths = np.unique(np.round(np.logspace(np.log10(32), np.log10(1024), 60)).astype(int))
    steps = np.unique(np.round(np.logspace(2, 4, 80)).astype(int))
    best: list[tuple[float, dict]] = [(math.inf, {}) for _ in costs]
    for w in widths:
        for s in steps:
            for b in (16, 32, 64, 128, 256):
                c = {"width": int(w), "steps": int(s), "batch_size": b, "schedule": "cosine", "warmup": 0.08}
                c["lr"] = p.lr_star(c)
                cost, loss = p.cost(c), p.loss(c)
                for i, target in enumerate(costs):
                    if cost <= target and loss < best[i][0]:
                        best[i] = (loss, c)
    return [cfg for _, cfg in best]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", help="a carbs_bench compare file (JSON lines)")
    ap.add_argument("--method", default="carbs")
    ap.add_argument("--plot", default=None)
    args = ap.parse_args(argv)
    grid = np.logspace(0.0, 3.3, 12)  # the cost range the sweeps' fronts cover at the benchmark budget
    front = true_front(grid)
    lc = np.log10([ScalingLawProblem.cost(c) for c in front])
    true_lr = np.polyfit(lc, np.log10([c["lr"] for c in front]), 1)[0]
    true_w = np.polyfit(lc, np.log10([c["width"] for c in front]), 1)[0]
    print(f"true exponents along the compute-optimal front: lr {true_lr:.3f}, width {true_w:.3f}")
    space = ScalingLawProblem().space
    rows = [json.loads(line) for line in open(args.path)]
    exps = []
    law = None
    for r in rows:
        if r["method"] != args.method or "trials" not in r:
            continue
        trials = tuple(
            Trial(i, cfg, TrialStatus.COMPLETED, ((1, {"loss": y}),), {"wall_seconds": c})
            for i, (c, y, cfg) in enumerate(r["trials"])
        )
        law = fit_scaling(History(space, "loss", "min", trials))
        exps.append(
            (r["seed"], law.exponent("lr"), law.fits["lr"].slope_stderr, law.exponent("width"), len(law.front_costs))
        )
        print(
            f"seed {r['seed']}: lr exponent {exps[-1][1]:.3f} ± {exps[-1][2]:.3f}, width {exps[-1][3]:.3f}, "
            f"front members {exps[-1][4]}"
        )
    if exps:
        e = np.array([x[1] for x in exps])
        print(
            f"{args.method}: lr exponent median {np.median(e):.3f} [{e.min():.3f}, {e.max():.3f}] over {len(e)} "
            f"sweeps; truth {true_lr:.3f}"
        )
    if args.plot and law is not None:
        law.plot(args.plot, target_cost=1e5)
    return 0


if __name__ == "__main__":
    sys.exit(main())

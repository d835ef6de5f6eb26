"""Freeze-thaw against ASHA and Optuna's TPE + Hyperband: regret against the steps (cost) consumed.

Reads the harness's raw results (``python -m benchmarks run taskset ... --out DIR``) and answers, per problem:

- ``R_asha``: the median over seeds of ASHA's regret at the end of its budget ``B``;
- ``steps to R_asha``: the fewest steps at which the median over seeds of a method's regret trace is at most
  ``R_asha`` (the target of issue 5: freeze-thaw should need at most ``B / 2``);
- the median regret of every method at ``B / 2`` and at ``B`` (where it ran that far).

Regret is the harness's: the lowest metric value seen so far at any step by any trial, minus the problem's ``f*``
(for real training, where ``f*`` is unknown, the lowest value any run of any method saw). Costs are the harness's
(steps for TaskSet, measured CPU seconds for real training); a real problem's ``B`` is ASHA's spent budget.

    python -m benchmarks.freeze_thaw_report DIR [DIR ...] [--out benchmarks/results/freeze_thaw_taskset]
"""

from __future__ import annotations

import argparse
import functools
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.metrics import value_at

__all__ = ["compare", "load", "main"]

ASHA = "random+asha"
TPE_HB = "optuna_tpe+hyperband"


def load(
    dirs: list[Path], suite: str | None = None, methods: list[str] | None = None, seeds: int | None = None
) -> dict[str, dict[str, list]]:
    """``problem -> method -> [run records]`` from the raw results under ``dirs`` (status ok; of ``suite``,
    ``methods`` and seeds ``0 .. seeds - 1`` when given)."""
    out: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for d in dirs:
        for f in sorted(Path(d).glob("raw/**/*.json")):
            r = json.loads(f.read_text())
            spec = r.get("spec", {})
            if r.get("status") != "ok" or (suite and spec.get("suite") != suite):
                continue
            if methods and spec.get("method") not in methods:
                continue
            if seeds is not None and spec.get("seed", 0) >= seeds:
                continue
            out[spec["problem"]][spec["method"]].append(r)
    return out


def _nominal_budget(runs: list[dict]) -> float:
    """ASHA's budget in cost units, as the harness sets it (the spec's, else the problem's default)."""
    r = runs[0]
    return _budget_cost(r["spec"]["problem"], r["spec"]["budget"])


@functools.cache
def _budget_cost(problem: str, budget: float | None) -> float:
    from benchmarks.harness import budget_of
    from benchmarks.problems import get_problem

    return budget_of(get_problem(problem), budget)[1]


def _median_trace(runs: list[dict], grid: np.ndarray, optimum: float) -> np.ndarray:
    """Median over runs of the regret at each cost in ``grid`` (NaN where fewer than half the runs got there).

    A run that ended before its budget because it had nothing left to run (a searcher restricted to a table that
    tried every setting) keeps its final regret up to its budget; beyond its budget it is NaN (not run that far)."""
    rows = []
    for r in runs:
        opt = optimum
        best = np.array([math.nan if b is None else b for b in r["trace"]["best"]], dtype=float)
        v = value_at(r["trace"]["cost"], best - opt, grid)
        v[grid > max(_nominal_budget([r]), r["trace"]["cost"][-1]) + 1e-9] = np.nan
        rows.append(v)
    a = np.array(rows)
    ok = np.isfinite(a).sum(0) * 2 >= len(rows)
    med = np.full(len(grid), np.nan)
    med[ok] = np.nanmedian(a[:, ok], axis=0)
    return med


def _optimum(methods: dict[str, list[dict]]) -> float:
    """The problem's ``f*``; for real training (no known optimum), the lowest value any run of any method saw."""
    runs = [r for rs in methods.values() for r in rs]
    known = runs[0]["problem"]["optimum"]
    if known is not None:
        return float(known)
    return float(min(b for r in runs for b in r["trace"]["best"] if b is not None))


def compare(results: dict[str, dict[str, list[dict]]], budget: float | None = None,
            reference: str = ASHA) -> list[dict]:
    """One row per problem: the reference's (ASHA's) target, and each method's steps to reach it and regrets at
    B/2 and B."""
    rows = []
    for problem, methods in sorted(results.items()):
        if reference not in methods:
            continue
        B = budget or _nominal_budget(methods[reference])
        grid = np.linspace(B / 1000, B, 1000) if B > 1000 else np.arange(1.0, B + 1.0)
        optimum = _optimum(methods)
        r_asha = float(_median_trace(methods[reference], grid, optimum)[-1])
        row = {"problem": problem, "budget": B, "R_asha": r_asha, "reference": reference, "methods": {}}
        for method, runs in sorted(methods.items()):
            med = _median_trace(runs, grid, optimum)
            hit = np.flatnonzero(med <= r_asha + 1e-12)
            row["methods"][method] = {
                "seeds": len(runs),
                "steps_to_R_asha": float(grid[hit[0]]) if hit.size else None,
                "regret_at_half": float(med[int(np.searchsorted(grid, B / 2 - 1e-9))]),
                "regret_at_B": float(med[-1]),
                "suggest_seconds": float(np.median([sum(c[2] for c in r["timing"]["latency"]) for r in runs])),
                "run_seconds": float(np.median([r["timing"]["run_seconds"] for r in runs])),
                "trials": float(np.median([r["summary"]["trials"] for r in runs])),
            }
        rows.append(row)
    return rows


def _fmt(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "-"
    return f"{x:.4f}" if x < 100 else f"{x:.0f}"


def markdown(rows: list[dict]) -> str:
    methods = sorted({m for r in rows for m in r["methods"]})
    head = " | ".join(f"{m}: steps to R_asha / regret@B/2 / @B" for m in methods)
    lines = [f"| problem | R_asha (B) | {head} |", "|---|---|" + "---|" * len(methods)]
    for r in rows:
        cells = []
        for m in methods:
            v = r["methods"].get(m)
            cells.append("" if v is None else
                         f"{_fmt(v['steps_to_R_asha'])} / {_fmt(v['regret_at_half'])} / {_fmt(v['regret_at_B'])}")
        name = r["problem"].split("/")[-1]
        lines.append(f"| {name} | {_fmt(r['R_asha'])} ({r['budget']:.0f}) | " + " | ".join(cells) + " |")
    lines.append("")
    for m in methods:
        vs = [r["methods"][m] for r in rows if m in r["methods"]]
        half = sum(1 for r in rows if m in r["methods"] and r["methods"][m]["steps_to_R_asha"] is not None
                   and r["methods"][m]["steps_to_R_asha"] <= r["budget"] / 2)
        reach = sum(1 for v in vs if v["steps_to_R_asha"] is not None)
        beats = {}
        for other in dict.fromkeys((TPE_HB, ASHA, *(r["reference"] for r in rows))):
            if other == m:
                continue
            w = [(r["methods"][m]["regret_at_half"], r["methods"][other]["regret_at_half"]) for r in rows
                 if m in r["methods"] and other in r["methods"]]
            beats[other] = (sum(1 for a, b in w if a < b - 1e-12), sum(1 for a, b in w if a > b + 1e-12), len(w))
        ratio = [v["steps_to_R_asha"] / r["budget"] for r, v in ((r, r["methods"].get(m)) for r in rows)
                 if v is not None and v["steps_to_R_asha"] is not None]
        lines.append(
            f"- **{m}**: reaches ASHA's final median regret on {reach}/{len(vs)} problems, within half of ASHA's "
            f"steps on {half}/{len(vs)}; median steps/B where reached {np.median(ratio) if ratio else math.nan:.2f}; "
            + "; ".join(f"regret@B/2 better/worse/of than {o}: {b[0]}/{b[1]}/{b[2]}" for o, b in beats.items())
            + f"; median suggest time {np.median([v['suggest_seconds'] for v in vs]):.1f} s, "
            f"run {np.median([v['run_seconds'] for v in vs]):.1f} s, trials {np.median([v['trials'] for v in vs]):.0f}"
        )
    return "\n".join(lines) + "\n"


def plot(results: dict[str, dict[str, list[dict]]], path: Path, budget: float | None = None,
         reference: str = ASHA) -> None:
    """One panel per problem: each method's median regret (over seeds) against the cost consumed; the dotted line
    is the reference's final median regret, the grey one half the budget. Regret 0 is drawn at the axis floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = [p for p in sorted(results) if reference in results[p]]
    if not problems:
        return
    cols = min(4, len(problems))
    rows = -(-len(problems) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    floor = 1e-4
    for ax, problem in zip(axes.flat, problems, strict=False):
        methods = results[problem]
        B = budget or _nominal_budget(methods[reference])
        grid = np.linspace(B / 200, B, 200)
        optimum = _optimum(methods)
        for method, runs in sorted(methods.items()):
            med = _median_trace(runs, grid, optimum)
            label = method.split(":")[-1] + f" (n={len(runs)})"
            ax.plot(grid, np.maximum(med, floor), label=label, lw=1.5 if "freeze" in method.lower() else 1.0)
        r_ref = _median_trace(methods[reference], grid, optimum)[-1]
        ax.axhline(max(r_ref, floor), ls=":", color="k", lw=0.8)
        ax.axvline(B / 2, color="0.7", lw=0.8)
        ax.set_yscale("log")
        ax.set_title(problem.split("/")[-1], fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(problems):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.supxlabel("cost consumed (steps for TaskSet)", fontsize=8)
    fig.supylabel(f"median regret (floor {floor:g})", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dirs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, help="write OUT.md and OUT.json")
    p.add_argument("--budget", type=float, help="B in cost units (default: ASHA's nominal budget)")
    p.add_argument("--suite", help="only runs of this suite (taskset, real)")
    p.add_argument("--methods", nargs="+", help="only these methods")
    p.add_argument("--plot", type=Path, help="write a PNG of median regret against cost, one panel a problem")
    p.add_argument("--reference", default=ASHA, help=f"the method whose final median regret is the target "
                                                       f"(default {ASHA}; e.g. {ASHA}@table)")
    args = p.parse_args(argv)
    results = load(args.dirs, args.suite, args.methods)
    rows = compare(results, args.budget, args.reference)
    if args.plot:
        plot(results, args.plot, args.budget, args.reference)
    md = markdown(rows)
    print(md)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(md)
        args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

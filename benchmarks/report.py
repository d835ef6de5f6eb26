"""Tables and plots from stored runs: ``python -m benchmarks report`` writes ``results/report.md`` and PNGs.

Notation
--------
- A **cell** is one (suite, problem, workers, duration, budget, method) with one run a seed.
- ``median [q25, q75]``: the median and interquartile range over seeds of a run's final number: ``log10 regret``
  at the budget (problems with a known optimum), the best validation loss (real training), the hypervolume
  (cost-aware).
- **Average rank**: within each (problem, workers, duration, budget, seed) the methods that ran are ranked by the
  final number (1 = best, ties share the mean rank); a method's average rank is the mean over those groups.
- Curves: the median over seeds of each run's best-so-far (a step function) on a common grid, with the
  interquartile band.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata

from benchmarks import metrics
from benchmarks.harness import RESULTS

__all__ = ["cells", "final_value", "load", "write_report"]

_KIND_ORDER = ("synthetic", "tabular", "real", "cost")
# fixed colours so a method looks the same in every figure
_COLOURS = {
    "optuna_tpe": "tab:blue",
    "optuna_gp": "tab:orange",
    "optuna_random": "tab:gray",
    "random": "tab:green",
    "random+asha": "tab:red",
    "optuna_tpe+hyperband": "tab:purple",
    "optuna_tpe+sha": "tab:brown",
    "aegis": "tab:pink",
    "benchmarks.aegis_variants:AEGiSPaperEpsilon": "darkmagenta",
    "gp_ei": "tab:olive",
    "carbs": "tab:cyan",
    "freeze_thaw": "black",
}


def load(out: Path = RESULTS, suites: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Every stored run record under ``out/raw`` (of ``suites`` only, if given)."""
    root = Path(out) / "raw"
    wanted = set(suites) if suites else None
    records = []
    for path in sorted(root.rglob("*.json")):
        rec = json.loads(path.read_text())
        if wanted is None or rec["spec"]["suite"] in wanted:
            records.append(rec)
    return records


def final_value(rec: dict[str, Any]) -> float:
    """The number a run is ranked by (lower is better): log10 regret, best loss, or minus the hypervolume."""
    s = rec.get("summary") or {}
    kind = rec["problem"]["kind"]
    if kind == "cost":
        v = s.get("hypervolume")
        return -v if v is not None else math.nan
    v = s.get("log10_regret") if rec["problem"]["optimum"] is not None else s.get("best")
    return float(v) if v is not None else math.nan


def _group_key(rec: dict[str, Any]) -> tuple:
    sp = rec["spec"]
    return (sp["suite"], sp["problem"], sp["workers"], sp["duration"], sp["budget"])


def cells(records: list[dict[str, Any]]) -> dict[tuple, dict[str, list[dict[str, Any]]]]:
    """``group key -> method -> runs`` (status ok only)."""
    out: dict[tuple, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for rec in records:
        if rec.get("status") == "ok":
            out[_group_key(rec)][rec["spec"]["method"]].append(rec)
    return out


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan, math.nan
    q = np.quantile(v, [0.5, 0.25, 0.75])
    return float(q[0]), float(q[1]), float(q[2])


def _fmt(q: tuple[float, float, float], digits: int = 2) -> str:
    if math.isnan(q[0]):
        return "-"
    return f"{q[0]:.{digits}f} [{q[1]:.{digits}f}, {q[2]:.{digits}f}]"


def _at_floor(rec: dict[str, Any], value: float) -> bool:
    """The run found f* itself (its log10 regret sits on the floor)."""
    return rec["problem"]["optimum"] is not None and value <= math.log10(metrics.REGRET_FLOOR) + 1e-9


def _average_ranks(groups: dict[tuple, dict[str, list[dict[str, Any]]]]) -> dict[str, float]:
    """Mean rank of each method over (group, seed) in which at least two methods ran."""
    ranks: dict[str, list[float]] = defaultdict(list)
    for by_method in groups.values():
        seeds: dict[int, dict[str, float]] = defaultdict(dict)
        for method, runs in by_method.items():
            for r in runs:
                v = final_value(r)
                seeds[r["spec"]["seed"]][method] = v if math.isfinite(v) else math.inf
        for values in seeds.values():
            if len(values) < 2:
                continue
            names = list(values)
            for name, rank in zip(names, rankdata([values[n] for n in names]), strict=True):
                ranks[name].append(float(rank))
    return {m: float(np.mean(r)) for m, r in ranks.items()}


def _method_order(methods: Iterable[str]) -> list[str]:
    known = list(_COLOURS)
    return sorted(set(methods), key=lambda m: (known.index(m) if m in known else len(known), m))


def _short(problem: str) -> str:
    return problem.replace("taskset/", "")


def _table(groups: dict[tuple, dict[str, list[dict[str, Any]]]], label: str, digits: int = 2) -> list[str]:
    """Markdown rows: one per problem, one column per method, and the average rank."""
    methods = _method_order(m for g in groups.values() for m in g)
    lines = [f"| problem | {' | '.join(methods)} |", "|---" * (len(methods) + 1) + "|"]
    for key in sorted(groups, key=lambda k: k[1]):
        n = max(len(v) for v in groups[key].values())
        row = []
        for m in methods:
            runs = groups[key].get(m, [])
            values = [final_value(r) for r in runs]
            shown = [-v if r["problem"]["kind"] == "cost" else v for r, v in zip(runs, values, strict=True)]
            cell = _fmt(_quartiles(shown), digits)
            at_floor = sum(1 for r, v in zip(runs, values, strict=True) if _at_floor(r, v))
            cell += f" (f* {at_floor}/{len(runs)})" if at_floor else ""
            row.append(cell + (f" (n={len(runs)})" if runs and len(runs) < n else ""))
        lines.append(f"| {_short(key[1])} (n={n}) | {' | '.join(row)} |")
    ranks = _average_ranks(groups)
    lines.append(f"| **average rank** | {' | '.join(f'{ranks[m]:.2f}' if m in ranks else '-' for m in methods)} |")
    return [f"{label}", "", *lines, ""]


def _medians_table(groups: dict[tuple, dict[str, list[dict[str, Any]]]], field: str, digits: int = 3) -> list[str]:
    """Per method: median over all runs of a summary field (utilization, evals, ...), one row per problem."""
    methods = _method_order(m for g in groups.values() for m in g)
    lines = [f"| problem | {' | '.join(methods)} |", "|---" * (len(methods) + 1) + "|"]
    for key in sorted(groups, key=lambda k: k[1]):
        row = []
        for m in methods:
            vals = [r["summary"].get(field) for r in groups[key].get(m, [])]
            vals = [v for v in vals if v is not None and math.isfinite(v)]
            row.append(f"{np.median(vals):.{digits}g}" if vals else "-")
        lines.append(f"| {_short(key[1])} | {' | '.join(row)} |")
    return [*lines, ""]


def _latency_rows(records: list[dict[str, Any]]) -> list[str]:
    """Seconds per suggestion of each method: median over calls, at up to 20 / 21-50 / over 50 observations."""
    bins = ((0, 20), (21, 50), (51, 10**9))
    per: dict[str, list[list[float]]] = defaultdict(lambda: [[] for _ in bins])
    for rec in records:
        if rec.get("status") != "ok":
            continue
        for n_obs, n_sug, secs in rec["timing"]["latency"]:
            if n_sug <= 0:
                continue
            for i, (lo, hi) in enumerate(bins):
                if lo <= n_obs <= hi:
                    per[rec["spec"]["method"]][i].append(secs / n_sug)
    lines = ["| method | n_obs <= 20 | 21-50 | > 50 |", "|---|---|---|---|"]
    for m in _method_order(per):
        cols = [f"{np.median(v) * 1e3:.1f} ms" if v else "-" for v in per[m]]
        lines.append(f"| {m} | {' | '.join(cols)} |")
    return [*lines, ""]


def _curve(runs: list[dict[str, Any]], x: str, grid: np.ndarray, optimum: float | None) -> np.ndarray:
    """Each run's best-so-far (log10 regret if the optimum is known) on ``grid``: shape ``(runs, len(grid))``."""
    rows = []
    for r in runs:
        tr = r["trace"]
        best = np.asarray([math.nan if b is None else b for b in tr["best"]], dtype=float)
        ys = metrics.log10_regret(best, optimum) if optimum is not None else best
        rows.append(metrics.value_at(tr[x], ys, grid))
    return np.asarray(rows)


def _plot_group(ax, by_method: dict[str, list[dict[str, Any]]], x: str, grid: np.ndarray, optimum: float | None,
                scale: float = 1.0) -> None:
    for m in _method_order(by_method):
        ys = _curve(by_method[m], x, grid, optimum)
        with np.errstate(all="ignore"), _quiet():
            med = np.nanmedian(ys, axis=0)
            lo, hi = np.nanquantile(ys, 0.25, axis=0), np.nanquantile(ys, 0.75, axis=0)
        colour = _COLOURS.get(m)
        ax.plot(grid / scale, med, label=m.rsplit(":", 1)[-1], color=colour, lw=1.4)
        ax.fill_between(grid / scale, lo, hi, color=colour, alpha=0.15, lw=0)


class _quiet:
    """Silence numpy's all-NaN-slice warnings (before a run's first result)."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def progress_figure(groups: dict[tuple, dict[str, list[dict[str, Any]]]], x: str, path: Path, title: str,
                    xlabel: str, ylabel: str, scale_of=None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted(groups, key=lambda k: k[1])
    n = len(keys)
    cols = min(n, 4 if n > 6 else 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        by_method = groups[key]
        any_run = next(iter(by_method.values()))[0]
        optimum = any_run["problem"]["optimum"]
        ends = [r["trace"][x][-1] for runs in by_method.values() for r in runs if r["trace"][x]]
        top = float(np.median(ends)) if ends else 1.0
        if x == "evals":
            grid = np.arange(1, int(max(ends, default=1)) + 1, dtype=float)
        else:
            grid = np.linspace(0.0, top, 200)
        scale = scale_of(any_run) if scale_of else 1.0
        _plot_group(ax, by_method, x, grid, optimum, scale)
        ax.set_title(_short(key[1]), fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel if optimum is not None else "best valid loss", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.flat[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _latency_figure(records: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for rec in records:
        if rec.get("status") != "ok":
            continue
        for n_obs, n_sug, secs in rec["timing"]["latency"]:
            if n_sug > 0:
                per[rec["spec"]["method"]][int(n_obs) // 5 * 5].append(secs / n_sug)
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for m in _method_order(per):
        ns = sorted(per[m])
        ax.plot(ns, [np.median(per[m][n]) for n in ns], label=m, color=_COLOURS.get(m), lw=1.4)
    ax.set_yscale("log")
    ax.set_xlabel("finished trials seen by the searcher", fontsize=8)
    ax.set_ylabel("seconds per suggestion (median)", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pareto_figure(records: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in records if r.get("status") == "ok" and r.get("cost_points") is not None]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    by_method: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        by_method[r["spec"]["method"]].append(r)
    for m in _method_order(by_method):
        colour = _COLOURS.get(m)
        pts = [tuple(p) for r in by_method[m] for p in r["cost_points"]]
        if pts:
            c, f = zip(*pts, strict=True)
            axes[0].scatter(c, f, s=6, alpha=0.25, color=colour)
        front = metrics.pareto_front(pts)
        if front:
            fc, ff = zip(*front, strict=True)
            axes[0].step(fc, ff, where="post", color=colour, label=f"{m} (all seeds)")
        hv = [r["hv_trace"] for r in by_method[m] if r.get("hv_trace")]
        if hv:
            top = float(np.median([h["cost"][-1] for h in hv]))
            grid = np.linspace(0, top, 100)
            ys = np.asarray([metrics.value_at(h["cost"], h["hv"], grid) for h in hv])
            with _quiet():
                axes[1].plot(grid, np.nanmedian(ys, axis=0), color=colour, label=m)
    axes[0].set_xlabel("log10 training FLOPs", fontsize=8)
    axes[0].set_ylabel("validation loss", fontsize=8)
    axes[0].set_title("(cost, loss) points and the Pareto front", fontsize=9)
    axes[1].set_xlabel("cost spent (nominal seconds)", fontsize=8)
    axes[1].set_ylabel("hypervolume (median over seeds)", fontsize=8)
    axes[1].set_title("hypervolume against cost", fontsize=9)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _not_run(records: list[dict[str, Any]]) -> list[str]:
    lines = []
    seen = set()
    for rec in records:
        st = rec.get("status")
        if st in ("missing", "error"):
            key = (rec["spec"]["method"], st, (rec.get("message") or "").splitlines()[0][:160])
            if key not in seen:
                seen.add(key)
                lines.append(f"- `{key[0]}`: {st}: {key[2]}")
    return lines


def write_report(out: Path = RESULTS, suites: Iterable[str] | None = None) -> Path:
    """Write ``out/report.md`` and the figures beside it; returns the report's path."""
    out = Path(out)
    records = load(out, suites)
    by_suite: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        by_suite[rec["spec"]["suite"]].append(rec)
    lines = ["# Benchmark results", "", "Written by `python -m benchmarks report` from `results/raw/`.", ""]
    lines += [
        "Numbers are **median [q25, q75] over seeds**; lower is better everywhere (log10 simple regret at the "
        "budget; best validation loss; minus the hypervolume is ranked). `(n=k)` after a cell: that method ran k "
        "seeds only; `(f* k/n)`: k of the n seeds found the optimum itself (regret 0, shown as the floor -8). "
        "Average rank: see `benchmarks/report.py`.",
        "",
        "Protocol: every method runs through hpo's `Orchestrator` on a `SimulatedExecutor` with the given number "
        "of workers. Synthetic functions: evaluation times drawn from a mean-1 distribution (exponential unless "
        "stated), budget = evaluations, log10 regret floored at -8. TaskSet: configs answered by the nearest "
        "tabulated setting in the encoded space, 1 time unit a step, budget = steps / 50 (full-run equivalents), "
        "f* = best tabulated validation loss at any step, diverged (NaN) curves fail. Real problems: cost = "
        "measured CPU seconds of each segment. Cost-aware char-LM: cost = training FLOPs. Latency is wall time "
        "on the machine that ran the suite (a loaded, shared 2-core machine inflates it).",
        "",
    ]
    for suite in sorted(by_suite):
        recs = by_suite[suite]
        groups = cells(recs)
        if not groups:
            lines += [f"## {suite}", "", "no successful runs", "", *_not_run(recs), ""]
            continue
        lines += [f"## Suite `{suite}`", ""]
        notes = sorted({r["problem"]["notes"] for r in recs})
        lines += [f"Problems: {n}" for n in notes[:3]] + ([f"(and {len(notes) - 3} more)"] if len(notes) > 3 else [])
        lines.append("")
        sub: dict[tuple, dict[tuple, dict[str, list]]] = defaultdict(dict)
        for key, by_method in groups.items():
            problem = next(iter(by_method.values()))[0]["problem"]
            sub[(_KIND_ORDER.index(problem["kind"]), problem["budget_unit"], key[2], key[3], key[4])][key] = by_method
        for (kind_i, unit, workers, duration, budget), g in sorted(sub.items(), key=lambda kv: kv[0][:4]):
            kind = _KIND_ORDER[kind_i]
            budget_s = "default" if budget is None else f"{budget:g}"
            what = {
                "synthetic": "log10 simple regret after the budget",
                "tabular": "log10 simple regret (best valid loss at any step - best tabulated) at the budget",
                "real": "best validation loss at the budget",
                "cost": "hypervolume of (log10 FLOPs, valid loss) (higher is better; ranked by minus HV)",
            }[kind]
            label = f"### {suite}: {workers} worker(s), durations {duration}, budget {budget_s} {unit}: {what}"
            lines += _table(g, label, digits=3 if kind in ("real", "cost") else 2)
            lines += ["Worker utilization (median):", "", *_medians_table(g, "utilization", 2)]
            if kind in ("tabular", "real"):
                lines += ["Trials started (median):", "", *_medians_table(g, "trials", 3)]
            stem = f"{suite if suite == kind else f'{suite}_{kind}'}_w{workers}_{duration}_b{budget_s}"
            figs = []
            if kind == "synthetic":
                progress_figure(g, "evals", out / f"{stem}_evals.png", f"{suite}, {workers} workers: log10 regret",
                        "evaluations", "log10 regret")
                progress_figure(g, "clock", out / f"{stem}_time.png", f"{suite}, {workers} workers: log10 regret",
                        "simulated time", "log10 regret")
                figs = [f"{stem}_evals.png", f"{stem}_time.png"]
            elif kind == "tabular":
                progress_figure(g, "cost", out / f"{stem}_steps.png", f"{suite}, {workers} workers: log10 regret",
                        "steps consumed / 50 (full-run equivalents)", "log10 regret",
                        scale_of=lambda r: r["problem"]["max_step"])
                figs = [f"{stem}_steps.png"]
            elif kind == "real":
                progress_figure(g, "cost", out / f"{stem}_cost.png", f"{suite}, {workers} workers: best valid loss",
                        "CPU seconds consumed", "best valid loss")
                figs = [f"{stem}_cost.png"]
            elif kind == "cost":
                _pareto_figure([r for gg in g.values() for runs in gg.values() for r in runs],
                               out / f"{stem}_pareto.png")
                figs = [f"{stem}_pareto.png"]
            lines += [f"![{f}]({f})" for f in figs] + [""]
        lines += ["### Suggestion latency (wall seconds in `suggest`, per suggestion)", "", *_latency_rows(recs)]
        _latency_figure(recs, out / f"{suite}_latency.png", f"{suite}: suggestion latency")
        lines += [f"![{suite}_latency.png]({suite}_latency.png)", ""]
        missing = _not_run(recs)
        if missing:
            lines += ["Not run:", "", *missing, ""]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path

"""Scaling-law readout: how the best value of each hyperparameter moves with cost, fitted on a sweep's Pareto front.

A cost-aware sweep (CARBS) leaves a Pareto front of (cost, objective): for each cost, the best config found at or
below it. Read along the front, each hyperparameter traces how its best value moves as runs grow (Fetterman et al.
2023, Sec. 4: "the Pareto set is itself a scaling law"). We fit, per parameter, a line in log cost:

    T(x*(c)) = a + b log10 c                                                                    (a power law for log T)

where ``T`` is the parameter's natural axis (``log10`` for log-scale floats and integers and for numeric choices in
geometric progression such as batch sizes, identity otherwise). For a log-scale parameter ``x* = 10^a c^b``: ``b``
is the power-law exponent (e.g. the best learning rate falls as ``c^-0.3``). Ordinary least squares over the front's
members (a repeated config counts once, at its mean cost), with the slope's standard error
``se(b) = sqrt(RSS / (m - 2) / sum (l_i - mean l)^2)`` where ``l = log10 c``. :meth:`ScalingLaw.predict` extrapolates
to a cost beyond the sweep: the point of running a sweep on small proxies.

Notation
--------
- ``c``: a trial's cost (``trial.cost[cost_key]``, or the reported metric ``cost_metric``); ``l = log10 c``.
- ``m``: number of front members used by a fit; ``y``: objective, lower is better (History sign).

Example::

    law = fit_scaling(history)                     # a History of a finished sweep
    law.exponent("lr")                             # d log10 lr* / d log10 cost
    law.predict(10 * max cost seen)                # the best config extrapolated
    law.plot("scaling.png", target_cost=1e6)

CLI: ``hpo-tune scaling DIR --cost X [--plot scaling.png]`` (or ``python -m hpo.scaling``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hpo.history import History
from hpo.space import Choice, Float, Int, Space
from hpo.trial import Trial, TrialStatus

__all__ = ["ParamFit", "ScalingLaw", "fit_scaling", "main", "pareto_groups", "trial_cost"]


def trial_cost(trial: Trial, cost_key: str = "wall_seconds", cost_metric: str | None = None) -> float | None:
    """A trial's cost: the reported metric ``cost_metric`` at its last step if given, else ``trial.cost[cost_key]``
    (summed over its reports by the orchestrator); None when absent or not finite."""
    v = trial.value(cost_metric) if cost_metric is not None else trial.cost.get(cost_key)
    return None if v is None or not math.isfinite(float(v)) else float(v)


def pareto_groups(
    keys: Sequence[Any],
    costs: np.ndarray,
    ys: np.ndarray,
    min_cost_fraction: float = 0.2,
    conservative: bool = True,
) -> list[list[int]]:
    """Pareto groups of (cost, objective), cheapest first (imbue-ai/carbs' ``get_pareto_groups[_conservative]``).

    Observations with the same config ``key`` form a group with the mean cost and mean objective of its members
    (repeats average noise out). The first group is the best among groups no dearer than the ``min_cost_fraction``
    quantile of costs (the cheapest runs are noisy and uninformative; if no group is that cheap, where the
    reference crashes with an empty sequence, the cheapest group); then each dearer group whose mean objective
    beats every cheaper member joins. ``conservative``: a single-observation group must beat the previous member's
    best single observation, not only its mean, so one lucky draw does not displace a resampled member.

    Returns lists of indices into the inputs; empty when there are no observations.

    Example:
        >>> pareto_groups(["a", "b", "c"], np.array([1.0, 2.0, 3.0]), np.array([3.0, 4.0, 2.0]), 0.0)
        [[0], [2]]
    """
    if len(keys) == 0:
        return []
    costs, ys = np.asarray(costs, dtype=float), np.asarray(ys, dtype=float)
    groups: dict[Any, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    members = list(groups.values())
    g_cost = np.array([costs[m].mean() for m in members])
    g_y = np.array([ys[m].mean() for m in members])
    g_best = np.array([ys[m].min() for m in members])
    threshold = np.quantile(costs, min_cost_fraction)
    below = [i for i in range(len(members)) if g_cost[i] <= threshold]
    if conservative:
        below = [i for i in below if len(members[i]) > 1] or below
    if not below:
        below = [int(np.argmin(g_cost))]
    first = min(below, key=lambda i: (g_y[i], g_cost[i]))
    front = [first]
    best, best_single = g_y[first], g_best[first]
    for i in sorted(range(len(members)), key=lambda i: (g_cost[i], i)):
        if g_cost[i] <= g_cost[first] or i in below:
            continue
        beats = g_y[i] < best_single if (conservative and len(members[i]) == 1) else g_y[i] < best
        if beats:
            front.append(i)
            best, best_single = g_y[i], g_best[i]
    return [members[i] for i in front]


def _axis(p: Any) -> str | None:
    """The axis a parameter is fitted on: 'log', 'linear', or None for an unordered choice."""
    if isinstance(p, (Float, Int)):
        return "log" if p.log else "linear"
    v = p.choices
    if len(v) >= 2 and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in v):
        arr = np.asarray(v, dtype=float)
        if np.all(np.diff(arr) > 0):
            if arr[0] > 0 and np.allclose(arr[1:] / arr[:-1], arr[1] / arr[0], rtol=1e-6):
                return "log"
            return "linear"
    return None


@dataclass(frozen=True)
class ParamFit:
    """The fit of one parameter along the front.

    Attributes:
        name: the parameter.
        axis: ``"log"`` (``log10 x* = a + b l``: ``b`` is a power-law exponent), ``"linear"`` (``x* = a + b l``) or
            ``"categorical"`` (no line: ``mode`` is the value most frequent on the dearer half of the front).
        slope, intercept: ``b`` and ``a``; NaN for categoricals.
        slope_stderr: standard error of ``b`` (NaN with fewer than 3 members).
        r2: coefficient of determination.
        m: front members used.
        mode: categoricals' value; None otherwise.
    """

    name: str
    axis: str
    slope: float
    intercept: float
    slope_stderr: float
    r2: float
    m: int
    mode: Any = None


@dataclass
class ScalingLaw:
    """Per-parameter fits along a sweep's Pareto front; see the module docstring.

    Attributes:
        space: the sweep's space.
        fits: ``name -> ParamFit``.
        front_costs, front_values, front_configs: the members used (cheapest first).
        costs, values, configs: every successful trial (for plots).
        cost_label: what the cost is (``wall_seconds``, ``flops``...).
    """

    space: Space
    fits: dict[str, ParamFit]
    front_costs: np.ndarray
    front_values: np.ndarray
    front_configs: list[dict[str, Any]]
    costs: np.ndarray
    values: np.ndarray
    configs: list[dict[str, Any]]
    cost_label: str = "cost"
    metric: str = "objective"
    notes: list[str] = field(default_factory=list)

    def exponent(self, name: str) -> float:
        """``b`` of parameter ``name``: ``d log10 x* / d log10 c`` on a log axis, ``d x* / d log10 c`` on a linear
        one."""
        return self.fits[name].slope

    def predict(self, cost: float, clip: bool = True) -> dict[str, Any]:
        """The best config extrapolated to ``cost``: each fitted line read at ``log10 cost``, rounded to integers
        and to the nearest numeric choice, clipped to the space's bounds unless ``clip=False`` (a value outside says
        the sweep's space is too small for that cost)."""
        if not cost > 0:
            raise ValueError(f"cost must be positive, got {cost}")
        lc = math.log10(cost)
        out: dict[str, Any] = {}
        for name, f in self.fits.items():
            p = self.space.params[name]
            if f.axis == "categorical":
                out[name] = f.mode
                continue
            t = f.intercept + f.slope * lc
            x = 10.0**t if f.axis == "log" else t
            if isinstance(p, Choice):
                arr = np.asarray(p.choices, dtype=float)
                d = np.abs(np.log10(arr) - math.log10(max(x, 1e-300))) if f.axis == "log" else np.abs(arr - x)
                out[name] = p.choices[int(np.argmin(d))]
                continue
            if clip:
                x = min(max(x, p.low), p.high)
            out[name] = round(x) if isinstance(p, Int) else float(x)
        return out

    def summary(self, target_cost: float | None = None) -> str:
        """A plain-text table of the fits (and the prediction at ``target_cost``)."""
        pred = self.predict(target_cost) if target_cost is not None else {}
        raw = self.predict(target_cost, clip=False) if target_cost is not None else {}
        head = "front: empty"
        if len(self.front_costs):
            head = (
                f"front: {len(self.front_costs)} members, {self.cost_label} "
                f"{self.front_costs.min():.4g} .. {self.front_costs.max():.4g}"
            )
        lines = [
            head,
            f"{'parameter':<16} {'axis':<8} {'slope b':>10} {'+- se':>8} {'r2':>6} {'m':>4}"
            + (f"  {'at ' + format(target_cost, '.3g'):>14}" if target_cost is not None else ""),
        ]
        for name, f in self.fits.items():
            row = f"{name:<16} {f.axis:<8} {f.slope:>10.4f} {f.slope_stderr:>8.4f} {f.r2:>6.2f} {f.m:>4}"
            if f.axis == "categorical":
                row = f"{name:<16} {f.axis:<8} {'':>10} {'':>8} {'':>6} {f.m:>4}"
            if target_cost is not None:
                v = pred[name]
                row += f"  {v:>14.4g}" if isinstance(v, float) else f"  {v!s:>14}"
                if raw[name] != v and not isinstance(v, str):
                    row += "  (clipped to the space)"
            lines.append(row)
        lines += self.notes
        return "\n".join(lines)

    def to_dict(self, target_cost: float | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {
            "cost_label": self.cost_label,
            "front": [
                {"cost": float(c), "value": float(v), "config": cfg}
                for c, v, cfg in zip(self.front_costs, self.front_values, self.front_configs, strict=True)
            ],
            "fits": {
                n: {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in f.__dict__.items()}
                for n, f in self.fits.items()
            },
        }
        if target_cost is not None:
            d["target_cost"] = target_cost
            d["prediction"] = self.predict(target_cost)
        return d

    def plot(self, path: str | None = None, target_cost: float | None = None, params: Sequence[str] | None = None):
        """One panel per parameter (best value vs cost, log-log for log axes: every trial faint, the front's members
        bold, the fitted line extended to ``target_cost``) and a panel of the (cost, objective) front. Returns the
        matplotlib figure; saves it to ``path`` if given."""
        import matplotlib

        if path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        names = list(params or self.fits)
        k = len(names) + 1
        cols = min(3, k)
        rows = math.ceil(k / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
        flat = axes.ravel()
        ax = flat[0]
        ok = np.isfinite(self.values)
        ax.scatter(self.costs[ok], self.values[ok], s=8, c="0.75", label="trials")
        ax.step(self.front_costs, self.front_values, where="post", c="k", lw=1.5)
        ax.scatter(self.front_costs, self.front_values, s=22, c="k", label="Pareto front")
        ax.set_xscale("log")
        ax.set_xlabel(self.cost_label)
        ax.set_ylabel(self.metric)
        ax.set_title("cost vs objective")
        ax.legend(fontsize=7)
        hi = max(float(self.front_costs.max()) if len(self.front_costs) else 1.0, target_cost or 0.0)
        lo = float(self.costs.min()) if len(self.costs) else 1.0
        grid = np.logspace(math.log10(lo), math.log10(hi), 50)
        for ax, name in zip(flat[1:], names, strict=False):
            f = self.fits[name]
            xs = [cfg[name] for cfg in self.configs]
            fx = [cfg[name] for cfg in self.front_configs]
            if f.axis == "categorical":
                cats = list(self.space.params[name].choices)
                ax.scatter(self.costs, [cats.index(v) for v in xs], s=8, c="0.75")
                ax.scatter(self.front_costs, [cats.index(v) for v in fx], s=22, c="k")
                ax.set_yticks(range(len(cats)), [str(c) for c in cats])
            else:
                ax.scatter(self.costs, np.asarray(xs, dtype=float), s=8, c="0.75")
                ax.scatter(self.front_costs, np.asarray(fx, dtype=float), s=22, c="k")
                t = f.intercept + f.slope * np.log10(grid)
                label = f"b = {f.slope:.3f} ± {f.slope_stderr:.3f}"
                ax.plot(grid, 10**t if f.axis == "log" else t, c="C3", lw=1.2, label=label)
                if f.axis == "log":
                    ax.set_yscale("log")
                ax.legend(fontsize=7)
            if target_cost is not None:
                ax.axvline(target_cost, c="C0", ls=":", lw=1)
            ax.set_xscale("log")
            ax.set_xlabel(self.cost_label)
            ax.set_title(f"best {name}")
        for ax in flat[k:]:
            ax.set_visible(False)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig


def fit_scaling(
    history: History,
    cost_key: str = "wall_seconds",
    cost_metric: str | None = None,
    params: Sequence[str] | None = None,
    min_cost_fraction: float = 0.0,
    conservative: bool = False,
) -> ScalingLaw:
    """Fit how each parameter's best value moves with cost along the sweep's Pareto front.

    Args:
        history: a sweep's trials (completed ones with a finite objective and a cost are used).
        cost_key, cost_metric: where the cost is (see :func:`trial_cost`); use the searcher's setting.
        params: the parameters to fit (default: every searched one).
        min_cost_fraction, conservative: how the front is formed (see :func:`pareto_groups`; defaults keep every
            member down to the cheapest run).

    Raises:
        ValueError: no completed trial with a finite objective and a cost.
    """
    space = history.space
    names = list(params) if params is not None else space.names
    unknown = [n for n in names if n not in space.params]
    if unknown:
        raise ValueError(f"parameters {unknown} are not in the sweep's space {space.names}")
    trials, costs, ys = [], [], []
    for t in history:
        if t.status is not TrialStatus.COMPLETED:
            continue
        y, c = history.objective(t), trial_cost(t, cost_key, cost_metric)
        if y is None or not math.isfinite(y) or c is None or c <= 0:
            continue
        trials.append(t)
        costs.append(c)
        ys.append(y)
    if not trials:
        where = f"metric {cost_metric!r}" if cost_metric else f"cost {cost_key!r}"
        raise ValueError(
            f"no completed trial with a finite {history.metric!r} and a positive {where}; "
            "check cost_key/cost_metric and that the sweep has finished trials"
        )
    costs_a, ys_a = np.asarray(costs), np.asarray(ys)
    keys = [space.key(t.config) for t in trials]
    groups = pareto_groups(keys, costs_a, ys_a, min_cost_fraction, conservative)
    f_cost = np.array([costs_a[g].mean() for g in groups])
    f_y = np.array([ys_a[g].mean() for g in groups])
    f_cfg = [{n: trials[g[0]].config[n] for n in space.names} for g in groups]
    configs = [{n: t.config[n] for n in space.names} for t in trials]
    sign = 1.0 if history.mode == "min" else -1.0
    notes: list[str] = []
    if len(groups) < 3:
        notes.append(f"only {len(groups)} front members: slopes are unreliable; run the sweep over a wider cost range")
    fits = {n: _fit_param(n, space.params[n], f_cost, f_cfg) for n in names}
    return ScalingLaw(
        space,
        fits,
        f_cost,
        sign * f_y,
        f_cfg,
        costs_a,
        sign * ys_a,
        configs,
        cost_label=cost_metric or cost_key,
        metric=history.metric,
        notes=notes,
    )


def _fit_param(name: str, p: Any, costs: np.ndarray, configs: list[dict[str, Any]]) -> ParamFit:
    axis = _axis(p)
    m = len(costs)
    if axis is None:
        dear = configs[m // 2 :] or configs
        values = [c[name] for c in dear]
        mode = max(values, key=lambda v: (values.count(v), -values.index(v)))
        return ParamFit(name, "categorical", math.nan, math.nan, math.nan, math.nan, m, mode)
    x = np.asarray([c[name] for c in configs], dtype=float)
    t = np.log10(x) if axis == "log" else x
    lc = np.log10(costs)
    if m < 2 or np.ptp(lc) == 0:
        return ParamFit(name, axis, 0.0, float(t.mean()), math.nan, math.nan, m)
    slope, intercept = np.polyfit(lc, t, 1)
    resid = t - (intercept + slope * lc)
    sxx = float(((lc - lc.mean()) ** 2).sum())
    se = math.sqrt(float((resid**2).sum()) / (m - 2) / sxx) if m > 2 else math.nan
    sst = float(((t - t.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / sst if sst > 0 else 1.0
    return ParamFit(name, axis, float(slope), float(intercept), se, r2, m)


def load_history(directory: str) -> tuple[History, dict[str, Any]]:
    """A sweep directory's history and its spec (read-only; works while the sweep runs)."""
    from hpo.storage import Storage

    with Storage(directory, readonly=True) as st:
        spec = st.load_spec() or {}
        if "space" not in spec:
            raise ValueError(f"{directory!r} holds no sweep spec; is it a sweep directory?")
        space = Space.from_dict(spec["space"])
        history = History(space, spec["metric"], spec.get("mode", "min"), tuple(st.load_trials()))
    return history, spec


def main(argv: Sequence[str] | None = None) -> int:
    """``hpo-tune scaling DIR --cost X``: fit the scaling law of a sweep and predict the best config at cost X."""
    ap = argparse.ArgumentParser(
        prog="hpo-tune scaling",
        description="Fit how each hyperparameter's best value moves with cost along a sweep's Pareto front, and "
        "predict the best config at a larger cost.",
    )
    ap.add_argument("directory", help="the sweep directory")
    ap.add_argument("--cost", type=float, help="predict the best config at this cost")
    ap.add_argument("--cost-key", default=None, help="trial cost entry (default: the searcher's, else wall_seconds)")
    ap.add_argument("--cost-metric", default=None, help="read the cost from this reported metric instead")
    ap.add_argument("--params", default=None, help="comma-separated parameters (default: all)")
    ap.add_argument("--plot", default=None, help="save the plot to this file (png, pdf, svg)")
    ap.add_argument("--json", action="store_true", help="print the fits and prediction as JSON")
    args = ap.parse_args(argv)
    if args.cost is not None and not args.cost > 0:
        print(f"error: --cost must be a positive cost to predict at, got {args.cost}", file=sys.stderr)
        return 2
    try:
        history, spec = load_history(args.directory)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    searcher = spec.get("searcher")
    opts: Mapping[str, Any] = searcher if isinstance(searcher, Mapping) else {}
    cost_key = args.cost_key or opts.get("cost_key") or "wall_seconds"
    cost_metric = args.cost_metric or opts.get("cost_metric")
    params = args.params.split(",") if args.params else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", np.exceptions.RankWarning)
            law = fit_scaling(history, cost_key=cost_key, cost_metric=cost_metric, params=params)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(law.to_dict(args.cost), indent=1, default=str))
    else:
        print(law.summary(args.cost))
    if args.plot:
        law.plot(args.plot, target_cost=args.cost)
        if not args.json:
            print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CARBS: cost-aware Pareto-region Bayesian search (Fetterman et al., "Tune As You Scale", 2023).

CARBS keeps the observed Pareto front of (cost, performance), samples candidates around its members (a Gaussian in a
transformed "basic" space), and picks the candidate that maximizes

    a(x) = EI(g(x) ; tau(c_hat(x))) * pi(x) * p_success(x) * 1[c_hat(x) <= c_max]          (paper Eq. 1, Sec. 3.3)

where ``g`` is the performance GP, ``c_hat`` the log-cost GP's prediction, ``tau(c)`` the Pareto value at cost ``c``
(a GP over the front's members), ``pi`` the search prior (Gaussian density around the nearest front member) and
``p_success`` the chance that the run neither fails nor diverges. Because cost enters the model, the front is a map
from compute to the best hyperparameters found there: a scaling law (:mod:`hpo.scaling` reads it out).

Notation
--------
- ``d``: searched parameters; ``dc``: those with a continuous basic coordinate (Float, Int, ordered numeric
  Choice); ``dk``: categorical ones (unordered Choice), so ``d = dc + dk``.
- ``z``: basic coordinates, ``(dc,)``; ``k``: categorical indices, ``(dk,)``. A config is ``(z, k)``.
- ``D``: GP input dimension, ``dc + sum of category counts`` (one-hot categoricals).
- ``n``: successful trials; ``q``: candidates per suggestion (``num_candidates_per_dim * d``).
- ``y``: objective, lower is better (History sign); ``c``: cost (positive).
- ``r``: search radius in basic units (the Gaussian's standard deviation).

The basic space
---------------
Each parameter maps to one basic coordinate ``z = T(x) / s`` (the reference's ``RealNumberSpace``): ``T = log10``
for log-scale parameters and for numeric choices in geometric progression (batch sizes 16, 32, 64: ordered, on a
log scale, instead of unordered categories), ``T = logit10`` for linear floats strictly inside ``(0, 1)`` (betas),
``T = identity`` otherwise. The scale ``s`` defaults to a quarter of ``T``'s range, so every bounded parameter
spans 4 basic units and one radius means the same share of every range; integer and ordinal grids with fewer than 9
values get 0.5 basic units between neighbours so that a 0.3 radius still moves them. Unordered choices are
one-hot in the GP and switch category with probability ``2 Phi(-1/(2r))`` in the search (a rounded latent
coordinate, as integers move). ``search_center`` sets where the search starts (the reference's required centre;
default: the middle of the bounds); ``scales`` and ``transforms`` override the defaults per parameter.

Modes
-----
``mode="reference"`` is faithful to imbue-ai/carbs' defaults: fixed radius 0.3, 4 random samples around the centre,
resample a front member every 5 observations, 100 candidates per dimension, out-of-bounds candidates rejected,
exploration bias 1.0, the Pareto value clamped from below at its value at a random cost on the front (which pushes
the search up the cost axis), the reference's fixed-hyperparameter GPs and quantile transform (see
:mod:`hpo.surrogates.carbs`). ``mode="carbs"`` (default) changes, where the reference's users hit walls:

- a Sobol random phase (``max(4, d + 1)`` successes) instead of samples around a centre the user must choose well
  (given a ``search_center``, ours samples around it as the reference does);
- GP hyperparameters fitted by marginal likelihood, linear mean (extrapolates "bigger costs more, does better");
- log-EI (no underflow), no bias, no clamp; candidates from the Gaussian truncated to the bounds (an optimum on a
  bound is reachable, nothing piles up there); no duplicate suggestions; an adaptive radius (below);
- cost-aware selection: the acquisition is divided by ``c_hat(x)^beta`` (``cost_exponent``, default 1: expected
  improvement per unit cost, Snoek et al. 2012's "EI per second"), and a suggestion's predicted cost may not exceed
  ``max_cost_growth`` (0.5) times the summed cost of the finished trials. The reference has no cost term (it leans
  on a cheap search centre and the clamp to climb the cost axis); on our synthetic cost-aware benchmark, without
  the cost term our changes did not beat random search on the (cost, loss) hypervolume at equal total cost, with
  it they do (``benchmarks/results/carbs_*``);
- the improvement is the front's (``improvement="hypervolume"``): the expected area a candidate adds to the region
  of (log cost, goodness) that the front dominates, a sum over the front's steps of EI against each step's value
  weighted by its width beyond the candidate's predicted cost
  (:func:`~hpo.surrogates.carbs.log_expected_hypervolume_improvement`). The paper's EI over the Pareto value at the
  predicted cost alone (``"pareto"``) counts a small gain at a cheap cost as much as the same gain where the front
  has a wide gap; on the real cost-aware char-LM that let one seed in three spend its whole budget on hundreds of
  runs in the cheapest corner (``benchmarks/results/carbs_README.md``, section 4);
- both modes: categorical and log-integer parameters; no crash on an empty Pareto set (imbue-ai/carbs issue 6: the
  random phase takes over) or when every trial failed.

Adaptive radius (ours): the reference keeps ``r = 0.3`` (7.5 % of a 4-unit range) so a search started far from the
optimum crawls. We replay the finished trials in ``trial_id`` order and, as TuRBO does for its trust region (Eriksson
et al., NeurIPS 2019, Sec. 2), double ``r`` after 3 trials in a row that entered the Pareto front (were not
dominated by any earlier trial) and halve it after ``max(4, d)`` in a row that did not, within ``[0.1, 2.0]``,
starting at 0.5. Being a replay, it is a function of the history, so a resumed sweep suggests the same.

Cost: ``cost_metric`` (a reported metric, read at the trial's last step) when given, else ``trial.cost[cost_key]``
(default ``wall_seconds``, measured by the executor; ``"flops"`` etc. when the trainable reports
``hpo.report(..., cost={"flops": ...})``, which the trial sums over its reports).

Speed: the reference takes 9 to 10 s per suggestion at 50 observations on 2 cores (1000 Adam steps per GP,
several GPs). Here a suggestion is one Cholesky per GP plus scoring ``q`` candidates; GP hyperparameters are
refitted only when the number of successes passes a geometric schedule (every 25 %), on the earliest
observations, and cached by their data (:class:`hpo.surrogates.carbs.HyperCache`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from botorch.exceptions.warnings import InputDataWarning
from scipy.special import ndtr, ndtri

from hpo.history import History
from hpo.scaling import pareto_groups, trial_cost
from hpo.searcher import Searcher
from hpo.space import Choice, Int, Space
from hpo.surrogates.carbs import (
    CARBSSurrogate,
    HyperCache,
    expected_improvement,
    log_expected_hypervolume_improvement,
    log_expected_improvement,
)
from hpo.trial import Trial, TrialStatus

__all__ = ["BasicSpace", "CARBSSearcher", "pareto_groups", "trial_cost"]

_WIDTH = 4.0  # basic units spanned by a bounded parameter with the default scale
_MODES = ("carbs", "reference")
_IMPROVEMENTS = ("pareto", "hypervolume")


# --------------------------------------------------------------------------------------------------------------
# The basic space
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Axis:
    """One continuous basic coordinate ``z = T(x) / scale`` of a Float, Int or ordered Choice."""

    name: str
    transform: str  # "log" | "logit" | "linear"
    scale: float
    low: float  # parameter bounds (user units)
    high: float
    kind: str  # "float" | "int" | "ordinal"
    step: int = 1
    grid: tuple[float, ...] = ()  # ordinal values, sorted

    def t(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if self.transform == "log":
            return np.log10(x)
        if self.transform == "logit":
            return np.log10(x / (1.0 - x))
        return x

    def t_inv(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        if self.transform == "log":
            return 10.0**t
        if self.transform == "logit":
            return 1.0 / (1.0 + 10.0 ** (-t))
        return t

    def to_z(self, x: Any) -> np.ndarray:
        return self.t(x) / self.scale

    @property
    def lo(self) -> float:
        return float(self.to_z(self.low))

    @property
    def hi(self) -> float:
        return float(self.to_z(self.high))

    def values(self, z: np.ndarray) -> np.ndarray:
        """Basic coordinates -> parameter values (clipped to the bounds, rounded to the grid), vectorized."""
        x = np.clip(self.t_inv(np.asarray(z, dtype=float) * self.scale), self.low, self.high)
        if self.kind == "int":
            x = self.low + np.round((x - self.low) / self.step) * self.step
            return np.clip(x, self.low, self.high)
        if self.kind == "ordinal":
            g = np.asarray(self.grid)
            idx = np.abs(self.t(g)[None, :] - self.t(x)[..., None]).argmin(-1)
            return g[idx]
        return x

    def round(self, z: np.ndarray) -> np.ndarray:
        """Snap to the grid (ints, ordinals); continuous coordinates pass unchanged."""
        return z if self.kind == "float" else self.to_z(self.values(z))

    def value(self, z: float) -> Any:
        v = float(self.values(np.array([z]))[0])
        if self.kind == "int":
            return round(v)
        if self.kind == "ordinal":
            return next(c for c in self.grid if float(c) == v)
        return v


def _ordinal_transform(choices: tuple[Any, ...]) -> str | None:
    """'log' for positive numbers in geometric progression (16, 32, 64), 'linear' for an arithmetic one, else
    None (unordered). Order is taken as given: the choices must already be increasing."""
    if len(choices) < 3 or any(isinstance(c, bool) or not isinstance(c, (int, float)) for c in choices):
        return None
    v = np.asarray(choices, dtype=float)
    if not np.all(np.diff(v) > 0):
        return None
    if v[0] > 0:
        ratios = v[1:] / v[:-1]
        if np.allclose(ratios, ratios[0], rtol=1e-6):
            return "log"
    diffs = np.diff(v)
    if np.allclose(diffs, diffs[0], rtol=1e-6):
        return "linear"
    return None


class BasicSpace:
    """CARBS' transformed search space over a :class:`~hpo.space.Space` (see the module docstring).

    Args:
        space: the search space (its bounds stay hard bounds).
        scales: ``name -> s`` to override the default scale (basic units are ``T(x) / s``).
        transforms: ``name -> "log" | "logit" | "linear"`` to override the default transform of a Float.
        search_center: ``name -> value`` where the search starts; default the middle of the basic bounds.

    Example:
        >>> from hpo.space import Space, Float, Int, Choice
        >>> b = BasicSpace(Space({"lr": Float(1e-4, 1e0, log=True), "bs": Choice([16, 32, 64, 128])}))
        >>> [a.transform for a in b.axes], b.axes[0].scale
        (['log', 'log'], 1.0)
        >>> b.config(*b.encode({"lr": 3e-3, "bs": 64}))
        {'lr': 0.003..., 'bs': 64}
    """

    def __init__(
        self,
        space: Space,
        scales: Mapping[str, float] | None = None,
        transforms: Mapping[str, str] | None = None,
        search_center: Mapping[str, Any] | None = None,
    ) -> None:
        scales, transforms = dict(scales or {}), dict(transforms or {})
        for opt, given in (("scales", scales), ("transforms", transforms), ("search_center", search_center or {})):
            unknown = set(given) - set(space.names)
            if unknown:
                raise ValueError(f"CARBS {opt} names unknown parameters {sorted(unknown)}; the space has {space.names}")
        self.space = space
        self.axes: list[_Axis] = []
        self.cats: list[tuple[str, tuple[Any, ...]]] = []
        self.order: list[tuple[str, int]] = []  # per parameter: ("axis" | "cat", index)
        for name, p in space.params.items():
            axis = self._axis(name, p, transforms.get(name))
            if axis is None:
                assert isinstance(p, Choice)
                self.order.append(("cat", len(self.cats)))
                self.cats.append((name, p.choices))
                continue
            if name in scales:
                if not scales[name] > 0:
                    raise ValueError(f"CARBS scale of {name!r} must be positive, got {scales[name]}")
                axis = _Axis(**{**axis.__dict__, "scale": float(scales[name])})
            self.order.append(("axis", len(self.axes)))
            self.axes.append(axis)
        self.lo = np.array([a.lo for a in self.axes])
        self.hi = np.array([a.hi for a in self.axes])
        self.n_choices = [len(c) for _, c in self.cats]
        self.dc, self.dk = len(self.axes), len(self.cats)
        self.gp_dim = self.dc + sum(self.n_choices)
        center = dict(search_center or {})
        z0 = 0.5 * (self.lo + self.hi)
        k0 = np.zeros(self.dk, dtype=int)
        for name, value in center.items():
            kind, i = self.order[space.names.index(name)]
            if kind == "axis":
                if not space.params[name].contains(value):
                    raise ValueError(f"CARBS search_center {name}={value!r} is outside the space")
                z0[i] = float(self.axes[i].to_z(value))
            else:
                k0[i] = space.params[name].index(value)
        self.center_z = np.array([a.round(np.array([z]))[0] for a, z in zip(self.axes, z0, strict=True)])
        self.center_k = k0

    @staticmethod
    def _axis(name: str, p: Any, transform: str | None) -> _Axis | None:
        if isinstance(p, Choice):
            tr = _ordinal_transform(p.choices)
            if tr is None:
                return None
            grid = tuple(p.choices)
            lo, hi, kind, n = float(min(grid)), float(max(grid)), "ordinal", len(grid)
        elif isinstance(p, Int):
            tr = "log" if p.log else "linear"
            lo, hi, kind, n, grid = float(p.low), float(p.high), "int", (p.high - p.low) // p.step + 1, ()
        else:
            tr = transform or ("log" if p.log else "logit" if 0.0 < p.low and p.high < 1.0 else "linear")
            lo, hi, kind, n, grid = float(p.low), float(p.high), "float", math.inf, ()
        if transform is not None and transform not in ("log", "logit", "linear"):
            raise ValueError(f"CARBS transform of {name!r} must be 'log', 'logit' or 'linear', got {transform!r}")
        if (tr == "log" and lo <= 0) or (tr == "logit" and not (0.0 < lo and hi < 1.0)):
            raise ValueError(f"CARBS transform {tr!r} does not fit {name!r} with bounds [{lo}, {hi}]")
        probe = _Axis(name, tr, 1.0, lo, hi, kind, getattr(p, "step", 1), grid)
        span = float(probe.to_z(hi) - probe.to_z(lo))
        # A grid with few values gets 0.5 basic units between neighbours (on average), so a 0.3 radius moves it.
        width = _WIDTH if n >= 9 else 0.5 * (n - 1)
        return _Axis(name, tr, span / width, lo, hi, kind, getattr(p, "step", 1), grid)

    # -- configs <-> (z, k) ------------------------------------------------------------------------------------

    def encode(self, config: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        z = np.array([float(a.to_z(config[a.name])) for a in self.axes])
        k = np.array([self.space.params[name].index(config[name]) for name, _ in self.cats], dtype=int)
        return z, k

    def config(self, z: np.ndarray, k: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, (kind, i) in zip(self.space.names, self.order, strict=True):
            out[name] = self.axes[i].value(z[i]) if kind == "axis" else self.cats[i][1][int(k[i])]
        return out

    def round(self, Z: np.ndarray) -> np.ndarray:
        """Snap candidates ``(q, dc)`` to the integer and ordinal grids."""
        Z = Z.copy()
        for i, a in enumerate(self.axes):
            Z[:, i] = a.round(Z[:, i])
        return Z

    def gp_inputs(self, Z: np.ndarray, K: np.ndarray, shifted: bool) -> np.ndarray:
        """``(q, D)`` GP inputs: basic coordinates (shifted to the lower bound and divided by the 4-unit width when
        ``shifted``, so that a default-scaled range is ``[0, 1]`` as BoTorch's priors expect) and one-hot
        categories."""
        cont = (Z - self.lo) / _WIDTH if shifted else Z
        parts = [cont] + [np.eye(m)[K[:, j]] for j, m in enumerate(self.n_choices)]
        return np.hstack(parts) if parts else np.zeros((len(Z), 0))

    def in_bounds(self, Z: np.ndarray) -> np.ndarray:
        # The reference pads integer bounds by 0.1 so that rounding may reach them; in basic units, half a step
        # of the grid does the same.
        return np.all((Z >= self.lo - 1e-9) & (Z <= self.hi + 1e-9), axis=1)


# --------------------------------------------------------------------------------------------------------------
# Cost and the Pareto front
# --------------------------------------------------------------------------------------------------------------


def _nondominated_in_order(costs: np.ndarray, ys: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: trial ``i`` succeeded and no earlier successful trial has cost <= and objective <= its own."""
    out = np.zeros(len(costs), dtype=bool)
    for i in range(len(costs)):
        if not ok[i]:
            continue
        prev = ok[:i]
        out[i] = not np.any((costs[:i][prev] <= costs[i]) & (ys[:i][prev] <= ys[i]))
    return out


def _fit_rows(n: int, start: int = 4, growth: float = 1.25) -> int:
    """The largest refit point ``<= n`` of the schedule ``m_0 = start, m_{j+1} = ceil(g m_j)`` (4, 5, 7, 9, 12, 15,
    19, 24, 30, 38, 48, 60, 75, 94, 118, 148, 185, 232, ...): hyperparameters are refitted each time the number of
    observations passes one, on the earliest ``_fit_rows(n)`` observations."""
    if n <= start:
        return n
    m = start
    while math.ceil(m * growth) <= n:
        m = math.ceil(m * growth)
    return m


# --------------------------------------------------------------------------------------------------------------
# The searcher
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Data:
    """The history as CARBS reads it, in trial order."""

    z: np.ndarray  # (n, dc) successes
    k: np.ndarray  # (n, dk)
    keys: list[Any]
    configs: list[dict[str, Any]]  # searched values of the successes, exactly as run
    y: np.ndarray  # (n,)
    c: np.ndarray  # (n,)
    ids: np.ndarray  # (n,) trial ids
    z_out: np.ndarray  # (N, dc) every finished trial (successes and failures)
    k_out: np.ndarray  # (N, dk)
    ok: np.ndarray  # (N,) succeeded
    z_pend: np.ndarray  # (m, dc) pending, running, paused
    k_pend: np.ndarray  # (m, dk)
    pend_keys: list[Any]
    seen: set[Any]  # keys of every trial
    n_repeats: int  # trials whose config repeats an earlier trial's
    out_ids: np.ndarray  # (N,) trial ids of finished trials
    out_c: np.ndarray  # (N,) costs (nan for failures without one)
    out_y: np.ndarray  # (N,) objectives (nan for failures)
    out_repeat: np.ndarray  # (N,) repeats an earlier trial's config


class CARBSSearcher(Searcher):
    """Cost-aware Pareto-region Bayesian search (Fetterman et al. 2023); see the module docstring.

    Args:
        space: the search space.
        seed: seeds every random draw; a suggestion is a function of ``(space, history, seed)``.
        mode: ``"carbs"`` (ours) or ``"reference"`` (imbue-ai/carbs' defaults, to measure our changes against).
        cost_key: which ``trial.cost`` entry is the cost (``wall_seconds`` by default; ``flops``... if reported).
        cost_metric: read the cost from this reported metric instead (at the trial's last step).
        search_center: ``name -> value`` where the search starts (the reference's random phase samples around it).
        scales, transforms: per-parameter basic-space overrides (see :class:`BasicSpace`).
        max_suggestion_cost: never suggest a config whose predicted cost exceeds this (the GP's prediction; runs
            may still cost more).
        search_radius: the initial radius in basic units (default 0.5 ours, 0.3 reference).
        adaptive_radius: adapt the radius to Pareto successes and failures (default on for ours, off for reference).
        num_random_samples: successes needed before the model takes over (default ``max(4, d + 1)`` ours, 4 ref).
        num_candidates_per_dim: candidates per suggestion per parameter (100).
        resample_frequency: resample a Pareto member after every this many successes (5; 0 disables).
        min_pareto_cost_fraction: see :func:`pareto_groups` (0.2).
        exploration_bias: EI's bias in goodness units (default 0 ours, 1.0 reference).
        clamp_pareto_value: clamp the Pareto value from below at a random cost on the front (default: reference
            only).
        max_cost_growth: cap a suggestion's predicted cost at this times the finished trials' summed cost (default
            0.5 ours, None reference; None disables).
        max_radius: the adaptive radius' upper bound in basic units (2.0).
        cost_exponent: ``beta`` in ``a(x) / c_hat(x)^beta`` (default 1 ours: EI per unit cost; 0 reference).
        improvement: what the acquisition's EI measures: ``"hypervolume"`` (default ours), the expected area added
            to the front's dominated region of (log cost, goodness)
            (:func:`~hpo.surrogates.carbs.log_expected_hypervolume_improvement`), or ``"pareto"`` (the reference's
            and the paper's), EI over the Pareto value at the candidate's predicted cost.

    Example:
        >>> from hpo.space import Space, Float, Int
        >>> space = Space({"lr": Float(1e-4, 1e-1, log=True), "steps": Int(10, 1000, log=True)})
        >>> s = CARBSSearcher(space, seed=0)
        >>> sorted(s.suggest(History(space, "loss")))
        ['lr', 'steps']
    """

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        mode: str = "carbs",
        cost_key: str = "wall_seconds",
        cost_metric: str | None = None,
        search_center: Mapping[str, Any] | None = None,
        scales: Mapping[str, float] | None = None,
        transforms: Mapping[str, str] | None = None,
        max_suggestion_cost: float | None = None,
        search_radius: float | None = None,
        adaptive_radius: bool | None = None,
        num_random_samples: int | None = None,
        num_candidates_per_dim: int = 100,
        resample_frequency: int = 5,
        min_pareto_cost_fraction: float = 0.2,
        exploration_bias: float | None = None,
        clamp_pareto_value: bool | None = None,
        max_cost_growth: float | str | None = "default",
        max_radius: float = 2.0,
        cost_exponent: float | None = None,
        improvement: str | None = None,
    ) -> None:
        super().__init__(space, seed)
        if mode not in _MODES:
            raise ValueError(f"CARBS mode must be one of {_MODES}, got {mode!r}")
        ref = mode == "reference"
        self.mode, self.cost_key, self.cost_metric = mode, cost_key, cost_metric
        self.basic = BasicSpace(space, scales, transforms, search_center)
        self.centered = bool(search_center)
        self.max_suggestion_cost = max_suggestion_cost
        self.radius0 = float(search_radius if search_radius is not None else (0.3 if ref else 0.5))
        self.adaptive_radius = (not ref) if adaptive_radius is None else bool(adaptive_radius)
        self.radius_bounds = (0.1, float(max_radius))
        d = space.dim
        self.num_random_samples = int(
            num_random_samples if num_random_samples is not None else (4 if ref else max(4, d + 1))
        )
        self.num_candidates = int(num_candidates_per_dim) * d
        self.resample_frequency = int(resample_frequency)
        self.min_pareto_cost_fraction = float(min_pareto_cost_fraction)
        self.exploration_bias = float(exploration_bias if exploration_bias is not None else (1.0 if ref else 0.0))
        self.cost_exponent = float(cost_exponent if cost_exponent is not None else (0.0 if ref else 1.0))
        improvement = improvement if improvement is not None else ("pareto" if ref else "hypervolume")
        if improvement not in _IMPROVEMENTS:
            raise ValueError(f"CARBS improvement must be one of {_IMPROVEMENTS}, got {improvement!r}")
        if ref and improvement != "pareto":
            raise ValueError(
                "CARBS mode='reference' scores EI over the Pareto value (improvement='pareto'); "
                "use mode='carbs' for improvement='hypervolume'"
            )
        self.improvement = improvement
        self.clamp_pareto_value = ref if clamp_pareto_value is None else bool(clamp_pareto_value)
        if max_cost_growth == "default":
            max_cost_growth = None if ref else 0.5
        self.max_cost_growth = None if max_cost_growth is None else float(max_cost_growth)
        self._cache = HyperCache()
        self.last_info: dict[str, Any] = {}

    # -- reading the history -----------------------------------------------------------------------------------

    def _cost(self, trial: Trial) -> float | None:
        return trial_cost(trial, self.cost_key, self.cost_metric)

    def _data(self, history: History) -> _Data:
        b = self.basic
        z, k, keys, configs, y, c, ids = [], [], [], [], [], [], []
        z_out, k_out, ok, out_ids, out_c, out_y, out_rep = [], [], [], [], [], [], []
        z_pend, k_pend, pend_keys = [], [], []
        seen: set[Any] = set()
        repeats = 0
        for t in sorted(history, key=lambda t: t.trial_id):
            key = self.space.key(t.config)
            repeat = key in seen
            repeats += repeat
            seen.add(key)
            if t.status in (TrialStatus.PENDING, TrialStatus.RUNNING, TrialStatus.PAUSED):
                zi, ki = b.encode(t.config)
                z_pend.append(zi)
                k_pend.append(ki)
                pend_keys.append(key)
                continue
            if t.status not in (TrialStatus.COMPLETED, TrialStatus.FAILED):
                continue  # stopped early by a scheduler: neither a full-cost result nor a failure
            zi, ki = b.encode(t.config)
            yi = history.objective(t) if t.status is TrialStatus.COMPLETED else None
            ci = self._cost(t)
            success = yi is not None and math.isfinite(yi)
            if success and ci is None:
                raise ValueError(
                    f"CARBS: trial {t.trial_id} has no cost "
                    + (
                        f"metric {self.cost_metric!r} (it reported {sorted(t.curve[-1][1]) if t.curve else []})"
                        if self.cost_metric
                        else f"{self.cost_key!r} (its costs: {sorted(t.cost)})"
                    )
                    + "; set cost_key/cost_metric to what the trainable reports"
                )
            z_out.append(zi)
            k_out.append(ki)
            ok.append(success)
            out_ids.append(t.trial_id)
            out_c.append(max(ci, 1e-12) if ci is not None else math.nan)
            out_y.append(yi if success else math.nan)
            out_rep.append(repeat)
            if success:
                z.append(zi)
                k.append(ki)
                keys.append(key)
                configs.append({name: t.config[name] for name in self.space.names})
                y.append(yi)
                c.append(max(ci, 1e-12))  # an instant run reports 0 s; log cost needs > 0
                ids.append(t.trial_id)
        dc, dk = b.dc, b.dk

        def arr(rows: list[np.ndarray], width: int, dtype: type = float) -> np.ndarray:
            return np.asarray(rows, dtype=dtype).reshape(len(rows), width)

        return _Data(
            arr(z, dc),
            arr(k, dk, int),
            keys,
            configs,
            np.asarray(y, float),
            np.asarray(c, float),
            np.asarray(ids, int),
            arr(z_out, dc),
            arr(k_out, dk, int),
            np.asarray(ok, bool),
            arr(z_pend, dc),
            arr(k_pend, dk, int),
            pend_keys,
            seen,
            repeats,
            np.asarray(out_ids, int),
            np.asarray(out_c, float),
            np.asarray(out_y, float),
            np.asarray(out_rep, bool),
        )

    # -- suggest -----------------------------------------------------------------------------------------------

    def suggest(self, history: History) -> dict[str, Any] | None:
        threads = torch.get_num_threads()
        # Matrices of a few hundred rows: threads cost more in contention than they save, above all on shared cores.
        torch.set_num_threads(1)
        try:
            with warnings.catch_warnings():
                # Quantile-transformed outcomes with fantasies are not exactly standardized, and candidates may sit
                # outside the unit cube: BoTorch's input checks would warn on every suggestion.
                warnings.simplefilter("ignore", InputDataWarning)
                return self._suggest(history)
        finally:
            torch.set_num_threads(threads)

    def _suggest(self, history: History) -> dict[str, Any]:
        data = self._data(history)
        rng = np.random.default_rng([self.seed, len(history), 0xCA4B5])
        n = len(data.y)
        if n < self.num_random_samples or n == 0:
            # Random phase; also the fallback when nothing succeeded yet (empty Pareto set: imbue-ai/carbs#6).
            return self._random(history, data, rng)
        groups = pareto_groups(data.keys, data.c, data.y, self.min_pareto_cost_fraction, conservative=True)
        if self.resample_frequency > 0 and n > (data.n_repeats + 1) * self.resample_frequency:
            return self._resample(data)
        try:
            return self._bayes(data, groups, rng)
        except Exception as e:  # a numerical accident must not end the sweep
            warnings.warn(f"CARBS: model step failed ({type(e).__name__}: {e}); suggesting at random", stacklevel=2)
            self.last_info = {"phase": "random-fallback", "error": str(e)}
            return self._random(history, data, rng)

    def _random(self, history: History, data: _Data, rng: np.random.Generator) -> dict[str, Any]:
        b = self.basic
        if self.mode == "reference" or self.centered:
            # The reference samples around the search centre with the search radius, rejecting points outside
            # the bounds (and gives up on rejection after enough tries: we clip then). Ours does too when the user
            # gave a centre: it says where good (and cheap) runs are.
            for _ in range(8):
                Z = b.center_z + self.radius0 * rng.standard_normal((32, b.dc))
                Z = b.round(Z)
                Z = Z[b.in_bounds(Z)]
                if len(Z):
                    K = self._switch(np.tile(b.center_k, (len(Z), 1)), self.radius0, rng)
                    self.last_info = {"phase": "random"}
                    return b.config(Z[0], K[0])
            Z = b.round(np.clip(b.center_z[None], b.lo, b.hi))
            return b.config(Z[0], b.center_k)
        # Sobol point len(history), skipping configs already tried (grids make repeats possible)
        index = len(history)
        for _ in range(1000):
            u = self.space.sobol(1, seed=self.seed, skip=index)[0]
            config = {n: v for n, v in self.space.decode(u).items() if n in self.space.params}
            if self.space.key(config) not in data.seen:
                break
            index += 1
        self.last_info = {"phase": "random"}
        return config

    def _resample(self, data: _Data) -> dict[str, Any]:
        """Run a Pareto member again: the member with the fewest runs (pending ones counted), cheapest first
        (the reference's ``_get_resample_suggestion``, non-conservative groups)."""
        groups = pareto_groups(data.keys, data.c, data.y, self.min_pareto_cost_fraction, conservative=False)
        counts = [len(g) + data.pend_keys.count(data.keys[g[0]]) for g in groups]
        g = groups[int(np.argmin(counts))]
        self.last_info = {"phase": "resample", "trial_id": int(data.ids[g[0]])}
        return dict(data.configs[g[0]])  # the exact values: a round trip through basic space could change a bit

    def radius(self, data: _Data) -> float:
        """The search radius: fixed, or adapted by replaying Pareto successes and failures (module docstring)."""
        if not self.adaptive_radius:
            return self.radius0
        r_min, r_max = self.radius_bounds
        tol_fail = max(4, self.space.dim)
        improved = _nondominated_in_order(data.out_c, data.out_y, data.ok)
        order = np.argsort(data.out_ids, kind="stable")
        r, succ, fail = self.radius0, 0, 0
        for i in order:
            if data.out_ids[i] < self.num_random_samples or data.out_repeat[i]:
                continue  # random-phase trials and resamples say nothing about the local search
            if improved[i]:
                succ, fail = succ + 1, 0
            else:
                succ, fail = 0, fail + 1
            if succ >= 3:
                r, succ = min(2 * r, r_max), 0
            elif fail >= tol_fail:
                r, fail = max(r / 2, r_min), 0
        return r

    def cost_cap(self, data: _Data) -> float | None:
        """The most a suggestion may cost (predicted): ``max_suggestion_cost``, and ours ``max_cost_growth`` times
        the summed cost of the finished trials, so no single run bets more than a share of what the sweep has
        spent (a doubling schedule: the front is built from cheap runs up, and one run at the top of the cost range
        cannot swallow the budget)."""
        caps = [] if self.max_suggestion_cost is None else [self.max_suggestion_cost]
        if self.max_cost_growth is not None:
            spent = float(np.nansum(data.out_c))
            if spent > 0:
                caps.append(self.max_cost_growth * spent)
        return min(caps) if caps else None

    def _switch(self, K: np.ndarray, r: float, rng: np.random.Generator) -> np.ndarray:
        """Move each categorical to another value with probability ``2 Phi(-1/(2r))``."""
        if not self.basic.dk:
            return K
        K = K.copy()
        p = 2 * ndtr(-0.5 / r)
        for j, m in enumerate(self.basic.n_choices):
            if m < 2:
                continue
            move = rng.random(len(K)) < p
            K[move, j] = (K[move, j] + rng.integers(1, m, int(move.sum()))) % m
        return K

    def _candidates(
        self, origins_z: np.ndarray, origins_k: np.ndarray, r: float, rng: np.random.Generator, seen_rows: set[bytes]
    ) -> tuple[np.ndarray, np.ndarray]:
        b, q = self.basic, self.num_candidates
        ref = self.mode == "reference"
        # The reference over-generates by 2^(bounded dims / 2) and rejects points outside the bounds.
        factor = 2 ** (b.dc // 2) if ref else 1
        for _ in range(b.dc + 1):
            m = q * factor
            idx = rng.integers(0, len(origins_z), m)
            K = self._switch(origins_k[idx], r, rng)
            if not ref:
                # Each coordinate from the Gaussian truncated to the bounds (inverse-CDF sampling): the density
                # keeps its shape inside, and no candidate piles up on a bound as clipping would make them.
                o = origins_z[idx]
                a, c = ndtr((b.lo - o) / r), ndtr((b.hi - o) / r)
                u = a + (c - a) * rng.random((m, b.dc))
                Z = np.clip(o + r * ndtri(np.clip(u, 1e-12, 1 - 1e-12)), b.lo, b.hi)
            else:
                Z = origins_z[idx] + r * rng.standard_normal((m, b.dc))
            if ref:
                keep = b.in_bounds(Z)
                Z, K = b.round(Z[keep][:q]), K[keep][:q]
                if len(Z) >= q or factor >= 2**b.dc:
                    break
                factor *= 2
            else:
                Z = b.round(Z)
                fresh = np.array([_row_key(z, k) not in seen_rows for z, k in zip(Z, K, strict=True)], dtype=bool)
                Z, K = Z[fresh], K[fresh]
                break
        return Z, K

    def _log_prior(
        self, Z: np.ndarray, K: np.ndarray, origins_z: np.ndarray, origins_k: np.ndarray, r: float
    ) -> np.ndarray:
        """``log pi``: the search distribution's log density at each candidate, for its likeliest origin, up to a
        constant. Reference: ``Normal(0, r).log_prob(||z - o||)`` (a 1-d density of the Euclidean distance, a
        category mismatch counting as distance 1); ours: the Gaussian's ``-||z - o||^2 / 2r^2`` plus the log
        probability of the category switches."""
        dz = Z[:, None, :] - origins_z[None, :, :]
        mismatch = K[:, None, :] != origins_k[None, :, :]  # (q, g, dk)
        if self.mode == "reference":
            dist2 = (dz**2).sum(-1) + mismatch.sum(-1)
            return (-0.5 * dist2 / r**2).max(1)
        lp = -0.5 * (dz**2).sum(-1) / r**2
        if self.basic.dk:
            p = 2 * ndtr(-0.5 / r)
            m = np.asarray(self.basic.n_choices, dtype=float)
            lp = lp + np.where(mismatch, np.log(p / np.maximum(m - 1, 1)), np.log1p(-p)).sum(-1)
        return lp.max(1)

    def _bayes(self, data: _Data, groups: list[list[int]], rng: np.random.Generator) -> dict[str, Any]:
        b, ref = self.basic, self.mode == "reference"
        r = self.radius(data)
        origins = [g[0] for g in groups]
        oz, ok_ = data.z[origins], data.k[origins]
        seen_rows = set()
        if not ref:
            seen_rows = {_row_key(z, k) for z, k in zip(data.z_out, data.k_out, strict=True)}
            seen_rows |= {_row_key(z, k) for z, k in zip(data.z_pend, data.k_pend, strict=True)}
        Zc, Kc = self._candidates(oz, ok_, r, rng, seen_rows)
        if len(Zc) == 0:
            raise RuntimeError("no candidate inside the bounds")
        shifted = not ref
        # The reference's Matern lengthscale is its radius, in its basic units.
        surrogate = CARBSSurrogate(self.mode, radius=self.radius0, cache=self._cache)
        surrogate.fit(
            b.gp_inputs(data.z, data.k, shifted),
            data.y,
            data.c,
            b.gp_inputs(data.z_pend, data.k_pend, shifted),
            rng,
            Z_outcome=b.gp_inputs(data.z_out, data.k_out, shifted),
            succeeded=data.ok,
            fit_rows=_fit_rows(len(data.y)),
            outcome_fit_rows=_fit_rows(len(data.ok)),
        )
        members = [i for g in groups for i in g]
        surrogate.fit_pareto(data.c[members], data.y[members])
        pred = surrogate.predict(b.gp_inputs(Zc, Kc, shifted))
        tau = pred.tau
        # Clamp the Pareto value from below at its value at a random cost on the front (log-uniform between the
        # cheapest and the dearest member): cheap candidates must then beat a dearer member, which pushes the search
        # up the cost axis (the reference's is_expected_improvement_pareto_value_clamped).
        g_cost = [data.c[g].mean() for g in groups]
        lo, hi = math.log(g_cost[0]), math.log(g_cost[-1])
        if self.max_suggestion_cost is not None:
            hi = min(hi, math.log(self.max_suggestion_cost))
        threshold = math.exp(rng.uniform(lo, max(lo, hi)))
        if self.clamp_pareto_value:
            tau = np.maximum(tau, surrogate.pareto_value(surrogate.ell(np.array([threshold])))[0])
        logp_prior = self._log_prior(Zc, Kc, oz, ok_, r)
        cap = self.cost_cap(data)
        allowed = np.ones(len(Zc), dtype=bool)
        if cap is not None:
            allowed = pred.log_cost < math.log(cap)
            if not allowed.any():
                allowed = pred.log_cost <= pred.log_cost.min()  # none under the cap: the cheapest
        if ref:
            ei = expected_improvement(pred.g_mean, pred.g_std, tau, self.exploration_bias)
            score = ei * np.exp(logp_prior) * pred.p_success * allowed
        else:
            if self.improvement == "hypervolume":
                log_ei = self._log_hvi(surrogate, pred, data, groups)
            else:
                log_ei = log_expected_improvement(pred.g_mean, pred.g_std, tau, self.exploration_bias)
            with np.errstate(divide="ignore"):
                score = log_ei + logp_prior + np.log(pred.p_success) + np.where(allowed, 0.0, -np.inf)
                score = score - self.cost_exponent * pred.log_cost
        best = int(np.argmax(score))
        self.last_info = {
            "phase": "bayes",
            "radius": r,
            "candidates": len(Zc),
            "pareto_groups": len(groups),
            "predicted_cost": float(math.exp(pred.log_cost[best])),
            "p_success": float(pred.p_success[best]),
            "g_mean": float(pred.g_mean[best]),
            "tau": float(tau[best]),
        }
        return b.config(Zc[best], Kc[best])

    def _log_hvi(self, surrogate: CARBSSurrogate, pred: Any, data: _Data, groups: list[list[int]]) -> np.ndarray:
        """``log E[HVI]`` of each candidate against the front of Pareto groups (group means), goodness counted
        from the worst observed and cost up to one standard deviation of log cost beyond the dearest of the
        members and candidates (so that beating the best value anywhere still counts)."""
        front_ell = surrogate.ell(np.array([data.c[g].mean() for g in groups]))
        front_g = surrogate.goodness(np.array([data.y[g].mean() for g in groups]))
        ell = surrogate.ell_of_log_cost(pred.log_cost)
        ell_ref = float(max(ell.max(), front_ell.max())) + 1.0
        g_ref = float(surrogate.goodness(np.array([data.y.max()]))[0])
        return log_expected_hypervolume_improvement(
            pred.g_mean, pred.g_std, ell, front_ell, front_g, g_ref, ell_ref, self.exploration_bias
        )


def _row_key(z: np.ndarray, k: np.ndarray) -> bytes:
    return np.round(z, 12).tobytes() + np.asarray(k, dtype=np.int64).tobytes()

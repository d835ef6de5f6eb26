"""Optuna plug-ins: any hpo searcher as an Optuna sampler, and a pruner driven by the freeze-thaw curve model.

Change one line of an Optuna script::

    study = optuna.create_study(direction="minimize", sampler=HpoSampler("gp_ei", seed=0))   # <- this
    study.optimize(objective, n_trials=50)

Notation
--------
- relative space: the parameters sampled together by the hpo searcher (Optuna's ``infer_relative_search_space``):
  the distributions every completed trial shares (:class:`optuna.search_space.IntersectionSearchSpace`, as
  Optuna's GP sampler does), or a ``search_space`` given up front. Other parameters (the branches of a conditional,
  define-by-run space) are sampled independently by a seeded :class:`optuna.samplers.RandomSampler`.
- step: an hpo curve step is Optuna's intermediate step ``+ 1`` (Optuna counts reports from 0, hpo from 1), so
  ``max_step`` is the number of reports of a full run.
- metric: the hpo History's metric is ``"value"`` (the study's objective); ``mode`` is the study's direction.

Trial states become hpo statuses: COMPLETE -> completed (the objective value at ``max(max_step, last step)``, after
its intermediate values), FAIL -> failed (a NaN objective fails the trial in Optuna already), PRUNED -> stopped (its
intermediate values are its curve), RUNNING -> running and WAITING -> pending (so the searcher accounts for work in
flight, ``n_jobs > 1`` included).
"""

from __future__ import annotations

import inspect
import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState
from scipy.stats import norm

from hpo.history import History
from hpo.integrations import (
    Axis,
    SearcherSpec,
    check_searcher_spec,
    choice_axis,
    explain_fidelity,
    grid_axis,
    make_searcher,
    searcher_name,
)
from hpo.registry import resolve
from hpo.searcher import Searcher
from hpo.space import Fidelity, Float, Int, Space
from hpo.trial import Trial, TrialStatus

__all__ = ["HpoFreezeThawPruner", "HpoSampler", "axis_from_distribution", "history_from_study"]

METRIC = "value"
_FIDELITY = "optuna_step"
_STATUS = {
    TrialState.COMPLETE: TrialStatus.COMPLETED,
    TrialState.FAIL: TrialStatus.FAILED,
    TrialState.PRUNED: TrialStatus.STOPPED,
    TrialState.RUNNING: TrialStatus.RUNNING,
    TrialState.WAITING: TrialStatus.PENDING,
}


def axis_from_distribution(name: str, dist: BaseDistribution) -> Axis:
    """An Optuna distribution as an :class:`~hpo.integrations.Axis`.

    ``FloatDistribution(low, high, step=q)`` searches the grid index ``k`` of ``low + k q`` (an ``Int``); other
    floats and all ints map one to one (``IntDistribution(step=q)`` -> ``Int(step=q)``); categoricals -> ``Choice``.

    Example:
        >>> axis_from_distribution("wd", FloatDistribution(0.0, 0.3, step=0.1)).parameter
        Int(low=0, high=3, log=False, step=1)
    """
    if isinstance(dist, FloatDistribution):
        if dist.step is not None:
            n = round((dist.high - dist.low) / dist.step)
            return grid_axis(dist.low, dist.step, 0, n, bounds=(dist.low, dist.high))
        return Axis(Float(float(dist.low), float(dist.high), log=dist.log))
    if isinstance(dist, IntDistribution):
        return Axis(Int(int(dist.low), int(dist.high), log=dist.log, step=int(dist.step)))
    if isinstance(dist, CategoricalDistribution):
        return choice_axis(dist.choices)
    raise ValueError(f"parameter {name!r}: unsupported Optuna distribution {type(dist).__name__}")


def _mode(study: Study) -> str:
    if study._is_multi_objective():
        raise ValueError(
            "HpoSampler and HpoFreezeThawPruner optimize one objective; this study has "
            f"{len(study.directions)}. For CARBS's cost, return the loss and call trial.set_user_attr('cost', c)"
        )
    return "max" if study.direction == StudyDirection.MAXIMIZE else "min"


def history_from_study(
    trials: Sequence[FrozenTrial],
    space: Space,
    axes: Mapping[str, Axis],
    mode: str,
    pending: Mapping[int, Mapping[str, Any]] | None = None,
    cost_attr: str | None = None,
    require_cost: bool = False,
    fill: Mapping[str, Any] | None = None,
) -> History:
    """An hpo History of Optuna trials (see the module docstring for the mapping).

    A trial enters with its values of the space's parameters (user values mapped by ``axes``), or, for a trial
    this process sampled and that has not stored them yet, with ``pending[trial.number]`` (hpo values). Trials
    without a value of every parameter, or with a value outside the space (a dynamic range), are left out.

    Args:
        trials: the study's trials.
        space, axes: the hpo space and its axes by parameter name.
        mode: ``"min"`` or ``"max"``.
        pending: hpo configs of trials sampled here but not yet stored, by trial number.
        cost_attr: a user attribute copied into ``trial.cost`` under its own name (CARBS's cost).
        require_cost: a completed trial without ``cost_attr`` raises ``ValueError``.
        fill: values of parameters the trials do not have.
    """
    pending = pending or {}
    max_step = space.max_step
    out: list[Trial] = []
    for ft in sorted(trials, key=lambda t: t.number):
        status = _STATUS.get(ft.state)
        if status is None:
            continue
        config = _config(ft, axes, pending, fill or {})
        if config is None:
            continue
        curve = [(int(s) + 1, {METRIC: float(v)}) for s, v in sorted(ft.intermediate_values.items())]
        if ft.state == TrialState.COMPLETE and ft.value is not None:
            final = max(max_step, curve[-1][0] if curve else 1)
            if curve and curve[-1][0] == final:
                curve[-1] = (final, {METRIC: float(ft.value)})
            else:
                curve.append((final, {METRIC: float(ft.value)}))
        cost: dict[str, float] = {}
        if ft.datetime_start is not None and ft.datetime_complete is not None:
            cost["wall_seconds"] = (ft.datetime_complete - ft.datetime_start).total_seconds()
        if cost_attr is not None:
            c = ft.user_attrs.get(cost_attr)
            if isinstance(c, (int, float)) and not isinstance(c, bool):
                cost[cost_attr] = float(c)
            elif require_cost and ft.state == TrialState.COMPLETE:
                raise ValueError(
                    f"trial {ft.number} has no cost: the searcher needs one; call "
                    f"trial.set_user_attr({cost_attr!r}, cost) in the objective (e.g. the FLOPs or tokens it used)"
                )
        error = "the objective raised or returned NaN" if status is TrialStatus.FAILED else None
        out.append(Trial(ft.number, space.complete(config), status, tuple(curve), cost, error))
    return History(space, METRIC, mode, tuple(out))


def _config(ft: FrozenTrial, axes: Mapping[str, Axis], pending: Mapping[int, Mapping[str, Any]],
            fill: Mapping[str, Any]) -> dict[str, Any] | None:
    params = {**fill, **ft.params}
    if not all(n in params for n in axes):
        if ft.state == TrialState.WAITING:
            params = {**fill, **ft.system_attrs.get("fixed_params", {})}  # enqueued: its params are known
        if not all(n in params for n in axes):
            hit = pending.get(ft.number)
            return dict(hit) if hit is not None else None
    config = {}
    for n, axis in axes.items():
        if not axis.contains(params[n]):
            return None
        config[n] = axis.to_hpo(params[n])
    return config


class _SpaceCache:
    """hpo spaces (and what hangs on them) by relative search space: a conditional study's relative space grows
    as trials complete, and each new one gets its own hpo space and searcher."""

    def __init__(self, max_step: int | None) -> None:
        self.max_step = max_step
        self._entries: dict[tuple, dict[str, Any]] = {}

    def get(self, search_space: Mapping[str, BaseDistribution]) -> dict[str, Any]:
        key = tuple((n, repr(d)) for n, d in search_space.items())
        entry = self._entries.get(key)
        if entry is None:
            axes = {n: axis_from_distribution(n, d) for n, d in search_space.items()}
            fidelity = Fidelity(_FIDELITY, 1, int(self.max_step)) if self.max_step else None
            space = Space({n: a.parameter for n, a in axes.items()}, fidelity=fidelity)
            entry = self._entries[key] = {"space": space, "axes": axes}
        return entry


class HpoSampler(BaseSampler):
    """Any hpo searcher as an Optuna sampler.

    At the start of each trial, :meth:`sample_relative` rebuilds a :class:`~hpo.history.History` from the study
    (pending trials included, and those this process sampled for other threads) and asks the wrapped searcher for
    one config of the relative space; the other parameters are sampled by a seeded ``RandomSampler``. Suggestions
    are a function of the study's trials and ``seed``, so the same study in another process suggests the same
    values, and a pickled sampler continues as the original would. Values are Python ``int``/``float``, inside the
    distributions' bounds and on their step grids.

    Like Optuna's GP and CMA-ES samplers, an inferred relative space is empty until a trial completes: the first
    trial is sampled independently. Give ``search_space`` to have the hpo searcher choose from the first trial
    on; with it, a sequential study suggests exactly what ``hpo.run`` would for the same searcher and seed (tested).

    Cost (CARBS): a searcher that takes a ``cost_key`` option (CARBS) reads the user attribute ``cost_attr``
    (default ``"cost"``): call ``trial.set_user_attr("cost", c)`` in the objective with the run's cost (FLOPs,
    GPU-hours, tokens); a completed trial without it raises ``ValueError``. Give ``searcher_options={"cost_key":
    "wall_seconds"}`` to use the duration Optuna measured instead. Multi-objective studies are refused.

    Args:
        searcher: the hpo searcher: a registered name (``"random"``, ``"gp_ei"``, ``"aegis"``, ``"carbs"``,
            ``"freeze_thaw"``), ``{"name": ..., **options}``, a Searcher class or a function ``space -> Searcher``.
        seed: seeds the searcher and the independent sampler; None draws one (not reproducible).
        search_space: ``name -> distribution`` to sample relatively from the first trial on (else inferred).
        searcher_options: the searcher's own options.
        max_step: reports of a full run, for searchers that read learning curves (``freeze_thaw``).
        cost_attr: the user attribute that holds a trial's cost.
        independent_sampler: for parameters outside the relative space (default ``RandomSampler(seed)``).

    Example:
        >>> import optuna
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> study = optuna.create_study(sampler=HpoSampler("random", seed=0))
        >>> study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.2) ** 2, n_trials=8)
        >>> len(study.trials)
        8
    """

    def __init__(
        self,
        searcher: SearcherSpec = "random",
        *,
        seed: int | None = None,
        search_space: Mapping[str, BaseDistribution] | None = None,
        searcher_options: Mapping[str, Any] | None = None,
        max_step: int | None = None,
        cost_attr: str = "cost",
        independent_sampler: BaseSampler | None = None,
    ) -> None:
        check_searcher_spec(searcher, searcher_options, "HpoSampler searcher")
        if max_step is not None and (isinstance(max_step, bool) or not isinstance(max_step, int) or max_step < 2):
            raise ValueError(
                f"HpoSampler max_step must be the number of reports of a full run (an integer >= 2), got {max_step!r}"
            )
        self._spec = searcher
        self._seed = int(seed) if seed is not None else int(np.random.SeedSequence().entropy % (2**31))
        self._options = dict(searcher_options or {})
        self._search_space = None if search_space is None else dict(search_space)
        self._spaces = _SpaceCache(max_step)
        self._searchers: dict[tuple, Searcher] = {}
        self._cost_attr = cost_attr
        self._independent = independent_sampler or RandomSampler(seed=self._seed)
        self._intersection = IntersectionSearchSpace()
        self._pending: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __str__(self) -> str:
        return f"HpoSampler({searcher_name(self._spec)})"

    # ---- Optuna's hooks -----------------------------------------------------------------------------------------

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        _mode(study)  # refuse a multi-objective study at its first trial
        if self._search_space is not None:
            space = self._search_space
        else:
            with self._lock:
                space = self._intersection.calculate(study)
        # One-value distributions need no sampling (Optuna returns the value without asking a sampler).
        return {n: d for n, d in space.items() if not d.single()}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        fixed = trial.system_attrs.get("fixed_params", {})
        if all(n in fixed for n in search_space):
            return {}  # an enqueued trial: Optuna uses its fixed values, the searcher need not be asked
        mode = _mode(study)
        entry = self._spaces.get(search_space)
        space, axes = entry["space"], entry["axes"]
        with self._lock:
            searcher = self._searcher(search_space, space)
            require = getattr(searcher, "cost_key", None) == self._cost_attr
            trials = [t for t in study._get_trials(deepcopy=False, use_cache=True) if t.number != trial.number]
            history = history_from_study(trials, space, axes, mode, self._pending, self._cost_attr, require)
            with explain_fidelity(space):
                config = searcher.suggest(history)
            if config is None:
                return {}
            config = {n: config[n] for n in space.names}
            space.validate(config)
            self._pending[trial.number] = config
        return {n: axes[n].to_user(v) for n, v in config.items()}

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._independent.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._independent.before_trial(study, trial)

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        with self._lock:
            self._pending.pop(trial.number, None)
        self._independent.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        # Optuna calls this when n_jobs > 1 so that copies of a random state diverge. The hpo searcher has none to
        # diverge: it is a function of the trials (pending ones included) and its seed, shared by all threads.
        self._independent.reseed_rng()

    # ---- helpers ------------------------------------------------------------------------------------------------

    def _searcher(self, search_space: Mapping[str, BaseDistribution], space: Space) -> Searcher:
        key = tuple((n, repr(d)) for n, d in search_space.items())
        searcher = self._searchers.get(key)
        if searcher is None:
            options = dict(self._options)
            spec = self._spec
            given = "cost_key" in options or (isinstance(spec, Mapping) and "cost_key" in spec)
            if not given and _takes_option(spec, "cost_key"):
                options["cost_key"] = self._cost_attr  # CARBS: the cost is the user attribute, not wall time
            searcher = self._searchers[key] = make_searcher(spec, space, self._seed, options)
        return searcher


def _takes_option(spec: Any, option: str) -> bool:
    """The searcher class a spec names takes ``option`` in its constructor."""
    name = spec.get("name") if isinstance(spec, Mapping) else spec
    cls = resolve("searcher", name) if isinstance(name, str) else name
    if not isinstance(cls, type):
        return False
    try:
        return option in inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return False


class HpoFreezeThawPruner(BasePruner):
    """Prune a trial when the freeze-thaw curve model gives it little chance to beat the best completed trial.

    Optuna cannot pause a trial and resume it later, so freeze-thaw's "freeze" becomes "stop": at each report, the
    learning-curve GP of Swersky, Snoek & Adams (2014; :mod:`hpo.surrogates.freeze_thaw`) conditioned on every
    trial's curve predicts the trial's value at ``max_step``, ``y_T ~ N(mu, s^2)`` (its observation noise included),
    and the trial is pruned when

        ``P(y_T < y_best) = Phi((y_best - mu) / s) < min_probability``

    with ``y_best`` the best value of a completed trial (minimize-signed; the study's direction is respected).
    The model shares information across configs through the asymptotes' GP over the trials' parameters (the
    study's intersection search space, unit-cube encoded as for the samplers), so a curve is judged by how
    similar configs ended, not only by its own shape (unlike the median or successive-halving rules).

    Args:
        max_step: reports of a full run (hpo step = Optuna step + 1).
        n_startup_trials: completed trials before anything is pruned.
        n_warmup_steps: reports a trial makes before it can be pruned.
        interval_steps: judge every this many reports (a model update costs a factorization).
        min_probability: prune below this chance of beating the best.
        seed: seeds the model fits.
        search_space: ``name -> distribution`` of the configs the model reads (default: the intersection).
        **policy_options: options of :class:`~hpo.surrogates.freeze_thaw.FreezeThawPolicy` that shape the model
            (``refit_growth``, ``max_points``, ``max_fit_curves``).

    Example:
        >>> import optuna
        >>> pruner = HpoFreezeThawPruner(max_step=20, n_startup_trials=5)
        >>> study = optuna.create_study(pruner=pruner)  # then trial.report(loss, step); trial.should_prune()
    """

    def __init__(
        self,
        max_step: int,
        *,
        n_startup_trials: int = 5,
        n_warmup_steps: int = 2,
        interval_steps: int = 1,
        min_probability: float = 0.05,
        seed: int = 0,
        search_space: Mapping[str, BaseDistribution] | None = None,
        **policy_options: Any,
    ) -> None:
        if max_step < 2:
            raise ValueError(f"max_step must be >= 2 (a curve needs steps to extrapolate), got {max_step}")
        if not 0 < min_probability < 1:
            raise ValueError(f"min_probability must be in (0, 1), got {min_probability}")
        from hpo.surrogates.freeze_thaw import FreezeThawPolicy  # the model only where it is used

        self._policy_cls = FreezeThawPolicy
        self.max_step = int(max_step)
        self.n_startup_trials = int(n_startup_trials)
        self.n_warmup_steps = int(n_warmup_steps)
        self.interval_steps = max(int(interval_steps), 1)
        self.min_probability = float(min_probability)
        self.seed = int(seed)
        self._search_space = None if search_space is None else dict(search_space)
        self._policy_options = policy_options
        self._spaces = _SpaceCache(self.max_step)
        self._policies: dict[tuple, Any] = {}
        self._lock = threading.Lock()
        self.last_decision: dict[str, float] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        n = int(step) + 1
        if n >= self.max_step or n < self.n_warmup_steps or (n - self.n_warmup_steps) % self.interval_steps:
            return False
        mode = _mode(study)
        trials = [t if t.number != trial.number else trial for t in study._get_trials(deepcopy=False)]
        if sum(t.state == TrialState.COMPLETE for t in trials) < self.n_startup_trials:
            return False
        with self._lock:
            return self._prune(trials, trial, mode)

    def _prune(self, trials: list[FrozenTrial], trial: FrozenTrial, mode: str) -> bool:
        search_space = self._search_space
        if search_space is None:
            search_space = {n: d for n, d in self._intersection_of(trials).items() if not d.single()}
        fill = None
        if not search_space:
            # No parameter every trial shares: the model still pools the curves, through one shared asymptote prior.
            search_space, fill = {"_": CategoricalDistribution([None])}, {"_": None}
        entry = self._spaces.get(search_space)
        history = history_from_study(trials, entry["space"], entry["axes"], mode, fill=fill)
        key = tuple((n, repr(d)) for n, d in search_space.items())
        policy = self._policies.get(key)
        if policy is None:
            policy = self._policies[key] = self._policy_cls(
                entry["space"], METRIC, mode, seed=self.seed, **self._policy_options
            )
        gp = policy.model(history)
        if gp is None or trial.number not in set(gp.data.trial_ids.tolist()):
            return False
        row = int(np.flatnonzero(gp.data.trial_ids == trial.number)[0])
        mean, var = gp.predict([self.max_step], curve=row, noisy=True)
        best = min(
            (y for t in history.completed if (y := history.objective(t)) is not None and math.isfinite(y)),
            default=None,
        )
        if best is None:
            return False
        p = float(norm.cdf((best - float(mean[0])) / math.sqrt(max(float(var[0]), 1e-300))))
        self.last_decision = {"trial": trial.number, "step": trial.last_step, "mean": float(mean[0]),
                              "sd": math.sqrt(float(var[0])), "best": best, "p_improve": p}
        return p < self.min_probability

    def _intersection_of(self, trials: list[FrozenTrial]) -> dict[str, BaseDistribution]:
        space: dict[str, BaseDistribution] | None = None
        for t in trials:
            if t.state not in (TrialState.COMPLETE, TrialState.PRUNED):
                continue
            if space is None:
                space = dict(t.distributions)
            else:
                space = {n: d for n, d in space.items() if t.distributions.get(n) == d}
        return dict(sorted((space or {}).items()))

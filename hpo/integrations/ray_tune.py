"""Ray Tune plug-ins: any hpo searcher as a Ray Tune ``Searcher``, hpo's pausing schedulers as a ``TrialScheduler``.

Change one line of a Ray Tune script::

    tuner = tune.Tuner(train, param_space={"lr": tune.loguniform(1e-4, 1e-1), "model": {"width": tune.choice([64,
                       128])}, "epochs": 27},
                       tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=40,
                                                   search_alg=HpoSearch("gp_ei"),                    # <- this
                                                   scheduler=HpoScheduler("asha", max_t=27)))        # <- and this
    tuner.fit()

Notation
--------
- tune id: Ray Tune's trial id (``"3a2b1_00003"``); hpo id: the ``int`` id of our mirror :class:`~hpo.trial.Trial`,
  in creation order (the searcher sees ids ``0, 1, ...`` as in ``hpo.run``).
- flat name: a nested ``param_space`` key path joined with ``"/"`` (``"model/width"``), the hpo parameter's name.
- step: ``result[time_attr]`` (default ``training_iteration``), the x of a learning curve and hpo's fidelity.
- mirror: the adapter's list of hpo Trials, updated from Tune's callbacks; a :class:`~hpo.history.History` of it is
  what the wrapped searcher or scheduler reads, pending and paused trials included.

Search space translation (:func:`space_from_tune`)
--------------------------------------------------
``tune.uniform``/``loguniform`` -> ``Float``; ``randint``/``lograndint`` (upper bound exclusive) -> ``Int``;
``qrandint(lo, hi, q)`` -> ``Int`` with step ``q`` on the multiples of ``q`` (upper bound inclusive for ``q > 1``,
as Tune samples them); ``quniform``/``qloguniform``/``qlograndint`` -> an ``Int`` over the grid index ``k`` of the
values ``k q``; ``choice`` -> ``Choice``; anything else that is not a domain is a constant and comes back unchanged
in every config. ``tune.randn`` (unbounded), ``tune.sample_from`` (a function) and ``tune.grid_search`` have no
place in a bounded Bayesian search space and raise ``ValueError``.

Pausing in Ray Tune
-------------------
``TrialScheduler.PAUSE`` makes Tune save the trial's last checkpoint and stop its actor; the trial holds no
resources until :meth:`HpoScheduler.choose_trial_to_run` returns it, when Tune restores it from that checkpoint (a
function trainable reads it with ``tune.get_checkpoint()``). So a function trainable must report a checkpoint with
the result at which it may be paused: ``tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))``.
"""

from __future__ import annotations

import copy
import logging
import math
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ray.tune.experiment import Trial as TuneTrial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher as TuneSearcher
from ray.tune.search.sample import Categorical, Domain, Float, Integer, LogUniform, Quantized, Uniform
from ray.tune.search.variant_generator import parse_spec_vars

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
from hpo.scheduler import Decision
from hpo.scheduler import Scheduler as HpoSchedulerBase
from hpo.searcher import Searcher
from hpo.space import Choice, Fidelity, Int, Space
from hpo.space import Float as HFloat
from hpo.trial import Trial, TrialStatus

__all__ = ["HpoScheduler", "HpoSearch", "space_from_tune"]

logger = logging.getLogger(__name__)

_SEP = "/"


# -- search space ---------------------------------------------------------------------------------------------------


def _axis(name: str, domain: Domain) -> Axis:
    sampler = domain.get_sampler()
    q = None
    if isinstance(sampler, Quantized):
        q, sampler = sampler.q, sampler.get_sampler()
    if not isinstance(sampler, (Uniform, LogUniform)):
        raise ValueError(
            f"parameter {name!r}: {type(sampler).__name__} sampling ({domain.domain_str}) has no bounded hpo "
            "equivalent; use tune.uniform/loguniform/randint/qrandint/choice (e.g. tune.uniform(-3, 3) for randn)"
        )
    log = isinstance(sampler, LogUniform)
    if isinstance(domain, Categorical):
        return choice_axis(domain.categories)
    if isinstance(domain, Integer):
        lo, hi = int(domain.lower), int(domain.upper)
        if q is None or q == 1:  # Tune samples integers upper-exclusive unless quantized with q > 1
            return Axis(Int(lo, hi - 1, log=log))
        k_lo, k_hi = math.ceil(lo / q - 1e-9), math.floor(hi / q + 1e-9)
        if k_hi < k_lo:
            raise ValueError(f"parameter {name!r}: no multiple of q={q} lies in [{lo}, {hi}]")
        if log:  # hpo's log-scale Int has step 1: search the multiplier k of k * q, on a log scale
            return grid_axis(0.0, q, k_lo, k_hi, log=True, integer=True)
        return Axis(Int(int(k_lo * q), int(k_hi * q), step=int(q)))
    if isinstance(domain, Float):
        lo, hi = float(domain.lower), float(domain.upper)
        if q is None:
            return Axis(HFloat(lo, hi, log=log))
        k_lo, k_hi = math.ceil(lo / q - 1e-9), math.floor(hi / q + 1e-9)
        if k_hi < k_lo:
            raise ValueError(f"parameter {name!r}: no multiple of q={q} lies in [{lo}, {hi}]")
        return grid_axis(0.0, q, k_lo, k_hi, log=log, bounds=(k_lo * q, k_hi * q))
    raise ValueError(f"parameter {name!r}: unsupported Tune domain {type(domain).__name__}")


def space_from_tune(
    param_space: Mapping[str, Any], fidelity: Fidelity | None = None
) -> tuple[Space, dict[str, Axis], dict[str, tuple[Any, ...]], dict[str, Any]]:
    """Translate a Ray Tune ``param_space`` into an hpo Space.

    Returns:
        ``(space, axes, paths, template)``: the space over flat names; the :class:`~hpo.integrations.Axis` and the
        key path (dict keys and list indices) of each parameter; and the ``param_space`` with every domain
        replaced by None, into which a config's values are written (so constants of any type come back as given).

    Example:
        >>> from ray import tune
        >>> space, axes, paths, template = space_from_tune({"opt": {"lr": tune.loguniform(1e-4, 1e-1)}, "epochs": 9})
        >>> space.names, template
        (['opt/lr'], {'opt': {'lr': None}, 'epochs': 9})
    """
    _, domains, grids = parse_spec_vars(dict(param_space))
    if grids:
        names = [_SEP.join(map(str, p)) for p, _ in grids]
        raise ValueError(
            f"tune.grid_search for {names} cannot be part of a Bayesian search space; use tune.choice instead"
        )
    axes: dict[str, Axis] = {}
    paths: dict[str, tuple[Any, ...]] = {}
    template = copy.deepcopy(dict(param_space))
    for path, domain in domains:
        if any(_SEP in str(k) for k in path):
            raise ValueError(f"parameter {list(path)}: a key contains {_SEP!r}, which hpo uses to flatten nested keys")
        name = _SEP.join(map(str, path))
        axes[name], paths[name] = _axis(name, domain), tuple(path)
        _set(template, path, None)
    if not axes:
        raise ValueError("the param_space has no tune.uniform/loguniform/randint/choice... domain to search")
    if fidelity is not None and fidelity.name in axes:
        raise ValueError(f"time_attr {fidelity.name!r} is also a searched parameter; rename one")
    space = Space({n: a.parameter for n, a in axes.items()}, fidelity=fidelity)
    return space, axes, paths, template


def _set(node: Any, path: Sequence[Any], value: Any) -> None:
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _get(config: Mapping[str, Any], name: str, path: Sequence[Any]) -> Any:
    if name in config:  # a flat config ({"opt/lr": 0.01})
        return config[name]
    node: Any = config
    for key in path:
        node = node[key]
    return node


def _metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The numeric scalars of a Tune result (``config/...`` entries and booleans left out)."""
    out: dict[str, float] = {}
    for k, v in result.items():
        if isinstance(v, bool) or str(k).startswith("config"):
            continue
        if isinstance(v, (int, float)) or (hasattr(v, "item") and getattr(v, "size", 2) == 1):
            try:
                out[str(k)] = float(v)
            except (TypeError, ValueError):
                continue
    return out


def _nonfinite(trial: Trial, metric: str) -> str | None:
    for step, m in trial.curve:
        v = m.get(metric)
        if v is not None and not math.isfinite(v):
            return f"metric {metric!r} is {v} at step {step}: the trial diverged"
    return None


# -- the searcher ---------------------------------------------------------------------------------------------------


class HpoSearch(TuneSearcher):
    """Any hpo searcher as a Ray Tune search algorithm.

    Tune's callbacks update a mirror of hpo :class:`~hpo.trial.Trial` records: ``suggest`` adds a pending trial,
    ``on_trial_result`` appends ``(step, metrics)`` to its curve, ``on_trial_complete`` finishes it (completed;
    failed on an error or a NaN/inf metric, as in ``hpo.run``; stopped when it ended before ``max_t`` or was
    paused and then removed). Each ``suggest`` hands the wrapped searcher a :class:`~hpo.history.History` of that
    mirror, so it decides as it would in ``hpo.run``: with a fixed seed and one trial at a time, it suggests the same
    configs (tested).

    Args:
        searcher: the hpo searcher: a registered name (``"random"``, ``"gp_ei"``, ``"aegis"``, ``"carbs"``,
            ``"freeze_thaw"``), ``{"name": ..., **options}``, a Searcher class, a function ``space -> Searcher``,
            or an instance built for the same space.
        metric, mode: what to optimize (or given by ``tune.TuneConfig``).
        space: a Ray Tune ``param_space`` (or give it to ``tune.Tuner``).
        seed: the searcher's seed.
        searcher_options: the searcher's own options.
        points_to_evaluate: configs (nested or flat, searched parameters only) to try first.
        max_trials: suggest at most this many trials, then ``FINISHED``.
        max_concurrent: at most this many trials pending or running (paused ones do not count: they hold no
            worker). ``ConcurrencyLimiter(HpoSearch(...), n)`` and ``TuneConfig(max_concurrent_trials=n)`` set it.
        time_attr: the result key that counts training steps.
        max_t, grace_period: the fidelity ``[grace_period, max_t]`` in ``time_attr`` units, for searchers that read
            learning curves (``freeze_thaw``); a trial that ends before ``max_t`` then counts as stopped early.

    Example:
        >>> from ray import tune
        >>> search = HpoSearch("random", metric="loss", mode="min", space={"x": tune.uniform(0, 1), "n": 3})
        >>> config = search.suggest("t0")
        >>> sorted(config), config["n"]
        (['n', 'x'], 3)
    """

    def __init__(
        self,
        searcher: SearcherSpec = "random",
        metric: str | None = None,
        mode: str | None = None,
        *,
        space: Mapping[str, Any] | None = None,
        seed: int = 0,
        searcher_options: Mapping[str, Any] | None = None,
        points_to_evaluate: Sequence[Mapping[str, Any]] | None = None,
        max_trials: int | None = None,
        max_concurrent: int | None = None,
        time_attr: str = "training_iteration",
        max_t: int | None = None,
        grace_period: int = 1,
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        if mode is not None and mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        check_searcher_spec(searcher, searcher_options, "HpoSearch searcher")
        for name, value in (("max_trials", max_trials), ("max_concurrent", max_concurrent)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"HpoSearch {name} must be an integer >= 1 (or None for no limit), got {value!r}")
        self._spec = searcher
        self._seed = int(seed)
        self._options = dict(searcher_options or {})
        self._points = [dict(p) for p in points_to_evaluate or ()]
        self.max_trials = max_trials
        self.max_concurrent = max_concurrent
        self.time_attr = time_attr
        self._fidelity = Fidelity(time_attr, int(grace_period), int(max_t)) if max_t is not None else None
        self._space: Space | None = None
        self._axes: dict[str, Axis] = {}
        self._paths: dict[str, tuple[Any, ...]] = {}
        self._template: dict[str, Any] = {}
        self._trials: dict[int, Trial] = {}
        self._ids: dict[str, int] = {}
        self._searcher: Searcher | None = None
        if space is not None:
            self._setup(space)

    # ---- setup --------------------------------------------------------------------------------------------------

    def _setup(self, param_space: Mapping[str, Any]) -> None:
        self._space, self._axes, self._paths, self._template = space_from_tune(param_space, self._fidelity)
        self._searcher = None
        for p in self._points:
            self._space.validate(self._to_hpo(p))

    @property
    def space(self) -> Space | None:
        """The hpo space translated from the ``param_space`` (None before it is known)."""
        return self._space

    @property
    def hpo_searcher(self) -> Searcher:
        """The wrapped hpo searcher (built on first use)."""
        if self._space is None:
            raise RuntimeError(
                "HpoSearch has no search space yet: pass param_space to tune.Tuner, space= to HpoSearch, "
                "or restore() a saved HpoSearch"
            )
        if self._searcher is None:
            self._searcher = make_searcher(self._spec, self._space, self._seed, self._options)
        return self._searcher

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        if self._space is not None:
            # Tune passes the param_space again after restore(): the same space is fine, another one is not.
            try:
                same = space_from_tune(config, self._fidelity)[0] == self._space if config else True
            except ValueError:
                same = False
            if not same:
                return False
        elif config:
            self._setup(config)
        if metric:
            self._metric = metric
        if mode:
            if mode not in ("min", "max"):
                raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
            self._mode = mode
        return True

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        # Handled here (returning True) because ConcurrencyLimiter counts paused trials as live: with a pausing
        # scheduler it would stop new trials while every worker is idle.
        self.max_concurrent = int(max_concurrent)
        return True

    # ---- the mirror ---------------------------------------------------------------------------------------------

    def history(self) -> History:
        """The mirror as a History (what the wrapped searcher sees)."""
        if self._metric is None or self._mode is None:
            raise ValueError(
                "HpoSearch needs a metric and a mode: pass them to HpoSearch(metric=, mode=) or tune.TuneConfig"
            )
        return History(self._space, self._metric, self._mode, tuple(self._trials.values()))

    def _to_hpo(self, config: Mapping[str, Any]) -> dict[str, Any]:
        out = {}
        for name, axis in self._axes.items():
            try:
                value = _get(config, name, self._paths[name])
            except (KeyError, IndexError, TypeError):
                raise ValueError(f"config {dict(config)!r} has no value for {name!r}") from None
            out[name] = axis.to_hpo(value)
        return out

    def _to_tune(self, config: Mapping[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(self._template)
        for name, axis in self._axes.items():
            _set(out, self._paths[name], axis.to_user(config[name]))
        return out

    def _new_trial(self, config: Mapping[str, Any], status: TrialStatus = TrialStatus.PENDING, **kw: Any) -> Trial:
        tid = len(self._trials)
        trial = Trial(tid, self._space.complete(config), status, **kw)
        self._trials[tid] = trial
        return trial

    def _step(self, trial: Trial, result: Mapping[str, Any]) -> int:
        v = result.get(self.time_attr)
        return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else trial.last_step + 1

    def _record(self, trial: Trial, result: Mapping[str, Any]) -> Trial:
        trial = trial.with_points([(self._step(trial, result), _metrics(result))])
        if isinstance(result.get("time_total_s"), (int, float)):
            trial = replace(trial, cost={**trial.cost, "wall_seconds": float(result["time_total_s"])})
        return trial

    # ---- Tune's hooks -------------------------------------------------------------------------------------------

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """A config for a new trial; None while the searcher must wait (concurrency limit, or it has nothing now);
        ``FINISHED`` when ``max_trials`` are suggested or a finite space is exhausted."""
        searcher = self.hpo_searcher  # raises with what to do when no search space was given
        history = self.history()
        if self.max_trials is not None and len(self._trials) >= self.max_trials:
            return TuneSearcher.FINISHED
        if self.max_concurrent is not None and len(history.pending) >= self.max_concurrent:
            return None
        if self._points:
            config = self._to_hpo(self._points.pop(0))
        else:
            with explain_fidelity(self._space):
                if searcher.is_finished(history):
                    return TuneSearcher.FINISHED
                config = searcher.suggest(history)
            if config is None:
                return None
            config = {n: config[n] for n in self._space.names}
        self._space.validate(config)  # a searcher's bug must not reach user code
        trial = self._new_trial(config)
        self._ids[trial_id] = trial.trial_id
        return self._to_tune(config)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        tid = self._ids.get(trial_id)
        if tid is None:
            return
        trial = self._record(self._trials[tid], result)
        # Tune calls the scheduler first: a trial it just paused (on_pause) stays paused.
        status = TrialStatus.PAUSED if trial.status is TrialStatus.PAUSED else TrialStatus.RUNNING
        self._trials[tid] = replace(trial, status=status)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        tid = self._ids.get(trial_id)
        if tid is None:
            return
        trial = self._trials[tid]
        was_paused = trial.status is TrialStatus.PAUSED
        if result:
            trial = self._record(trial, result)
        reason = _nonfinite(trial, self._metric)
        if error:
            trial = replace(trial, status=TrialStatus.FAILED, error="the trainable raised (see Ray Tune's log)")
        elif reason is not None:
            trial = replace(trial, status=TrialStatus.FAILED, error=reason)
        elif trial.value(self._metric) is None:
            trial = replace(trial, status=TrialStatus.FAILED, error=f"no result with metric {self._metric!r}")
        elif (was_paused and not result) or (self._fidelity is not None and trial.last_step < self._fidelity.high):
            trial = replace(trial, status=TrialStatus.STOPPED)
        else:
            trial = replace(trial, status=TrialStatus.COMPLETED)
        self._trials[tid] = trial

    def on_pause(self, trial_id: str) -> None:
        """The scheduler paused the trial (it holds no worker; it does not count against ``max_concurrent``)."""
        self._set_status(trial_id, TrialStatus.PAUSED)

    def on_unpause(self, trial_id: str) -> None:
        """The scheduler resumes the trial."""
        self._set_status(trial_id, TrialStatus.PENDING)

    def _set_status(self, trial_id: str, status: TrialStatus) -> None:
        tid = self._ids.get(trial_id)
        if tid is not None and not self._trials[tid].status.is_finished:
            self._trials[tid] = replace(self._trials[tid], status=status)

    def add_evaluated_point(
        self,
        parameters: dict,
        value: float,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list[float] | None = None,
    ) -> None:
        """Tell the searcher about a trial run elsewhere (Tune's API; also ``add_evaluated_trials``)."""
        if self._space is None or self._metric is None:
            raise RuntimeError("add_evaluated_point needs the search space and metric first")
        config = self._to_hpo(parameters)
        self._space.validate(config)
        curve = [(i + 1, {self._metric: float(v)}) for i, v in enumerate(intermediate_values or ())]
        if value is not None:
            curve.append((len(curve) + 1, {self._metric: float(value)}))
        status = TrialStatus.FAILED if error else TrialStatus.STOPPED if pruned else TrialStatus.COMPLETED
        self._new_trial(config, status, curve=tuple(curve))

    # ---- save / restore -----------------------------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        return {
            "spec": self._spec, "seed": self._seed, "options": self._options, "points": self._points,
            "max_trials": self.max_trials, "max_concurrent": self.max_concurrent, "time_attr": self.time_attr,
            "fidelity": self._fidelity, "space": self._space, "axes": self._axes, "paths": self._paths,
            "template": self._template,
            "trials": self._trials, "ids": self._ids, "metric": self._metric, "mode": self._mode,
            "searcher": self._searcher,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self._spec, self._seed, self._options = state["spec"], state["seed"], state["options"]
        self._points, self.max_trials = state["points"], state["max_trials"]
        self.max_concurrent, self.time_attr, self._fidelity = state["max_concurrent"], state["time_attr"], \
            state["fidelity"]
        self._space, self._axes = state["space"], state["axes"]
        self._paths, self._template = state["paths"], state["template"]
        self._trials, self._ids = dict(state["trials"]), dict(state["ids"])
        self._metric, self._mode = state["metric"], state["mode"]
        # The searcher's own state too (e.g. GP hyperparameters it warm-starts from): with it, a restored sweep
        # suggests exactly what the saved one would have.
        self._searcher = state.get("searcher")

    def save(self, checkpoint_path: str) -> None:
        state = self.get_state()
        try:
            blob = pickle.dumps(state)
        except Exception:  # a searcher that does not pickle: it is rebuilt from (space, history, seed) on restore
            blob = pickle.dumps({**state, "searcher": None})
        with open(checkpoint_path, "wb") as f:
            f.write(blob)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))

    def __repr__(self) -> str:
        return f"HpoSearch({searcher_name(self._spec)!r}, metric={self._metric!r}, mode={self._mode!r})"


# -- the scheduler --------------------------------------------------------------------------------------------------


def _find_hpo_search(tune_controller: Any) -> HpoSearch | None:
    alg = getattr(tune_controller, "search_alg", None)
    node = getattr(alg, "searcher", None)
    for _ in range(8):  # SearchGenerator -> ConcurrencyLimiter / Repeater -> ... -> HpoSearch
        if node is None or isinstance(node, HpoSearch):
            return node
        node = getattr(node, "searcher", None)
    return None


class HpoScheduler(FIFOScheduler):
    """hpo's pausing schedulers in Ray Tune: ASHA with promotion (``"asha"``) and freeze-thaw (``"freeze_thaw"``).

    On each result the trial's point joins a mirror of hpo Trials; when the trial reaches the end of its segment
    (the scheduler's ``next_stop``: a rung for ASHA) the hpo scheduler decides: ``CONTINUE``, ``PAUSE`` (Tune saves
    the checkpoint reported with that result and frees the worker) or ``STOP``. When a worker frees,
    :meth:`choose_trial_to_run` resumes the paused trial the hpo scheduler picks (ASHA: one in the top ``1/eta`` of
    its rung), else starts the next pending trial. Unlike Ray Tune's ``ASHAScheduler``, which can only stop
    trials, a paused trial can be promoted at any later time. When the search algorithm is finished and nothing
    runs, the trials still paused are stopped (Tune's run ends when every trial has ended).

    A function trainable reports a checkpoint with every result at which it may pause, and resumes from
    ``tune.get_checkpoint()``; set ``TuneConfig(reuse_actors=True)`` so that a resume reuses a live worker.

    Differences from ``hpo.run``: Tune asks the search algorithm for the next trial before it asks the scheduler
    whether to resume a paused one, so a new config is chosen one segment earlier than in ``hpo.run`` (random
    search suggests the same configs; a model-based searcher may not). Tune restores a resumed trial's
    ``result.json`` from its last synced copy, which can lack the results before the pause; :meth:`history` has
    them all.

    Args:
        scheduler: ``"asha"``, ``"freeze_thaw"`` or ``"module:Class"`` of an hpo Scheduler; or ``{"name": ...,
            **options}``.
        metric, mode: what to optimize (or given by ``tune.TuneConfig``).
        time_attr: the result key that counts training steps (``training_iteration`` or the user's ``epoch``).
        max_t: the full budget in ``time_attr`` units; a trial reaching it is stopped.
        grace_period: the first rung (ASHA) / the fewest steps before a pause.
        **options: the hpo scheduler's options (``reduction_factor=3``; freeze-thaw's ``acquisition``...).

    With :class:`HpoSearch` as the search algorithm, the scheduler reads that searcher's configs and, when
    HpoSearch has the same ``time_attr``/``max_t``/``grace_period``, its very space, so that ``"freeze_thaw"``
    searcher and scheduler share one curve model. With another search algorithm, ``"asha"`` works from the
    results alone; ``"freeze_thaw"`` needs HpoSearch (its model reads the configs).

    Example:
        >>> sched = HpoScheduler("asha", metric="loss", mode="min", max_t=27, reduction_factor=3)
        >>> sched.rungs
        [1, 3, 9, 27]
    """

    def __init__(
        self,
        scheduler: str | Mapping[str, Any] = "asha",
        metric: str | None = None,
        mode: str | None = None,
        *,
        time_attr: str = "training_iteration",
        max_t: int = 100,
        grace_period: int = 1,
        **options: Any,
    ) -> None:
        super().__init__()
        if isinstance(scheduler, Mapping):
            options = {**{k: v for k, v in scheduler.items() if k != "name"}, **options}
            scheduler = scheduler["name"]
        if mode is not None and mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self._name = str(scheduler)
        self._cls = resolve("scheduler", self._name)
        self._options = options
        self._metric, self._mode = metric, mode
        self.time_attr = time_attr
        self.fidelity = Fidelity(time_attr, int(grace_period), int(max_t))
        self._hpo: HpoSchedulerBase | None = None
        self._space: Space | None = None
        self._search: HpoSearch | None = None
        self._trials: dict[int, Trial] = {}
        self._ids: dict[str, int] = {}
        self._stop_at: dict[int, int] = {}
        self._tune: dict[int, TuneTrial] = {}
        self._warned: set[str] = set()
        # Decisions are taken at exact steps (rungs): Tune must hand over every result, not a buffer of them.
        self._supports_buffered_results = False
        if self._name == "asha":  # validate options now, where the user wrote them
            self.rungs = self._cls(self._placeholder_space(), "m", "min", **options).rungs

    # ---- setup --------------------------------------------------------------------------------------------------

    def _placeholder_space(self) -> Space:
        # ASHA reads curves only; a space needs one parameter, so trials get this one when no HpoSearch gives
        # their configs.
        return Space({"_tune_trial": Choice([None])}, fidelity=self.fidelity)

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        if self._metric and metric and metric != self._metric:
            return False
        if self._mode and mode and mode != self._mode:
            return False
        self._metric = self._metric or metric
        self._mode = self._mode or mode
        return True

    def _ensure(self, tune_controller: Any) -> HpoSchedulerBase:
        if self._hpo is not None:
            return self._hpo
        if not self._metric or not self._mode:
            raise ValueError(
                "HpoScheduler needs a metric and a mode: pass them to HpoScheduler(metric=, mode=) or tune.TuneConfig"
            )
        self._search = _find_hpo_search(tune_controller)
        if self._search is not None and self._search.space is not None:
            s = self._search.space
            same = s.fidelity == self.fidelity
            self._space = s if same else Space(s.params, fidelity=self.fidelity, constants=s.constants)
        elif self._name == "asha":
            self._space = self._placeholder_space()
        else:
            raise ValueError(
                f"HpoScheduler({self._name!r}) reads the trials' configs: use search_alg=HpoSearch(...) with it "
                "(only 'asha' works with another search algorithm)"
            )
        self._hpo = self._cls.from_options(self._space, self._metric, self._mode, self._options)
        return self._hpo

    def history(self) -> History:
        """The mirror as a History (what the hpo scheduler sees)."""
        return History(self._space, self._metric, self._mode, tuple(self._trials.values()))

    def _config(self, tune_trial: TuneTrial) -> dict[str, Any]:
        if self._search is not None and tune_trial.trial_id in self._search._ids:
            cfg = self._search._trials[self._search._ids[tune_trial.trial_id]].config
            return {n: cfg[n] for n in self._space.names} | {self.fidelity.name: self.fidelity.high}
        return self._space.complete({"_tune_trial": None})

    def _tid(self, tune_controller: Any, tune_trial: TuneTrial) -> int:
        tid = self._ids.get(tune_trial.trial_id)
        if tid is None:  # a trial added before a restore, or one the scheduler did not see added
            self.on_trial_add(tune_controller, tune_trial)
            tid = self._ids[tune_trial.trial_id]
        self._tune[tid] = tune_trial
        return tid

    # ---- Tune's hooks -------------------------------------------------------------------------------------------

    def on_trial_add(self, tune_controller: Any, trial: TuneTrial) -> None:
        hpo = self._ensure(tune_controller)
        if trial.trial_id in self._ids:
            return
        tid = len(self._trials)
        self._ids[trial.trial_id] = tid
        self._tune[tid] = trial
        self._trials[tid] = Trial(tid, self._config(trial))
        self._stop_at[tid] = hpo.next_stop(self.history(), self._trials[tid])

    def on_trial_result(self, tune_controller: Any, trial: TuneTrial, result: dict) -> str:
        hpo = self._ensure(tune_controller)
        tid = self._tid(tune_controller, trial)
        value = result.get(self._metric)
        step = result.get(self.time_attr)
        if value is None or step is None:
            if step is None and "time_attr" not in self._warned:
                self._warned.add("time_attr")
                logger.warning("HpoScheduler: results of trial %s have no %r; report it (or set time_attr) so that "
                               "the scheduler can pause at rungs", trial.trial_id, self.time_attr)
            return TrialScheduler.CONTINUE  # nothing to judge this result by
        t = self._trials[tid].with_points([(int(step), _metrics(result))])
        t = replace(t, status=TrialStatus.RUNNING)
        self._trials[tid] = t
        if not math.isfinite(float(value)):
            # As in hpo.run: a NaN/inf objective ends the trial as failed rather than spending more on it.
            self._trials[tid] = replace(t, status=TrialStatus.FAILED, error=_nonfinite(t, self._metric))
            return TrialScheduler.STOP
        if t.last_step >= self.fidelity.high:
            return TrialScheduler.STOP
        if t.last_step < self._stop_at[tid]:
            return TrialScheduler.CONTINUE
        decision = hpo.on_segment_end(self.history(), t)
        if decision is Decision.CONTINUE:
            self._stop_at[tid] = hpo.next_stop(self.history(), t)
            return TrialScheduler.CONTINUE
        if decision is Decision.STOP:
            self._trials[tid] = replace(t, status=TrialStatus.STOPPED)
            return TrialScheduler.STOP
        if not result.get("should_checkpoint") and "no_checkpoint" not in self._warned:
            self._warned.add("no_checkpoint")
            logger.warning(
                "HpoScheduler pauses trial %s at %s=%s but that result has no checkpoint: it will train again "
                "from its last checkpoint (or from scratch); report tune.report(metrics, checkpoint=...) each step",
                trial.trial_id, self.time_attr, t.last_step,
            )
        self._trials[tid] = replace(t, status=TrialStatus.PAUSED)
        if self._search is not None:
            self._search.on_pause(trial.trial_id)
        return TrialScheduler.PAUSE

    def on_trial_complete(self, tune_controller: Any, trial: TuneTrial, result: dict) -> None:
        tid = self._tid(tune_controller, trial)
        t = self._trials[tid]
        if t.status.is_finished:
            return
        if result and result.get(self._metric) is not None and result.get(self.time_attr) is not None:
            t = t.with_points([(int(result[self.time_attr]), _metrics(result))])
        reason = _nonfinite(t, self._metric)
        if reason is not None:
            t = replace(t, status=TrialStatus.FAILED, error=reason)
        elif t.last_step >= self.fidelity.high:
            t = replace(t, status=TrialStatus.COMPLETED)
        else:
            t = replace(t, status=TrialStatus.STOPPED)
        self._trials[tid] = t

    def on_trial_error(self, tune_controller: Any, trial: TuneTrial) -> None:
        tid = self._tid(tune_controller, trial)
        self._trials[tid] = replace(self._trials[tid], status=TrialStatus.FAILED, error="the trainable raised")

    def on_trial_remove(self, tune_controller: Any, trial: TuneTrial) -> None:
        tid = self._tid(tune_controller, trial)
        if not self._trials[tid].status.is_finished:
            self._trials[tid] = replace(self._trials[tid], status=TrialStatus.STOPPED)

    def choose_trial_to_run(self, tune_controller: Any) -> TuneTrial | None:
        """A paused trial the hpo scheduler promotes, else the oldest pending trial; stops leftover paused trials
        once no new trial will come."""
        hpo = self._ensure(tune_controller)
        trials = tune_controller.get_trials()
        for t in trials:
            self._tid(tune_controller, t)
        tid = hpo.choose_trial_to_run(self.history())
        if tid is not None and self._tune[tid].status == TuneTrial.PAUSED:
            return self._resume(tid)
        pending = [t for t in trials if t.status == TuneTrial.PENDING]
        if pending:
            # Resumed trials first (they were chosen), then new ones in creation order.
            return min(pending, key=lambda t: (self._trials[self._ids[t.trial_id]].last_step == 0,
                                               self._ids[t.trial_id]))
        paused = [t for t in trials if t.status == TuneTrial.PAUSED]
        if not paused or any(t.status == TuneTrial.RUNNING for t in trials):
            return None
        if tune_controller.search_alg.is_finished():
            for t in paused:  # no new trial will join their rungs: nothing can promote them any more
                tune_controller.stop_trial(t)
            return None
        # Nothing runs, nothing waits, and the search algorithm gave no new trial although it is not finished: a
        # concurrency limit that counts paused trials (ConcurrencyLimiter, BasicVariantGenerator's
        # max_concurrent) would wait forever. Resume the most advanced, best paused trial instead.
        if "idle" not in self._warned:
            self._warned.add("idle")
            logger.warning(
                "HpoScheduler: every worker is idle but the search algorithm offers no new trial (a concurrency "
                "limit that counts paused trials?); resuming the best paused trial. Use HpoSearch, whose limit "
                "counts running trials only."
            )
        h = self.history()

        def rank(t: TuneTrial) -> tuple[float, float]:
            trial = self._trials[self._ids[t.trial_id]]
            y = h.objective(trial)
            return (-trial.last_step, y if y is not None and math.isfinite(y) else math.inf)

        return self._resume(self._ids[min(paused, key=rank).trial_id])

    def _resume(self, tid: int) -> TuneTrial:
        t = replace(self._trials[tid], status=TrialStatus.PENDING)
        self._trials[tid] = t
        self._stop_at[tid] = self._hpo.next_stop(self.history(), t)
        if self._search is not None:
            self._search.on_unpause(self._tune[tid].trial_id)
        return self._tune[tid]

    def debug_string(self) -> str:
        counts: dict[str, int] = {}
        for t in self._trials.values():
            counts[t.status.value] = counts.get(t.status.value, 0) + 1
        return f"HpoScheduler({self._name}): " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))

    # ---- save / restore -----------------------------------------------------------------------------------------

    def save(self, checkpoint_path: str) -> None:
        state = {k: v for k, v in self.__dict__.items() if k not in ("_tune", "_search", "_hpo")}
        with open(checkpoint_path, "wb") as f:
            pickle.dump(state, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))
        self._tune, self._search, self._hpo = {}, None, None

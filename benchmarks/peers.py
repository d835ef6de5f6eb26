"""Peers and our own methods, driven by the same orchestrator and simulated workers.

Optuna's samplers and pruners run through its ask-and-tell interface inside hpo's :class:`~hpo.searcher.Searcher`
and :class:`~hpo.scheduler.Scheduler`, so the same :class:`~hpo.orchestrator.Orchestrator` and
:class:`~hpo.executors.simulated.SimulatedExecutor` drive every method and the comparison measures the algorithms,
not the loops around them.

Notation
--------
- ``hpo trial``: a :class:`~hpo.trial.Trial` of the sweep, id ``i``; ``optuna trial``: the trial of the in-memory
  Optuna study asked for it, number ``k``. The orchestrator creates hpo trials in the order the searcher suggested
  them, so each new hpo trial is matched to the oldest unmatched optuna trial with the same config.
- ``y``: a trial's objective signed so that lower is better (:meth:`hpo.history.History.objective`); the study
  always minimizes ``y``.
- Method names: ``SEARCHER[+SCHEDULER]``. Searchers: ``optuna_tpe``, ``optuna_gp``, ``optuna_random`` or any name
  of :data:`hpo.registry.SEARCHERS` (``random``, ``aegis``, ``gp_ei``, ``carbs``, ``freeze_thaw``). Schedulers:
  ``fifo`` (default), ``hyperband`` / ``sha`` (Optuna's pruners) or any name of :data:`hpo.registry.SCHEDULERS`
  (``asha``, ``freeze_thaw``). ``freeze_thaw`` alone means its searcher with its scheduler.

Lifecycle of an Optuna trial here: ``suggest`` asks it (its params are sampled then, with the running trials in the
study: TPE's constant liar and GPSampler both account for them); it stays RUNNING while its hpo trial runs or is
paused; the next ``suggest`` after the hpo trial ends tells the study COMPLETE (value at the last step), FAIL or
PRUNED (stopped by a pruner). :class:`OptunaPrunerScheduler` reports the curve (``trial.report``) after each segment
and stops the trial when ``trial.should_prune()``.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from hpo.history import History
from hpo.registry import SCHEDULERS, SEARCHERS, resolve
from hpo.scheduler import Decision, Scheduler
from hpo.searcher import Searcher
from hpo.space import Choice, Float, Int, Space
from hpo.trial import Trial, TrialStatus

__all__ = [
    "OPTUNA_SAMPLERS",
    "Method",
    "MethodMissing",
    "MethodNotApplicable",
    "OptunaPrunerScheduler",
    "OptunaSearcher",
    "build_method",
    "optuna_distributions",
    "parse_method",
]

optuna.logging.set_verbosity(optuna.logging.WARNING)


def optuna_distributions(space: Space) -> dict[str, BaseDistribution]:
    """The Optuna distribution of each searched parameter (same bounds, log scale and grid)."""
    out: dict[str, BaseDistribution] = {}
    for name, p in space.params.items():
        if isinstance(p, Float):
            out[name] = FloatDistribution(p.low, p.high, log=p.log)
        elif isinstance(p, Int):
            out[name] = IntDistribution(p.low, p.high, log=p.log, step=p.step)
        elif isinstance(p, Choice):
            out[name] = CategoricalDistribution(p.choices)
        else:  # pragma: no cover - Space validates its parameters
            raise TypeError(f"parameter {name!r}: unsupported type {type(p).__name__}")
    return out


def _tpe(seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(multivariate=True, constant_liar=True, seed=seed)


def _gp(seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)


def _random(seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


# sampler name -> (seed -> sampler). TPE as the brief's protocol sets it; GPSampler and RandomSampler as shipped.
OPTUNA_SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {"tpe": _tpe, "gp": _gp, "random": _random}


class OptunaSearcher(Searcher):
    """An Optuna sampler as an hpo searcher, through ask-and-tell on an in-memory study.

    Args:
        space: the search space.
        seed: the sampler's seed (and the study's name, which seeds Hyperband's bracket assignment).
        sampler: ``"tpe"``, ``"gp"``, ``"random"``, or a function ``seed -> BaseSampler``.

    Example:
        >>> from hpo.space import Space, Float
        >>> space = Space({"x": Float(-1.0, 1.0)})
        >>> s = OptunaSearcher(space, seed=0, sampler="random")
        >>> config = s.suggest(History(space, "loss"))
        >>> -1.0 <= config["x"] <= 1.0
        True
    """

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        sampler: str | Callable[[int], optuna.samplers.BaseSampler] = "tpe",
    ) -> None:
        super().__init__(space, seed)
        if isinstance(sampler, str):
            if sampler not in OPTUNA_SAMPLERS:
                raise ValueError(f"unknown Optuna sampler {sampler!r}; use one of {sorted(OPTUNA_SAMPLERS)}")
            sampler = OPTUNA_SAMPLERS[sampler]
        self._make_sampler = sampler
        self.distributions = optuna_distributions(space)
        self.pruner: optuna.pruners.BasePruner | None = None
        self._study: optuna.Study | None = None
        self._unmatched: list[tuple[tuple[Any, ...], optuna.Trial]] = []
        self._by_hpo: dict[int, optuna.Trial] = {}
        self._foreign: set[int] = set()  # hpo trials the study did not ask for (e.g. points to evaluate)
        self._told: set[int] = set()

    def attach_pruner(self, pruner: optuna.pruners.BasePruner) -> None:
        """Use ``pruner`` in the study (before the first suggestion: the study is created then)."""
        if self._study is not None:
            raise RuntimeError("attach the pruner before the first suggestion")
        self.pruner = pruner

    @property
    def study(self) -> optuna.Study:
        if self._study is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self._study = optuna.create_study(
                    study_name=f"hpo-benchmark-seed{self.seed}",
                    direction="minimize",
                    sampler=self._make_sampler(self.seed),
                    pruner=self.pruner or optuna.pruners.NopPruner(),
                )
        return self._study

    def optuna_trial(self, history: History, trial_id: int) -> optuna.Trial | None:
        """The optuna trial asked for hpo trial ``trial_id`` (None for a trial the study did not suggest)."""
        self.sync(history)
        return self._by_hpo.get(trial_id)

    def sync(self, history: History) -> None:
        """Match new hpo trials to the optuna trials asked for them, and tell the study of those that ended."""
        for t in history:
            if t.trial_id in self._by_hpo or t.trial_id in self._foreign:
                continue
            key = self.space.key(t.config)
            match = next((i for i, (k, _) in enumerate(self._unmatched) if k == key), None)
            if match is None:
                self._foreign.add(t.trial_id)
            else:
                self._by_hpo[t.trial_id] = self._unmatched.pop(match)[1]
        for t in history:
            if t.trial_id in self._told or not t.status.is_finished:
                continue
            self._told.add(t.trial_id)
            if t.trial_id in self._by_hpo:
                self._tell(history, t, self._by_hpo[t.trial_id])
            else:
                self._add_foreign(history, t)

    def _tell(self, history: History, t: Trial, ot: optuna.Trial) -> None:
        y = history.objective(t)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "trial already finished" and experimental warnings
            if t.status is TrialStatus.COMPLETED and y is not None and math.isfinite(y):
                self.study.tell(ot, y, skip_if_finished=True)
            elif t.status is TrialStatus.STOPPED:
                self.study.tell(ot, state=TrialState.PRUNED, skip_if_finished=True)
            else:
                self.study.tell(ot, state=TrialState.FAIL, skip_if_finished=True)

    def _add_foreign(self, history: History, t: Trial) -> None:
        y = history.objective(t)
        params = {n: t.config[n] for n in self.space.names}
        ok = t.status is TrialStatus.COMPLETED and y is not None and math.isfinite(y)
        self.study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions=self.distributions,
                value=y if ok else None,
                state=TrialState.COMPLETE if ok else TrialState.FAIL,
            )
        )

    def suggest(self, history: History) -> dict[str, Any]:
        self.sync(history)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            ot = self.study.ask(self.distributions)
        config = {}
        for name, p in self.space.params.items():
            v = ot.params[name]
            config[name] = int(v) if isinstance(p, Int) else (float(v) if isinstance(p, Float) else v)
        self._unmatched.append((self.space.key(config), ot))
        return config


class OptunaPrunerScheduler(Scheduler):
    """An Optuna pruner as an hpo scheduler: report the curve after each segment, stop when it says prune.

    Segments end at the pruner's rung steps ``min_resource * eta^k`` (and at the full budget). Optuna's
    successive-halving and Hyperband pruners only decide when a trial's last reported step reaches a rung, so
    asking them there gives the same decisions as asking after every step, with fewer segments; every step's value
    is still reported (``trial.report``), as TPE reads pruned trials' curves.

    With an :class:`OptunaSearcher` the pruner joins the searcher's study (so TPE sees pruned trials and
    Hyperband's brackets, as in a plain Optuna study); with any other searcher it keeps a study of its own, one
    optuna trial per hpo trial.

    Args:
        space: needs a fidelity.
        metric, mode: what is optimized.
        pruner: ``"hyperband"`` (``HyperbandPruner``), ``"sha"`` (``SuccessiveHalvingPruner``) or a pruner.
        searcher: the sweep's searcher; an :class:`OptunaSearcher` shares its study.
        min_resource: the first rung (default: the fidelity's ``low``).
        reduction_factor: ``eta`` (3, as our ASHA; Optuna's own default is 3 for Hyperband and 4 for SHA).

    Example:
        >>> from hpo.space import Space, Float, Fidelity
        >>> space = Space({"x": Float(0, 1)}, fidelity=Fidelity("step", 1, 50))
        >>> OptunaPrunerScheduler(space, "loss", pruner="sha").check_steps
        [1, 3, 9, 27, 50]
    """

    def __init__(
        self,
        space: Space,
        metric: str,
        mode: str = "min",
        pruner: str | optuna.pruners.BasePruner = "hyperband",
        searcher: Searcher | None = None,
        min_resource: int | None = None,
        reduction_factor: int = 3,
    ) -> None:
        super().__init__(space, metric, mode)
        if space.fidelity is None:
            raise ValueError("an Optuna pruner needs a fidelity in the space; use the fifo scheduler instead")
        low = int(min_resource if min_resource is not None else space.fidelity.low)
        if isinstance(pruner, str):
            if pruner == "hyperband":
                pruner = optuna.pruners.HyperbandPruner(
                    min_resource=low, max_resource=self.max_step, reduction_factor=reduction_factor
                )
            elif pruner == "sha":
                pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=low, reduction_factor=reduction_factor)
            else:
                raise ValueError(f"unknown pruner {pruner!r}; use 'hyperband', 'sha' or an optuna pruner")
        self.pruner = pruner
        steps, r = [], low
        while r < self.max_step:
            steps.append(r)
            r *= reduction_factor
        self.check_steps: list[int] = [*steps, self.max_step]
        self._searcher = searcher if isinstance(searcher, OptunaSearcher) else None
        if self._searcher is not None:
            self._searcher.attach_pruner(pruner)
            self._own: optuna.Study | None = None
        else:
            self._own = optuna.create_study(study_name="hpo-pruner", direction="minimize", pruner=pruner)
        self._own_trials: dict[int, optuna.Trial] = {}
        self._own_told: set[int] = set()
        self._reported: dict[int, int] = {}

    def next_stop(self, history: History, trial: Trial) -> int:
        return next(s for s in self.check_steps if s > trial.last_step)

    def _trial(self, history: History, trial: Trial) -> optuna.Trial | None:
        if self._searcher is not None:
            return self._searcher.optuna_trial(history, trial.trial_id)
        assert self._own is not None
        for t in history:  # tell the own study of trials that ended since
            if t.status.is_finished and t.trial_id in self._own_trials and t.trial_id not in self._own_told:
                self._own_told.add(t.trial_id)
                y = history.objective(t)
                ok = t.status is TrialStatus.COMPLETED and y is not None and math.isfinite(y)
                state = TrialState.COMPLETE if ok else (
                    TrialState.PRUNED if t.status is TrialStatus.STOPPED else TrialState.FAIL
                )
                self._own.tell(self._own_trials[t.trial_id], y if ok else None, state=state)
        if trial.trial_id not in self._own_trials:
            self._own_trials[trial.trial_id] = self._own.ask()
        return self._own_trials[trial.trial_id]

    def on_segment_end(self, history: History, trial: Trial) -> Decision:
        ot = self._trial(history, trial)
        if ot is None:  # a trial the study never asked for: nothing to compare it with
            return Decision.CONTINUE
        last = self._reported.get(trial.trial_id, 0)
        for step, metrics in trial.curve:
            if step > last and self.metric in metrics:
                ot.report(history.sign(float(metrics[self.metric])), step)
        self._reported[trial.trial_id] = trial.last_step
        return Decision.STOP if ot.should_prune() else Decision.CONTINUE


class MethodMissing(RuntimeError):
    """A registered method whose module does not exist (yet)."""


class MethodNotApplicable(ValueError):
    """A method that cannot run on a problem (e.g. a pruner on a problem without fidelity)."""


@dataclass(frozen=True)
class Method:
    """A method as data: a searcher and a scheduler, by name, with options.

    Example:
        >>> parse_method("optuna_tpe+hyperband")
        Method(name='optuna_tpe+hyperband', searcher='optuna_tpe', scheduler='hyperband', searcher_options={}, \
scheduler_options={})
    """

    name: str
    searcher: str
    scheduler: str = "fifo"
    searcher_options: dict[str, Any] = field(default_factory=dict)
    scheduler_options: dict[str, Any] = field(default_factory=dict)
    table: bool = False


_PRUNERS = ("hyperband", "sha")
# Methods whose one name means a searcher and a scheduler that work together.
_ALIASES: dict[str, tuple[str, str]] = {"freeze_thaw": ("freeze_thaw", "freeze_thaw")}


def parse_method(name: str) -> Method:
    """``SEARCHER[+SCHEDULER][@table]`` -> :class:`Method` (scheduler ``fifo`` when not given).

    ``@table``: on a tabulated problem, the searcher proposes only the tabulated settings, each once (its
    ``candidates``), instead of points answered by their nearest tabulated setting.
    """
    name = name.strip()
    spec, table = (name[: -len("@table")], True) if name.endswith("@table") else (name, False)
    if "+" in spec:
        searcher, scheduler = spec.split("+", 1)
    else:
        searcher, scheduler = _ALIASES.get(spec, (spec, "fifo"))
    known = searcher in SEARCHERS or (searcher.startswith("optuna_") and searcher[7:] in OPTUNA_SAMPLERS)
    if not known and ":" not in searcher:
        raise ValueError(
            f"unknown searcher {searcher!r} in method {name!r}; use optuna_{{{','.join(OPTUNA_SAMPLERS)}}}, "
            f"one of {sorted(SEARCHERS)} or module:Class"
        )
    if scheduler not in SCHEDULERS and scheduler not in _PRUNERS and ":" not in scheduler:
        raise ValueError(
            f"unknown scheduler {scheduler!r} in method {name!r}; use one of {sorted([*SCHEDULERS, *_PRUNERS])}"
        )
    return Method(name=name, searcher=searcher, scheduler=scheduler, table=table)


def _resolve(kind: str, name: str) -> type:
    try:
        return resolve(kind, name)
    except ValueError as e:
        raise MethodMissing(str(e)) from None


def _takes_seed(cls: type) -> bool:
    """True when a constructor in the class's MRO declares a ``seed`` parameter (subclasses may pass
    ``**options`` on)."""
    return any("seed" in inspect.signature(k.__init__).parameters for k in cls.__mro__ if "__init__" in vars(k)
               and k is not object)


def build_method(method: Method | str, space: Space, metric: str, mode: str, seed: int,
                 candidates: Callable[[], list[dict[str, Any]]] | None = None) -> tuple[Searcher, Scheduler]:
    """A fresh searcher and scheduler for one run.

    ``candidates``: the problem's tabulated settings (built only for an ``@table`` method).

    Raises:
        MethodMissing: the searcher's or scheduler's module cannot be imported (not written yet).
        MethodNotApplicable: the scheduler needs a fidelity the problem does not have, or an ``@table`` method
            runs on a problem without a table or with a searcher that cannot be restricted (Optuna's).
    """
    m = parse_method(method) if isinstance(method, str) else method
    if space.fidelity is None and m.scheduler != "fifo":
        raise MethodNotApplicable(f"{m.name}: scheduler {m.scheduler!r} needs a problem with a fidelity")
    options = dict(m.searcher_options)
    if m.table:
        if candidates is None:
            raise MethodNotApplicable(f"{m.name}: @table needs a tabulated problem")
        if m.searcher.startswith("optuna_"):
            raise MethodNotApplicable(f"{m.name}: Optuna's samplers cannot be restricted to a table")
        options["candidates"] = candidates()
    if m.searcher.startswith("optuna_") and m.searcher[7:] in OPTUNA_SAMPLERS:
        searcher: Searcher = OptunaSearcher(space, seed=seed, sampler=m.searcher[7:], **options)
    else:
        searcher = _resolve("searcher", m.searcher).from_options(space, {"seed": seed, **options})
    if m.scheduler in _PRUNERS:
        scheduler: Scheduler = OptunaPrunerScheduler(
            space, metric, mode, pruner=m.scheduler, searcher=searcher, **m.scheduler_options
        )
    else:
        cls = _resolve("scheduler", m.scheduler)
        options = dict(m.scheduler_options)
        if m.scheduler == "asha":
            options.setdefault("reduction_factor", 3)
        if _takes_seed(cls):  # a run's seed seeds every random choice of the method, the scheduler's too
            options.setdefault("seed", seed)
        scheduler = cls.from_options(space, metric, mode, options)
    return searcher, scheduler

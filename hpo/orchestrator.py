"""The asynchronous loop: fill free slots, wait for the next segment to end, record it, decide.

State lives here and in storage only. Each pass: (1) fill every free slot, first with trials a previous driver left
running (they resume from their last checkpoint), then with paused trials the scheduler wants resumed, then with new
trials from the searcher; (2) wait for the executor's next finished segment; (3) record it at once (one storage
transaction); (4) ask the scheduler to continue, pause or stop the trial. Searchers and schedulers see an immutable
:class:`~hpo.history.History` built from the current trials.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from hpo.executors.base import Executor
from hpo.history import History
from hpo.scheduler import Decision, Scheduler
from hpo.searcher import Searcher
from hpo.space import Space
from hpo.storage import Storage
from hpo.trial import Segment, SegmentResult, Trial, TrialStatus

__all__ = ["Budget", "Orchestrator"]

EventCallback = Callable[[str, "Trial | None", History], None]


@dataclass(frozen=True)
class Budget:
    """When a sweep stops.

    Attributes:
        max_trials: no new trial after this many were created (running and paused ones may still finish).
        max_cost: stop starting work once the trials' summed ``cost_key`` reaches this.
        max_seconds: stop this driver run after this many seconds on the executor's clock.
        cost_key: which cost ``max_cost`` reads (``wall_seconds``, or one the trainable reports).
    """

    max_trials: int | None = None
    max_cost: float | None = None
    max_seconds: float | None = None
    cost_key: str = "wall_seconds"

    def __post_init__(self) -> None:
        for name in ("max_trials", "max_cost", "max_seconds"):
            v = getattr(self, name)
            if v is None:
                continue
            number = isinstance(v, (int, float)) and not isinstance(v, bool)
            if name == "max_trials" and not (number and float(v).is_integer()):
                raise ValueError(f"budget max_trials must be a whole number of trials, got {v!r}")
            if not number or not v > 0:
                raise ValueError(f"budget {name} must be a positive number, got {v!r}")
        if self.max_trials is not None:
            object.__setattr__(self, "max_trials", int(self.max_trials))
        if not isinstance(self.cost_key, str) or not self.cost_key:
            raise ValueError(f"budget cost_key must name a cost (e.g. 'wall_seconds'), got {self.cost_key!r}")
        if self.max_trials is None and self.max_cost is None and self.max_seconds is None:
            raise ValueError("a sweep needs a budget: set max_trials, max_cost or max_seconds")


def _config_key(config: Mapping[str, Any]) -> str:
    """A config as stored (JSON), so that a config read back from storage matches the one written."""
    return json.dumps(dict(config), sort_keys=True, default=str)


class Orchestrator:
    """Runs a sweep to its budget on an executor, recording every event in storage.

    Args:
        trainable: the user's function of a config (see :mod:`hpo.session`).
        space, metric, mode: what is searched and optimized.
        searcher, scheduler: what to try, and when to continue, pause, stop or resume.
        executor: where segments run (Ray or simulated).
        storage: the sweep's durable record; trials found in it are resumed.
        budget: when to stop.
        points_to_evaluate: configs to try first, before the searcher's.
        on_event: called after each recorded event with ``(kind, trial, history)`` (live display).
    """

    def __init__(
        self,
        trainable: Callable[[dict[str, Any]], Any],
        space: Space,
        metric: str,
        mode: str,
        searcher: Searcher,
        scheduler: Scheduler,
        executor: Executor,
        storage: Storage,
        budget: Budget,
        checkpoint_store: Any = None,
        points_to_evaluate: Sequence[dict[str, Any]] = (),
        on_event: EventCallback | None = None,
    ) -> None:
        self.trainable, self.space, self.metric, self.mode = trainable, space, metric, mode
        self.searcher, self.scheduler, self.executor, self.storage = searcher, scheduler, executor, storage
        self.budget, self.checkpoint_store, self.on_event = budget, checkpoint_store, on_event
        for config in points_to_evaluate:
            space.validate(config)
        self._trials: dict[int, Trial] = {t.trial_id: t for t in storage.load_trials()}
        # A resumed sweep has tried some of the points already: each stored trial accounts for one of them.
        tried = [_config_key(t.config) for t in self._trials.values()]
        self._initial = []
        for config in (space.complete(c) for c in points_to_evaluate):
            key = _config_key(config)
            if key in tried:
                tried.remove(key)
            else:
                self._initial.append(config)
        # A previous driver's trials that were running or waiting: run them again from their last checkpoint.
        waiting = (TrialStatus.PENDING, TrialStatus.RUNNING)
        self._requeue = [t.trial_id for t in self._trials.values() if t.status in waiting]
        self._history: History | None = None
        self._draining = False
        self.interrupted = False  # stopped with work left: Ctrl-C, or the time budget cut running trials short
        self.cancelled = False  # Ctrl-C

    # -- state -----------------------------------------------------------------------------------------------

    def history(self) -> History:
        if self._history is None:
            self._history = History(self.space, self.metric, self.mode, tuple(self._trials.values()))
        return self._history

    def _update(self, trial: Trial, event: str, data: dict[str, Any] | None = None, points=()) -> Trial:
        self.storage.record(trial, event, data, points)
        self._trials[trial.trial_id] = trial
        self._history = None
        if self.on_event is not None:
            self.on_event(event, trial, self.history())
        return trial

    def _spent(self) -> float:
        return sum(t.cost.get(self.budget.cost_key, 0.0) for t in self._trials.values())

    def _may_start_work(self) -> bool:
        if self._draining:
            return False
        if self.budget.max_cost is not None and self._spent() >= self.budget.max_cost:
            self._draining = True
        elif self.budget.max_seconds is not None and self.executor.now() - self._t0 >= self.budget.max_seconds:
            self._draining = True
        return not self._draining

    def _may_create_trial(self, history: History) -> bool:
        if self.budget.max_trials is not None and len(self._trials) >= self.budget.max_trials:
            return False
        return not self.searcher.is_finished(history)

    # -- the loop --------------------------------------------------------------------------------------------

    def run(self) -> History:
        """Run until the budget is spent and nothing is left to do; Ctrl-C stops cleanly, everything recorded."""
        self.storage.log_event("sweep_resumed" if self._trials else "sweep_started", {"trials": len(self._trials)})
        self.executor.start(self.trainable, self.metric, self.checkpoint_store)
        self._t0 = self.executor.now()
        try:
            while True:
                self._fill_slots()
                if self.executor.num_running == 0:
                    break
                timeout = None
                if self.budget.max_seconds is not None and not self._draining:
                    timeout = max(self._t0 + self.budget.max_seconds - self.executor.now(), 0.0)
                results = self.executor.wait(timeout)
                for result in results:
                    self._on_result(result)
                    self._check_cost_key(result)
                if not results and timeout is not None:
                    self._may_start_work()  # the clock ran out: stop starting work
                    if self._draining:
                        break
        except KeyboardInterrupt:
            self.interrupted = self.cancelled = True
        finally:
            running = [t.trial_id for t in self._trials.values() if t.status is TrialStatus.RUNNING]
            self.interrupted = self.interrupted or bool(running)  # the time budget cut running trials short
            self.executor.shutdown()
            kind = "sweep_interrupted" if self.interrupted else "sweep_finished"
            self.storage.log_event(kind, {"left_running": running})
        return self.history()

    def _fill_slots(self) -> None:
        ex = self.executor
        while ex.num_running < ex.num_slots and self._may_start_work():
            if self._requeue:
                self._submit(self._trials[self._requeue.pop(0)], "requeued")
                continue
            history = self.history()
            tid = self.scheduler.choose_trial_to_run(history)
            if tid is not None:
                trial = self._trials[tid]
                if trial.status is not TrialStatus.PAUSED:
                    raise RuntimeError(f"scheduler chose trial {tid} to resume but it is {trial.status.value}")
                self._submit(trial, "resumed")
                continue
            if not self._may_create_trial(history):
                return
            free = ex.num_slots - ex.num_running
            if self.budget.max_trials is not None:
                free = min(free, self.budget.max_trials - len(self._trials))
            configs = []
            while self._initial and len(configs) < free:
                configs.append(self._initial.pop(0))
            if len(configs) < free:
                for c in self.searcher.suggest_batch(self._history_with(history, configs), free - len(configs)):
                    self.space.validate(c)  # a searcher's bug must not reach user code
                    configs.append(self.space.complete(c))
            if not configs:
                return
            for config in configs:
                self._create_and_submit(config)

    def _history_with(self, history: History, configs: list[dict[str, Any]]) -> History:
        for c in configs:
            history = history.with_pending(c)
        return history

    def _create_and_submit(self, config: dict[str, Any]) -> None:
        tid = next(reversed(self._trials), -1) + 1  # ids ascend in insertion order
        # One transaction creates the trial and starts its first segment: a crash between the two cannot happen.
        self._submit(Trial(tid, config, TrialStatus.PENDING, created_at=self.executor.now()), "started")

    def _submit(self, trial: Trial, event: str) -> None:
        stop = int(self.scheduler.next_stop(self.history(), trial))
        stop = min(max(stop, trial.last_step + 1), self.space.max_step)
        trial = replace(trial, status=TrialStatus.RUNNING)
        clock = self.executor.now()
        self._update(trial, event, {"start_step": trial.last_step, "stop_step": stop, "clock": clock})
        self.executor.submit(Segment(trial.trial_id, trial.config, trial.last_step, stop))

    def _check_cost_key(self, result: SegmentResult) -> None:
        """``max_cost`` counts ``cost_key``: a key that no trial reports would never stop the sweep."""
        key = self.budget.cost_key
        if self.budget.max_cost is None or result.error is not None or result.worker_died or key in result.cost:
            return
        if not any(key in t.cost for t in self._trials.values()):
            raise ValueError(
                f"budget cost_key {key!r} is not a cost the trials report ({sorted(result.cost)}), so max_cost "
                f"would never be reached; set cost_key to one of them or report it with hpo.report(cost=...)"
            )

    def _on_result(self, result: SegmentResult) -> None:
        seg = result.segment
        trial = self._trials[seg.trial_id].with_points(result.points).with_cost(result.cost)
        data: dict[str, Any] = {
            "start_step": seg.start_step,
            "stop_step": seg.stop_step,
            "last_step": trial.last_step,
            "clock": self.executor.now(),
            "attempts": seg.attempt + 1,
            "cost": dict(result.cost),
            "worker": dict(result.worker),
        }
        if result.error is not None or result.worker_died:
            error = result.error or "the worker died and retries are exhausted"
            self._update(replace(trial, status=TrialStatus.FAILED, error=error), "failed", data, result.points)
            return
        if result.finished or trial.last_step >= self.space.max_step:
            self._update(replace(trial, status=TrialStatus.COMPLETED), "completed", data, result.points)
            return
        if trial.last_step <= seg.start_step:
            error = f"segment ended without a report past step {seg.start_step}; report each step with hpo.report"
            self._update(replace(trial, status=TrialStatus.FAILED, error=error), "failed", data, result.points)
            return
        provisional = replace(trial, status=TrialStatus.RUNNING)
        self._trials[trial.trial_id] = provisional
        self._history = None
        decision = self.scheduler.on_segment_end(self.history(), provisional)
        if decision is Decision.CONTINUE and self._may_start_work():
            self._update(provisional, "segment_ended", data, result.points)
            self._submit(provisional, "continued")
        elif decision is Decision.STOP:
            self._update(replace(trial, status=TrialStatus.STOPPED), "stopped", data, result.points)
        else:
            self._update(replace(trial, status=TrialStatus.PAUSED), "paused", data, result.points)


def utilization(events: list[dict[str, Any]], num_workers: int, until: float | None = None) -> float:
    """Busy share of ``num_workers`` over ``[0, until]`` (default: until the last segment started), from the
    ``clock`` of segment start and end events in a storage's event log."""
    starts: dict[int, float] = {}
    spans: list[tuple[float, float]] = []
    last_start = 0.0
    for e in events:
        clock = e["data"].get("clock") if e["data"] else None
        if clock is None or e["trial_id"] is None:
            continue
        if e["kind"] in ("started", "resumed", "requeued", "continued"):
            starts[e["trial_id"]] = clock
            last_start = max(last_start, clock)
        elif e["kind"] in ("segment_ended", "paused", "completed", "failed", "stopped") and e["trial_id"] in starts:
            spans.append((starts.pop(e["trial_id"]), clock))
    horizon = last_start if until is None else until
    if horizon <= 0:
        return math.nan
    busy = sum(max(0.0, min(b, horizon) - a) for a, b in spans if a < horizon)
    busy += sum(max(0.0, horizon - a) for a in starts.values() if a < horizon)
    return busy / (num_workers * horizon)

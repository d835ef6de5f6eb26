"""The scheduler interface: when to continue, pause, stop or resume.

Names follow Ray Tune's ``TrialScheduler``: after each segment the scheduler answers ``CONTINUE``, ``PAUSE`` or
``STOP``; when a worker frees it may pick a paused trial to resume (``choose_trial_to_run``), or leave the slot to a
new trial from the searcher. A paused trial holds no worker; resuming it runs its next segment from its last
checkpoint, on any worker.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping
from typing import Any

from hpo.history import History
from hpo.space import Space
from hpo.trial import Trial

__all__ = ["Decision", "Scheduler"]


class Decision(str, enum.Enum):
    """What to do with a trial whose segment just ended."""

    CONTINUE = "continue"  # run its next segment now, on the same slot
    PAUSE = "pause"  # free the slot; the trial may be resumed later
    STOP = "stop"  # end it early (status STOPPED)


class Scheduler(abc.ABC):
    """Base class of hpo's schedulers.

    Lifecycle, driven by the orchestrator:

    1. A worker is free: :meth:`choose_trial_to_run` may return a paused trial's id to resume; None asks the
       searcher for a new trial.
    2. Before each segment: :meth:`next_stop` gives the step at which it ends (a rung, the full budget, ...).
    3. After each segment: :meth:`on_segment_end` returns a :class:`Decision`. A trial that reached its full
       budget (``space.max_step``) is completed whatever the answer.

    Every method receives the current :class:`History`; a scheduler should keep no state that the history does not
    determine, so that a resumed sweep makes the same decisions.
    """

    def __init__(self, space: Space, metric: str, mode: str = "min") -> None:
        self.space = space
        self.metric = metric
        self.mode = mode

    @property
    def max_step(self) -> int:
        return self.space.max_step

    @abc.abstractmethod
    def next_stop(self, history: History, trial: Trial) -> int:
        """The step at which the trial's next segment ends (greater than ``trial.last_step``)."""

    @abc.abstractmethod
    def on_segment_end(self, history: History, trial: Trial) -> Decision:
        """Decide a trial's fate after a segment; ``history`` already holds the segment's points."""

    def choose_trial_to_run(self, history: History) -> int | None:
        """A paused trial to resume on a free worker, or None for a new trial."""
        return None

    @classmethod
    def from_options(cls, space: Space, metric: str, mode: str, options: Mapping[str, Any]) -> Scheduler:
        try:
            return cls(space, metric, mode, **dict(options))
        except TypeError as e:
            raise ValueError(f"scheduler {cls.__name__}: {e}; check the scheduler options in the sweep file") from None

"""First in, first out: every trial runs to its full budget in one segment."""

from __future__ import annotations

from hpo.history import History
from hpo.scheduler import Decision, Scheduler
from hpo.trial import Trial

__all__ = ["FIFOScheduler"]


class FIFOScheduler(Scheduler):
    """Runs each trial to ``space.max_step`` without pausing; the searcher alone decides.

    Example:
        >>> from hpo.space import Space, Float, Fidelity
        >>> s = FIFOScheduler(Space({"x": Float(0, 1)}, fidelity=Fidelity("epoch", 1, 10)), "loss")
        >>> s.max_step
        10
    """

    def next_stop(self, history: History, trial: Trial) -> int:
        return self.max_step

    def on_segment_end(self, history: History, trial: Trial) -> Decision:
        return Decision.CONTINUE

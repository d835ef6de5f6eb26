"""Asynchronous successive halving with promotion: pause at rungs, resume the best from their checkpoints.

Li, Jamieson, Rostamizadeh, Gonina, Ben-Tzur, Hardt, Recht, Talwalkar, "A System for Massively Parallel
Hyperparameter Tuning" (MLSys 2020), Algorithm 2. Rungs sit at ``r_k = min_step * eta^k`` (``k = 0, 1, ...``) below
``max_step``, and at ``max_step``. Every trial runs to rung 0 and pauses. When a worker frees, the scheduler scans
rungs from the top: a paused trial at rung ``k`` that is among the best ``floor(n_k / eta)`` of the ``n_k`` trials
that reached rung ``k`` is promoted: resumed from its checkpoint up to rung ``k + 1``. With nothing to promote, the
slot goes to a new trial.

Unlike Ray Tune's ``ASHAScheduler``, which can only stop trials (ray-project/ray#44256, #4401), a trial paused here
holds no worker and can be promoted at any later time, so a late-blooming rung fills in as the sweep goes on.
"""

from __future__ import annotations

import math

from hpo.history import History
from hpo.scheduler import Decision, Scheduler
from hpo.space import Space
from hpo.trial import Trial, TrialStatus

__all__ = ["ASHAScheduler"]


class ASHAScheduler(Scheduler):
    """Promotion-based asynchronous successive halving.

    Args:
        space: needs a fidelity; its ``low`` is the first rung unless ``min_step`` is given.
        metric, mode: what to rank trials by.
        reduction_factor: ``eta``; the top ``1/eta`` of a rung are promoted.
        min_step: the first rung (default: ``space.fidelity.low``).

    Example:
        >>> from hpo.space import Space, Float, Fidelity
        >>> space = Space({"x": Float(0, 1)}, fidelity=Fidelity("epoch", 1, 27))
        >>> ASHAScheduler(space, "loss", reduction_factor=3).rungs
        [1, 3, 9, 27]
    """

    def __init__(
        self, space: Space, metric: str, mode: str = "min", reduction_factor: float = 3, min_step: int | None = None
    ) -> None:
        super().__init__(space, metric, mode)
        if space.fidelity is None:
            raise ValueError(
                "ASHA needs a fidelity (budget) in the space, e.g. fidelity: {name: epoch, low: 1, high: 27}; "
                "use the fifo scheduler for single-step trials"
            )
        if reduction_factor <= 1:
            raise ValueError(f"reduction_factor must be > 1, got {reduction_factor}; 3 is the usual choice")
        self.eta = float(reduction_factor)
        low = int(min_step if min_step is not None else space.fidelity.low)
        if not 1 <= low <= self.max_step:
            raise ValueError(f"min_step must be in [1, {self.max_step}], got {low}")
        rungs, r = [], float(low)
        while round(r) < self.max_step:
            if not rungs or round(r) > rungs[-1]:
                rungs.append(round(r))
            r *= self.eta
        self.rungs: list[int] = [*rungs, self.max_step]
        # A trial's rung value never changes once a point at or past the rung exists: cached so that a decision
        # costs O(trials x rungs) dictionary look-ups, not a scan of every curve.
        self._rung_values: dict[tuple[int, int], float | None] = {}

    def next_stop(self, history: History, trial: Trial) -> int:
        return next(r for r in self.rungs if r > trial.last_step)

    def _rung_value(self, history: History, trial: Trial, rung: int) -> float | None:
        # The first report at or past the rung: trainables that report every few steps still land in a rung.
        key = (trial.trial_id, rung)
        if key in self._rung_values:
            return self._rung_values[key]
        for step, metrics in trial.curve:
            if step >= rung:
                v = metrics.get(self.metric)
                value = None if v is None or not math.isfinite(v) else history.sign(float(v))
                self._rung_values[key] = value
                return value
        return None

    def promotable(self, history: History, also: Trial | None = None) -> list[Trial]:
        """Trials that may be promoted now, best first, from the highest rung down.

        ``also`` is a trial whose segment just ended: it counts as paused at its rung.
        """
        out: list[Trial] = []
        trials = [also if also is not None and t.trial_id == also.trial_id else t for t in history]
        for k in range(len(self.rungs) - 2, -1, -1):
            rung, nxt = self.rungs[k], self.rungs[k + 1]
            scored = []
            for t in trials:
                if t.last_step >= rung and (v := self._rung_value(history, t, rung)) is not None:
                    scored.append((v, t.trial_id, t))
            n_top = int(len(scored) / self.eta)
            if n_top == 0:
                continue
            scored.sort(key=lambda s: (s[0], s[1]))
            for _, _, t in scored[:n_top]:
                waiting = t.status is TrialStatus.PAUSED or (also is not None and t.trial_id == also.trial_id)
                if waiting and rung <= t.last_step < nxt:
                    out.append(t)
        return out

    def choose_trial_to_run(self, history: History) -> int | None:
        candidates = self.promotable(history)
        return candidates[0].trial_id if candidates else None

    def on_segment_end(self, history: History, trial: Trial) -> Decision:
        # Keep a trial on its worker when it would be the very next promotion: same decision, no reload.
        candidates = self.promotable(history, also=trial)
        if candidates and candidates[0].trial_id == trial.trial_id:
            return Decision.CONTINUE
        return Decision.PAUSE

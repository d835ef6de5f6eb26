"""An immutable snapshot of a sweep, the one thing searchers and schedulers read.

Notation
--------
- ``n``: number of trials in the snapshot, pending and running ones included.
- ``y``: a trial's objective, signed so that lower is better (``value`` for ``mode="min"``, ``-value`` for
  ``"max"``). Searchers minimize ``y`` and never need to know the mode.
- ``X``: encoded configs, shape ``(n_obs, d)``, in the unit cube of :class:`hpo.space.Space`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np

from hpo.space import Space
from hpo.trial import Trial, TrialStatus

__all__ = ["History"]

_MODES = ("min", "max")


@dataclass(frozen=True)
class History:
    """Trials of a sweep at one moment, ordered by ``trial_id``.

    Example:
        >>> from hpo.space import Space, Float
        >>> h = History(Space({"x": Float(0, 1)}), metric="loss", mode="min")
        >>> h = h.with_pending({"x": 0.5})
        >>> [t.status.value for t in h]
        ['pending']
    """

    space: Space
    metric: str
    mode: str = "min"
    trials: tuple[Trial, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(f"mode must be 'min' or 'max', got {self.mode!r}")

    def __iter__(self) -> Iterator[Trial]:
        return iter(self.trials)

    def __len__(self) -> int:
        return len(self.trials)

    def __getitem__(self, trial_id: int) -> Trial:
        return self.trials[self._index[trial_id]]

    def __contains__(self, trial_id: object) -> bool:
        return trial_id in self._index

    @cached_property
    def _index(self) -> dict[int, int]:
        return {t.trial_id: i for i, t in enumerate(self.trials)}

    def with_trials(self, trials: tuple[Trial, ...]) -> History:
        return replace(self, trials=trials)

    def with_pending(self, config: Mapping[str, Any]) -> History:
        """This history plus one pending trial for ``config``: how a searcher accounts for its own suggestions
        when it is asked for several at once."""
        next_id = self.trials[-1].trial_id + 1 if self.trials else 0
        return replace(self, trials=(*self.trials, Trial(next_id, dict(config))))

    def with_status(self, *statuses: TrialStatus) -> list[Trial]:
        return [t for t in self.trials if t.status in statuses]

    @property
    def completed(self) -> list[Trial]:
        return self.with_status(TrialStatus.COMPLETED)

    @property
    def running(self) -> list[Trial]:
        return self.with_status(TrialStatus.RUNNING)

    @property
    def pending(self) -> list[Trial]:
        """Trials that are neither finished nor paused: waiting for or holding a worker."""
        return self.with_status(TrialStatus.PENDING, TrialStatus.RUNNING)

    @property
    def paused(self) -> list[Trial]:
        return self.with_status(TrialStatus.PAUSED)

    @property
    def failed(self) -> list[Trial]:
        return self.with_status(TrialStatus.FAILED)

    def sign(self, value: float) -> float:
        return value if self.mode == "min" else -value

    def objective(self, trial: Trial, step: int | None = None) -> float | None:
        """The trial's metric at ``step`` (default: its last), signed so lower is better; None if not reported."""
        v = trial.value(self.metric, step)
        return None if v is None else self.sign(float(v))

    def best(self) -> Trial | None:
        """The trial with the best metric at its last reported step among completed (or, failing that, any)
        trials with a finite value."""
        for pool in (self.completed, self.trials):
            scored = [(y, t.trial_id, t) for t in pool if (y := self.objective(t)) is not None and math.isfinite(y)]
            if scored:
                return min(scored, key=lambda s: (s[0], s[1]))[2]
        return None

    def best_value(self) -> float | None:
        t = self.best()
        return None if t is None else t.value(self.metric)

    def observations(self, include_failed: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Encoded configs and objectives of finished trials with a result: ``X (n_obs, d)``, ``y (n_obs,)``.

        Failed trials are left out unless ``include_failed``; then their ``y`` is NaN so that a searcher can treat
        them as it sees fit (e.g. impute the worst value) rather than be poisoned by them.
        """
        xs, ys = [], []
        for t in self.trials:
            if t.status is TrialStatus.FAILED:
                if include_failed:
                    xs.append(self.space.encode(self._searched(t.config)))
                    ys.append(math.nan)
                continue
            if t.status.is_finished:
                y = self.objective(t)
                if y is not None:
                    xs.append(self.space.encode(self._searched(t.config)))
                    ys.append(y)
        d = self.space.dim
        return np.asarray(xs, dtype=float).reshape(-1, d), np.asarray(ys, dtype=float)

    def pending_points(self) -> np.ndarray:
        """Encoded configs of pending, running and paused trials, ``(n_pending, d)``: work in flight."""
        xs = [
            self.space.encode(self._searched(t.config))
            for t in self.trials
            if t.status in (TrialStatus.PENDING, TrialStatus.RUNNING, TrialStatus.PAUSED)
        ]
        return np.asarray(xs, dtype=float).reshape(-1, self.space.dim)

    def _searched(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {n: config[n] for n in self.space.names}

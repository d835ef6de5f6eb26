"""The searcher interface: what to try next.

A searcher answers ``suggest(history) -> config``. It reads the whole history, pending and running trials included,
so that it can avoid duplicates and account for work in flight. It should be a function of ``(space, history,
seed)`` as far as possible: resuming a sweep is then replaying its storage, and the Ray Tune and Optuna adapters
only have to build a history. Names follow Ray Tune's ``Searcher``.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

from hpo.history import History
from hpo.space import Space

__all__ = ["Searcher"]


class Searcher(abc.ABC):
    """Base class of hpo's searchers.

    Lifecycle: the orchestrator builds the searcher with the sweep's space and seed, then, each time a worker is
    free and the scheduler wants a new trial, calls :meth:`suggest` with a fresh :class:`History` snapshot.
    ``suggest`` returns a config of the searched parameters (the orchestrator adds constants and the fidelity), or
    None when it has nothing to offer now; :meth:`is_finished` tells the orchestrator that it never will again
    (a finite space is exhausted). There is no ``on_trial_complete``: results arrive through the next history.

    Args:
        space: the search space.
        seed: the seed of every random choice the searcher makes.
    """

    def __init__(self, space: Space, seed: int = 0) -> None:
        self.space = space
        self.seed = int(seed)

    @abc.abstractmethod
    def suggest(self, history: History) -> dict[str, Any] | None:
        """The next config to evaluate, or None if the searcher has nothing to offer now."""

    def suggest_batch(self, history: History, n: int) -> list[dict[str, Any]]:
        """Up to ``n`` configs for ``n`` free workers; each one sees the earlier ones as pending trials."""
        out: list[dict[str, Any]] = []
        for _ in range(n):
            config = self.suggest(history)
            if config is None:
                break
            out.append(config)
            history = history.with_pending(self.space.complete(config))
        return out

    def is_finished(self, history: History) -> bool:
        """True when the searcher will never suggest again (e.g. every config of a finite space was tried)."""
        return False

    @classmethod
    def from_options(cls, space: Space, options: Mapping[str, Any]) -> Searcher:
        """Build from a sweep file's ``searcher:`` options, with a clear error for an unknown option."""
        try:
            return cls(space, **dict(options))
        except TypeError as e:
            raise ValueError(f"searcher {cls.__name__}: {e}; check the searcher's options") from None

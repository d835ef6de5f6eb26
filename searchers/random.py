"""Random search on a scrambled Sobol sequence, without duplicates.

Sobol points fill the unit cube more evenly than i.i.d. uniforms (lower discrepancy), which is why BoTorch and
Optuna use them for initial designs. Trial ``n`` of a sweep takes Sobol point ``n`` (skipping points whose decoded
config was already tried, which happens for integer and categorical parameters), so the suggestion is a function of
``(space, history, seed)`` and a resumed sweep continues the same sequence.
"""

from __future__ import annotations

from typing import Any

from hpo.history import History
from hpo.searcher import Searcher
from hpo.space import Space

__all__ = ["RandomSearcher"]

_BLOCK = 64


class RandomSearcher(Searcher):
    """Scrambled-Sobol random search that never repeats a config.

    Args:
        space: the search space.
        seed: seeds the Sobol scrambling.

    Example:
        >>> from hpo.space import Space, Int
        >>> from hpo.history import History
        >>> space = Space({"n": Int(1, 3)})
        >>> s, h = RandomSearcher(space, seed=0), History(space, "loss")
        >>> sorted(c["n"] for c in s.suggest_batch(h, 5))
        [1, 2, 3]
    """

    def __init__(self, space: Space, seed: int = 0) -> None:
        super().__init__(space, seed)
        self._seen: set[tuple[Any, ...]] = set()
        self._configs: dict[int, Any] = {}
        self._block_start = -1
        self._block = None

    def _point(self, index: int):
        start = index - index % _BLOCK
        if start != self._block_start:
            self._block = self.space.sobol(_BLOCK, seed=self.seed, skip=start)
            self._block_start = start
        return self._block[index - start]

    def _sync(self, history: History) -> set[tuple[Any, ...]]:
        # A history only grows during a sweep, so caching keys by trial keeps suggest cheap; any trial whose config
        # object changed, or a shorter history (another sweep), rebuilds the cache.
        if len(self._configs) > len(history) or any(
            (c := self._configs.get(t.trial_id)) is not None and c is not t.config for t in history
        ):
            self._configs, self._seen = {}, set()
        for t in history:
            if t.trial_id not in self._configs:
                self._configs[t.trial_id] = t.config
                self._seen.add(self.space.key(t.config))
        return self._seen

    def suggest(self, history: History) -> dict[str, Any] | None:
        seen = self._sync(history)
        if len(seen) >= self.space.cardinality():
            return None
        index = len(history)
        while True:
            config = {k: v for k, v in self.space.decode(self._point(index)).items() if k in self.space.params}
            if self.space.key(config) not in seen:
                return config
            index += 1

    def is_finished(self, history: History) -> bool:
        return len(self._sync(history)) >= self.space.cardinality()

"""Random search on a scrambled Sobol sequence, without duplicates.

Sobol points fill the unit cube more evenly than i.i.d. uniforms (lower discrepancy), which is why BoTorch and
Optuna use them for initial designs. Trial ``n`` of a sweep takes Sobol point ``n`` (skipping points whose decoded
config was already tried, which happens for integer and categorical parameters), so the suggestion is a function of
``(space, history, seed)`` and a resumed sweep continues the same sequence.

With ``candidates`` (a finite list of configs, as Syne Tune's ``restrict_configurations``), it draws them without
replacement in a seeded random order and is finished when every one was tried.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hpo.candidates import Candidates
from hpo.history import History
from hpo.searcher import Searcher
from hpo.space import Space
from hpo.trial import TrialStatus

__all__ = ["RandomSearcher"]

_BLOCK = 64


class RandomSearcher(Searcher):
    """Scrambled-Sobol random search that never repeats a config.

    Args:
        space: the search space.
        seed: seeds the Sobol scrambling (with ``candidates``, their order).
        design: ``"sobol"`` (default) or ``"uniform"``: independent uniform points, still a function of
            ``(seed, trial index)``. Clumps and gaps are what a model's lengthscales are learned from, so BO
            searchers can take their initial design this way (see :class:`searchers.aegis.AEGiSSearcher`).
        candidates: propose only these configs, each once (:class:`~hpo.candidates.Candidates` or a list of
            configs).

    Example:
        >>> from hpo.history import History
        >>> from hpo.space import Space, Int
        >>> space = Space({"n": Int(1, 3)})
        >>> s, h = RandomSearcher(space, seed=0), History(space, "loss")
        >>> sorted(c["n"] for c in s.suggest_batch(h, 5))
        [1, 2, 3]
    """

    def __init__(self, space: Space, seed: int = 0,
                 candidates: Candidates | Sequence[Mapping[str, Any]] | None = None, design: str = "sobol") -> None:
        super().__init__(space, seed)
        if design not in ("sobol", "uniform"):
            raise ValueError(f"design must be 'sobol' or 'uniform', got {design!r}")
        self.design = design
        self.candidates = Candidates.of(space, candidates)
        self._keys: dict[int, tuple[Any, tuple[Any, ...]]] = {}
        self._counts: Counter = Counter()
        self._block_start = -1
        self._stable = 0
        self._tail: set[int] = set()
        self._block = None

    def _point(self, index: int):
        start = index - index % _BLOCK
        if start != self._block_start:
            if self.design == "sobol":
                self._block = self.space.sobol(_BLOCK, seed=self.seed, skip=start)
            else:
                self._block = np.random.default_rng([self.seed, start]).random((_BLOCK, self.space.dim))
            self._block_start = start
        return self._block[index - start]

    def _sync(self, history: History) -> Counter:
        # Keys are cached by trial so that suggest stays cheap as the history grows. Trials are ordered by id and a
        # trial's config never changes once it is past PENDING, so only the trials from the first one that was
        # pending at the last sync are looked at again (a pending placeholder that became a real trial is
        # re-keyed). A history that is not a continuation of the cached one (another sweep) rebuilds the cache.
        trials = history.trials
        start = self._stable
        if start > len(trials) or (start and self._keys.get(trials[start - 1].trial_id, (None,))[0]
                                    is not trials[start - 1].config):
            self._keys, self._counts, start = {}, Counter(), 0
        stable = None
        for i in range(start, len(trials)):
            t = trials[i]
            if stable is None and t.status is TrialStatus.PENDING:
                stable = i
            entry = self._keys.get(t.trial_id)
            if entry is not None and entry[0] is t.config:
                continue
            key = self.space.key(t.config)
            if entry is not None:
                self._counts[entry[1]] -= 1
            self._counts[key] += 1
            self._keys[t.trial_id] = (t.config, key)
        for tid in self._tail - {t.trial_id for t in trials[start:]}:  # placeholders that did not become trials
            if tid in self._keys:
                self._counts[self._keys.pop(tid)[1]] -= 1
        self._stable = len(trials) if stable is None else stable
        self._tail = {t.trial_id for t in trials[self._stable:]}
        return self._counts

    def suggest(self, history: History) -> dict[str, Any] | None:
        if self.candidates is not None:
            return self.candidates.next_untried(history, self.seed)
        seen = self._sync(history)
        if self.is_finished(history):
            return None
        index = len(history)
        while True:
            config = {k: v for k, v in self.space.decode(self._point(index)).items() if k in self.space.params}
            if seen[self.space.key(config)] <= 0:
                return config
            index += 1

    def _n_distinct(self) -> int:
        return sum(1 for c in self._counts.values() if c > 0)

    def is_finished(self, history: History) -> bool:
        if self.candidates is not None:
            return self.candidates.exhausted(history)
        if self.space.cardinality() == float("inf"):
            return False
        self._sync(history)
        return self._n_distinct() >= self.space.cardinality()

"""A finite list of configs a searcher may propose: a tabulated benchmark's settings, or a user's shortlist.

Syne Tune calls this ``restrict_configurations``: on a tabulated benchmark (TaskSet, LCBench, NAS-Bench) only the
tabulated settings have results, so a searcher that proposes other points is answered by a nearest neighbour and
spends trials on copies of settings it already ran. A searcher given :class:`Candidates` proposes each listed
config at most once and is finished when every one was tried.

Notation
--------
- ``M``: the number of distinct candidates; ``U``: their encoded points in the unit cube, shape ``(M, d)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hpo.history import History
from hpo.space import Space, SpaceError

__all__ = ["Candidates"]


class Candidates:
    """The configs a searcher may propose, deduplicated, with their encodings and which ones a history tried.

    Args:
        space: the search space; each config must hold every searched parameter, inside its range (extra keys,
            such as the fidelity, are ignored).
        configs: the allowed configs.

    Raises:
        ValueError: no configs, or a config outside the space (the message names the config's position).

    Example:
        >>> from hpo.space import Space, Float
        >>> space = Space({"lr": Float(1e-4, 1e-1, log=True)})
        >>> c = Candidates(space, [{"lr": 1e-3}, {"lr": 1e-2}, {"lr": 1e-3}])
        >>> len(c), c.config(1)
        (2, {'lr': 0.01})
    """

    def __init__(self, space: Space, configs: Sequence[Mapping[str, Any]]) -> None:
        if len(configs) == 0:
            raise ValueError("candidates is empty: give at least one config, or leave candidates out to search the "
                             "whole space")
        self.space = space
        self.configs: list[dict[str, Any]] = []
        self.keys: list[tuple[Any, ...]] = []
        self._row: dict[tuple[Any, ...], int] = {}
        rows = []
        for i, config in enumerate(configs):
            try:
                searched = {n: config[n] for n in space.names}
                u = space.encode(searched)
            except (KeyError, SpaceError) as e:
                raise ValueError(f"candidates[{i}] = {dict(config)!r} does not fit the space: {e}; every candidate "
                                 f"needs the searched parameters {space.names} inside their ranges") from None
            key = space.key(searched)
            if key in self._row:
                continue
            self._row[key] = len(self.configs)
            self.configs.append(searched)
            self.keys.append(key)
            rows.append(u)
        self.U = np.asarray(rows, dtype=float).reshape(len(rows), space.dim)
        self._seen: dict[int, tuple[Any, int]] = {}
        self._orders: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.configs)

    def config(self, row: int) -> dict[str, Any]:
        """Candidate ``row`` as a config of the searched parameters (a copy)."""
        return dict(self.configs[row])

    def row(self, config: Mapping[str, Any]) -> int | None:
        """The row of a config that is a candidate, else None."""
        return self._row.get(self.space.key(config))

    def nearest(self, u: np.ndarray) -> int:
        """The row whose encoding is nearest to the point ``u`` of the unit cube."""
        return int(np.argmin(((self.U - np.asarray(u, dtype=float).reshape(1, -1)) ** 2).sum(axis=1)))

    def tried(self, history: History) -> np.ndarray:
        """Boolean mask of shape ``(M,)``: the candidates some trial of ``history`` (pending ones too) holds."""
        mask = np.zeros(len(self), dtype=bool)
        for t in history:
            hit = self._seen.get(t.trial_id)
            if hit is None or hit[0] is not t.config:  # keyed by trial, re-keyed if its config object changed
                row = self.row(t.config)
                hit = self._seen[t.trial_id] = (t.config, -1 if row is None else row)
            if hit[1] >= 0:
                mask[hit[1]] = True
        return mask

    def next_untried(self, history: History, seed: int) -> dict[str, Any] | None:
        """The first candidate ``history`` has not tried, in an order shuffled by ``seed`` (None when all were):
        a function of ``(candidates, history, seed)``, so a resumed sweep continues the same order."""
        order = self._orders.get(seed)
        if order is None:
            order = self._orders[seed] = np.random.default_rng(seed).permutation(len(self))
        untried = order[~self.tried(history)[order]]
        return self.config(int(untried[0])) if len(untried) else None

    def exhausted(self, history: History) -> bool:
        """True when ``history`` tried every candidate."""
        return bool(self.tried(history).all())

    @classmethod
    def of(cls, space: Space, candidates: Candidates | Sequence[Mapping[str, Any]] | None) -> Candidates | None:
        """``candidates`` as given to a searcher's constructor: None, a list of configs, or a Candidates."""
        if candidates is None or isinstance(candidates, Candidates):
            return candidates
        return cls(space, candidates)

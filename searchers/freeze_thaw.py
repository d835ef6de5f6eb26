"""The new configs of freeze-thaw Bayesian optimization (Swersky, Snoek, Adams, 2014).

With :class:`~schedulers.freeze_thaw.FreezeThawScheduler`, the scheduler's plan decides between thawing a paused trial
and starting a new config, and this searcher proposes that config: both read one
:class:`~hpo.surrogates.freeze_thaw.FreezeThawPolicy` (found through the space object they share). With any other
scheduler (FIFO, ASHA), the searcher keeps its own policy and proposes the candidate with the best acquisition
(by default expected improvement of the final value; or entropy search over it) among new configs only: a
learning-curve-aware GP searcher that uses the partial curves of running and stopped trials.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hpo.candidates import Candidates
from hpo.history import History
from hpo.searcher import Searcher
from hpo.space import Space
from hpo.surrogates.freeze_thaw import FreezeThawPolicy, shared_policy

__all__ = ["FreezeThawSearcher"]


class FreezeThawSearcher(Searcher):
    """Proposes new configs from the freeze-thaw learning-curve GP.

    Args:
        space: needs a fidelity.
        seed: seeds the warm-up Sobol points and the candidates.
        candidates: propose only these configs, each at most once (a tabulated benchmark's settings, a
            shortlist): the warm-up takes them in a seeded random order, the model scores the untried ones. Give
            the freeze-thaw scheduler the same list.
        acquisition, n_initial, **options: as :class:`~hpo.surrogates.freeze_thaw.FreezeThawPolicy`; they apply
            when no freeze-thaw scheduler runs the sweep (otherwise the scheduler's options decide).

    The first ``n_initial`` configs are scrambled Sobol points (the model needs a few curves). After that one config
    per call of :meth:`suggest_batch`: the orchestrator then asks the scheduler again for the next free worker, which
    may prefer to thaw a paused trial.

    Example:
        >>> from hpo.space import Space, Float, Fidelity
        >>> from hpo.history import History
        >>> space = Space({"lr": Float(1e-4, 1e-1, log=True)}, fidelity=Fidelity("epoch", 1, 16))
        >>> s = FreezeThawSearcher(space, seed=0, n_initial=3)
        >>> len(s.suggest_batch(History(space, "loss"), 3))
        3
    """

    def __init__(self, space: Space, seed: int = 0, acquisition: str = "promote", n_initial: int = 5,
                 candidates: Candidates | Sequence[Mapping[str, Any]] | None = None, **options: Any) -> None:
        super().__init__(space, seed)
        self.candidates = Candidates.of(space, candidates)
        self._options = {"acquisition": acquisition, "n_initial": n_initial, "candidates": self.candidates,
                         **options}
        self._own: dict[tuple[str, str], FreezeThawPolicy] = {}

    def policy(self, history: History) -> FreezeThawPolicy:
        """The sweep's freeze-thaw scheduler's policy if there is one, else this searcher's own."""
        shared = shared_policy(self.space, history.metric)
        if shared is not None:
            if self.candidates is not None and shared.candidates is None:
                shared.candidates = self.candidates  # the scheduler's plans then start only these configs
            return shared
        key = (history.metric, history.mode)
        if key not in self._own:
            self._own[key] = FreezeThawPolicy(self.space, history.metric, history.mode, seed=self.seed,
                                              **self._options)
        return self._own[key]

    def suggest(self, history: History) -> dict[str, Any] | None:
        policy = self.policy(history)
        if not policy.in_warmup(history):
            # The plan the scheduler made for this very history (a cache hit), or a plan among new configs only.
            plan = policy.plan(history, history.paused) if shared_policy(self.space, history.metric) else None
            if plan is None or plan.config_u is None:
                plan = policy.plan(history, [])
            if plan.config_u is not None:
                if self.candidates is not None:
                    return self.candidates.config(self.candidates.nearest(plan.config_u))
                return self._searched(self.space.decode(plan.config_u))
        return self._sobol(history)

    def is_finished(self, history: History) -> bool:
        return self.candidates is not None and self.candidates.exhausted(history)

    def suggest_batch(self, history: History, n: int) -> list[dict[str, Any]]:
        if self.policy(history).in_warmup(history):
            return super().suggest_batch(history, n)
        config = self.suggest(history)
        return [] if config is None else [config]

    def _sobol(self, history: History) -> dict[str, Any] | None:
        if self.candidates is not None:  # the first untried candidate in a seeded random order
            return self.candidates.next_untried(history, self.seed)
        seen = {self.space.key(t.config) for t in history}
        index = len(history)
        while True:
            config = self._searched(self.space.decode(self.space.sobol(1, seed=self.seed, skip=index)[0]))
            if self.space.key(config) not in seen or index > len(history) + 1000:
                return config
            index += 1

    def _searched(self, config: dict[str, Any]) -> dict[str, Any]:
        return {k: config[k] for k in self.space.names}

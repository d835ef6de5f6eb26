"""AEGiS: asynchronous epsilon-greedy global search (De Ath, Everson, Fieldsend, "Asynchronous epsilon-Greedy
Bayesian Optimisation", UAI 2021).

Notation
--------
- ``d``: searched parameters; ``X (n, d)``, ``y (n,)``: observations (encoded, lower is better); ``X_p (m, d)``:
  pending points (trials created, running or paused, without a result).
- ``mu(x)``, ``sigma(x)``: the GP's posterior mean and standard deviation (:class:`hpo.surrogates.gp.GPSurrogate`).
- ``eps``: the exploration probability; ``t``: this suggestion's index among the sweep's trials.

The algorithm (paper, Algorithm 1 and Sec. 4; the authors' code ``aegis/batch/aegis.py``)
----------------------------------------------------------------------------------------
Each time a worker frees, independently of the other workers, draw one move:

- **exploit**, with probability ``1 - 2 eps``: ``x = argmin_x mu(x)``;
- **Thompson**, with probability ``eps``: draw a function ``g ~ GP posterior`` and take ``x = argmin_x g(x)``;
- **Pareto**, with probability ``eps``: take a uniformly random member of the approximate Pareto set of
  ``(mu(x), -sigma(x))``, the locations no other location beats in both mean and uncertainty, found by NSGA-II.

so exploration happens with probability ``2 eps``, split equally (the authors' ``eta = 0.5``) between the two
exploratory moves. The paper's ``eps = min(1 / sqrt(d), 1/2)`` with ``d`` floored at 4 (:func:`aegis_epsilon`,
``epsilon="paper"``) makes the exploit share grow with the dimension (0 for ``d <= 4``, 0.18 for ``d = 6``, 0.37
for ``d = 10``); our default is ``eps = 1/4`` in every dimension, an exploit share of 1/2 (below). The initial
design is ``2 d`` space-filling points (the paper uses Latin hypercube samples; we use scrambled Sobol).

Where this implementation differs, and why
------------------------------------------
- Epsilon. The paper's rule never exploits at ``d <= 4`` and exploits 18% of the time at ``d = 6``, so on low
  dimensional problems, which is where most hyperparameter sweeps live, the incumbent is polished only by chance
  Thompson samples. On the synthetic suite (budget 100, 1 to 16 workers, 30 seeds;
  ``benchmarks/results/aegis_synthetic.md``, section "Epsilon") ``eps = 1/4`` ends lower than the paper's rule on
  Branin on 26 to 30 of 30 seeds at every worker count, on Styblinski-Tang-10 on 22 to 26, and on Hartmann-6 on 19 to
  22 (17 to 19 runs leave its local basin, against 15 to 17). It is significantly worse only on Ackley-5 at one worker
  (lower on 9 of 30 seeds), and Levy-10's median leans the paper's way at 1, 8 and 16 workers (0.79 against 0.59 at
  one; lower on 15, 11 and 13 of 30 seeds, none significant). De Ath et al.'s own epsilon-greedy study ("Greed is
  good", ACM TELO 2021) also found small epsilons strong. ``epsilon="paper"`` restores the paper's rule.
- Pending points. The paper ignores them (every worker sees the model of the completed evaluations only), relying
  on the randomness of the two exploratory moves to keep workers apart. By default (``pending="believer"``) we
  condition the exploratory moves on pending points with the kriging believer (the GP updated with ``mu`` at
  ``X_p``): the mean is unchanged, so exploitation is exactly the paper's, but ``sigma`` collapses at ``X_p``, so a
  Thompson sample or a Pareto member no longer lands on work in flight. ``pending="ignore"`` is the paper's rule.
  On the synthetic suite with the default epsilon (30 seeds at 4 and 16 workers;
  ``benchmarks/results/aegis_synthetic.md``, section "Pending points with epsilon 1/4") no problem differs
  significantly seed by seed at 4 workers, where the believer meets the issue's bar on 6 of 6 problems and ignoring
  pending points on 4. At 16 workers both meet it on 5; the believer ends lower on Branin and on Styblinski-Tang-10 on
  19 of 30 seeds each (sign test p 0.20; 90% bootstrap intervals of ignoring's median minus the believer's [0.00,
  0.64] and [0.01, 0.13]), and ignoring has the lower median on Levy-10 (1.09 against 1.18; lower on 14 of 30 seeds).
  So the believer stays the default.
- Repeated exploitation. The authors' code forbids exploiting on suggestions ``1..q`` (``q`` workers) because all
  workers start with the same model, whose mean minimizer is the same point. A searcher here does not know ``q``,
  and our initial design is itself asynchronous, so we apply the rule the paper's one stands for: when a move would
  suggest a config already tried or within ``1e-3`` of a pending point, it is replaced by the other exploratory
  moves (in random order) and, failing those, by the next unused Sobol point.
- The Pareto set: NSGA-II (Deb et al., 2002) as in the paper, in this module (:func:`nsga2_mean_std`), returning the
  non-dominated points of everything it evaluated (as the authors do); ``64`` individuals for ``15``
  generations by default (the authors run ``1000 d`` evaluations; we cap the cost for suggestion latency).
- Thompson samples are BoTorch pathwise (Matheron) samples with 1024 random Fourier features, minimized by
  multi-start L-BFGS-B (6 restarts chosen from 256 Sobol and 32 incumbent-neighbourhood starts; the paper: 2000
  features, ``1000 d`` Sobol samples, 10 restarts); the budget is capped for suggestion latency. With
  categorical parameters (whose Hamming kernel has no Fourier features) the sample is drawn jointly on a finite
  candidate set instead.
"""

from __future__ import annotations

import enum
import math
import numbers
from typing import Any

import numpy as np
import torch
from botorch.sampling.pathwise import draw_matheron_paths

from hpo.history import History
from hpo.searcher import Searcher
from hpo.space import Space
from hpo.surrogates.gp import DTYPE, GPSurrogate
from searchers.random import RandomSearcher

__all__ = [
    "DEFAULT_EPSILON",
    "AEGiSSearcher",
    "Move",
    "aegis_epsilon",
    "choose_move",
    "nsga2_mean_std",
    "pareto_front_mask",
]

_NEAR_PENDING = 1e-3


class Move(str, enum.Enum):
    """The three AEGiS moves, and the fallbacks a suggestion may end with."""

    EXPLOIT = "exploit"
    THOMPSON = "thompson"
    PARETO = "pareto"
    INITIAL = "initial"  # the space-filling initial design
    RANDOM = "random"  # no usable model, or every move proposed a duplicate


def aegis_epsilon(d: int) -> float:
    """The paper's default ``eps = min(1 / sqrt(max(d, 4)), 1/2)``: the probability of each exploratory move.

    Example:
        >>> [round(aegis_epsilon(d), 3) for d in (2, 4, 6, 10)]
        [0.5, 0.5, 0.408, 0.316]
    """
    return min(1.0 / math.sqrt(max(int(d), 4)), 0.5)


DEFAULT_EPSILON = 0.25
"""AEGiSSearcher's default ``eps``: each exploratory move a quarter of the time, exploitation half the time."""


def choose_move(rng: np.random.Generator, epsilon: float, eta: float = 0.5) -> Move:
    """Draw one move: Thompson with probability ``2 eps eta``, Pareto with probability ``2 eps (1 - eta)``, else
    exploit (probability ``1 - 2 eps``). Paper, Algorithm 1, where ``eta = 1/2`` (the authors' code names it
    ``eta``): each exploratory move has probability ``eps``. ``eps`` must lie in ``[0, 1/2]``, ``eta`` in ``[0, 1]``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> moves = [choose_move(rng, 0.25) for _ in range(4000)]
        >>> round(moves.count(Move.EXPLOIT) / 4000, 1)
        0.5
    """
    if not 0.0 <= epsilon <= 0.5:
        raise ValueError(f"epsilon must lie in [0, 0.5] (two moves of probability epsilon each), got {epsilon}")
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta (the Thompson share of exploratory moves) must lie in [0, 1], got {eta}")
    r = rng.random()
    if r < 2.0 * epsilon * eta:
        return Move.THOMPSON
    if r < 2.0 * epsilon:
        return Move.PARETO
    return Move.EXPLOIT


# -- the mean-variance Pareto set ------------------------------------------------------------------------------


def pareto_front_mask(F: np.ndarray) -> np.ndarray:
    """Non-dominated rows of ``F (N, 2)``, both objectives minimized; of exact duplicates the first is kept.

    Sort by the first objective (ties by the second); a row is non-dominated iff its second objective is below
    every earlier row's. ``O(N log N)``.

    Example:
        >>> pareto_front_mask(np.array([[0, 3], [1, 1], [2, 2], [3, 0]])).tolist()
        [True, True, False, True]
    """
    F = np.asarray(F, dtype=float)
    order = np.lexsort((F[:, 1], F[:, 0]))
    f1 = F[order, 1]
    prev_min = np.minimum.accumulate(np.concatenate([[np.inf], f1[:-1]]))
    mask = np.zeros(F.shape[0], dtype=bool)
    mask[order] = f1 < prev_min
    return mask


def _fronts(F: np.ndarray) -> np.ndarray:
    """Non-domination rank of each row (0 = the Pareto front), by peeling fronts."""
    rank = np.full(F.shape[0], -1)
    left = np.arange(F.shape[0])
    r = 0
    while left.size:
        mask = pareto_front_mask(F[left])
        rank[left[mask]] = r
        left = left[~mask]
        r += 1
    return rank


def _crowding(F: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance within each front (boundary points infinite)."""
    dist = np.zeros(F.shape[0])
    for r in np.unique(rank):
        idx = np.flatnonzero(rank == r)
        if idx.size <= 2:
            dist[idx] = np.inf
            continue
        for j in range(F.shape[1]):
            o = idx[np.argsort(F[idx, j])]
            span = F[o[-1], j] - F[o[0], j]
            dist[o[0]] = dist[o[-1]] = np.inf
            if span > 0:
                dist[o[1:-1]] += (F[o[2:], j] - F[o[:-2], j]) / span
    return dist


def _tournament(rank: np.ndarray, crowd: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    a, b = rng.integers(0, rank.size, n), rng.integers(0, rank.size, n)
    a_wins = (rank[a] < rank[b]) | ((rank[a] == rank[b]) & (crowd[a] >= crowd[b]))
    return np.where(a_wins, a, b)


def _sbx(p1: np.ndarray, p2: np.ndarray, rng: np.random.Generator, eta: float = 20.0, prob: float = 0.9):
    """Simulated binary crossover (Deb & Agrawal, 1995) on the unit cube, each variable swapped with chance 1/2."""
    u = rng.random(p1.shape)
    beta = np.where(u <= 0.5, (2 * u) ** (1 / (eta + 1)), (1 / (2 * (1 - u) + 1e-12)) ** (1 / (eta + 1)))
    c1 = 0.5 * ((1 + beta) * p1 + (1 - beta) * p2)
    c2 = 0.5 * ((1 - beta) * p1 + (1 + beta) * p2)
    keep = (rng.random(p1.shape) < 0.5) | (rng.random((p1.shape[0], 1)) > prob)
    return np.clip(np.where(keep, p1, c1), 0, 1), np.clip(np.where(keep, p2, c2), 0, 1)


def _mutate(x: np.ndarray, rng: np.random.Generator, eta: float = 20.0) -> np.ndarray:
    """Polynomial mutation (Deb & Goyal, 1996), each variable with probability ``1/d``."""
    u = rng.random(x.shape)
    delta = np.where(u < 0.5, (2 * u) ** (1 / (eta + 1)) - 1, 1 - (2 * (1 - u)) ** (1 / (eta + 1)))
    hit = rng.random(x.shape) < 1.0 / x.shape[1]
    return np.clip(x + hit * delta, 0, 1)


def nsga2_mean_std(
    surrogate: GPSurrogate, rng: np.random.Generator, pop_size: int = 100, generations: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate Pareto set of ``(mu(x), -sigma(x))`` over the unit cube by NSGA-II (Deb, Pratap, Agarwal,
    Meyarivan, IEEE TEC 2002): ``pop_size`` individuals, ``generations`` rounds of binary tournament, SBX crossover,
    polynomial mutation and elitist (rank, crowding) survival.

    As in the authors' code, the set returned is the non-dominated subset of *every* point evaluated, so nothing
    a generation discarded for crowding is lost. Returns ``X_front (k, d)`` and ``F (k, 2)`` = ``(mu, sigma)``.
    """
    d = surrogate.d
    seed = int(rng.integers(0, 2**31 - 1))
    pop = torch.quasirandom.SobolEngine(d, scramble=True, seed=seed).draw(pop_size, dtype=DTYPE).numpy()

    def evaluate(x: np.ndarray) -> np.ndarray:
        mu, sigma = surrogate.predict(x)
        return np.stack([mu, -sigma], axis=1)

    F = evaluate(pop)
    archive_X, archive_F = [pop], [F]
    for _ in range(generations):
        rank = _fronts(F)
        crowd = _crowding(F, rank)
        parents = _tournament(rank, crowd, 2 * (pop_size // 2 + 1), rng)
        c1, c2 = _sbx(pop[parents[0::2]], pop[parents[1::2]], rng)
        kids = _mutate(np.vstack([c1, c2])[:pop_size], rng)
        kids_F = evaluate(kids)
        archive_X.append(kids)
        archive_F.append(kids_F)
        allX, allF = np.vstack([pop, kids]), np.vstack([F, kids_F])
        rank = _fronts(allF)
        crowd = _crowding(allF, rank)
        keep = np.lexsort((-crowd, rank))[:pop_size]
        pop, F = allX[keep], allF[keep]
    X_all, F_all = np.vstack(archive_X), np.vstack(archive_F)
    mask = pareto_front_mask(F_all)
    front_F = F_all[mask].copy()
    front_F[:, 1] *= -1.0
    return X_all[mask], front_F


# -- the searcher ----------------------------------------------------------------------------------------------


class AEGiSSearcher(Searcher):
    """Asynchronous epsilon-greedy BO: per free worker, exploit the GP mean with probability ``1 - 2 eps``, else
    optimize a Thompson sample or take a random member of the mean-variance Pareto set (De Ath et al., UAI 2021).

    Args:
        space: the search space.
        seed: seeds every random choice; a suggestion depends on ``(space, history, seed)`` and the warm-start cache.
        epsilon: probability of each exploratory move, in ``[0, 1/2]`` (default :data:`DEFAULT_EPSILON` = 1/4), or
            ``"paper"`` for the paper's ``min(1 / sqrt(max(d, 4)), 1/2)`` (:func:`aegis_epsilon`).
        eta: the Thompson share of the exploratory moves (default 1/2, the paper's; 1 = no Pareto moves, 0 = no
            Thompson moves), for ablations.
        n_initial: trials of the initial design before the model is used (default ``2 d``).
        initial_design: ``"sobol"`` (scrambled Sobol, default) or ``"uniform"`` (independent uniform points), see
            :class:`~searchers.random.RandomSearcher`.
        pending: ``"believer"`` (condition exploratory moves on pending points) or ``"ignore"`` (the paper).
        warp: the GP's output warp (:func:`hpo.surrogates.gp.warp_targets`).
        raw_samples, num_restarts, maxiter: the multi-start acquisition optimizer's budget.
        pareto_pop, pareto_generations: NSGA-II's budget.

    Attributes:
        moves: ``[(trial_index, drawn_move, used_move)]`` of this searcher's suggestions, for diagnostics.

    Example:
        >>> from hpo.space import Space, Float
        >>> space = Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})
        >>> searcher = AEGiSSearcher(space, seed=0)
        >>> sorted(searcher.suggest(History(space, "loss")))
        ['x', 'y']
    """

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        epsilon: float | str = DEFAULT_EPSILON,
        eta: float = 0.5,
        n_initial: int | None = None,
        initial_design: str = "sobol",
        pending: str = "believer",
        warp: str = "power",
        raw_samples: int = 256,
        num_restarts: int = 6,
        maxiter: int = 50,
        pareto_pop: int = 64,
        pareto_generations: int = 15,
    ) -> None:
        super().__init__(space, seed)
        if pending not in ("believer", "ignore"):
            raise ValueError(f"pending must be 'believer' or 'ignore', got {pending!r}")
        if isinstance(epsilon, str) and epsilon == "paper":
            epsilon = aegis_epsilon(space.dim)
        if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not 0.0 <= epsilon <= 0.5:
            raise ValueError(
                f"epsilon must be a number in [0, 0.5] (each of the two exploratory moves has probability epsilon) "
                f"or 'paper' for the paper's rule, got {epsilon!r}; leave it out for the default {DEFAULT_EPSILON}"
            )
        self.epsilon = float(epsilon)
        if not 0.0 <= float(eta) <= 1.0:
            raise ValueError(f"eta (the Thompson share of exploratory moves) must lie in [0, 1], got {eta}")
        self.eta = float(eta)
        self.n_initial = max(2 * space.dim, 2) if n_initial is None else int(n_initial)
        self.pending = pending
        self.raw_samples, self.num_restarts, self.maxiter = int(raw_samples), int(num_restarts), int(maxiter)
        self.pareto_pop, self.pareto_generations = int(pareto_pop), int(pareto_generations)
        self.surrogate = GPSurrogate.for_space(space, warp=warp)
        self._random = RandomSearcher(space, seed, design=initial_design)
        self._pathwise = not self.surrogate.choice_dims
        self.moves: list[tuple[int, Move, Move]] = []

    def is_finished(self, history: History) -> bool:
        return self._random.is_finished(history)

    def suggest(self, history: History) -> dict[str, Any] | None:
        t = len(history)
        X, y = history.observations(include_failed=True)
        if t < self.n_initial or not np.isfinite(y).any():
            return self._fallback(history, t, Move.INITIAL, Move.INITIAL)
        rng = np.random.default_rng([self.seed, t])
        self.surrogate.fit(X, y)
        if not self.surrogate.ok:
            return self._fallback(history, t, Move.RANDOM, Move.RANDOM)
        X_p = history.pending_points()
        explorer = self.surrogate.believer(X_p) if self.pending == "believer" else self.surrogate
        seen = {self.space.key(tr.config) for tr in history}
        drawn = choose_move(rng, self.epsilon, self.eta)
        order = [drawn]
        others = [Move.THOMPSON, Move.PARETO]
        rng.shuffle(others)
        order += [m for m in others if m not in order]
        with torch.random.fork_rng():
            torch.manual_seed(int(rng.integers(0, 2**31 - 1)))
            for move in order:
                x = self._propose(move, explorer, rng)
                config = self._config(x)
                near = X_p.shape[0] and np.min(np.linalg.norm(X_p - x, axis=1)) < _NEAR_PENDING
                if self.space.key(config) not in seen and not near:
                    self.moves.append((t, drawn, move))
                    return config
        return self._fallback(history, t, drawn, Move.RANDOM)

    def _fallback(self, history: History, t: int, drawn: Move, used: Move) -> dict[str, Any] | None:
        config = self._random.suggest(history)
        if config is not None:
            self.moves.append((t, drawn, used))
        return config

    def _config(self, x: np.ndarray) -> dict[str, Any]:
        full = self.space.decode(np.clip(x, 0.0, 1.0))
        return {n: full[n] for n in self.space.names}

    def _propose(self, move: Move, explorer: GPSurrogate, rng: np.random.Generator) -> np.ndarray:
        sur = self.surrogate
        if move is Move.EXPLOIT:
            x, _ = sur.maximize(
                lambda Z: -sur.mean(Z).squeeze(-1), rng, self.raw_samples, self.num_restarts, self.maxiter
            )
            return x
        if move is Move.THOMPSON:
            return self._thompson(explorer, rng)
        X_front, _ = nsga2_mean_std(explorer, rng, self.pareto_pop, self.pareto_generations)
        return X_front[rng.integers(0, X_front.shape[0])]

    def _thompson(self, explorer: GPSurrogate, rng: np.random.Generator) -> np.ndarray:
        """argmin of one posterior sample: a pathwise sample minimized over the cube, or (with categorical
        parameters) a joint sample on Sobol and incumbent-neighbourhood candidates."""
        if self._pathwise:
            try:
                path = draw_matheron_paths(explorer.model, sample_shape=torch.Size([1]))

                def neg_path(Z: torch.Tensor) -> torch.Tensor:
                    return -path(Z).reshape(Z.shape[:-2])

                x, _ = explorer.maximize(neg_path, rng, self.raw_samples, self.num_restarts, self.maxiter)
                return x
            except Exception:  # e.g. a kernel without Fourier features: the finite-set sample still works
                self._pathwise = False
        seed = int(rng.integers(0, 2**31 - 1))
        sobol = torch.quasirandom.SobolEngine(self.space.dim, scramble=True, seed=seed).draw(768, dtype=DTYPE)
        cand = torch.cat([sobol, self.surrogate.start_points(rng, n_local=256)])
        f = explorer.sample(cand, generator=torch.Generator().manual_seed(seed))
        return cand[int(torch.argmin(f))].numpy()

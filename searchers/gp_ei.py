"""GP-EI: Bayesian optimization with log expected improvement over pending fantasies, the standard asynchronous
baseline.

Notation
--------
- ``X (n, d)``, ``y (n,)``: observations (encoded, lower is better); ``X_p (m, d)``: pending points.
- ``z``: the GP's warped targets (:mod:`hpo.surrogates.gp`); ``z* = min_i z_i``; ``f``: the latent function in
  ``z`` units, minimized.

Acquisition
-----------
For a candidate ``x``, the improvement of the batch ``{x} u X_p`` (Ginsbourger, Le Riche, Carraro, 2010; Snoek,
Larochelle, Adams, NeurIPS 2012, Sec. 3.3 "Monte Carlo acquisition for parallelizing BO")::

    a(x) = log E[ max(z* - min(f(x), f(X_p)), 0) ]

estimated by quasi-Monte Carlo over joint posterior samples of ``(f(x), f(X_p))``: samples in which a pending
point already beats ``x`` give ``x`` no credit, so a free worker is not sent where a busy one already went. BoTorch's
``qLogExpectedImprovement`` (Ament et al., "Unexpected Improvements to Expected Improvement", NeurIPS 2023) computes
it with a smoothed, log-space maximum that keeps gradients alive far from the incumbent. The initial design is
``2 d`` scrambled Sobol points, as for AEGiS.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from botorch.acquisition import qLogExpectedImprovement
from botorch.acquisition.analytic import _log_ei_helper
from botorch.acquisition.objective import LinearMCObjective
from botorch.sampling import SobolQMCNormalSampler

from hpo.history import History
from hpo.searcher import Searcher
from hpo.space import Space
from hpo.surrogates.gp import DTYPE, GPSurrogate
from searchers.random import RandomSearcher

__all__ = ["GPEISearcher"]


class GPEISearcher(Searcher):
    """GP with qLogEI, pending evaluations integrated out as joint fantasies (BoTorch ``X_pending``).

    Args:
        space: the search space.
        seed: seeds the initial design, the QMC sampler and the optimizer's starts.
        n_initial: trials of the initial design before the model is used (default ``2 d``).
        initial_design: ``"sobol"`` (scrambled Sobol, default) or ``"uniform"`` (independent uniform points), see
            :class:`~searchers.random.RandomSearcher`.
        warp: the GP's output warp (:func:`hpo.surrogates.gp.warp_targets`).
        mc_samples: QMC samples of the joint posterior.
        raw_samples, num_restarts, maxiter: the multi-start acquisition optimizer's budget.

    Example:
        >>> from hpo.space import Space, Float
        >>> space = Space({"x": Float(0.0, 1.0)})
        >>> sorted(GPEISearcher(space, seed=0).suggest(History(space, "loss")))
        ['x']
    """

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        n_initial: int | None = None,
        initial_design: str = "sobol",
        warp: str = "power",
        mc_samples: int = 64,
        raw_samples: int = 256,
        num_restarts: int = 6,
        maxiter: int = 50,
    ) -> None:
        super().__init__(space, seed)
        self.n_initial = max(2 * space.dim, 2) if n_initial is None else int(n_initial)
        self.mc_samples = int(mc_samples)
        self.raw_samples, self.num_restarts, self.maxiter = int(raw_samples), int(num_restarts), int(maxiter)
        self.surrogate = GPSurrogate.for_space(space, warp=warp)
        self._random = RandomSearcher(space, seed, design=initial_design)

    def is_finished(self, history: History) -> bool:
        return self._random.is_finished(history)

    def suggest(self, history: History) -> dict[str, Any] | None:
        t = len(history)
        X, y = history.observations(include_failed=True)
        if t < self.n_initial or not np.isfinite(y).any():
            return self._random.suggest(history)
        self.surrogate.fit(X, y)
        model = self.surrogate.model
        if model is None:
            return self._random.suggest(history)
        rng = np.random.default_rng([self.seed, t])
        X_p = history.pending_points()
        if X_p.shape[0] == 0:
            # nothing in flight: the analytic LogEI is exact, and on the surrogate's own algebra much cheaper
            acqf = self._analytic_log_ei
        else:
            acqf = qLogExpectedImprovement(
                model,
                best_f=-self.surrogate.z_best,
                sampler=SobolQMCNormalSampler(torch.Size([self.mc_samples]), seed=int(rng.integers(0, 2**31 - 1))),
                # the model is of z (lower is better); EI is defined for maximization of -z
                objective=LinearMCObjective(torch.tensor([-1.0], dtype=DTYPE)),
                X_pending=torch.as_tensor(X_p, dtype=DTYPE),
            )
        with torch.random.fork_rng():
            torch.manual_seed(int(rng.integers(0, 2**31 - 1)))
            x, _ = self.surrogate.maximize(acqf, rng, self.raw_samples, self.num_restarts, self.maxiter)
        full = self.space.decode(np.clip(x, 0.0, 1.0))
        config = {n: full[n] for n in self.space.names}
        if self.space.key(config) in {self.space.key(tr.config) for tr in history}:
            return self._random.suggest(history)
        return config

    def _analytic_log_ei(self, X: torch.Tensor) -> torch.Tensor:
        """``log EI(x) = log sigma + log h((z* - mu) / sigma)``, ``h(u) = u Phi(u) + phi(u)``, for ``X (b, 1, d)``;
        ``log h`` is BoTorch's numerically stable one (Ament et al., 2023)."""
        mu, sigma = self.surrogate.mean_std(X)
        mu, sigma = mu.squeeze(-1), sigma.squeeze(-1)
        return sigma.log() + _log_ei_helper((self.surrogate.z_best - mu) / sigma)

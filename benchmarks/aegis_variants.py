"""AEGiS and GP-EI ablations as searcher classes, so the harness can run them by name (``module:Class``)
and store them apart.

``python -m benchmarks run synthetic --methods benchmarks.aegis_variants:AEGiSThompsonOnly --workers 4 --seeds 10``

Every ablation here but :class:`AEGiSIgnorePendingDefaultEpsilon` was measured with the paper's epsilon (AEGiS's
default until 27 Nov 2026), so each pins ``epsilon="paper"`` and reruns reproduce the stored records;
:class:`AEGiSPaperEpsilon` is that default itself. :class:`AEGiSIgnorePendingDefaultEpsilon` repeats the
pending-point ablation with today's default epsilon.
"""

from __future__ import annotations

from typing import Any

from hpo.space import Space
from searchers.aegis import AEGiSSearcher
from searchers.gp_ei import GPEISearcher

__all__ = [
    "AEGiSIgnorePending",
    "AEGiSIgnorePendingDefaultEpsilon",
    "AEGiSPaperBudget",
    "AEGiSPaperEpsilon",
    "AEGiSParetoOnly",
    "AEGiSThompsonOnly",
    "AEGiSUniformDesign",
    "GPEIUniformDesign",
]


class AEGiSThompsonOnly(AEGiSSearcher):
    """AEGiS without the Pareto move: every exploratory move (probability ``2 eps``) is a Thompson sample."""

    def __init__(self, space: Space, seed: int = 0, **kwargs: Any) -> None:
        kwargs.setdefault("eta", 1.0)
        kwargs.setdefault("epsilon", "paper")
        super().__init__(space, seed, **kwargs)


class AEGiSParetoOnly(AEGiSSearcher):
    """AEGiS without the Thompson move: every exploratory move is a random member of the mean-std Pareto set."""

    def __init__(self, space: Space, seed: int = 0, **kwargs: Any) -> None:
        kwargs.setdefault("eta", 0.0)
        kwargs.setdefault("epsilon", "paper")
        super().__init__(space, seed, **kwargs)


class AEGiSIgnorePending(AEGiSSearcher):
    """AEGiS as in the paper for pending points: the exploratory moves do not condition on them."""

    def __init__(self, space: Space, seed: int = 0, **kwargs: Any) -> None:
        kwargs.setdefault("pending", "ignore")
        kwargs.setdefault("epsilon", "paper")
        super().__init__(space, seed, **kwargs)


class AEGiSUniformDesign(AEGiSSearcher):
    """AEGiS with an initial design of ``2 d`` independent uniform points instead of scrambled Sobol points."""

    def __init__(self, space: Space, seed: int = 0, **kwargs: Any) -> None:
        kwargs.setdefault("initial_design", "uniform")
        kwargs.setdefault("epsilon", "paper")
        super().__init__(space, seed, **kwargs)


class GPEIUniformDesign(GPEISearcher):
    """GP-EI with an initial design of ``2 d`` independent uniform points instead of scrambled Sobol points."""

    def __init__(self, space: Space, seed: int = 0, **kwargs: Any) -> None:
        kwargs.setdefault("initial_design", "uniform")
        super().__init__(space, seed, **kwargs)


class AEGiSPaperBudget(AEGiSSearcher):
    """AEGiS with the authors' acquisition-optimizer budget: ``1000 d`` raw samples (capped at 8192) and 10
    L-BFGS-B restarts for the exploit and Thompson moves, 100 iterations each, instead of 256, 6 and 50."""

    def __init__(self, space: Space, seed: int = 0, **kwargs: Any) -> None:
        kwargs.setdefault("raw_samples", min(1000 * space.dim, 8192))
        kwargs.setdefault("num_restarts", 10)
        kwargs.setdefault("maxiter", 100)
        kwargs.setdefault("epsilon", "paper")
        super().__init__(space, seed, **kwargs)


class AEGiSPaperEpsilon(AEGiSSearcher):
    """AEGiS with the paper's ``eps = min(1 / sqrt(max(d, 4)), 1/2)`` (the default until 27 Nov 2026, whose runs are
    stored under this name) instead of the default ``eps = 1/4``."""

    def __init__(self, space: Space, seed: int = 0, **kwargs: Any) -> None:
        kwargs.setdefault("epsilon", "paper")
        super().__init__(space, seed, **kwargs)


class AEGiSIgnorePendingDefaultEpsilon(AEGiSSearcher):
    """The paper's rule for pending points (ignore them) with today's default epsilon (1/4), to check that the
    kriging believer is still the better default after the epsilon change."""

    def __init__(self, space: Space, seed: int = 0, **kwargs: Any) -> None:
        kwargs.setdefault("pending", "ignore")
        super().__init__(space, seed, **kwargs)

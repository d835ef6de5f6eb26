"""AEGiS and GP-EI ablations as searcher classes, so the harness can run them by name (``module:Class``)
and store them apart.

``python -m benchmarks run synthetic --methods benchmarks.aegis_variants:AEGiSThompsonOnly --workers 4 --seeds 10``
"""

from __future__ import annotations

from typing import Any

from hpo.space import Space
from searchers.aegis import AEGiSSearcher
from searchers.gp_ei import GPEISearcher

__all__ = [
    "AEGiSIgnorePending",
    "AEGiSParetoOnly",
    "AEGiSThompsonOnly",
    "AEGiSUniformDesign",
    "GPEIUniformDesign",
]


class AEGiSThompsonOnly(AEGiSSearcher):
    """AEGiS without the Pareto move: every exploratory move (probability ``2 eps``) is a Thompson sample."""

    def __init__(self, space: Space, seed: int = 0, **kwargs: Any) -> None:
        kwargs.setdefault("eta", 1.0)
        super().__init__(space, seed, **kwargs)


class AEGiSParetoOnly(AEGiSSearcher):
    """AEGiS without the Thompson move: every exploratory move is a random member of the mean-std Pareto set."""

    def __init__(self, space: Space, seed: int = 0, **kwargs: Any) -> None:
        kwargs.setdefault("eta", 0.0)
        super().__init__(space, seed, **kwargs)


class AEGiSIgnorePending(AEGiSSearcher):
    """AEGiS as in the paper for pending points: the exploratory moves do not condition on them."""

    def __init__(self, space: Space, seed: int = 0, **kwargs: Any) -> None:
        kwargs.setdefault("pending", "ignore")
        super().__init__(space, seed, **kwargs)


class AEGiSUniformDesign(AEGiSSearcher):
    """AEGiS with an initial design of ``2 d`` independent uniform points instead of scrambled Sobol points."""

    def __init__(self, space: Space, seed: int = 0, **kwargs: Any) -> None:
        kwargs.setdefault("initial_design", "uniform")
        super().__init__(space, seed, **kwargs)


class GPEIUniformDesign(GPEISearcher):
    """GP-EI with an initial design of ``2 d`` independent uniform points instead of scrambled Sobol points."""

    def __init__(self, space: Space, seed: int = 0, **kwargs: Any) -> None:
        kwargs.setdefault("initial_design", "uniform")
        super().__init__(space, seed, **kwargs)

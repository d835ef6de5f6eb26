"""Freeze-thaw scheduler variants for the benchmark harness, which names a method ``SEARCHER+module:Class``.

``freeze_thaw`` alone is the searcher with :class:`~schedulers.freeze_thaw.FreezeThawScheduler` and its default
rule (entropy search); these fix the other rules so that one harness run compares them::

    python -m benchmarks run taskset --methods freeze_thaw \\
        freeze_thaw+benchmarks.freeze_thaw_variants:FreezeThawEI \\
        freeze_thaw+benchmarks.freeze_thaw_variants:FreezeThawHorizon \\
        freeze_thaw+benchmarks.freeze_thaw_variants:FreezeThawNext \\
        freeze_thaw+benchmarks.freeze_thaw_variants:FreezeThawPromote \\
        freeze_thaw+benchmarks.freeze_thaw_variants:FreezeThawPromoteValue
"""

from __future__ import annotations

from schedulers.freeze_thaw import FreezeThawScheduler

__all__ = [
    "FreezeThawEI", "FreezeThawEntropy", "FreezeThawHorizon", "FreezeThawNext", "FreezeThawPromote",
    "FreezeThawPromoteValue",
]


class FreezeThawEntropy(FreezeThawScheduler):
    """The paper's rule: information gain about the best final value per unit of cost."""

    def __init__(self, space, metric, mode="min", **options) -> None:
        super().__init__(space, metric, mode, **{"acquisition": "entropy", **options})


class FreezeThawEI(FreezeThawScheduler):
    """Expected improvement of the final value per unit of cost to finish."""

    def __init__(self, space, metric, mode="min", **options) -> None:
        super().__init__(space, metric, mode, **{"acquisition": "ei", **options})


class FreezeThawHorizon(FreezeThawScheduler):
    """ifBO's rule: expected improvement over the best value so far at a random horizon."""

    def __init__(self, space, metric, mode="min", **options) -> None:
        super().__init__(space, metric, mode, **{"acquisition": "ei_horizon", **options})


class FreezeThawNext(FreezeThawScheduler):
    """DyHPO's rule: expected improvement at the next segment's end over the best value seen at that step."""

    def __init__(self, space, metric, mode="min", **options) -> None:
        super().__init__(space, metric, mode, **{"acquisition": "ei_next", **options})


class FreezeThawPromote(FreezeThawScheduler):
    """ASHA's promotion by the model's forecasts of the final value, segments ending at 1, 3, 9, 27, 50 steps, new
    configs by expected improvement of their final value, none within 0.2 of a tried one in the unit cube (about half
    the distance between TaskSet's tabulated settings, whose nearest neighbour answers a config: a closer config is
    mostly the same setting again)."""

    def __init__(self, space, metric, mode="min", **options) -> None:
        super().__init__(space, metric, mode, **{"acquisition": "promote", "segment_growth": 3.0,
                                                 "promote_by": "forecast", "min_distance": 0.2, **options})


class FreezeThawPromoteValue(FreezeThawPromote):
    """As :class:`FreezeThawPromote`, but ranked as ASHA ranks, by the value at the step: the model only proposes the
    new configs."""

    def __init__(self, space, metric, mode="min", **options) -> None:
        super().__init__(space, metric, mode, **{"promote_by": "value", **options})

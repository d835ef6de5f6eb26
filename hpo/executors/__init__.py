"""Executors run segments: on Ray workers (:mod:`hpo.executors.ray`) or on a virtual clock
(:mod:`hpo.executors.simulated`). The orchestrator, searchers and schedulers are the same for both."""

from hpo.executors.base import Executor
from hpo.executors.simulated import SimulatedExecutor

__all__ = ["Executor", "RayExecutor", "SimulatedExecutor"]


def __getattr__(name: str):
    if name == "RayExecutor":  # importing ray costs a second; pay it only when asked
        from hpo.executors.ray import RayExecutor

        return RayExecutor
    raise AttributeError(name)

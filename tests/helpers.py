"""Small trainables and a sweep runner shared by the tests."""

from __future__ import annotations

import math
import tempfile

import hpo
from hpo.checkpoint import CheckpointStore
from hpo.executors.simulated import SimulatedExecutor
from hpo.orchestrator import Budget, Orchestrator
from hpo.space import Fidelity, Float, Int, Space
from hpo.storage import Storage
from schedulers.asha import ASHAScheduler
from schedulers.fifo import FIFOScheduler
from searchers.random import RandomSearcher

SPACE_1D = Space({"x": Float(-2.0, 2.0)})


def quadratic(config):
    return {"loss": (config["x"] - 0.3) ** 2}


def curve_trainable(config):
    """A decaying learning curve whose asymptote is (x - 0.3)^2; checkpoints every step."""
    state = hpo.get_checkpoint()
    start = state["step"] if state else 0
    for step in range(start + 1, config["epoch"] + 1):
        loss = (config["x"] - 0.3) ** 2 + 1.0 / step
        hpo.report({"loss": loss, "resumed_from": float(start)}, step=step, checkpoint={"step": step})


def curve_space(max_step: int = 27) -> Space:
    return Space({"x": Float(-2.0, 2.0), "n": Int(1, 4)}, fidelity=Fidelity("epoch", 1, max_step))


def run_simulated(
    trainable,
    space: Space,
    directory: str | None = None,
    workers: int = 4,
    max_trials: int = 20,
    scheduler: str = "fifo",
    seed: int = 0,
    duration: str = "exponential",
    mode: str = "min",
    **budget,
):
    directory = directory or tempfile.mkdtemp()
    sched = ASHAScheduler(space, "loss", mode) if scheduler == "asha" else FIFOScheduler(space, "loss", mode)
    with Storage(directory) as storage:
        orch = Orchestrator(
            trainable,
            space,
            "loss",
            mode,
            RandomSearcher(space, seed=seed),
            sched,
            SimulatedExecutor(workers, duration=duration, seed=seed),
            storage,
            Budget(max_trials=max_trials, **budget),
            checkpoint_store=CheckpointStore(f"{directory}/checkpoints"),
        )
        history = orch.run()
        events = storage.events()
    return history, events, orch


def finite(v) -> bool:
    return v is not None and math.isfinite(v)

"""TaskSet: real validation-loss curves of 1000 Adam settings on 12 text-classification tasks, tabulated.

Metz et al., "Using a thousand optimization tasks to learn hyperparameter search strategies" (2020), as
redistributed with DyHPO's code (Wistuba, Kadra, Grabocka, NeurIPS 2022). Data: ``../shared/data/taskset`` beside
the repository (see its README), or the folder in the environment variable ``HPO_TASKSET_DIR``.

Notation
--------
- ``N = 1000`` tabulated settings, ``T = 50`` training steps (checkpoints 1..50; checkpoint 0 is the untrained
  model, the same for every setting up to initialization noise, so it is not a fidelity level).
- ``H``: the settings encoded in the unit cube, shape ``(N, 8)``; ``V``: validation losses, shape ``(N, T)``.
- ``f* = min`` of ``V`` over every finite entry: the best validation loss any tabulated run reached at any step.

How it answers
--------------
A tabulated problem only knows its N settings: a config is answered by its **nearest neighbour in the encoded
space** (Euclidean distance in the unit cube of :class:`hpo.space.Space`, i.e. in log space for the log-scaled
parameters). The space reparameterizes ``beta1, beta2`` as ``1 - beta`` on a log scale, as TaskSet sampled them.
A segment ``(start, stop]`` costs ``stop - start`` units of virtual time (one unit a step), so pausing and resuming
(ASHA, freeze-thaw) cost exactly the steps they run. A curve with NaN in the segment diverged: the segment fails
(the trial is FAILED) after the steps it ran up to the first NaN.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.problems.base import Problem
from hpo.space import Fidelity, Float, Space

__all__ = ["DATA_DIR", "PROBLEMS", "TASKS", "TaskSetProblem", "TrialDiverged", "taskset_space"]

# Benchmarks may read the shared data beside the repository; the hpo package never does. HPO_TASKSET_DIR points
# elsewhere (a machine without ../shared).
DATA_DIR = Path(os.environ.get("HPO_TASKSET_DIR") or Path(__file__).resolve().parents[2].parent / "shared" / "data"
                / "taskset")

TASKS: tuple[str, ...] = (
    "FixedTextRNNClassification_imdb_patch128_LSTM128_avg_bs64",
    "FixedTextRNNClassification_imdb_patch128_LSTM128_bs64",
    "FixedTextRNNClassification_imdb_patch128_LSTM128_embed128_bs64",
    "FixedTextRNNClassification_imdb_patch32_GRU128_bs128",
    "FixedTextRNNClassification_imdb_patch32_GRU64_avg_bs128",
    "FixedTextRNNClassification_imdb_patch32_IRNN64_relu_avg_bs128",
    "FixedTextRNNClassification_imdb_patch32_IRNN64_relu_last_bs128",
    "FixedTextRNNClassification_imdb_patch32_LSTM128_E128_bs128",
    "FixedTextRNNClassification_imdb_patch32_LSTM128_bs128",
    "FixedTextRNNClassification_imdb_patch32_VRNN128_tanh_bs128",
    "FixedTextRNNClassification_imdb_patch32_VRNN64_relu_avg_bs128",
    "FixedTextRNNClassification_imdb_patch32_VRNN64_tanh_avg_bs128",
)

STEPS = 50

# TaskSet's sampling ranges (Metz et al., 2020, Sec. 3), all log-uniform; every tabulated setting lies inside.
_RANGES: dict[str, tuple[float, float]] = {
    "learning_rate": (1e-8, 10.0),
    "one_minus_beta1": (1e-4, 1.0),
    "one_minus_beta2": (1e-6, 1.0),
    "epsilon": (1e-10, 1e3),
    "l1": (1e-8, 10.0),
    "l2": (1e-8, 10.0),
    "linear_decay": (1e-7, 1e-4),
    "exponential_decay": (1e-6, 1e-3),
}


def taskset_space() -> Space:
    """The 8-d Adam space, log scale throughout, with the fidelity ``step`` in 1..50."""
    return Space(
        {name: Float(lo, hi, log=True) for name, (lo, hi) in _RANGES.items()},
        fidelity=Fidelity("step", 1, STEPS),
    )


def short_name(task: str) -> str:
    """``FixedTextRNNClassification_imdb_patch32_GRU128_bs128`` -> ``patch32_GRU128_bs128``."""
    return task.replace("FixedTextRNNClassification_imdb_", "")


class TrialDiverged(RuntimeError):
    """The tabulated curve is NaN inside the segment: the training diverged."""


@cache
def _load(task: str) -> tuple[np.ndarray, np.ndarray]:
    """Raw hyperparameters in the space's units, ``(N, 8)``, and validation losses ``(N, T)`` (checkpoint 0 cut)."""
    path = DATA_DIR / f"{task}.json.gz"
    if not path.exists():
        raise FileNotFoundError(
            f"TaskSet data {path} is missing; set HPO_TASKSET_DIR to the folder of the *.json.gz files "
            "(default ../shared/data/taskset)"
        )
    with gzip.open(path) as f:
        runs = json.load(f)
    hp = np.array(
        [
            [
                r["hp"]["learning_rate"],
                1.0 - r["hp"]["beta1"],
                1.0 - r["hp"]["beta2"],
                r["hp"]["epsilon"],
                r["hp"]["l1"],
                r["hp"]["l2"],
                r["hp"]["linear_decay"],
                r["hp"]["exponential_decay"],
            ]
            for r in runs
        ],
        dtype=float,
    )
    valid = np.array([r["valid"]["loss"] for r in runs], dtype=float)[:, 1 : STEPS + 1]
    return hp, valid


class TaskSetProblem:
    """One TaskSet task as a :class:`~hpo.executors.simulated.SimulatedTrainable`.

    Args:
        task: a name from :data:`TASKS`.

    Example:
        >>> p = TaskSetProblem(TASKS[4])
        >>> points, duration = p.simulate(p.config(0), 0, 3)
        >>> [s for s, _ in points], duration
        ([1, 2, 3], 3.0)
    """

    def __init__(self, task: str) -> None:
        self.task = task
        self.space = taskset_space()
        self.hp, self.valid = _load(task)
        lo = np.log([r[0] for r in _RANGES.values()])
        hi = np.log([r[1] for r in _RANGES.values()])
        # Same map as Float(log=True).encode; clipped so that round-off at a range's edge stays in the cube.
        self.H = np.clip((np.log(self.hp) - lo) / (hi - lo), 0.0, 1.0)
        self._last_failure = 1.0
        self._cache: dict[tuple[Any, ...], int] = {}

    @property
    def optimum(self) -> float:
        return float(np.nanmin(self.valid))

    def config(self, index: int) -> dict[str, Any]:
        """The tabulated setting ``index`` as a full config (fidelity included)."""
        return self.space.complete({n: float(v) for n, v in zip(self.space.names, self.hp[index], strict=True)})

    def lookup(self, config: dict[str, Any]) -> int:
        """Index of the tabulated setting nearest to ``config`` in the encoded space."""
        key = self.space.key(config)
        if key not in self._cache:
            u = self.space.encode({n: config[n] for n in self.space.names})
            self._cache[key] = int(np.argmin(((self.H - u) ** 2).sum(axis=1)))
        return self._cache[key]

    def simulate(self, config: dict[str, Any], start_step: int, stop_step: int) -> tuple[list, float]:
        i = self.lookup(config)
        seg = self.valid[i, start_step:stop_step]
        bad = np.flatnonzero(~np.isfinite(seg))
        if bad.size:
            # The executor charges a failed segment its `duration` draw: make that the steps actually run.
            self._last_failure = float(bad[0] + 1)
            raise TrialDiverged(f"setting {i} diverged at step {start_step + bad[0] + 1} (NaN validation loss)")
        points = [(start_step + k + 1, {"valid_loss": float(v), "index": float(i)}) for k, v in enumerate(seg)]
        return points, float(stop_step - start_step)

    def failure_duration(self, rng: np.random.Generator) -> float:
        """The executor's ``duration`` callable: a diverged segment lasts the steps it ran (no randomness)."""
        return self._last_failure


def _problem(task: str) -> Callable[[], Problem]:
    def build() -> Problem:
        p = TaskSetProblem(task)
        return Problem(
            name=f"taskset/{short_name(task)}",
            kind="tabular",
            space=p.space,
            make=lambda: TaskSetProblem(task),
            metric="valid_loss",
            optimum=p.optimum,
            budget=100,
            budget_unit="full_runs",
            full_run_cost=float(STEPS),
            executor_duration=lambda trainable: trainable.failure_duration,
            candidates=lambda: [p.config(i) for i in range(len(p.hp))],
            notes=(
                "TaskSet (1000 tabulated Adam settings, 50 steps); configs answered by their nearest neighbour in "
                "the encoded (log) space (@table methods: only the tabulated settings, each once); NaN curves fail; "
                "cost 1 unit a step; f* = best tabulated loss at any step"
            ),
        )

    return build


PROBLEMS: dict[str, Callable[[], Problem]] = {f"taskset/{short_name(t)}": _problem(t) for t in TASKS}

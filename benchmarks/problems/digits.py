"""The quickstart MLP on scikit-learn's bundled digits, trained for real on the CPU (no download).

The trainable is ``examples/quickstart/train.py``'s ``train`` unchanged: it reports the validation loss every epoch
and checkpoints, so ASHA and the Optuna pruners pause, stop and resume it for real. Its cost is the measured CPU
time of each segment (:class:`~benchmarks.problems.measured.MeasuredTrainable`): the losses are reproducible (the
MLP is seeded) but the clock is not bit-reproducible, so with several workers the order of events may vary.

Space (as ``examples/quickstart/sweep.yaml``): ``lr`` (log 1e-4..0.3), ``weight_decay`` (log 1e-6..0.1),
``hidden`` (log 16..256), ``activation`` (relu|tanh), batch size 64; fidelity ``epoch`` 1..27.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.problems.base import Problem
from benchmarks.problems.measured import MeasuredTrainable
from hpo.space import Choice, Fidelity, Float, Int, Space

__all__ = ["PROBLEMS", "digits_space"]

EPOCHS = 27


def digits_space() -> Space:
    return Space(
        {
            "lr": Float(1e-4, 3e-1, log=True),
            "weight_decay": Float(1e-6, 1e-1, log=True),
            "hidden": Int(16, 256, log=True),
            "activation": Choice(["relu", "tanh"]),
        },
        fidelity=Fidelity("epoch", 1, EPOCHS),
        constants={"batch_size": 64},
    )


def _make() -> MeasuredTrainable:
    from examples.quickstart.train import train

    return MeasuredTrainable(train, "val_loss", max_step=EPOCHS)


def _build() -> Problem:
    return Problem(
        name="digits_mlp",
        kind="real",
        space=digits_space(),
        make=_make,
        metric="val_loss",
        budget=30.0,
        budget_unit="seconds",
        executor_duration=lambda trainable: trainable.failure_duration,
        notes="quickstart MLP on sklearn digits, 27 epochs; cost = measured CPU seconds of each segment (1 thread)",
    )


PROBLEMS: dict[str, Callable[[], Problem]] = {"digits_mlp": _build}

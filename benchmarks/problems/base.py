"""The benchmark problem record: a problem is its space, its trainable, its cost and its known optimum.

Notation
--------
- ``f``: the problem's metric (``Problem.metric``), minimized (every problem here has ``mode="min"``).
- ``f*``: ``Problem.optimum``, the known best value of ``f`` (None where unknown: real training).
- ``regret``: ``best f seen so far - f*`` (simple regret).
- ``budget``: how much a run may spend, in ``Problem.budget_unit``: ``"trials"`` (evaluations created),
  ``"full_runs"`` (the trials' summed cost, in units of one full-budget training run, ``full_run_cost``) or
  ``"seconds"`` (the trials' summed cost in seconds). A trial's cost is its ``wall_seconds``: virtual seconds on the
  simulated clock, which are steps for the tabulated problems, measured seconds for real training and nominal
  FLOP-seconds for the cost-aware problem.

Problems are built by name (:func:`get_problem`) inside each run's process, so a run spec stays a small record that
pickles and serializes to JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hpo.space import Space

__all__ = ["Problem"]


@dataclass(frozen=True)
class Problem:
    """One benchmark problem.

    Attributes:
        name: unique name (``branin``, ``taskset/<task>``, ``digits_mlp``, ...).
        kind: ``synthetic`` | ``tabular`` | ``real`` | ``cost``: selects the metrics the report shows.
        space: the search space (with a fidelity for multi-fidelity problems).
        make: builds a fresh trainable (a plain function, or a ``SimulatedTrainable``) for one run.
        metric, mode: what is optimized.
        optimum: ``f*`` where known, else None.
        budget: the default budget of a run, in ``budget_unit``.
        budget_unit: ``"trials"``, ``"full_runs"`` or ``"seconds"``.
        full_run_cost: the cost of one trial trained to the full budget (for ``"full_runs"``).
        duration: the default evaluation-time distribution of plain-function problems (see
            :data:`hpo.executors.simulated.DURATIONS`); SimulatedTrainables give their own durations.
        executor_duration: for SimulatedTrainables, a function of the trainable returning the executor's
            ``duration`` callable (the time charged to a segment that failed; see ``TaskSetProblem``).
        cost_metric: for cost-aware problems, the metric that holds a trial's cost (the x-axis of the front).
        hv_ref: for cost-aware problems, the fixed hypervolume reference point ``(log10 cost, f)``.
        candidates: for tabulated problems, builds the list of tabulated settings (configs), which an ``@table``
            method's searcher is restricted to.
        notes: how the problem answers (nearest neighbour, measured time, ...), printed in the report.
    """

    name: str
    kind: str
    space: Space
    make: Callable[[], Any]
    metric: str = "loss"
    mode: str = "min"
    optimum: float | None = None
    budget: float = 100
    budget_unit: str = "trials"
    full_run_cost: float = 1.0
    duration: str = "exponential"
    executor_duration: Callable[[Any], Any] | None = None
    cost_metric: str | None = None
    hv_ref: tuple[float, float] | None = None
    candidates: Callable[[], list[dict[str, Any]]] | None = None
    notes: str = ""

    @property
    def multi_fidelity(self) -> bool:
        return self.space.fidelity is not None

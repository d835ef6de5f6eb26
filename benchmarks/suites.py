"""Benchmarks declared as data: a suite is a list of runs ``(problem, method, seed, workers, budget, duration)``.

A :class:`Suite` names its problems, methods, seeds, worker counts, budget (default: each problem's own) and, for
plain-function problems, the evaluation-time distributions; :meth:`Suite.runs` expands them into :class:`RunSpec`
records, each of which is one JSON file of results. The command line overrides any field
(``--seeds``, ``--workers``, ``--methods``, ``--problems``, ``--budget``, ``--durations``). A suite has three sizes:
the default, sized to run in about 30 minutes on 2 cores (``--jobs 2``); ``--quick``, a minute or two, for smoke
tests; and ``--full``, the grid the committed results are measured on (1/4/8/16 workers and 10 seeds for the
synthetic functions, all 12 TaskSet tasks with 10 seeds), hours of CPU.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

from benchmarks.problems.synthetic import FUNCTIONS
from benchmarks.problems.taskset import PROBLEMS as _TASKSET

__all__ = ["SUITES", "RunSpec", "Suite", "expand"]


@dataclass(frozen=True)
class RunSpec:
    """One run: a method on a problem with a seed, a number of simulated workers and a budget.

    ``budget`` is in the problem's ``budget_unit`` (None: the problem's default); ``duration`` names the
    evaluation-time distribution of plain-function problems (ignored by problems that time themselves).
    """

    suite: str
    problem: str
    method: str
    seed: int
    workers: int
    budget: float | None = None
    duration: str = "exponential"

    def key(self) -> str:
        """A path, unique per run, under ``results/raw``."""
        budget = "default" if self.budget is None else f"{self.budget:g}"
        return (
            f"{self.suite}/{self.problem.replace('/', '__')}/{self.method}/"
            f"w{self.workers}-{self.duration}-b{budget}-s{self.seed}.json"
        )

    def to_dict(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        return hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Suite:
    """A family of runs.

    Attributes:
        problems: problem names (see :data:`benchmarks.problems.PROBLEMS`).
        methods: method names ``SEARCHER[+SCHEDULER]`` (see :mod:`benchmarks.peers`).
        seeds: how many seeds (``first_seed`` .. ``first_seed + seeds - 1``).
        first_seed: the first seed; more seeds for runs already stored are ``first_seed=10, seeds=20``.
        workers: the simulated worker counts.
        budget: None for each problem's default budget.
        durations: evaluation-time distributions (plain-function problems only).
        quick: overrides for ``--quick`` (field name -> value).
        full: overrides for ``--full``, the size of the committed results.
        description: one line for ``python -m benchmarks list`` and the report.
    """

    name: str
    problems: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: int = 10
    first_seed: int = 0
    workers: tuple[int, ...] = (4,)
    budget: float | None = None
    durations: tuple[str, ...] = ("exponential",)
    quick: dict = field(default_factory=dict)
    full: dict = field(default_factory=dict)
    description: str = ""

    def runs(self) -> list[RunSpec]:
        return [
            RunSpec(self.name, p, m, s, w, self.budget, d)
            for p in self.problems
            for w in self.workers
            for d in self.durations
            for m in self.methods
            for s in range(self.first_seed, self.first_seed + self.seeds)
        ]


# Peers on the synthetic functions, then our own searchers (reported as missing until their modules exist).
TASKSET_PROBLEMS = tuple(_TASKSET)  # the 12 tasks' problem names, in the order of taskset.TASKS
SYNTHETIC_METHODS = ("optuna_tpe", "optuna_gp", "optuna_random", "random", "aegis", "gp_ei")
TASKSET_METHODS = ("random", "random+asha", "optuna_tpe+hyperband", "optuna_tpe+sha", "freeze_thaw")

SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite(
            "synthetic",
            problems=tuple(FUNCTIONS),
            methods=SYNTHETIC_METHODS,
            seeds=5,
            workers=(4,),
            budget=100,
            quick={"problems": ("branin", "hartmann6"), "seeds": 2, "budget": 20},
            full={"workers": (1, 4, 8, 16), "seeds": 10},
            description="BoTorch functions, 100 evaluations, exponential durations (mean 1), 4 workers, 5 seeds "
            "(--full: 1/4/8/16 workers, 10 seeds)",
        ),
        Suite(
            "taskset",
            problems=TASKSET_PROBLEMS[::2],
            methods=TASKSET_METHODS,
            seeds=3,
            workers=(4,),
            budget=100,
            quick={"problems": (TASKSET_PROBLEMS[4],), "seeds": 2, "budget": 10},
            full={"problems": TASKSET_PROBLEMS, "seeds": 10},
            description="TaskSet learning curves, 100 full-run equivalents (5000 steps), 4 workers, 6 of the 12 tasks "
            "(--full: all 12, 10 seeds)",
        ),
        Suite(
            "real",
            problems=("digits_mlp", "charlm"),
            methods=("random", "random+asha", "optuna_tpe", "optuna_tpe+hyperband", "freeze_thaw", "aegis"),
            seeds=3,
            workers=(2,),
            quick={"problems": ("digits_mlp",), "seeds": 1, "budget": 5, "methods": ("random+asha", "optuna_tpe")},
            description="real CPU training (digits MLP, char-LM), measured CPU seconds as cost, 2 workers",
        ),
        Suite(
            "cost",
            problems=("charlm_cost",),
            methods=("random", "optuna_tpe", "carbs"),
            seeds=3,
            workers=(1,),
            quick={"seeds": 1, "budget": 0.5, "methods": ("random",)},
            description="cost-aware char-LM (width, steps, lr); hypervolume of (log10 FLOPs, loss), 1 worker",
        ),
        Suite(
            "quick",
            problems=("branin", TASKSET_PROBLEMS[4]),
            methods=("random", "optuna_tpe", "random+asha", "optuna_tpe+sha"),
            seeds=1,
            workers=(2,),
            budget=12,
            description="a smoke test: Branin and one TaskSet task, 12 evaluations / full runs, 2 workers",
        ),
    )
}


def expand(
    suite: str,
    *,
    seeds: int | None = None,
    first_seed: int | None = None,
    workers: tuple[int, ...] | None = None,
    methods: tuple[str, ...] | None = None,
    problems: tuple[str, ...] | None = None,
    budget: float | None = None,
    durations: tuple[str, ...] | None = None,
    quick: bool = False,
    full: bool = False,
) -> list[RunSpec]:
    """The runs of ``suite`` with the command line's overrides (the quick or full size first, explicit options last)."""
    if suite not in SUITES:
        raise KeyError(f"unknown suite {suite!r}; choose one of {sorted(SUITES)}")
    if quick and full:
        raise ValueError("quick and full are two sizes of a suite; ask for one of them")
    s = SUITES[suite]
    if quick:
        s = replace(s, **s.quick)
    if full:
        s = replace(s, **s.full)
    overrides = {
        "seeds": seeds,
        "first_seed": first_seed,
        "workers": workers,
        "methods": methods,
        "problems": problems,
        "budget": budget,
        "durations": durations,
    }
    s = replace(s, **{k: v for k, v in overrides.items() if v is not None})
    return s.runs()

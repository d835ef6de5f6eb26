"""hpo: Bayesian hyperparameter optimization for deep-learning training runs.

The core: search spaces, trials and their history, durable storage, the asynchronous orchestrator and its
executors (Ray, simulated), and the trainable's API (:func:`report`, :func:`get_checkpoint`).
"""

from typing import TYPE_CHECKING

from hpo.history import History
from hpo.orchestrator import Budget, Orchestrator
from hpo.scheduler import Decision, Scheduler
from hpo.searcher import Searcher
from hpo.session import get_checkpoint, get_trial_id, report
from hpo.space import Choice, Fidelity, Float, Int, Space, SpaceError
from hpo.trial import Trial, TrialStatus

if TYPE_CHECKING:  # for IDEs and type checkers; at run time they are imported on first use (below)
    from hpo.tune import load_results, run

__all__ = [
    "Budget",
    "Choice",
    "Decision",
    "Fidelity",
    "Float",
    "History",
    "Int",
    "Orchestrator",
    "Scheduler",
    "Searcher",
    "Space",
    "SpaceError",
    "Trial",
    "TrialStatus",
    "get_checkpoint",
    "get_trial_id",
    "load_results",
    "report",
    "run",
]

__version__ = "0.1.0"


def __getattr__(name: str):
    # tune pulls in the CLI's registry and rich; import it on first use only
    if name in ("run", "load_results"):
        import importlib

        return getattr(importlib.import_module("hpo.tune"), name)
    raise AttributeError(name)

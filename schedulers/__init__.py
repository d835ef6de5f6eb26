"""hpo's schedulers, one module each; every one depends on ``hpo`` only."""

from schedulers.asha import ASHAScheduler
from schedulers.fifo import FIFOScheduler

__all__ = ["ASHAScheduler", "FIFOScheduler"]

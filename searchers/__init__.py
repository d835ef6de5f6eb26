"""hpo's searchers, one module each; every one depends on ``hpo`` only."""

from searchers.random import RandomSearcher

__all__ = ["RandomSearcher"]

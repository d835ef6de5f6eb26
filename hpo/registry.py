"""Searchers and schedulers by name, for sweep files and the integrations.

The core never imports ``searchers/`` or ``schedulers/`` except here, lazily, by dotted path. A name that is not
registered may be given as ``package.module:ClassName``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["SCHEDULERS", "SEARCHERS", "resolve"]

SEARCHERS: dict[str, str] = {
    "random": "searchers.random:RandomSearcher",
    "gp_ei": "searchers.gp_ei:GPEISearcher",
    "aegis": "searchers.aegis:AEGiSSearcher",
    "carbs": "searchers.carbs:CARBSSearcher",
    "freeze_thaw": "searchers.freeze_thaw:FreezeThawSearcher",
}
SCHEDULERS: dict[str, str] = {
    "fifo": "schedulers.fifo:FIFOScheduler",
    "asha": "schedulers.asha:ASHAScheduler",
    "freeze_thaw": "schedulers.freeze_thaw:FreezeThawScheduler",
}


def resolve(kind: str, name: str) -> Any:
    """The class registered as ``name`` (``kind`` is ``"searcher"`` or ``"scheduler"``), or ``module:Class``."""
    table = SEARCHERS if kind == "searcher" else SCHEDULERS
    path = table.get(str(name).lower())
    if path is None:
        if ":" not in str(name):
            raise ValueError(f"unknown {kind} {name!r}; choose one of {sorted(table)} or give 'module:ClassName'")
        path = str(name)
    module, _, attr = path.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"{kind} {name!r}: cannot import {path!r} ({e})") from None

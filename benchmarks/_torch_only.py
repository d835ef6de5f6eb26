"""Let a benchmark that needs only ``hpo.transfer`` run on a machine with torch alone (the GPU box).

``import hpo.transfer`` first runs ``hpo/__init__.py``, which imports the sweep machinery (fsspec, numpy,
scipy). Where that fails, ``install()`` registers a bare ``hpo`` package pointing at the same directory, so
``hpo.transfer`` (stdlib and torch only) still imports. Where ``hpo`` imports normally it changes nothing.
"""

from __future__ import annotations

import os
import sys
import types


def install() -> None:
    try:
        import hpo  # noqa: F401
    except ImportError:
        for name in [m for m in sys.modules if m == "hpo" or m.startswith("hpo.")]:
            del sys.modules[name]
        package = types.ModuleType("hpo")
        package.__path__ = [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hpo")]
        sys.modules["hpo"] = package

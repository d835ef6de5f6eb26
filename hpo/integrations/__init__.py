"""Plug-ins for Ray Tune and Optuna: hpo's searchers and schedulers behind the interfaces users already have.

- :class:`~hpo.integrations.ray_tune.HpoSearch` (a Ray Tune ``Searcher``) and
  :class:`~hpo.integrations.ray_tune.HpoScheduler` (a ``TrialScheduler`` that pauses at rungs and resumes from
  checkpoints);
- :class:`~hpo.integrations.optuna.HpoSampler` (an Optuna ``BaseSampler``) and
  :class:`~hpo.integrations.optuna.HpoFreezeThawPruner` (a ``BasePruner`` driven by the freeze-thaw curve model).

Both adapters do the same two things: translate the framework's search space into an hpo :class:`~hpo.space.Space`
(one :class:`Axis` per parameter), and rebuild a :class:`~hpo.history.History` from the framework's trials, so that
the wrapped searcher decides exactly as it does in ``hpo.run``. Ray and Optuna are imported only when one of these
classes is first used (``from hpo.integrations import HpoSearch`` imports Ray; this module alone imports neither).

Notation
--------
- user value: a parameter's value as the framework and the trainable see it (``0.3`` for a step-0.1 float).
- hpo value: the same value in the hpo space (``3``, the grid index, for that float); :class:`Axis` maps between them.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from hpo.registry import resolve
from hpo.searcher import Searcher
from hpo.space import Choice, Float, Int, Parameter, Space

__all__ = [
    "Axis",
    "HpoFreezeThawPruner",
    "HpoSampler",
    "HpoScheduler",
    "HpoSearch",
    "SearcherSpec",
    "check_searcher_spec",
    "explain_fidelity",
    "make_searcher",
]

SearcherSpec = str | Mapping[str, Any] | type | Searcher | Callable[[Space], Searcher]

_LAZY = {
    "HpoSearch": "hpo.integrations.ray_tune",
    "HpoScheduler": "hpo.integrations.ray_tune",
    "HpoSampler": "hpo.integrations.optuna",
    "HpoFreezeThawPruner": "hpo.integrations.optuna",
}

_PRIMITIVE = (str, int, float, bool, type(None))


def __getattr__(name: str) -> Any:
    # Importing ray costs seconds and optuna a second: only the adapter that is used pays.
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hpo.integrations' has no attribute {name!r}")


@dataclass(frozen=True)
class Axis:
    """One user parameter as one hpo parameter.

    Most parameters map one to one (``grid is None`` and ``values is None``). Two do not fit an hpo parameter as
    they are, and are searched through an index instead, which the searcher encodes exactly as it would the values:

    - a stepped grid ``offset + k q`` of floats (Optuna's ``FloatDistribution(step=q)``, Ray Tune's ``quniform``) or
      of log-scaled integers with a step (``qlograndint``): the hpo parameter is ``Int`` over ``k``; an Int's bins
      have equal width, so a linear grid is encoded the same as its values would be, and a log one the same up to
      the half-step padding;
    - a choice among values hpo cannot keep as choices (lists, dicts, objects): the hpo parameter is a ``Choice``
      over indices (a Choice is encoded by index anyway, so nothing changes for the searcher).

    Attributes:
        parameter: the hpo parameter.
        grid: ``(offset, q)`` when the hpo value is a grid index ``k`` and the user value ``offset + k q``.
        integer: the user value of a grid is an ``int``.
        bounds: ``(low, high)`` user bounds a grid value is clipped to (``offset + k q`` in floating point may
            overshoot the last grid point by an ulp, which Optuna would reject).
        values: the user values when the hpo value is an index into them.

    Example:
        >>> axis = Axis(Int(0, 4), grid=(0.0, 0.25))
        >>> axis.to_user(3), axis.to_hpo(0.75)
        (0.75, 3)
    """

    parameter: Parameter
    grid: tuple[float, float] | None = None
    integer: bool = False
    bounds: tuple[float, float] | None = None
    values: tuple[Any, ...] | None = None

    def to_user(self, value: Any) -> Any:
        """hpo value -> user value, as a Python ``int``/``float`` (never a NumPy scalar)."""
        if self.values is not None:
            return self.values[int(value)]
        if self.grid is not None:
            offset, q = self.grid
            x = offset + int(value) * q  # as Optuna and Ray Tune compute grid values (0.1 * 3 = 0.30000000000000004)
            if self.bounds is not None:
                x = min(max(x, self.bounds[0]), self.bounds[1])
            return round(x) if self.integer else float(x)
        if isinstance(self.parameter, Float):
            return float(value)
        if isinstance(self.parameter, Int):
            return int(value)
        return value

    def to_hpo(self, value: Any) -> Any:
        """user value -> hpo value; raises ``ValueError`` for a value off the parameter's grid or choices."""
        if self.values is not None:
            for i, v in enumerate(self.values):
                if v == value and isinstance(v, bool) == isinstance(value, bool):
                    return i
            raise ValueError(f"{value!r} is not one of {list(self.values)}")
        if self.grid is not None:
            offset, q = self.grid
            k = (float(value) - offset) / q
            if abs(k - round(k)) > 1e-6:
                raise ValueError(f"{value!r} is not on the grid {offset} + k * {q}")
            return round(k)
        if isinstance(self.parameter, Int):
            return int(value)
        if isinstance(self.parameter, Float):
            return float(value)
        return value

    def contains(self, value: Any) -> bool:
        """The user value belongs to this parameter (in bounds, on its grid, one of its choices)."""
        try:
            return self.parameter.contains(self.to_hpo(value))
        except (TypeError, ValueError):
            return False


def choice_axis(values: Any) -> Axis:
    """An Axis for a categorical parameter: its values as choices when hpo can keep them (strings, numbers,
    booleans, None, all distinct), else a Choice over their indices."""
    values = tuple(values)
    if all(isinstance(v, _PRIMITIVE) for v in values) and len({repr(v) for v in values}) == len(values):
        return Axis(Choice(values))
    return Axis(Choice(tuple(range(len(values)))), values=values)


def grid_axis(
    offset: float, q: float, k_low: int, k_high: int, log: bool = False, integer: bool = False,
    bounds: tuple[float, float] | None = None,
) -> Axis:
    """An Axis for the grid ``offset + k q``, ``k_low <= k <= k_high`` (``log`` puts the bins on a log scale)."""
    return Axis(Int(int(k_low), int(k_high), log=log), grid=(float(offset), float(q)), integer=integer, bounds=bounds)


def make_searcher(spec: SearcherSpec, space: Space, seed: int = 0, options: Mapping[str, Any] | None = None
                  ) -> Searcher:
    """Build the hpo searcher an adapter wraps.

    Args:
        spec: a registered name (``"random"``, ``"gp_ei"``, ``"aegis"``, ``"carbs"``, ``"freeze_thaw"``) or
            ``"module:Class"``; ``{"name": ..., **options}``; a :class:`~hpo.searcher.Searcher` subclass; a function
            ``space -> Searcher``; or a searcher instance, which must have been built for this very space.
        space: the hpo space the adapter translated from the framework's search space.
        seed: the searcher's seed, unless the options set one.
        options: the searcher's own options (``{"n_initial": 5}``), merged over those of a dict ``spec``.

    Example:
        >>> from hpo.space import Space, Float
        >>> type(make_searcher("random", Space({"x": Float(0, 1)}), seed=3)).__name__
        'RandomSearcher'
    """
    if isinstance(spec, Searcher):
        if spec.space != space:
            raise ValueError(
                f"the searcher instance was built for {spec.space!r}, but the search space here is {space!r}; "
                "pass the searcher's name or class (e.g. searcher='gp_ei') and let the adapter build it"
            )
        return spec
    cls, options = _searcher_class(spec, options)
    if cls is None:
        searcher = spec(space)
        if not isinstance(searcher, Searcher):
            raise TypeError(f"the searcher factory returned {type(searcher).__name__}, not an hpo Searcher")
        return searcher
    options.setdefault("seed", int(seed))
    with explain_fidelity(space):
        return cls.from_options(space, options)


def _searcher_class(
    spec: SearcherSpec, options: Mapping[str, Any] | None, where: str = "searcher"
) -> tuple[type[Searcher] | None, dict[str, Any]]:
    """The Searcher class a name, ``{"name": ..., **options}`` or class spec names, with the options merged; None
    for a factory function."""
    options = dict(options or {})
    if isinstance(spec, Mapping):
        if "name" not in spec:
            raise ValueError(f"{where}: a searcher given as a dict needs a 'name', got {dict(spec)!r}")
        options = {**{k: v for k, v in spec.items() if k != "name"}, **options}
        spec = spec["name"]
    if isinstance(spec, str):
        return resolve("searcher", spec), options
    if inspect.isclass(spec) and issubclass(spec, Searcher):
        return spec, options
    if callable(spec) and not inspect.isclass(spec):
        return None, options
    raise TypeError(f"{where} must be a name, a dict, a Searcher class or instance, got {spec!r}")


def check_searcher_spec(spec: SearcherSpec, options: Mapping[str, Any] | None = None, where: str = "searcher") -> None:
    """Check, before any trial runs, that a searcher spec names a searcher and that its options exist.

    The adapters build the searcher only once the search space is known (at the first trial); a misspelled name or
    option must fail at construction instead, not after a full run of the objective.
    """
    if isinstance(spec, Searcher):
        return
    cls, options = _searcher_class(spec, options, where)
    if cls is None:
        return  # a factory: checked when it builds the searcher
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    known = sorted(n for n in params if n not in ("self", "space"))
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"{where} {cls.__name__} has no option {unknown}; its options are {known}")


@contextlib.contextmanager
def explain_fidelity(space: Space) -> Iterator[None]:
    """Add where the fidelity comes from to a searcher's "needs a fidelity" error (it names a sweep file's)."""
    try:
        yield
    except ValueError as e:
        if space.fidelity is None and "fidelity" in str(e):
            raise ValueError(
                f"{e}. Through the adapters the fidelity is given as HpoSearch(max_t=..., time_attr=...) for Ray "
                "Tune and HpoSampler(max_step=...) for Optuna"
            ) from None
        raise


def searcher_name(spec: SearcherSpec) -> str:
    """A short name of a searcher spec for messages and ``repr``."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Mapping):
        return str(spec.get("name"))
    return getattr(spec, "__name__", type(spec).__name__)

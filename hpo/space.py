"""Search spaces: parameters, the unit-cube encoding, Sobol sampling and validation.

Notation
--------
- ``d``: number of searched parameters (the fidelity is not searched).
- ``u``: a point of the unit cube ``[0, 1]^d``, one coordinate per parameter, in the order of ``Space.names``.
- ``config``: a mapping ``name -> value`` in the user's units.

Encoding (what searchers see)
-----------------------------
- ``Float(low, high)``: ``u = (x - low) / (high - low)``; with ``log=True`` the same in ``log x``.
- ``Int(low, high, step)``: the ``n = (high - low) / step + 1`` grid values own equal bins of the cube,
  ``[low - step/2, high + step/2]`` (in log space for ``log=True``), so a uniform ``u`` gives every value the same
  chance (linear) and ``decode(encode(v)) == v`` exactly. Optuna's GP sampler pads integers the same way.
- ``Choice(choices)``: choice ``i`` of ``k`` owns the bin ``[i/k, (i+1)/k)`` and encodes to its centre.

Decoding rounds to the grid, so any ``u`` in the cube decodes to a valid config; searchers may optimize over the
continuous cube freely.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import qmc

__all__ = ["Choice", "Fidelity", "Float", "Int", "Parameter", "Space", "SpaceError"]


class SpaceError(ValueError):
    """A search space or a config that does not fit it."""


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise SpaceError(f"parameter name {name!r} is not a non-empty string; name every parameter with a string")


@dataclass(frozen=True)
class Float:
    """A real parameter on ``[low, high]``, linear or (``log=True``) logarithmic.

    Example:
        >>> Float(1e-5, 1e-1, log=True).decode(0.5)
        0.001
    """

    low: float
    high: float
    log: bool = False

    def validate(self, name: str) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise SpaceError(f"parameter {name!r}: bounds must be finite, got low={self.low}, high={self.high}")
        if self.low >= self.high:
            raise SpaceError(
                f"parameter {name!r}: low={self.low} must be below high={self.high}; "
                "swap them, or use a Choice with one value for a constant"
            )
        if self.log and self.low <= 0:
            raise SpaceError(
                f"parameter {name!r}: log scale needs low > 0, got low={self.low}; "
                "raise low to a small positive value or set log=False"
            )

    def _t(self, x: float) -> float:
        return math.log(x) if self.log else float(x)

    def encode(self, value: Any) -> float:
        lo, hi = self._t(self.low), self._t(self.high)
        return (self._t(float(value)) - lo) / (hi - lo)

    def decode(self, u: float) -> float:
        u = min(max(float(u), 0.0), 1.0)
        lo, hi = self._t(self.low), self._t(self.high)
        t = lo + u * (hi - lo)
        x = math.exp(t) if self.log else t
        # exp/log round-off must never leave the declared bounds
        return min(max(x, self.low), self.high)

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, bool)
            and math.isfinite(float(value))
            and self.low <= float(value) <= self.high
        )

    def describe(self) -> str:
        return f"a float in [{self.low}, {self.high}]" + (" (log scale)" if self.log else "")

    def to_dict(self) -> dict[str, Any]:
        return {"type": "float", "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Int:
    """An integer parameter ``low, low + step, ..., high``, linear or (``log=True``) logarithmic.

    Example:
        >>> Int(16, 256, log=True).decode(1.0)
        256
    """

    low: int
    high: int
    log: bool = False
    step: int = 1

    def validate(self, name: str) -> None:
        for field in ("low", "high", "step"):
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise SpaceError(f"parameter {name!r}: Int {field} must be an integer, got {v!r}; use Float for reals")
        if self.low >= self.high:
            raise SpaceError(
                f"parameter {name!r}: low={self.low} must be below high={self.high}; "
                "swap them, or use a Choice with one value for a constant"
            )
        if self.step < 1:
            raise SpaceError(f"parameter {name!r}: step must be >= 1, got {self.step}")
        if (self.high - self.low) % self.step:
            raise SpaceError(
                f"parameter {name!r}: step={self.step} does not divide high - low = {self.high - self.low}; "
                f"set high to {self.low + (self.high - self.low) // self.step * self.step} or change step"
            )
        if self.log and self.low <= 0:
            raise SpaceError(
                f"parameter {name!r}: log scale needs low >= 1, got low={self.low}; raise low or set log=False"
            )
        if self.log and self.step != 1:
            raise SpaceError(f"parameter {name!r}: log scale supports step=1 only; use a Choice for other grids")

    def _bounds(self) -> tuple[float, float]:
        half = self.step / 2
        if self.log:
            return math.log(self.low - 0.5), math.log(self.high + 0.5)
        return self.low - half, self.high + half

    def encode(self, value: Any) -> float:
        lo, hi = self._bounds()
        t = math.log(value) if self.log else float(value)
        return (t - lo) / (hi - lo)

    def decode(self, u: float) -> int:
        u = min(max(float(u), 0.0), 1.0)
        lo, hi = self._bounds()
        t = lo + u * (hi - lo)
        x = math.exp(t) if self.log else t
        k = round((x - self.low) / self.step)
        return int(min(max(self.low + k * self.step, self.low), self.high))

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
            return False
        if isinstance(value, (float, np.floating)) and not float(value).is_integer():
            return False
        v = int(value)
        return self.low <= v <= self.high and (v - self.low) % self.step == 0

    def describe(self) -> str:
        step = f" with step {self.step}" if self.step != 1 else ""
        return f"an integer in [{self.low}, {self.high}]{step}" + (" (log scale)" if self.log else "")

    def to_dict(self) -> dict[str, Any]:
        return {"type": "int", "low": int(self.low), "high": int(self.high), "log": self.log, "step": int(self.step)}


@dataclass(frozen=True)
class Choice:
    """A categorical parameter: one of ``choices`` (strings, numbers, booleans or None).

    Example:
        >>> Choice(["relu", "gelu"]).decode(0.9)
        'gelu'
    """

    choices: tuple[Any, ...]

    def __init__(self, choices: Sequence[Any]) -> None:
        object.__setattr__(self, "choices", tuple(choices) if isinstance(choices, (list, tuple)) else choices)

    def validate(self, name: str) -> None:
        if not isinstance(self.choices, tuple):
            raise SpaceError(f"parameter {name!r}: choices must be a list, got {self.choices!r}")
        if not self.choices:
            raise SpaceError(f"parameter {name!r}: choices is empty; give at least one value")
        for c in self.choices:
            if c is not None and not isinstance(c, (str, bool, int, float, np.integer, np.floating)):
                raise SpaceError(
                    f"parameter {name!r}: choice {c!r} is a {type(c).__name__}; choices must be strings, numbers, "
                    "booleans or None (they are stored as JSON): name the options (e.g. 'b0.9_0.95') and map "
                    "them in the trainable, or make each element its own parameter"
                )
        if len(set(map(repr, self.choices))) != len(self.choices):
            raise SpaceError(f"parameter {name!r}: choices {list(self.choices)} repeat a value; list each once")

    def encode(self, value: Any) -> float:
        return (self.index(value) + 0.5) / len(self.choices)

    def decode(self, u: float) -> Any:
        k = len(self.choices)
        return self.choices[min(max(int(float(u) * k), 0), k - 1)]

    def index(self, value: Any) -> int:
        for i, c in enumerate(self.choices):
            # True == 1 in Python; a bool choice only matches a bool value
            if c == value and isinstance(c, bool) == isinstance(value, bool):
                return i
        raise SpaceError(f"value {value!r} is not one of {list(self.choices)}")

    def contains(self, value: Any) -> bool:
        try:
            self.index(value)
        except SpaceError:
            return False
        return True

    def describe(self) -> str:
        return f"one of {list(self.choices)}"

    def to_dict(self) -> dict[str, Any]:
        return {"type": "choice", "choices": list(self.choices)}


@dataclass(frozen=True)
class Fidelity:
    """The budget axis of a trial: training steps (epochs, iterations) from ``low`` to ``high``.

    It is not searched. Every trial's config carries ``name: high`` (the step to train up to), and schedulers read
    ``low`` as the smallest budget worth judging a run at (ASHA's first rung) and ``high`` as the full budget.

    Example:
        >>> Fidelity("epoch", 1, 27).high
        27
    """

    name: str
    low: int
    high: int

    def validate(self) -> None:
        _check_name(self.name)
        if isinstance(self.low, bool) or not isinstance(self.low, (int, np.integer)) or self.low < 1:
            raise SpaceError(f"fidelity {self.name!r}: low must be an integer >= 1, got {self.low!r}")
        if isinstance(self.high, bool) or not isinstance(self.high, (int, np.integer)) or self.high < self.low:
            raise SpaceError(
                f"fidelity {self.name!r}: high must be an integer >= low={self.low}, got {self.high!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "low": int(self.low), "high": int(self.high)}


Parameter = Float | Int | Choice
_TYPES: dict[str, type] = {"float": Float, "int": Int, "choice": Choice}


class Space:
    """An ordered set of named parameters, optional constants and an optional fidelity.

    Args:
        params: ``name -> Float | Int | Choice`` (searched, in this order).
        fidelity: the budget axis, or None for single-step trials.
        constants: values passed through to every config unchanged.

    Example:
        >>> space = Space({"lr": Float(1e-4, 1e-1, log=True), "act": Choice(["relu", "tanh"])})
        >>> config = space.decode([0.5, 0.9])
        >>> space.decode(space.encode(config)) == config
        True
    """

    def __init__(
        self,
        params: Mapping[str, Parameter],
        fidelity: Fidelity | None = None,
        constants: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(params, Mapping) or not params:
            raise SpaceError("a space needs at least one parameter, e.g. {'lr': Float(1e-4, 1e-1, log=True)}")
        for name, p in params.items():
            _check_name(name)
            if not isinstance(p, (Float, Int, Choice)):
                raise SpaceError(f"parameter {name!r} is {p!r}; use Float, Int or Choice")
            p.validate(name)
        self.params: dict[str, Parameter] = dict(params)
        self.constants: dict[str, Any] = dict(constants or {})
        self.fidelity = fidelity
        if fidelity is not None:
            fidelity.validate()
            if fidelity.name in self.params or fidelity.name in self.constants:
                raise SpaceError(f"fidelity {fidelity.name!r} is also a parameter or constant; rename one")
        clash = set(self.params) & set(self.constants)
        if clash:
            raise SpaceError(f"{sorted(clash)} are both parameters and constants; keep one of each name")

    @property
    def names(self) -> list[str]:
        return list(self.params)

    @property
    def dim(self) -> int:
        return len(self.params)

    @property
    def max_step(self) -> int:
        """The step a trial trains up to: the fidelity's ``high``, or 1 for single-step trials."""
        return self.fidelity.high if self.fidelity else 1

    def __iter__(self) -> Iterator[tuple[str, Parameter]]:
        return iter(self.params.items())

    def __repr__(self) -> str:
        return f"Space({self.params!r}, fidelity={self.fidelity!r}, constants={self.constants!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self.to_dict() == other.to_dict()

    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """Config -> point of the unit cube, shape ``(d,)``. Validates the config first."""
        self.validate(config)
        return np.array([p.encode(config[n]) for n, p in self.params.items()], dtype=float)

    def decode(self, u: Sequence[float] | np.ndarray) -> dict[str, Any]:
        """Point of the unit cube (clipped) -> full config, constants and fidelity included."""
        u = np.asarray(u, dtype=float).reshape(-1)
        if u.shape[0] != self.dim:
            raise SpaceError(f"expected a point with {self.dim} coordinates ({self.names}), got {u.shape[0]}")
        config = {n: p.decode(x) for (n, p), x in zip(self.params.items(), u, strict=True)}
        return self.complete(config)

    def complete(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Add constants and the fidelity's full budget to a config of searched parameters."""
        full = dict(config)
        full.update(self.constants)
        if self.fidelity is not None:
            full.setdefault(self.fidelity.name, self.fidelity.high)
        return full

    def validate(self, config: Mapping[str, Any]) -> None:
        """Raise SpaceError naming the first parameter that is missing or outside the space."""
        if not isinstance(config, Mapping):
            raise SpaceError(f"a config must be a mapping of parameter names to values, got {type(config).__name__}")
        for name, p in self.params.items():
            if name not in config:
                raise SpaceError(f"config has no value for parameter {name!r}; add it ({p.describe()})")
            if not p.contains(config[name]):
                raise SpaceError(
                    f"config value {name}={config[name]!r} is outside the space; it must be {p.describe()}"
                )

    def key(self, config: Mapping[str, Any]) -> tuple[Any, ...]:
        """A hashable identity of a config's searched values (duplicates share a key)."""
        return tuple(repr(config[n]) for n in self.params)

    def sobol(self, n: int, seed: int = 0, skip: int = 0) -> np.ndarray:
        """``n`` points of a scrambled Sobol sequence, shape ``(n, d)``, starting at index ``skip``."""
        engine = qmc.Sobol(self.dim, scramble=True, seed=seed)
        if skip:
            engine.fast_forward(skip)
        return engine.random(n)

    def cardinality(self) -> float:
        """Number of distinct configs (inf when any parameter is a Float)."""
        total = 1.0
        for p in self.params.values():
            if isinstance(p, Float):
                return math.inf
            total *= len(p.choices) if isinstance(p, Choice) else (p.high - p.low) // p.step + 1
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": {n: p.to_dict() for n, p in self.params.items()},
            "fidelity": self.fidelity.to_dict() if self.fidelity else None,
            "constants": dict(self.constants),
        }

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Space:
        """Build a space from its dict form (the ``space:`` block of a sweep file).

        Each parameter is ``{type: float|int|choice, ...}``; a bare list is a Choice and a bare scalar a constant.
        """
        params: dict[str, Parameter] = {}
        if isinstance(spec.get("params"), Mapping):
            unknown = set(spec) - {"params", "fidelity", "constants"}
            if unknown:
                raise SpaceError(f"space has unknown keys {sorted(unknown)} beside params; use params, fidelity, "
                                 "constants")
        constants = dict(spec.get("constants") or {})
        raw = spec.get("params", spec)
        if not isinstance(raw, Mapping):
            raise SpaceError(f"space must map parameter names to definitions, got {type(raw).__name__}")
        for name, d in raw.items():
            if name in ("constants", "fidelity") and raw is spec:
                continue
            params_or_const = _param_from_spec(str(name), d)
            if isinstance(params_or_const, (Float, Int, Choice)):
                params[str(name)] = params_or_const
            else:
                constants[str(name)] = params_or_const
        fid = spec.get("fidelity")
        fidelity = None
        if fid is not None:
            if not isinstance(fid, Mapping) or "name" not in fid or "high" not in fid or set(fid) - {
                "name", "low", "high"
            }:
                raise SpaceError(f"fidelity must be {{name: ..., low: ..., high: ...}}, got {fid!r}")
            fidelity = Fidelity(
                str(fid["name"]), _whole("fidelity", "low", fid.get("low", 1)), _whole("fidelity", "high", fid["high"]),
            )
        return cls(params, fidelity=fidelity, constants=constants)


def _param_from_spec(name: str, d: Any) -> Any:
    if isinstance(d, list):
        return Choice(d)
    if not isinstance(d, Mapping):
        return d  # a constant
    kind = d.get("type")
    if kind not in _TYPES:
        raise SpaceError(
            f"parameter {name!r}: unknown type {kind!r}; use one of {sorted(_TYPES)} "
            "(e.g. {type: float, low: 0.0001, high: 0.1, log: true})"
        )
    allowed = {"choice": {"choices"}, "float": {"low", "high", "log"}, "int": {"low", "high", "log", "step"}}[kind]
    unknown = set(d) - allowed - {"type"}
    if unknown:
        raise SpaceError(f"parameter {name!r}: unknown keys {sorted(unknown)} for type {kind}; use {sorted(allowed)}")
    try:
        if kind == "choice":
            return Choice(d["choices"])
        log = d.get("log", False)
        if not isinstance(log, bool):
            raise SpaceError(f"parameter {name!r}: log must be true or false, got {log!r}")
        if kind == "float":
            return Float(float(d["low"]), float(d["high"]), log)
        return Int(
            _whole(f"parameter {name!r}", "low", d["low"]),
            _whole(f"parameter {name!r}", "high", d["high"]),
            log,
            _whole(f"parameter {name!r}", "step", d.get("step", 1)),
        )
    except KeyError as e:
        raise SpaceError(f"parameter {name!r}: a {kind} needs {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise SpaceError(f"parameter {name!r}: {e}") from None


def _whole(where: str, key: str, value: Any) -> int:
    """An integer field of the dict form: ``3`` or ``3.0``, never a silent ``int(9.7)`` or ``int("abc")``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise SpaceError(f"{where}: {key} must be an integer, got {value!r}")
    if not float(value).is_integer():
        raise SpaceError(f"{where}: {key} must be an integer, got {value!r}; use type: float for reals")
    return int(value)

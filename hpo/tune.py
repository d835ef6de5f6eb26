"""Standalone sweeps: ``hpo.run(...)`` from Python and ``hpo-tune SWEEP.yaml`` from the shell.

A sweep file (YAML)::

    name: quickstart
    entrypoint: train:train            # module:function, the module found next to the sweep file
    metric: val_loss
    mode: min
    space:
      lr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
      hidden: {type: int, low: 16, high: 256, log: true}
      activation: [relu, tanh]         # a list is a choice
      batch_size: 64                   # a scalar is a constant
    fidelity: {name: epoch, low: 1, high: 27}
    searcher: random                   # or {name: random, seed: 1}
    scheduler: {name: asha, reduction_factor: 3}
    resources: {num_cpus: 1, num_gpus: 0}
    max_concurrent: 2
    budget: {max_trials: 40, max_seconds: 600}
    directory: runs/quickstart         # relative to the sweep file
    ray: {address: null}
    transfer:                          # optional: the shape the sweep tunes, for `hpo-tune transfer`
      base: {width: 32, depth: 2}
      parameterization: completep      # sp | mup | depth_mup | completep
      optimizer: adamw                 # adamw | sgd | muon

Running the same file again resumes the sweep from its directory. ``hpo-tune transfer DIR --target
width=128,depth=4`` carries the sweep's best hyperparameters from its base shape to the target shape
(``hpo.transfer.transfer_hparams``) and writes them to ``DIR/transferred.yaml``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from hpo.checkpoint import CheckpointStore
from hpo.executors.base import Executor
from hpo.history import History
from hpo.orchestrator import Budget, Orchestrator
from hpo.registry import resolve
from hpo.scheduler import Scheduler
from hpo.searcher import Searcher
from hpo.space import Space, SpaceError
from hpo.storage import Storage, SweepLockedError
from hpo.trial import Trial

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SweepFileError",
    "SweepResult",
    "check_transfer",
    "load_results",
    "load_sweep",
    "main",
    "parse_shape",
    "run",
    "transfer_sweep",
]


class SweepFileError(ValueError):
    """A sweep file that cannot be run as written."""


@dataclass
class SweepResult:
    """What a sweep leaves: its history and directory.

    Attributes:
        history: every trial, with curves and costs.
        directory: the sweep directory (storage, checkpoints, results.json, results.csv).
        interrupted: the sweep stopped early (Ctrl-C or time budget) with trials left to resume.
        cancelled: it stopped on Ctrl-C.
    """

    history: History
    directory: Path
    interrupted: bool = False
    cancelled: bool = False

    @property
    def best_trial(self) -> Trial | None:
        """The best trial by the sweep's metric and mode (None before any trial reported a finite value)."""
        return self.history.best()

    @property
    def best_config(self) -> dict[str, Any] | None:
        t = self.history.best()
        return None if t is None else dict(t.config)

    @property
    def best_value(self) -> float | None:
        return self.history.best_value()

    def dataframe(self) -> pd.DataFrame:
        """One row per trial (pandas)."""
        with Storage(self.directory, readonly=True) as st:
            return st.to_dataframe()


def _build(kind: str, spec: str | Searcher | Scheduler | Mapping[str, Any], *args: Any) -> Any:
    if isinstance(spec, (Searcher, Scheduler)):
        return spec
    if isinstance(spec, str):
        name, options = spec, {}
    elif isinstance(spec, Mapping) and "name" in spec:
        name, options = spec["name"], {k: v for k, v in spec.items() if k != "name"}
    else:
        raise SweepFileError(f"{kind} must be a name or {{name: ..., options...}}, got {spec!r}")
    cls = resolve(kind, name)
    return cls.from_options(*args, options)


def _spec_of(x: Any) -> Any:
    if isinstance(x, (Searcher, Scheduler)):
        return f"{type(x).__module__}:{type(x).__name__}"
    return x


def run(
    trainable: Callable[[dict[str, Any]], Any],
    space: Space | Mapping[str, Any],
    *,
    metric: str,
    mode: str = "min",
    directory: str | os.PathLike[str],
    searcher: str | Mapping[str, Any] | Searcher = "random",
    scheduler: str | Mapping[str, Any] | Scheduler = "fifo",
    max_trials: int | None = None,
    max_cost: float | None = None,
    max_seconds: float | None = None,
    cost_key: str = "wall_seconds",
    resources: Mapping[str, float] | None = None,
    max_concurrent: int | None = None,
    address: str | None = None,
    executor: Executor | None = None,
    seed: int = 0,
    points_to_evaluate: Sequence[Mapping[str, Any]] = (),
    checkpoint_dir: str | None = None,
    display: bool = True,
    name: str | None = None,
    transfer: Mapping[str, Any] | None = None,
) -> SweepResult:
    """Run (or resume) a sweep and return its result.

    Args:
        trainable: ``def train(config)`` that returns the metric or reports it with :func:`hpo.report`.
        space: an :class:`~hpo.space.Space`, or its dict form as in a sweep file.
        metric, mode: the reported metric to optimize, ``"min"`` or ``"max"``.
        directory: the sweep directory; running again on it resumes the sweep.
        searcher, scheduler: registered names (``random``; ``fifo``, ``asha``), ``{name:, **options}``, or
            instances.
        max_trials, max_cost, max_seconds, cost_key: the budget (see :class:`~hpo.orchestrator.Budget`).
        resources: per trial, ``{"num_cpus": 1, "num_gpus": 0.5, **custom}``.
        max_concurrent: cap on trials at once (default: what the resources allow).
        address: an existing Ray cluster to join.
        executor: run on this executor instead of Ray (e.g. a :class:`~hpo.executors.SimulatedExecutor`).
        seed: seeds the searcher.
        points_to_evaluate: configs to try first.
        checkpoint_dir: a path or fsspec URL for checkpoints (default: ``DIRECTORY/checkpoints``).
        display: show progress.
        name: the sweep's name in the progress display and summary (default: the directory's name).
        transfer: the shape the sweep tunes, ``{"base": {"width": 32, "depth": 2}, "parameterization":
            "completep", "optimizer": "adamw"}``, stored with the sweep for :func:`transfer_sweep`.

    Example:
        >>> def train(config):  # doctest: +SKIP
        ...     return {"loss": (config["x"] - 0.3) ** 2}
        >>> result = hpo.run(train, {"x": {"type": "float", "low": 0, "high": 1}}, metric="loss",
        ...                  directory="runs/demo", max_trials=20)  # doctest: +SKIP
    """
    if not isinstance(space, Space):
        space = Space.from_dict(space)
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    if not isinstance(metric, str) or not metric:
        raise ValueError("metric must name the reported value to optimize, e.g. metric='val_loss'")
    budget = Budget(max_trials=max_trials, max_cost=max_cost, max_seconds=max_seconds, cost_key=cost_key)
    transfer = None if transfer is None else check_transfer(transfer, space)
    for config in points_to_evaluate:
        space.validate(config)
    # Everything that can reject the sweep as written is built before the spec is stored: a sweep that fails
    # here leaves its directory free for the corrected one.
    spec = {
        "space": space.to_dict(),
        "metric": metric,
        "mode": mode,
        "searcher": _spec_of(searcher),
        "scheduler": _spec_of(scheduler),
        "seed": seed,
    }
    if transfer is not None:
        spec["transfer"] = transfer
    if isinstance(searcher, str):
        searcher = {"name": searcher}
    if isinstance(searcher, Mapping):
        searcher = {"seed": int(seed), **searcher}
    search = _build("searcher", searcher, space)
    sched = _build("scheduler", scheduler, space, metric, mode)
    if executor is None:
        from hpo.executors.ray import RayExecutor

        executor = RayExecutor(**_ray_resources(resources), max_concurrent=max_concurrent, address=address)
    directory = Path(directory)
    storage = Storage(directory)
    try:
        old = storage.load_spec()
        if old is not None:
            for key in ("space", "metric", "mode"):
                if json.dumps(old.get(key), sort_keys=True, default=str) != json.dumps(spec[key], sort_keys=True,
                                                                                       default=str):
                    raise ValueError(
                        f"{str(directory)!r} holds a sweep with another {key} ({old.get(key)!r}); "
                        "resume it unchanged or give this sweep a new directory"
                    )
        storage.save_spec(spec)
        store = CheckpointStore(checkpoint_dir or str(directory / "checkpoints"))
        from hpo.display import LiveDisplay, summary_table

        with LiveDisplay(name or directory.name, enabled=display) as live:
            orch = Orchestrator(
                trainable, space, metric, mode, search, sched, executor, storage, budget,
                checkpoint_store=store, points_to_evaluate=points_to_evaluate, on_event=live.on_event,
            )
            history = orch.run()
        _write_results(storage, directory, metric)
        if display:
            live.console.print(summary_table(history, title=f"{name or directory.name}: best trials"))
        return SweepResult(history, directory, orch.interrupted, orch.cancelled)
    finally:
        storage.close()


def _ray_resources(resources: Mapping[str, float] | None) -> dict[str, Any]:
    """``{"num_cpus": 1, "num_gpus": 0.5, "custom": 1}`` as :class:`~hpo.executors.ray.RayExecutor` arguments (which
    checks the amounts)."""
    if resources is None:
        return {}
    if not isinstance(resources, Mapping):
        raise SweepFileError(f"resources must map a resource to an amount per trial, e.g. "
                             f"{{num_cpus: 1, num_gpus: 0.5}}; got {resources!r}")
    res = dict(resources)
    return {"num_cpus": res.pop("num_cpus", 1), "num_gpus": res.pop("num_gpus", 0), "resources": res}


def _write_results(storage: Storage, directory: Path, metric: str) -> None:
    rows = storage.rows(metric)
    with open(directory / "results.json", "w") as f:
        json.dump(rows, f, indent=1, default=str)
    storage.to_csv(directory / "results.csv")


def load_results(directory: str | os.PathLike[str]) -> pd.DataFrame:
    """A sweep's trials as a pandas DataFrame (readable while the sweep runs)."""
    with Storage(directory, readonly=True) as st:
        return st.to_dataframe()


# -- sweep files ---------------------------------------------------------------------------------------------

_KEYS = {
    "name", "entrypoint", "metric", "mode", "space", "fidelity", "searcher", "scheduler", "resources",
    "max_concurrent", "budget", "directory", "seed", "ray", "points_to_evaluate", "checkpoint_dir", "transfer",
}
_TRANSFER_KEYS = ("base", "parameterization", "optimizer")


def check_transfer(section: Any, space: Space | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``transfer`` section of a sweep, checked and normalized: ``{"base": {"width", "depth"},
    "parameterization", "optimizer"}``.

    Where the space has constants named ``width``, ``depth``, ``parameterization`` or ``optimizer`` (how the
    trainable learns its shape), they must agree with the section, or the stored base shape would not be the
    one trained.
    """
    from hpo.transfer import OPTIMIZERS, Parameterization, Shape

    if not isinstance(section, Mapping) or "base" not in section:
        raise SweepFileError(
            "transfer must be a mapping with a base shape, e.g. transfer: {base: {width: 32, depth: 2}, "
            "parameterization: completep, optimizer: adamw}"
        )
    unknown = set(section) - set(_TRANSFER_KEYS)
    if unknown:
        raise SweepFileError(f"transfer has unknown keys {sorted(unknown)}; allowed: {list(_TRANSFER_KEYS)}")
    try:
        base = Shape.parse(section["base"], "transfer.base")
        param = Parameterization.parse(section.get("parameterization", "completep")).value
    except ValueError as e:
        raise SweepFileError(str(e)) from None
    optimizer = str(section.get("optimizer", "adamw")).lower()
    if optimizer not in OPTIMIZERS:
        raise SweepFileError(
            f"transfer.optimizer {section.get('optimizer')!r} is unknown; use one of {list(OPTIMIZERS)}"
        )
    out = {"base": {"width": base.width, "depth": base.depth}, "parameterization": param, "optimizer": optimizer}
    if space is not None:
        params = space.to_dict() if isinstance(space, Space) else dict(space)
        if isinstance(params.get("params"), Mapping):  # the dict form of a Space
            params = {**params["params"], **(params.get("constants") or {})}
        declared = {**out["base"], "parameterization": param, "optimizer": optimizer}
        for key, want in declared.items():
            have = params.get(key)
            if have is None or isinstance(have, (dict, list)):
                continue
            same = Parameterization.parse(have).value == want if key == "parameterization" else have == want
            if not same:
                where = "transfer.base." + key if key in ("width", "depth") else "transfer." + key
                raise SweepFileError(
                    f"space constant {key}={have!r} differs from {where}={want!r}; the transfer section must "
                    "describe what the sweep trains"
                )
    return out


def load_sweep(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a sweep file; raise :class:`SweepFileError` with a one-line reason."""
    path = Path(path)
    if not path.is_file():
        raise SweepFileError(f"sweep file {str(path)!r} not found; pass the path of a YAML sweep file")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SweepFileError(f"sweep file {str(path)!r} is not valid YAML{where}: {problem}") from None
    if not isinstance(spec, dict):
        raise SweepFileError(f"sweep file {str(path)!r} must be a YAML mapping of keys (entrypoint, space, ...)")
    unknown = set(spec) - _KEYS
    if unknown:
        raise SweepFileError(f"sweep file has unknown keys {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    for key in ("entrypoint", "metric", "space"):
        if key not in spec:
            raise SweepFileError(f"sweep file has no {key!r}; add it (see the sweep file reference in README.md)")
    if not isinstance(spec["entrypoint"], str) or spec["entrypoint"].count(":") != 1:
        raise SweepFileError(f"entrypoint must be 'module:function', got {spec['entrypoint']!r}")
    if not isinstance(spec["space"], dict):
        raise SweepFileError("space must map parameter names to definitions")
    budget = spec.get("budget") or {}
    if not isinstance(budget, dict) or set(budget) - {"max_trials", "max_cost", "max_seconds", "cost_key"}:
        raise SweepFileError(f"budget must be {{max_trials, max_cost, max_seconds, cost_key}}, got {budget!r}")
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SweepFileError(f"seed must be an integer, got {seed!r}")
    if spec.get("transfer") is not None:
        spec["transfer"] = check_transfer(spec["transfer"], spec["space"])
    spec["_path"] = path
    return spec


def _import_entrypoint(entrypoint: str, base: Path) -> Callable[[dict[str, Any]], Any]:
    module, _, func = entrypoint.partition(":")
    # The sweep file's directory first, then the working directory (README: "found next to the sweep file").
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    if str(base) in sys.path:
        sys.path.remove(str(base))
    sys.path.insert(0, str(base))
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise SweepFileError(
            f"entrypoint {entrypoint!r}: cannot import {module!r} ({e}); put it next to the sweep file or on PYTHONPATH"
        ) from None
    fn = getattr(mod, func, None)
    if not callable(fn):
        raise SweepFileError(f"entrypoint {entrypoint!r}: {module!r} has no function {func!r}")
    return fn


def run_sweep_file(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> SweepResult:
    """Run (or resume) the sweep a file describes."""
    spec = load_sweep(path)
    spec.update({k: v for k, v in (overrides or {}).items() if v is not None})
    base = spec["_path"].resolve().parent
    space_spec = dict(spec["space"])
    if spec.get("fidelity") is not None:
        space_spec = {"params": {k: v for k, v in space_spec.items()}, "fidelity": spec["fidelity"]}
    space = Space.from_dict(space_spec)
    fn = _import_entrypoint(spec["entrypoint"], base)
    directory = Path(spec.get("directory") or f"runs/{spec.get('name') or spec['_path'].stem}")
    if not directory.is_absolute():
        directory = base / directory
    budget = spec.get("budget") or {}
    ray_opts = dict(spec.get("ray") or {})
    return run(
        fn,
        space,
        metric=spec["metric"],
        mode=spec.get("mode", "min"),
        directory=directory,
        searcher=spec.get("searcher", "random"),
        scheduler=spec.get("scheduler", "fifo"),
        resources=spec.get("resources"),
        max_concurrent=spec.get("max_concurrent"),
        address=ray_opts.get("address"),
        seed=int(spec.get("seed", 0)),
        points_to_evaluate=spec.get("points_to_evaluate") or (),
        checkpoint_dir=_checkpoint_dir(spec.get("checkpoint_dir"), base),
        display=spec.get("_display", True),
        name=spec.get("name"),
        transfer=spec.get("transfer"),
        **budget,
    )


def _checkpoint_dir(value: Any, base: Path) -> str | None:
    """A sweep file's ``checkpoint_dir``: a local path relative to the file (like ``directory``) or a URL."""
    if value is None:
        return None
    value = str(value)
    if "://" in value or Path(value).is_absolute():
        return value
    return str(base / value)


# -- the command line ----------------------------------------------------------------------------------------


def _results_command(directory: str, csv: str | None) -> int:
    from rich.console import Console

    from hpo.display import summary_table

    with Storage(directory, readonly=True) as st:
        spec = st.load_spec() or {}
        if "space" not in spec:
            raise ValueError(f"{str(directory)!r} holds no sweep spec; pass the directory of a sweep that has run")
        space = Space.from_dict(spec["space"])
        history = History(space, spec["metric"], spec.get("mode", "min"), tuple(st.load_trials()))
        Console().print(summary_table(history, limit=20, title=str(directory)))
        if csv:
            st.to_csv(csv)
    return 0


def _best_for_transfer(history: History, fidelity: Mapping[str, Any] | None) -> Trial | None:
    """The best trial among those trained to the full budget (the fidelity's ``high``), else ``History.best``.

    A trial paused at a low rung is scored on a short run; its value is not comparable to a full run's.
    """
    if fidelity:
        high = int(fidelity["high"])
        full = [t for t in history.trials if t.last_step >= high]
        if full:
            return History(history.space, history.metric, history.mode, tuple(full)).best() or history.best()
    return history.best()


def parse_shape(text: str, what: str = "--target") -> dict[str, int]:
    """``"width=128,depth=4"`` -> ``{"width": 128, "depth": 4}``; a one-line error otherwise."""
    out: dict[str, int] = {}
    for part in str(text).split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in ("width", "depth") or key in out:
            raise ValueError(f"{what} must be 'width=N,depth=L' (e.g. width=128,depth=4), got {text!r}")
        try:
            out[key] = int(value)
        except ValueError:
            raise ValueError(f"{what}: {key} must be an integer, got {value.strip()!r}") from None
    if "width" not in out:
        raise ValueError(f"{what} must give the width, e.g. width=128,depth=4; got {text!r}")
    return out


def transfer_sweep(
    directory: str | os.PathLike[str],
    target: Mapping[str, int],
    *,
    base: Mapping[str, int] | None = None,
    parameterization: str | None = None,
    optimizer: str | None = None,
    out: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Carry a finished sweep's best hyperparameters from its base shape to ``target``; write and return them.

    ``overrides`` replaces values of the best config before the transfer (for example a learning rate refined on
    the proxy after the sweep: ``python -m examples.transfer_gpt.refine``); each must name a searched or constant
    parameter of the sweep, and the result records them under ``overrides`` (the sweep's own values under
    ``overridden``).

    The base shape, parameterization and optimizer come from the sweep's ``transfer`` section (stored with the
    sweep); ``base``, ``parameterization`` and ``optimizer`` supply them for a sweep without one (and must agree
    with it otherwise). The best trial is the best among those trained to the full budget.

    Returns (and writes as YAML to ``out``, default ``DIRECTORY/transferred.yaml``) a dict with ``base``,
    ``target``, ``parameterization``, ``optimizer``, ``source`` (trial id, value, step), ``best_config`` (at the
    base shape), ``groups`` (per role: the effective lr, weight decay, eps at the target), ``forward`` (the
    multipliers the model applies), ``unchanged`` (hyperparameters that carry over as they are), ``config``
    (the best config with ``width``/``depth`` set to the target and ``base_width``/``base_depth`` to the base:
    what a trainable that applies ``hpo.transfer.param_groups`` itself needs) and ``describe`` (the readable
    table).
    """
    from hpo.transfer import transfer_hparams

    directory = Path(directory)
    if not (directory / "sweep.db").exists():
        raise ValueError(f"{str(directory)!r} holds no sweep; pass the directory of a sweep (runs/NAME)")
    with Storage(directory, readonly=True) as st:
        spec = st.load_spec() or {}
        trials = tuple(st.load_trials())
    if "space" not in spec:
        raise ValueError(f"{str(directory)!r} holds no sweep spec; run the sweep first")
    declared = dict(spec.get("transfer") or {})
    given = {"base": base, "parameterization": parameterization, "optimizer": optimizer}
    for key, value in given.items():
        if value is None:
            continue
        if key in declared:
            a = check_transfer({**declared, key: value})[key]
            if a != declared[key]:
                raise ValueError(
                    f"the sweep declares {key} {declared[key]!r}, its results were tuned for it; drop --{key} "
                    f"(got {a!r})"
                )
        declared[key] = value
    if "base" not in declared:
        raise ValueError(
            "the sweep declares no base shape; pass --base width=N,depth=L (or add transfer: {base: ...} to the "
            "sweep file)"
        )
    section = check_transfer(declared)
    if isinstance(target, Mapping) and "depth" not in target:
        target = {**target, "depth": section["base"]["depth"]}  # a width-only target keeps the base depth
    space = Space.from_dict(spec["space"])
    history = History(space, spec["metric"], spec.get("mode", "min"), trials)
    best = _best_for_transfer(history, spec["space"].get("fidelity"))
    if best is None:
        raise ValueError(f"{str(directory)!r} has no trial with a finite {spec['metric']!r} yet; nothing to transfer")
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(best.config))
    if unknown:
        raise ValueError(
            f"cannot override {unknown}: not parameters of the sweep; choose among {sorted(best.config)}"
        )
    best_config = {**best.config, **overrides}
    t = transfer_hparams(
        best_config, section["base"], target, section["parameterization"], optimizer=section["optimizer"]
    )
    config = dict(best_config)
    config.update({"width": t.target.width, "depth": t.target.depth})
    config.update({"base_width": t.base.width, "base_depth": t.base.depth})
    result: dict[str, Any] = {
        "source": {
            "directory": str(directory),
            "trial_id": best.trial_id,
            spec["metric"]: best.value(spec["metric"]),
            "step": best.last_step,
        },
        "parameterization": t.parameterization.value,
        "optimizer": t.optimizer,
        "base": {"width": t.base.width, "depth": t.base.depth},
        "target": {"width": t.target.width, "depth": t.target.depth},
        "multipliers": {"width": t.mult.width, "depth": t.mult.depth},
        "best_config": best_config,
        "overrides": overrides,
        "overridden": {k: best.config[k] for k in overrides},  # the sweep's own values
        "groups": {role: dict(g) for role, g in t.groups.items()},
        "forward": dict(t.forward),
        "unchanged": dict(t.unchanged),
        "config": config,
        "describe": t.describe(),
    }
    path = Path(out) if out is not None else directory / "transferred.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        sets = "".join(f" --set {k}={v!r}" for k, v in overrides.items())
        f.write(f"# hpo-tune transfer {directory} --target width={t.target.width},depth={t.target.depth}{sets}\n")
        yaml.safe_dump(result, f, sort_keys=False, width=120)
    result["path"] = str(path)
    return result


def _transfer_command(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="hpo-tune transfer",
        description="Carry a sweep's best hyperparameters from its base shape to a target shape (muP/CompleteP).",
    )
    p.add_argument("directory", help="the sweep directory (runs/NAME)")
    p.add_argument(
        "--target", required=True, help="the target shape, e.g. width=128,depth=4 (depth defaults to the base's)"
    )
    p.add_argument("--base", help="the base shape, for a sweep file without transfer.base (width=N,depth=L)")
    p.add_argument("--parameterization", help="sp | mup | depth_mup | completep, for a sweep that declares none")
    p.add_argument("--optimizer", help="adamw | sgd | muon, for a sweep that declares none")
    p.add_argument("--out", help="write the result here (YAML; default DIRECTORY/transferred.yaml)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="replace a value of the best config before the transfer (repeatable), e.g. --set lr=0.0078125",
    )
    a = p.parse_args(argv)
    try:
        overrides = {}
        for item in a.set:
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"--set must be NAME=VALUE (e.g. --set lr=0.0078125), got {item!r}")
            overrides[name.strip()] = yaml.safe_load(value)
        result = transfer_sweep(
            a.directory,
            parse_shape(a.target, "--target"),
            base=None if a.base is None else parse_shape(a.base, "--base"),
            parameterization=a.parameterization,
            optimizer=a.optimizer,
            out=a.out,
            overrides=overrides,
        )
    except (SweepFileError, SpaceError, ValueError, KeyError) as e:
        print(f"hpo-tune: error: {e}", file=sys.stderr)
        return 2
    src = result["source"]
    print(f"best trial {src['trial_id']} at step {src['step']}: {result['best_config']}")
    print(result["describe"])
    print(f"hpo-tune: transferred config written to {result['path']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``hpo-tune SWEEP.yaml`` runs or resumes a sweep; ``hpo-tune results DIR`` shows one; ``hpo-tune transfer
    DIR --target width=N,depth=L`` carries its best hyperparameters to a larger shape."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "transfer":
        return _transfer_command(argv[1:])
    if argv and argv[0] == "scaling":
        from hpo.scaling import main as scaling_main

        return scaling_main(argv[1:])
    if argv and argv[0] == "results":
        p = argparse.ArgumentParser(prog="hpo-tune results", description="Show a sweep's best trials.")
        p.add_argument("directory")
        p.add_argument("--csv", help="also write the results to this CSV file")
        a = p.parse_args(argv[1:])
        try:
            return _results_command(a.directory, a.csv)
        except (OSError, KeyError, ValueError) as e:
            print(f"hpo-tune: error: {e}", file=sys.stderr)
            return 2
    p = argparse.ArgumentParser(
        prog="hpo-tune",
        description="Run or resume the hyperparameter sweep described by a YAML sweep file.",
        epilog="Also: 'hpo-tune results DIR' prints a sweep's best trials; 'hpo-tune transfer DIR --target "
        "width=N,depth=L' carries its best hyperparameters to a larger shape; 'hpo-tune scaling DIR --cost X' fits "
        "how the best hyperparameters move with cost and predicts them at cost X.",
    )
    p.add_argument("sweep", help="the sweep file (YAML)")
    p.add_argument("--directory", help="override the sweep directory")
    p.add_argument("--max-trials", type=int, help="override budget.max_trials")
    p.add_argument("--max-seconds", type=float, help="override budget.max_seconds")
    p.add_argument("--address", help="join this Ray cluster (e.g. 'auto')")
    p.add_argument("--quiet", action="store_true", help="no live display")
    a = p.parse_args(argv)
    try:
        # A directory given on the command line is the shell's (the sweep file's own is relative to the file).
        spec_over: dict[str, Any] = {"directory": a.directory and str(Path(a.directory).resolve())}
        if a.quiet:
            spec_over["_display"] = False
        spec = load_sweep(a.sweep)
        budget = dict(spec.get("budget") or {})
        if a.max_trials is not None:
            budget["max_trials"] = a.max_trials
        if a.max_seconds is not None:
            budget["max_seconds"] = a.max_seconds
        spec_over["budget"] = budget
        if a.address:
            spec_over["ray"] = {**(spec.get("ray") or {}), "address": a.address}
        result = run_sweep_file(a.sweep, spec_over)
    except (SweepFileError, SpaceError, SweepLockedError, ValueError) as e:
        print(f"hpo-tune: error: {e}", file=sys.stderr)
        return 2
    best = result.best_value
    if result.cancelled:
        msg = "interrupted; run the same command again to resume"
    elif result.interrupted:
        msg = "stopped at its time budget with trials left running; run the same command again to resume them"
    else:
        msg = "finished"
    print(
        f"hpo-tune: sweep {msg}: {len(result.history)} trials, best {result.history.metric} "
        f"{best} with {result.best_config}; "
        f"results in {(result.directory / 'results.csv').resolve()}"
    )
    failed = result.history.failed
    if best is None and failed and len(failed) == len(result.history):
        first = (failed[0].error or "no reason recorded").splitlines()[0]
        print(f"hpo-tune: error: every trial failed; the first: {first}", file=sys.stderr)
        return 1
    return 130 if result.cancelled else 0


if __name__ == "__main__":
    sys.exit(main())

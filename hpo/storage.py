"""Durable record of a sweep: one SQLite file in the sweep directory.

Every event (trial created, segment started, segment ended with its points, pause, resume, completion, failure) is
written in its own transaction the moment it happens, so a driver killed at any instant leaves a consistent record:
a completed result is either fully recorded or not at all. Running the same sweep again on the directory replays
the record into a :class:`~hpo.history.History` and carries on.

Tables: ``meta`` (the sweep's spec), ``trials`` (one row a trial, its latest state), ``points`` (the learning
curves), ``events`` (the append-only log). WAL mode with ``synchronous=NORMAL`` survives a killed process; an OS
crash may lose the last few transactions but never corrupts the file.

One driver at a time: an advisory lock (``flock``) on ``.lock`` is held while the storage is open; the kernel drops
it when the process dies, even by ``kill -9``.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.trial import Point, Trial, TrialStatus

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Storage", "SweepLockedError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    trial_id INTEGER PRIMARY KEY, config TEXT NOT NULL, status TEXT NOT NULL, cost TEXT NOT NULL,
    error TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS points (
    trial_id INTEGER NOT NULL, step INTEGER NOT NULL, metrics TEXT NOT NULL, PRIMARY KEY (trial_id, step));
CREATE TABLE IF NOT EXISTS events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, trial_id INTEGER, kind TEXT NOT NULL,
    data TEXT);
"""

DB_NAME = "sweep.db"


class SweepLockedError(RuntimeError):
    """Another driver holds the sweep directory."""


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str)


class Storage:
    """The sweep directory's record.

    Args:
        directory: the sweep directory (created if missing).
        readonly: open without the driver lock, for reading results while a sweep runs.

    Example:
        >>> import tempfile
        >>> with Storage(tempfile.mkdtemp()) as st:
        ...     st.record(Trial(0, {"x": 1}), "created")
        ...     [t.trial_id for t in st.load_trials()]
        [0]
    """

    def __init__(self, directory: str | os.PathLike[str], readonly: bool = False) -> None:
        self.directory = Path(directory)
        self.readonly = readonly
        self._configs: dict[int, tuple[Any, str]] = {}
        self._lock_fd: int | None = None
        if readonly:
            if not (self.directory / DB_NAME).exists():
                raise FileNotFoundError(f"no sweep found in {str(self.directory)!r} (no {DB_NAME}); check the path")
            self._db = sqlite3.connect(f"file:{self.directory / DB_NAME}?mode=ro", uri=True, timeout=30)
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        self._db = sqlite3.connect(self.directory / DB_NAME, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def _acquire_lock(self) -> None:
        path = self.directory / ".lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise SweepLockedError(
                f"sweep directory {str(self.directory)!r} is in use by another driver (pid {holder}); "
                "wait for it to finish, stop it, or give this sweep another directory"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def close(self) -> None:
        if getattr(self, "_db", None) is not None:
            self._db.close()
            self._db = None
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the spec ---------------------------------------------------------------------------------------------

    def load_spec(self) -> dict[str, Any] | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'spec'").fetchone()
        return None if row is None else json.loads(row[0])

    def save_spec(self, spec: Mapping[str, Any]) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('spec', ?)", (_dumps(dict(spec)),))

    # -- the one write path ----------------------------------------------------------------------------------

    def record(
        self, trial: Trial, event: str, data: Mapping[str, Any] | None = None, points: Iterable[Point] = ()
    ) -> None:
        """Write a trial's new state, its new curve points and the event, in one transaction."""
        now = time.time()
        db = self._db
        db.execute("BEGIN")
        try:
            db.execute(
                "INSERT INTO trials (trial_id, config, status, cost, error, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (trial_id) DO UPDATE SET "
                "status = excluded.status, cost = excluded.cost, error = excluded.error, "
                "updated_at = excluded.updated_at",
                (
                    trial.trial_id,
                    self._config_json(trial),
                    trial.status.value,
                    _dumps(dict(trial.cost)),
                    trial.error,
                    trial.created_at,
                    now,
                ),
            )
            db.executemany(
                "INSERT OR IGNORE INTO points (trial_id, step, metrics) VALUES (?, ?, ?)",
                [(trial.trial_id, int(s), _dumps(dict(m))) for s, m in points],
            )
            db.execute(
                "INSERT INTO events (time, trial_id, kind, data) VALUES (?, ?, ?, ?)",
                (now, trial.trial_id, event, _dumps(dict(data)) if data else None),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _config_json(self, trial: Trial) -> str:
        # A trial's config never changes: serialized once, not at every event (a measurable share of the driver's
        # time per segment in high-throughput sweeps).
        cached = self._configs.get(trial.trial_id)
        if cached is None or cached[0] is not trial.config:
            cached = self._configs[trial.trial_id] = (trial.config, _dumps(dict(trial.config)))
        return cached[1]

    def log_event(self, kind: str, data: Mapping[str, Any] | None = None) -> None:
        """A sweep-level event (started, resumed, interrupted, finished)."""
        self._db.execute(
            "INSERT INTO events (time, trial_id, kind, data) VALUES (?, NULL, ?, ?)",
            (time.time(), kind, _dumps(dict(data)) if data else None),
        )

    # -- reading ---------------------------------------------------------------------------------------------

    def load_trials(self) -> list[Trial]:
        curves: dict[int, list[Point]] = {}
        rows = self._db.execute("SELECT trial_id, step, metrics FROM points ORDER BY trial_id, step")
        for tid, step, metrics in rows:
            curves.setdefault(tid, []).append((step, json.loads(metrics)))
        trials = []
        for tid, config, status, cost, error, created in self._db.execute(
            "SELECT trial_id, config, status, cost, error, created_at FROM trials ORDER BY trial_id"
        ):
            trials.append(
                Trial(
                    trial_id=tid,
                    config=json.loads(config),
                    status=TrialStatus(status),
                    curve=tuple(curves.get(tid, ())),
                    cost=json.loads(cost),
                    error=error,
                    created_at=created,
                )
            )
        return trials

    def events(self, trial_id: int | None = None) -> list[dict[str, Any]]:
        q = "SELECT event_id, time, trial_id, kind, data FROM events"
        args: tuple[Any, ...] = ()
        if trial_id is not None:
            q, args = q + " WHERE trial_id = ?", (trial_id,)
        return [
            {"event_id": e, "time": t, "trial_id": tid, "kind": k, "data": json.loads(d) if d else {}}
            for e, t, tid, k, d in self._db.execute(q + " ORDER BY event_id", args)
        ]

    # -- export ----------------------------------------------------------------------------------------------

    def rows(self, metric: str | None = None) -> list[dict[str, Any]]:
        """One flat row per trial: id, status, config (``config/NAME``), last step, last metrics, costs, error."""
        rows = []
        for t in self.load_trials():
            row: dict[str, Any] = {"trial_id": t.trial_id, "status": t.status.value, "last_step": t.last_step}
            row.update({f"config/{k}": v for k, v in t.config.items()})
            if t.curve:
                row.update({k: (v if math.isfinite(v) else None) for k, v in t.curve[-1][1].items()})
            elif metric:
                row[metric] = None
            row.update({f"cost/{k}": v for k, v in t.cost.items()})
            row["error"] = t.error.splitlines()[0] if t.error else None
            rows.append(row)
        return rows

    def to_dataframe(self) -> pd.DataFrame:
        """Results as a pandas DataFrame, one row per trial."""
        import pandas as pd

        return pd.DataFrame(self.rows())

    def to_csv(self, path: str | os.PathLike[str]) -> None:
        self.to_dataframe().to_csv(path, index=False)

"""Durable checkpoints of trials, on a local directory or any fsspec URL (``s3://``, ``gs://``, ...).

Layout: ``ROOT/trial_000042/ckpt_000000120.pkl`` holds the trainable's state at step 120 and the points the
segment reported up to then. Files are written under a temporary name and renamed, so a worker killed while saving
leaves the previous checkpoint intact; the latest complete file is the one to resume from, whoever wrote it. That
is what lets a segment whose worker died, or a sweep whose driver died, resume without the driver having heard of
the checkpoint.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import fsspec

__all__ = ["Checkpoint", "CheckpointStore"]

_NAME = re.compile(r"ckpt_(\d+)\.pkl$")


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: the trainable's ``state``, its ``step`` and the ``points`` reported before it."""

    step: int
    state: Any
    points: tuple[tuple[int, dict[str, float]], ...] = ()


class CheckpointStore:
    """Saves and finds trial checkpoints under ``root`` (a path or an fsspec URL).

    Args:
        root: where checkpoints live; created if missing.
        keep: how many of a trial's newest checkpoints to keep.
    """

    def __init__(self, root: str, keep: int = 2) -> None:
        self.root = str(root).rstrip("/")
        self.keep = max(int(keep), 1)
        self._fs, self._path = fsspec.core.url_to_fs(self.root)

    def __reduce__(self):
        return (CheckpointStore, (self.root, self.keep))

    def _dir(self, trial_id: int) -> str:
        return f"{self._path}/trial_{trial_id:06d}"

    def _steps(self, trial_id: int) -> list[tuple[int, str]]:
        try:
            names = self._fs.ls(self._dir(trial_id), detail=False)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            m = _NAME.search(str(name))
            if m:
                found.append((int(m.group(1)), str(name)))
        return sorted(found)

    def save(self, trial_id: int, step: int, state: Any, points: Sequence[tuple[int, dict]] = ()) -> None:
        d = self._dir(trial_id)
        self._fs.makedirs(d, exist_ok=True)
        final = f"{d}/ckpt_{step:09d}.pkl"
        tmp = f"{d}/.tmp-{uuid.uuid4().hex}"
        with self._fs.open(tmp, "wb") as f:
            pickle.dump({"step": int(step), "state": state, "points": list(points)}, f, protocol=5)
            try:  # local files: make the bytes durable before the rename publishes them
                f.flush()
                os.fsync(f.fileno())
            except (AttributeError, OSError, io.UnsupportedOperation):
                pass
        self._fs.mv(tmp, final)
        for _, old in self._steps(trial_id)[: -self.keep]:
            self._fs.rm(old)

    def latest(self, trial_id: int, max_step: int | None = None) -> Checkpoint | None:
        """The newest readable checkpoint of a trial (at or before ``max_step``), or None."""
        for step, path in reversed(self._steps(trial_id)):
            if max_step is not None and step > max_step:
                continue
            try:
                with self._fs.open(path, "rb") as f:
                    data = pickle.load(f)
            except (OSError, EOFError, pickle.UnpicklingError):
                continue  # a torn file: fall back to the one before
            return Checkpoint(int(data["step"]), data["state"], tuple((int(s), m) for s, m in data["points"]))
        return None

    def delete(self, trial_id: int) -> None:
        try:
            self._fs.rm(self._dir(trial_id), recursive=True)
        except FileNotFoundError:
            pass

"""The API a trainable sees, and the worker-side runner of one segment.

A trainable is a plain function of its config. For one-shot use it returns the metric::

    def train(config):
        return {"loss": fit(config)}

For multi-fidelity use (pause, resume, early stopping) it reports as it trains and checkpoints::

    def train(config):
        state = hpo.get_checkpoint()              # None on a fresh start
        start = state["epoch"] if state else 0
        for epoch in range(start + 1, config["epoch"] + 1):
            loss = train_one_epoch(...)
            hpo.report({"loss": loss}, step=epoch, checkpoint={"epoch": epoch, "model": model.state_dict()})

``report`` ends the segment (by raising :class:`SegmentEnd`, which the runner catches) once ``step`` reaches the
step the scheduler asked for; the trial resumes later from its last checkpoint, on any worker. A trainable that
never checkpoints still works: resumed, it trains again from the start and reports up to the recorded step are
ignored.
"""

from __future__ import annotations

import math
import os
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

from hpo.checkpoint import CheckpointStore
from hpo.trial import Segment, SegmentResult

__all__ = ["SegmentEnd", "get_checkpoint", "get_trial_id", "report", "run_segment"]

_local = threading.local()


class SegmentEnd(BaseException):
    """Raised by :func:`report` to end a segment. A BaseException so that ``except Exception`` in user code does
    not swallow it; let it propagate."""


@dataclass
class _Session:
    segment: Segment
    store: CheckpointStore | None
    metric: str
    step: int
    checkpoint_state: Any = None
    points: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    cost: dict[str, float] = field(default_factory=dict)
    failure: str | None = None
    n_reports: int = 0


def _current() -> _Session:
    s = getattr(_local, "session", None)
    if s is None:
        raise RuntimeError(
            "hpo.report/get_checkpoint called outside a trial; run the function through hpo.run (or a sweep file)"
        )
    return s


def get_checkpoint() -> Any:
    """The state saved with the trial's latest checkpoint, or None on a fresh start."""
    return _current().checkpoint_state


def get_trial_id() -> int:
    """The id of the running trial (for naming files and logs)."""
    return _current().segment.trial_id


def report(
    metrics: Mapping[str, Any] | None = None,
    *,
    step: int | None = None,
    checkpoint: Any = None,
    cost: Mapping[str, float] | None = None,
    **kw_metrics: Any,
) -> None:
    """Record ``metrics`` at ``step`` (default: the last step + 1), optionally with a checkpoint.

    Args:
        metrics: ``name -> number``; must include the sweep's metric, finite.
        step: the training step (epoch, iteration) these metrics belong to; steps must increase.
        checkpoint: any picklable state to resume from (e.g. ``{"model": m.state_dict(), "step": s}``).
        cost: resources used since the last report (``{"flops": 1e12}``); wall time is measured for you.

    Raises:
        SegmentEnd: when ``step`` reaches the end of the segment; do not catch it.
    """
    s = _current()
    s.n_reports += 1
    merged = dict(metrics or {})
    merged.update(kw_metrics)
    step = s.step + 1 if step is None else int(step)
    if step <= s.step:
        raise ValueError(f"report step {step} does not increase (last step {s.step}); pass increasing steps")
    s.step = step
    if step <= s.segment.start_step:
        return  # a rerun of steps already recorded (trainable without checkpoint): nothing new
    clean: dict[str, float] = {}
    for k, v in merged.items():
        if isinstance(v, Real) and not isinstance(v, bool):
            clean[str(k)] = float(v)
        elif hasattr(v, "item") and getattr(v, "size", getattr(v, "numel", lambda: 1)()) == 1:
            clean[str(k)] = float(v.item())  # numpy and torch scalars
    if s.metric in merged and s.metric not in clean:
        v = merged[s.metric]
        s.failure = (
            f"metric {s.metric!r} is {v!r} ({type(v).__name__}) at step {step}, not a number; report a float "
            f"(e.g. float(loss) or loss.item())"
        )
        raise SegmentEnd
    if s.metric not in clean:
        s.failure = (
            f"trainable reported {sorted(merged)} at step {step} but not the sweep's metric {s.metric!r}; "
            f"report {{{s.metric!r}: value}} or fix `metric` in the sweep"
        )
        raise SegmentEnd
    if not math.isfinite(clean[s.metric]):
        s.failure = f"metric {s.metric!r} is {clean[s.metric]} at step {step}: the trial diverged"
        s.points.append((step, clean))
        raise SegmentEnd
    s.points.append((step, clean))
    for k, v in (cost or {}).items():
        s.cost[k] = s.cost.get(k, 0.0) + float(v)
    if checkpoint is not None and s.store is not None:
        s.store.save(s.segment.trial_id, step, checkpoint, points=s.points)
    if step >= s.segment.stop_step:
        raise SegmentEnd


def run_segment(
    fn: Callable[[dict[str, Any]], Any],
    segment: Segment,
    metric: str,
    store: CheckpointStore | None,
    worker: Mapping[str, Any] | None = None,
) -> SegmentResult:
    """Run ``fn`` for one segment: load the latest checkpoint, call it, collect reports until ``stop_step``.

    Exceptions from user code become ``SegmentResult.error`` (first line: the reason; then the traceback); the
    worker survives them.
    """
    t0 = time.perf_counter()
    ckpt = store.latest(segment.trial_id) if store is not None else None
    session = _Session(segment=segment, store=store, metric=metric, step=0)
    if ckpt is not None:
        session.step = ckpt.step
        session.checkpoint_state = ckpt.state
        # Points the dead attempt reported before this checkpoint were never delivered: deliver them now.
        session.points = [(s, m) for s, m in ckpt.points if s > segment.start_step]
    if ckpt is not None and ckpt.step >= segment.stop_step:
        # The last attempt reached the segment's end and checkpointed there, but its result was never recorded
        # (the driver stopped or died first): its points are the segment's result; there is nothing to rerun.
        cost = {"wall_seconds": time.perf_counter() - t0}
        return SegmentResult(segment=segment, points=tuple(session.points), cost=cost, worker=dict(worker or {}))
    prev = getattr(_local, "session", None)
    _local.session = session
    error, finished = None, False
    try:
        returned = fn(dict(segment.config))
        finished = True
        if returned is not None and session.n_reports == 0:
            value = returned if isinstance(returned, Mapping) else {metric: returned}
            try:
                report(value)
            except SegmentEnd:
                pass
        elif session.n_reports == 0 and not session.points:
            error = (
                "trainable returned None and reported nothing; return the metric "
                f"(e.g. `return {{{metric!r}: loss}}`) or call hpo.report"
            )
    except SegmentEnd:
        pass
    except Exception as e:  # user code: the trial fails, the worker and the sweep go on
        first = f"{type(e).__name__}: {e}".splitlines()[0] if str(e) else type(e).__name__
        error = f"{first}\n{traceback.format_exc()}"
    finally:
        _local.session = prev
    if session.failure is not None:
        error = session.failure
    cost = dict(session.cost)
    cost["wall_seconds"] = time.perf_counter() - t0
    info = dict(worker or {})
    info.setdefault("pid", os.getpid())
    return SegmentResult(
        segment=segment,
        points=tuple(session.points),
        cost=cost,
        error=error,
        finished=finished and error is None,
        worker=info,
    )

"""Progress of a running sweep: a live table on a terminal, one line per finished trial elsewhere."""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from hpo.history import History
from hpo.trial import Trial, TrialStatus

__all__ = ["LiveDisplay", "summary_table"]

_STYLE = {"running": "cyan", "paused": "yellow", "completed": "green", "failed": "red", "stopped": "magenta"}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return str(v)


def summary_table(history: History, limit: int = 10, title: str | None = None) -> Table:
    """The best ``limit`` trials (by their last value), then the counts by status in the caption."""
    names = history.space.names
    table = Table(title=title)
    for col in ("trial", "status", "step", history.metric, *names):
        table.add_column(col, justify="right" if col not in ("status",) else "left")
    scored = [t for t in history if history.objective(t) is not None]
    scored.sort(key=lambda t: (history.objective(t), t.trial_id))
    for t in scored[:limit]:
        st = t.status.value
        table.add_row(
            str(t.trial_id),
            f"[{_STYLE.get(st, '')}]{st}[/]",
            str(t.last_step),
            _fmt(t.value(history.metric)),
            *(_fmt(t.config.get(n)) for n in names),
        )
    counts = Counter(t.status.value for t in history)
    table.caption = "  ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no trials yet"
    return table


class LiveDisplay:
    """Shows running, paused and finished trials and the best so far while a sweep runs.

    On a terminal it redraws a table at most ``refresh_per_second`` times; otherwise (CI, logs) it prints one line
    for each trial that ends.
    """

    def __init__(self, title: str, enabled: bool = True, refresh_per_second: float = 4.0) -> None:
        self.console = Console(stderr=True)
        self.title = title
        self.enabled = enabled
        self.live_mode = enabled and self.console.is_terminal
        self._live: Live | None = None
        self._last = 0.0
        self._period = 1.0 / refresh_per_second

    def __enter__(self) -> LiveDisplay:
        if self.live_mode:
            self._live = Live(console=self.console, auto_refresh=False, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def on_event(self, kind: str, trial: Trial | None, history: History) -> None:
        if not self.enabled:
            return
        if self._live is not None:
            now = time.monotonic()
            if now - self._last >= self._period or kind in ("completed", "failed"):
                self._last = now
                best = history.best_value()
                title = f"{self.title} — best {history.metric}: {_fmt(best) if best is not None else '-'}"
                self._live.update(summary_table(history, title=title), refresh=True)
            return
        if trial is not None and kind in ("completed", "failed", "stopped"):
            value = trial.value(history.metric)
            detail = trial.error.splitlines()[0] if trial.error else f"{history.metric}={_fmt(value)}"
            best = history.best_value()
            print(
                f"[hpo] trial {trial.trial_id} {kind} at step {trial.last_step}: {detail} "
                f"(best {_fmt(best) if best is not None else '-'}; "
                f"{sum(t.status is TrialStatus.RUNNING for t in history)} running)",
                file=sys.stderr,
                flush=True,
            )

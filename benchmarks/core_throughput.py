"""Segments per second through the Ray executor with a trainable that does nothing.

Measures the whole path a real sweep takes: searcher (Sobol), scheduler, a Ray actor call per segment, and one
SQLite transaction per event. Warm-up (Ray start, actor start) is excluded: the rate is taken over the segments
that end after the first ``--warmup`` ones.

    python -m benchmarks.core_throughput --trials 3000 --slots 4
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import ray

from hpo.checkpoint import CheckpointStore
from hpo.executors.ray import RayExecutor
from hpo.orchestrator import Budget, Orchestrator
from hpo.space import Float, Space
from hpo.storage import Storage
from schedulers.fifo import FIFOScheduler
from searchers.random import RandomSearcher


def noop(config):
    return 0.0


def measure(trials: int, slots: int, warmup: int) -> dict:
    space = Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})
    d = tempfile.mkdtemp()
    ends: list[float] = []

    def on_event(kind, trial, history):
        if kind == "completed":
            ends.append(time.perf_counter())

    with Storage(d) as st:
        orch = Orchestrator(
            noop, space, "loss", "min", RandomSearcher(space), FIFOScheduler(space, "loss"),
            RayExecutor(num_cpus=2 / slots, max_concurrent=slots), st, Budget(max_trials=trials),
            checkpoint_store=CheckpointStore(f"{d}/ckpt"), on_event=on_event,
        )
        orch.run()
    steady = ends[warmup:]
    rate = (len(steady) - 1) / (steady[-1] - steady[0])
    return {"trials": trials, "slots": slots, "segments_per_second": round(rate, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=3000)
    p.add_argument("--slots", type=int, nargs="+", default=[2, 4])
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "core_throughput.json"))
    a = p.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = [measure(a.trials, s, a.warmup) for s in a.slots]
    for r in rows:
        print(f"{r['slots']} slots: {r['segments_per_second']} segments/s over {r['trials']} no-op trials")
    Path(a.out).write_text(json.dumps({"cpu_count": os.cpu_count(), "runs": rows}, indent=1))


if __name__ == "__main__":
    main()

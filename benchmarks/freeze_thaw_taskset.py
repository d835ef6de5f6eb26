"""The freeze-thaw TaskSet benchmark of issue 5 in one resumable command.

    HPO_TASKSET_DIR=/path/to/taskset python -m benchmarks.freeze_thaw_taskset --jobs 6

(``HPO_TASKSET_DIR``: the folder of TaskSet's ``*.json.gz``; default ``../shared/data/taskset``.) It runs 12 TaskSet
tasks x 4 simulated workers x 10 seeds x the methods freeze-thaw (:data:`FREEZE_THAW`, our best rule, restricted to
the tabulated settings), random+ASHA (as the harness runs it, nearest neighbour, and restricted to the table) and
Optuna's TPE with its HyperbandPruner (which cannot be restricted), each with a budget of 100 full runs (5000
steps), regret against total steps. Every finished run is stored at once as one JSON file under ``OUT/raw/`` (default
``benchmarks/results/freeze_thaw_taskset_table``) and skipped when the command runs again, so it can be stopped at any
time (Ctrl-C, ``timeout``, SIGTERM) and continued; runs go seed by seed (seed 0 of every task and method first), so
a partial run still covers every task. At the end, or when stopped, it writes ``OUT/report.md``, ``OUT/regret.png``
and ``OUT/report.json`` (:mod:`benchmarks.freeze_thaw_report`) from whatever is stored; ``--report-only`` writes just
that. Smaller versions::

    python -m benchmarks.freeze_thaw_taskset --tasks 0 4 9 --seeds 2 --budget 50 --jobs 1
    python -m benchmarks.freeze_thaw_taskset --methods freeze_thaw random+asha  # the paper's entropy rule

No Ray needed (simulated workers); set ``OMP_NUM_THREADS=1`` (each process uses one thread anyway).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

from benchmarks.harness import RESULTS, _init_worker, _run_and_store, _stored
from benchmarks.suites import RunSpec

__all__ = ["FREEZE_THAW", "METHODS", "main", "specs"]

#: Our best freeze-thaw rule on TaskSet (see benchmarks/results/freeze_thaw_taskset.md): ASHA's promotion by the value
#: at the step, new configs from the learning-curve GP, only tabulated settings (``@table``), each once.
#: ``...:FreezeThawPromote`` ranks by the GP's forecasts instead.
FREEZE_THAW = "freeze_thaw+benchmarks.freeze_thaw_variants:FreezeThawPromoteValue@table"
METHODS = (FREEZE_THAW, "random+asha@table", "random+asha", "optuna_tpe+hyperband")
OUT = RESULTS / "freeze_thaw_taskset_table"


def specs(tasks: list[int], methods: list[str], seeds: int, workers: int, budget: float) -> list[RunSpec]:
    """Seed-major order: every task and method of seed 0, then seed 1, ...: a partial run covers every task."""
    from benchmarks.problems.taskset import TASKS, short_name

    return [
        RunSpec("taskset", f"taskset/{short_name(TASKS[i])}", m, s, workers, budget)
        for s in range(seeds)
        for i in tasks
        for m in methods
    ]


def report(out: Path, methods: list[str], seeds: int | None = None) -> str:
    """Write ``OUT/report.md`` and ``OUT/report.json`` from the stored runs (of seeds ``0 .. seeds - 1`` when given:
    ``--report-only --seeds 5`` reports the first five seeds while later ones are still running); the markdown."""
    from benchmarks.freeze_thaw_report import compare, load, markdown, plot

    results = load([out], "taskset", methods, seeds)
    parts, tables = [], {}
    for reference in ("random+asha", "random+asha@table"):
        if reference not in methods:
            continue
        rows = tables[reference] = compare(results, reference=reference)
        parts.append(f"## Target: {reference}'s final median regret (R_asha)\n\n"
                     + (markdown(rows) if rows else f"(no problem has a {reference} run yet)\n"))
    md = "\n".join(parts) if parts else "(no ASHA reference among the methods)\n"
    if "random+asha" in methods:
        plot(results, out / "regret.png")
    (out / "report.md").write_text(md)
    (out / "report.json").write_text(json.dumps(tables, indent=1))
    return md


class _Stop(BaseException):
    """A signal stopped the benchmark: not a method's crash, so never stored as a run's result."""


def _on_signal(signum, frame) -> None:
    raise _Stop(signal.Signals(signum).name)


def _init_pool_worker() -> None:
    # A worker dies of SIGTERM (its run is lost, not stored); only the parent turns the signal into a clean stop.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _init_worker()


def run(todo: list[RunSpec], out: Path, jobs: int) -> None:
    """Run ``todo`` on ``jobs`` processes, storing each result as it finishes; on a signal, stop at once (runs in
    progress are lost, finished ones are kept)."""
    t0 = time.perf_counter()

    def note(i: int, item) -> None:
        spec, status, seconds = item
        print(f"[{i}/{len(todo)} {time.perf_counter() - t0:7.1f}s] {spec.problem} {spec.method} seed={spec.seed}: "
              f"{status} ({seconds:.1f}s)", file=sys.stderr, flush=True)

    if jobs <= 1:
        _init_worker()
        for i, spec in enumerate(todo, 1):
            note(i, _run_and_store(spec, str(out)))
        return
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_init_pool_worker)
    pending: set[Future] = set()
    queue = list(todo)
    done = 0
    try:
        while queue or pending:
            while queue and len(pending) < jobs:  # submit lazily: the order is kept and a stop cancels nothing
                pending.add(pool.submit(_run_and_store, queue.pop(0), str(out)))
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                done += 1
                note(done, fut.result())
    finally:
        for p in list(getattr(pool, "_processes", {}).values()):  # a stop must not wait for runs in progress
            if p.is_alive():
                p.terminate()
        pool.shutdown(wait=False, cancel_futures=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.freeze_thaw_taskset", description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=1, help="processes (default 1)")
    p.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (default 10)")
    p.add_argument("--tasks", type=int, nargs="+", default=list(range(12)), help="task indices 0..11 (default all)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), help=f"default: {' '.join(METHODS)}")
    p.add_argument("--workers", type=int, default=4, help="simulated workers (default 4)")
    p.add_argument("--budget", type=float, default=100, help="full runs of 50 steps (default 100 = 5000 steps)")
    p.add_argument("--out", type=Path, default=OUT, help=f"results folder (default {OUT})")
    p.add_argument("--report-only", action="store_true", help="only write the report from the stored runs")
    args = p.parse_args(argv)
    if any(not 0 <= i < 12 for i in args.tasks):
        p.error(f"--tasks: indices 0..11, got {args.tasks}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        all_specs = specs(args.tasks, args.methods, args.seeds, args.workers, args.budget)
        todo = [s for s in all_specs if not _stored(s, args.out)]
        print(f"{len(all_specs) - len(todo)} of {len(all_specs)} runs stored in {args.out}; running {len(todo)} "
              f"with {args.jobs} job(s)", file=sys.stderr, flush=True)
        signal.signal(signal.SIGTERM, _on_signal)
        try:
            run(todo, args.out, args.jobs)
        except (KeyboardInterrupt, _Stop) as e:
            print(f"stopped ({type(e).__name__} {e}); finished runs are stored, run again to continue",
                  file=sys.stderr, flush=True)
    print(report(args.out, args.methods, args.seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())

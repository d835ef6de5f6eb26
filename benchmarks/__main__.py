"""Command line: ``python -m benchmarks {run,report,list}``.

Examples::

    python -m benchmarks list
    python -m benchmarks run synthetic --jobs 2            # 4 workers, 5 seeds: under 30 minutes on 2 cores
    python -m benchmarks run synthetic --full --jobs 2     # 1/4/8/16 workers: the committed results' grid
    python -m benchmarks run taskset --methods random random+asha optuna_tpe+sha --quick
    python -m benchmarks report

``run`` stores one JSON file a run under ``benchmarks/results/raw/`` and skips runs already stored, so an
interrupted suite continues where it stopped. A suite's default size runs in about 30 minutes on 2 cores,
``--full`` is the size of the committed results. ``--quick`` (and the ``quick`` suite) run into
``benchmarks/results/quick/`` unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks.harness import RESULTS, run_specs
from benchmarks.suites import SUITES, expand


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description="hpo's benchmark harness")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a suite (resumable)")
    run.add_argument("suite", choices=sorted(SUITES))
    run.add_argument("--seeds", type=int, help="seeds 0..N-1 (default: the suite's)")
    run.add_argument("--first-seed", type=int, help="start the seeds here: --first-seed 10 --seeds 20 is 10..29")
    run.add_argument("--workers", type=int, nargs="+", help="simulated worker counts (default: the suite's)")
    run.add_argument("--methods", nargs="+", help="methods SEARCHER[+SCHEDULER] (default: the suite's)")
    run.add_argument("--problems", nargs="+", help="problem names (default: the suite's)")
    run.add_argument("--budget", type=float, help="budget in each problem's unit (default: the suite's)")
    run.add_argument("--durations", nargs="+", help="evaluation-time distributions: halfnormal exponential pareto")
    size = run.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="the suite's small size (seconds to a minute or two)")
    size.add_argument("--full", action="store_true", help="the size of the committed results (hours of CPU)")
    run.add_argument("--jobs", type=int, default=1, help="processes (default 1)")
    run.add_argument("--out", type=Path, help="results directory (default benchmarks/results, quick: .../quick)")
    run.add_argument("--no-resume", action="store_true", help="run again even where a result is stored")
    run.add_argument("--report", action="store_true", help="write the report afterwards")
    rep = sub.add_parser("report", help="write results/report.md and the figures")
    rep.add_argument("--out", type=Path, default=RESULTS)
    rep.add_argument("--suites", nargs="+", help="only these suites")
    sub.add_parser("list", help="list suites, problems and methods")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        from benchmarks.peers import OPTUNA_SAMPLERS
        from benchmarks.problems import problem_names
        from hpo.registry import SCHEDULERS, SEARCHERS

        for s in SUITES.values():
            print(f"{s.name:10s} {s.description}")
            print(f"{'':10s} methods: {' '.join(s.methods)}")
            sizes = {"quick": {"quick": True}, "default": {}, "full": {"full": True}}
            print(f"{'':10s} runs: " + ", ".join(f"{k} {len(expand(s.name, **v))}" for k, v in sizes.items()))
        print("problems:", " ".join(problem_names()))
        print("searchers:", " ".join([*(f"optuna_{k}" for k in OPTUNA_SAMPLERS), *SEARCHERS]))
        print("schedulers:", " ".join([*SCHEDULERS, "hyperband", "sha"]))
        return 0
    if args.command == "report":
        from benchmarks.report import write_report

        print(write_report(args.out, args.suites))
        return 0
    out = args.out or (RESULTS / "quick" if args.quick or args.suite == "quick" else RESULTS)
    specs = expand(
        args.suite,
        seeds=args.seeds,
        first_seed=args.first_seed,
        workers=tuple(args.workers) if args.workers else None,
        methods=tuple(args.methods) if args.methods else None,
        problems=tuple(args.problems) if args.problems else None,
        budget=args.budget,
        durations=tuple(args.durations) if args.durations else None,
        quick=args.quick,
        full=args.full,
    )
    t0 = time.perf_counter()
    done = run_specs(specs, out=out, jobs=args.jobs, resume=not args.no_resume)
    counts: dict[str, int] = {}
    for _, status, _ in done:
        counts[status] = counts.get(status, 0) + 1
    print(f"{len(done)} runs in {time.perf_counter() - t0:.1f}s: {counts}; results in {out / 'raw'}", file=sys.stderr)
    if args.report:
        from benchmarks.report import write_report

        print(write_report(out, [args.suite]))
    return 1 if counts.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())

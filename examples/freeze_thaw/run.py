"""Freeze-thaw on the local Ray: trials are paused, thawed from their checkpoints on any worker, and finished.

    python examples/freeze_thaw/run.py [--directory runs/freeze_thaw] [--seconds 240]

Two Ray workers (one CPU each) train the digits MLP of ``train.py`` with SGD for up to 30 epochs. The freeze-thaw
scheduler runs each new config for 2 epochs, then decides after every 3 epochs which paused trial to thaw or whether
to start a new config, from the learning-curve GP; the freeze-thaw searcher proposes the new configs. Afterwards the
sweep's event log (``hpo.storage.Storage(directory, readonly=True).events()``) is read back to show the pauses and
thaws, which worker process ran each segment, and that each thawed segment resumed from its checkpoint.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import hpo  # noqa: E402
from hpo.storage import Storage  # noqa: E402

SPACE = {
    "params": {
        "lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
        "momentum": {"type": "float", "low": 0.0, "high": 0.99},
        "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-1, "log": True},
        "hidden": {"type": "int", "low": 8, "high": 128, "log": True},
        "activation": {"type": "choice", "choices": ["relu", "tanh"]},
    },
    "constants": {"batch_size": 64},
    "fidelity": {"name": "epoch", "low": 2, "high": 30},
}


def summarize(directory: Path) -> dict:
    """Pauses, thaws and completions per trial from the event log, and checks that thawed segments resumed."""
    with Storage(directory, readonly=True) as st:
        events = st.events()
        trials = {t.trial_id: t for t in st.load_trials()}
    segments = defaultdict(list)
    for e in events:
        if e["kind"] in ("paused", "completed", "segment_ended", "stopped", "failed") and e["trial_id"] is not None:
            d = e["data"]
            segments[e["trial_id"]].append((e["kind"], d["start_step"], d["last_step"], d["worker"].get("pid")))
    thawed = sorted({e["trial_id"] for e in events if e["kind"] == "resumed"})
    for tid in thawed:
        t = trials[tid]
        steps = [s for s, _ in t.curve]
        assert steps == list(range(1, len(steps) + 1)), f"trial {tid}: steps lost or repeated across a pause"
        for _kind, start, _last, _pid in segments[tid]:
            first = next(m for s, m in t.curve if s == start + 1)
            assert first["start_epoch"] == start, f"trial {tid} segment after {start} did not resume its checkpoint"
    counts = defaultdict(int)
    for e in events:
        counts[e["kind"]] += 1
    print(f"\n{len(trials)} trials; events: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"{len(thawed)} trials were thawed from a checkpoint; each resumed where it paused (checked)")
    for tid in sorted(thawed, key=lambda i: -trials[i].last_step)[:6]:
        t = trials[tid]
        segs = "  ".join(f"{s}->{last} {k[:4]} (pid {pid})" for k, s, last, pid in segments[tid])
        print(f"  trial {tid:3d} [{t.status.value:9s}] val_loss {t.curve[-1][1]['val_loss']:.3f}: {segs}")
    best = min((t for t in trials.values() if t.status.value == "completed"), key=lambda t: t.curve[-1][1]["val_loss"],
               default=None)
    if best is not None:
        print(f"best completed: trial {best.trial_id}, val_loss {best.curve[-1][1]['val_loss']:.4f}, "
              f"{ {k: v for k, v in best.config.items() if k in SPACE['params']} }")
    return {"trials": len(trials), "thawed": len(thawed), "completed": counts["completed"],
            "paused": counts["paused"], "resumed": counts["resumed"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--directory", type=Path, default=ROOT / "runs" / "freeze_thaw")
    p.add_argument("--seconds", type=float, default=240)
    p.add_argument("--keep", action="store_true", help="resume the sweep in --directory instead of starting anew")
    args = p.parse_args()
    if args.directory.exists() and not args.keep:
        shutil.rmtree(args.directory)
    os.chdir(ROOT)  # Ray workers import examples.freeze_thaw.train from the repository root
    from examples.freeze_thaw.train import train

    hpo.run(
        train,
        SPACE,
        metric="val_loss",
        mode="min",
        directory=args.directory,
        searcher={"name": "freeze_thaw", "n_initial": 4},
        scheduler={"name": "freeze_thaw", "acquisition": "entropy", "segment_steps": 3, "n_initial": 4},
        max_seconds=args.seconds,
        resources={"num_cpus": 1},
        max_concurrent=2,
        display=False,
    )
    summarize(args.directory)


if __name__ == "__main__":
    main()

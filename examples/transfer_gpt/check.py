"""Check a transfer: train the target shape with the transferred hyperparameters, a small lr grid around them,
and a direct learning-rate sweep at the target shape; compare loss and compute with the proxy sweep.

    hpo-tune transfer runs/transfer_gpt/adamw_completep --target width=128,depth=4
    python -m examples.transfer_gpt.check runs/transfer_gpt/adamw_completep

reads ``DIR/transferred.yaml`` (what ``hpo-tune transfer`` wrote) and trains the target shape:

- ``transferred``: the transferred config as it is;
- ``grid``: the same with the base learning rate times ``2^k`` for ``k`` in ``--grid`` (default -2, -1, 1, 2);
- ``direct`` (with ``--direct=-12:-4``): a direct learning-rate sweep at the target shape, base lr ``2^k`` for
  each ``k``, every other hyperparameter as transferred: the target's own learning-rate curve, and what tuning
  the learning rate at the target shape costs. Its points within two octaves of the transferred lr are a grid
  around it, so ``--grid= --direct=-12:-4`` checks both without extra runs.

Every run is kept in ``DIR/check.json`` as it finishes; running again skips finished runs (so an interrupted
check resumes). The summary (``DIR/check.md``) gives the transferred loss against the best loss of the direct
sweep (or, without one, of the grid), and the proxy sweep's compute (the trials' reported FLOPs and wall time,
from its storage) against the direct sweep's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from hpo.storage import Storage

__all__ = ["load_transferred", "proxy_cost", "run_check", "summarize"]


def _key(config: Mapping[str, Any]) -> str:
    return json.dumps({k: config[k] for k in sorted(config)}, sort_keys=True, default=str)


def train_one(config: dict[str, Any]) -> dict[str, Any]:
    """``trainable.run(config)`` on one torch thread (a process of a pool)."""
    import torch

    torch.set_num_threads(1)
    from examples.transfer_gpt.trainable import run

    return run(config)


def load_transferred(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """``DIR/transferred.yaml`` (what ``hpo-tune transfer`` wrote); an error naming the command when missing."""
    path = Path(directory) / "transferred.yaml"
    if not path.is_file():
        raise FileNotFoundError(
            f"{str(path)!r} not found; run 'hpo-tune transfer {directory} --target width=N,depth=L' first"
        )
    return yaml.safe_load(path.read_text())


def proxy_cost(directory: str | os.PathLike[str]) -> dict[str, float]:
    """What a sweep spent: the sum over its trials of reported ``flops`` and measured ``wall_seconds``, and the
    number of trials and of training steps; plus the proxy runs of ``DIR/refine.json`` (``refine.py``) when there
    are any (``refine_runs`` of them), which are part of the proxy's cost."""
    with Storage(directory, readonly=True) as st:
        trials = st.load_trials()
    refine = Path(directory) / "refine.json"
    extra = list(json.loads(refine.read_text())["runs"].values()) if refine.is_file() else []
    return {
        "flops": sum(float(t.cost.get("flops", 0.0)) for t in trials) + sum(r["flops"] for r in extra),
        "wall_seconds": sum(float(t.cost.get("wall_seconds", 0.0)) for t in trials)
        + sum(r["wall_seconds"] for r in extra),
        "trials": float(len(trials)),
        "steps": float(sum(t.last_step for t in trials)) + sum(r["steps"] for r in extra),
        "refine_runs": float(len(extra)),
    }


def _plan(transferred: Mapping[str, Any], grid: Sequence[float], direct: Sequence[float], steps: int | None,
          seed: int | None) -> list[tuple[str, float, dict[str, Any]]]:
    base = dict(transferred["config"])
    if steps is not None:
        base["step"] = int(steps)
    if seed is not None:
        base["seed"] = int(seed)
    lr = float(base["lr"])
    plan = [("transferred", math.log2(lr), dict(base))]
    plan += [("grid", math.log2(lr) + k, {**base, "lr": lr * 2.0**k}) for k in grid if k != 0]
    plan += [("direct", float(k), {**base, "lr": 2.0**k}) for k in direct]
    return plan


def run_check(
    directory: str | os.PathLike[str],
    *,
    grid: Sequence[float] = (-2, -1, 1, 2),
    direct: Sequence[float] = (),
    steps: int | None = None,
    seed: int | None = None,
    jobs: int = 1,
    out: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Train the planned runs that ``out`` (default ``DIRECTORY/check.json``) does not hold yet; return the
    summary (also written to ``check.md`` next to it)."""
    directory = Path(directory)
    transferred = load_transferred(directory)
    out = Path(out) if out is not None else directory / "check.json"
    record: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {"runs": {}}
    plan = _plan(transferred, grid, direct, steps, seed)
    todo = {_key(c): c for _, _, c in plan if _key(c) not in record["runs"]}

    def save(config: Mapping[str, Any], result: Mapping[str, Any]) -> None:
        record["runs"][_key(config)] = {"config": dict(config), **result}
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, out)
        print(f"  lr 2^{math.log2(config['lr']):+.2f}: val_loss {result['val_loss']:.4f} "
              f"({result['wall_seconds']:.0f} s)", flush=True)

    print(f"check: {len(plan)} runs at width {transferred['target']['width']}, depth {transferred['target']['depth']}"
          f" ({len(todo)} to train)", flush=True)
    if jobs > 1 and len(todo) > 1:
        with ProcessPoolExecutor(jobs) as pool:
            futures = {pool.submit(train_one, c): c for c in todo.values()}
            for f, c in futures.items():
                save(c, f.result())
    else:
        for c in todo.values():
            save(c, train_one(c))
    summary = summarize(transferred, record, plan, proxy_cost(directory))
    record["summary"] = summary
    out.write_text(json.dumps(record, indent=1))
    out.with_suffix(".md").write_text(summary["markdown"])
    return summary


def summarize(
    transferred: Mapping[str, Any],
    record: Mapping[str, Any],
    plan: Sequence[tuple[str, float, Mapping[str, Any]]],
    proxy: Mapping[str, float],
) -> dict[str, Any]:
    """The comparison the guide reports: transferred loss vs. the direct sweep's best, and compute."""
    rows = []
    for kind, log2_lr, config in plan:
        r = record["runs"][_key(config)]
        rows.append({"kind": kind, "log2_lr": log2_lr, "val_loss": r["val_loss"], "flops": r["flops"],
                     "wall_seconds": r["wall_seconds"], "curve": r["curve"]})
    t = next(r for r in rows if r["kind"] == "transferred")
    direct = [r for r in rows if r["kind"] == "direct"]
    compared = direct or [r for r in rows if r["kind"] == "grid"] or [t]
    best = min(compared, key=lambda r: r["val_loss"])
    direct_flops = sum(r["flops"] for r in direct)
    direct_wall = sum(r["wall_seconds"] for r in direct)
    gap = t["val_loss"] / best["val_loss"] - 1.0
    cost_ratio = proxy["flops"] / direct_flops if direct else math.nan
    wall_ratio = proxy["wall_seconds"] / direct_wall if direct else math.nan
    p, tg = transferred["parameterization"], transferred["target"]
    what = f"the direct lr sweep ({len(direct)} runs)" if direct else f"the grid ({len(compared)} runs)"
    lines = [
        f"# Transfer check: {p}, {transferred['optimizer']}",
        "",
        f"Proxy sweep `{transferred['source']['directory']}` (width {transferred['base']['width']}, depth "
        f"{transferred['base']['depth']}): best trial {transferred['source']['trial_id']}, base lr "
        f"2^{math.log2(transferred['best_config']['lr']):.2f}. Target width {tg['width']}, depth {tg['depth']}, "
        f"{rows[0]['curve'][-1][0] if rows[0]['curve'] else 0} steps.",
        "",
        "| run | log2 base lr | val loss |",
        "|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: r["log2_lr"]):
        mark = " (best)" if r is best else ""
        lines.append(f"| {r['kind']}{mark} | {r['log2_lr']:.2f} | {r['val_loss']:.4f} |")
    lines += [
        "",
        f"- transferred: val loss {t['val_loss']:.4f}; best of {what}: {best['val_loss']:.4f} at lr "
        f"2^{best['log2_lr']:.2f}; gap {100 * gap:+.2f}% ({'within' if gap <= 0.02 else 'NOT within'} 2%)",
    ]
    if direct:
        lines.append(
            f"- compute: proxy sweep {proxy['flops']:.3g} FLOPs ({int(proxy['trials'])} trials"
            + (f" + {int(proxy['refine_runs'])} refinement runs" if proxy.get("refine_runs") else "")
            + f", {int(proxy['steps'])} steps, {proxy['wall_seconds']:.0f} s of trial time), direct sweep "
            f"{direct_flops:.3g} FLOPs ({direct_wall:.0f} s): ratio {cost_ratio:.3f} in FLOPs "
            f"({'at most' if cost_ratio <= 0.25 else 'MORE than'} 1/4), {wall_ratio:.3f} in wall time"
        )
    lines.append("")
    return {
        "parameterization": p,
        "optimizer": transferred["optimizer"],
        "transferred_log2_lr": t["log2_lr"],
        "transferred_val_loss": t["val_loss"],
        "best_direct_log2_lr": best["log2_lr"],
        "best_direct_val_loss": best["val_loss"],
        "gap": gap,
        "proxy": dict(proxy),
        "direct_flops": direct_flops,
        "direct_wall_seconds": direct_wall,
        "flops_ratio": cost_ratio,
        "wall_ratio": wall_ratio,
        "rows": rows,
        "markdown": "\n".join(lines),
    }


def log2_grid(text: str) -> list[float]:
    """``"-9:-3"`` (integers, inclusive) or ``"-1,1"`` -> log2 learning-rate offsets or values."""
    if ":" in text:
        lo, hi = (int(x) for x in text.split(":"))
        return [float(k) for k in range(lo, hi + 1)]
    return [float(x) for x in text.split(",") if x.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m examples.transfer_gpt.check", description=__doc__.split("\n")[0])
    p.add_argument("directory", help="the proxy sweep's directory, holding transferred.yaml")
    p.add_argument("--grid", default="-2,-1,1,2", help="octaves around the transferred lr (default: --grid=-2,-1,1,2)")
    p.add_argument("--direct", default="", help="log2 base lrs of a direct sweep: --direct=-12:-4 or --direct=-9,-8,-7")
    p.add_argument("--steps", type=int, help="train this many steps instead of the sweep's full budget")
    p.add_argument("--seed", type=int, help="data order and init seed (default: the sweep's)")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (default 1)")
    p.add_argument("--out", help="results file (default DIRECTORY/check.json)")
    a = p.parse_args(argv)
    try:
        s = run_check(a.directory, grid=log2_grid(a.grid), direct=log2_grid(a.direct), steps=a.steps, seed=a.seed,
                      jobs=a.jobs, out=a.out)
    except (FileNotFoundError, ValueError) as e:
        print(f"check: error: {e}", file=sys.stderr)
        return 2
    print(s["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The proxy's own learning-rate curve: is a transfer miss the parameterization's fault or the proxy sweep's?

    python -m benchmarks.transfer_base_lr runs/transfer_gpt/adamw_completep --lrs=-9:-3 --seeds 0 1

reads ``DIR/transferred.yaml`` (what ``hpo-tune transfer`` wrote), takes the proxy sweep's best config at the *base*
shape, and trains it with the base learning rate ``2^k`` for each ``k`` and seed (every other hyperparameter as the
sweep's winner). If the base shape's best ``k`` equals the target's best (``check.py --direct``), the
parameterization transferred the optimum and a miss comes from the proxy sweep's choice of learning rate; if they
differ, the optimum moved with the shape. Writes ``DIR/base_lr.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import yaml

__all__ = ["main", "sweep"]


def sweep(directory: Path, ks: list[int], seeds: list[int]) -> dict[str, Any]:
    """Train the winner at the base shape for each ``(seed, k)``; ``{"runs": {"seed,k": val_loss}, ...}``."""
    import torch

    torch.set_num_threads(1)
    from examples.transfer_gpt.trainable import run

    transferred = yaml.safe_load((directory / "transferred.yaml").read_text())
    base = dict(transferred["best_config"])
    base.pop("step", None)  # the sweep's fidelity: train the full budget
    runs: dict[str, float] = {}
    for seed in seeds:
        for k in ks:
            t0 = time.perf_counter()
            loss = run(dict(base, lr=2.0**k, seed=seed))["val_loss"]
            runs[f"{seed},{k}"] = loss
            print(f"seed {seed} lr 2^{k}: val_loss {loss:.4f} ({time.perf_counter() - t0:.1f} s)", flush=True)
    return {"source": transferred["source"], "base": transferred["base"], "winner_log2_lr": math.log2(base["lr"]),
            "runs": runs}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.transfer_base_lr", description=__doc__.splitlines()[0])
    p.add_argument("directory", type=Path, help="the proxy sweep's directory, holding transferred.yaml")
    p.add_argument("--lrs", default="-9:-3", help="log2 base lrs, LO:HI inclusive (default -9:-3)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds (default 0 1)")
    args = p.parse_args(argv)
    lo, hi = (int(v) for v in args.lrs.split(":"))
    ks = list(range(lo, hi + 1))
    record = sweep(args.directory, ks, args.seeds)
    (args.directory / "base_lr.json").write_text(json.dumps(record, indent=1))
    print("| seed | " + " | ".join(f"k={k}" for k in ks) + " | best k |")
    print("|---|" + "---|" * (len(ks) + 1))
    for s in args.seeds:
        row = [record["runs"][f"{s},{k}"] for k in ks]
        print(f"| {s} | " + " | ".join(f"{v:.4f}" for v in row) + f" | {ks[row.index(min(row))]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

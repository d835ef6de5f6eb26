"""Refine the proxy sweep's learning rate on the proxy itself, then transfer the refined value.

    hpo-tune transfer runs/transfer_gpt/adamw_completep --target width=128,depth=4
    python -m examples.transfer_gpt.refine runs/transfer_gpt/adamw_completep --lrs=-9:-3 --seeds 0 1

A sweep that pauses most trials early (ASHA, freeze-thaw) trains few of them to the full budget, and on a flat
learning-rate curve the best of those few can sit octaves away from the proxy's own optimum; the transfer then
carries that error to the target (``docs/transfer_guide.md``, "Why the miss"). This step trains the sweep's best
config at the *base* shape with the base learning rate ``2^k`` for each ``k`` and seed (every other
hyperparameter as the winner's), takes the ``k`` with the lowest mean loss over the seeds, and writes
``DIR/transferred.yaml`` again with that learning rate (``hpo-tune transfer ... --set lr=...``, same target).
Proxy runs cost a fraction of a target run, so a 7-point grid with 2 seeds adds little to the sweep's compute.

Every run is kept in ``DIR/refine.json`` as it finishes; running again skips finished runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from examples.transfer_gpt import check

__all__ = ["main", "refine", "refine_lr"]


def _train(config: dict[str, Any]) -> dict[str, float]:
    """One proxy run, kept as what ``check.proxy_cost`` adds up."""
    r = check.train_one(config)
    return {"val_loss": float(r["val_loss"]), "flops": float(r["flops"]), "wall_seconds": float(r["wall_seconds"]),
            "steps": float(r["curve"][-1][0]) if r["curve"] else 0.0}


def refine_lr(
    config: dict[str, Any],
    ks: list[float],
    seeds: list[int],
    runs: dict[str, dict[str, float]] | None = None,
    on_run: Any = None,
) -> tuple[float, dict[str, float], dict[str, dict[str, float]]]:
    """Train ``config`` (its own shape and ``step`` budget) with base lr ``2^k`` for each ``k`` and seed, skipping
    the ``"seed,k"`` keys ``runs`` already holds; ``(best k by mean loss, {k: mean}, runs)``. ``on_run(runs)`` is
    called after each run (to store it)."""
    runs = {} if runs is None else runs
    for seed in seeds:
        for k in ks:
            key = f"{seed},{k:g}"
            if key in runs:
                continue
            runs[key] = _train(dict(config, lr=2.0**k, seed=seed))  # a sweep's best config holds its full ``step``
            if on_run is not None:
                on_run(runs)
            print(f"  seed {seed}, lr 2^{k:g}: val_loss {runs[key]['val_loss']:.4f}", flush=True)
    mean = {k: sum(runs[f"{s},{k:g}"]["val_loss"] for s in seeds) / len(seeds) for k in ks}
    finite = {k: v for k, v in mean.items() if math.isfinite(v)}
    if not finite:
        raise ValueError("every refinement run diverged; widen --lrs towards smaller learning rates")
    return min(finite, key=finite.get), mean, runs


def refine(directory: str | os.PathLike[str], ks: list[float], seeds: list[int]) -> dict[str, Any]:
    """Train the grid that ``DIR/refine.json`` does not hold yet, pick the best mean ``k`` and transfer it again.

    Returns ``{"runs": {"seed,k": {"val_loss", "flops", "wall_seconds", "steps"}}, "mean": {k: loss}, "best_k": k,
    "transferred": path}`` (``check.py`` counts the runs' compute with the proxy sweep's).
    """
    from hpo.tune import transfer_sweep

    directory = Path(directory)
    transferred = check.load_transferred(directory)
    fidelity = transferred["source"].get("step")
    out = directory / "refine.json"
    record: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {"runs": {}}

    def store(runs: dict[str, dict[str, float]]) -> None:
        out.write_text(json.dumps({**record, "runs": runs}, indent=1))

    best_k, mean, record["runs"] = refine_lr(dict(transferred["best_config"]), ks, seeds, record["runs"], store)
    result = transfer_sweep(directory, transferred["target"], overrides={"lr": 2.0**best_k})
    record.update({"mean": {f"{k:g}": v for k, v in mean.items()}, "best_k": best_k, "seeds": seeds,
                   "winner_log2_lr": math.log2((transferred.get("overridden") or transferred["best_config"])["lr"]),
                   "winner_step": fidelity})
    out.write_text(json.dumps(record, indent=1))
    return {**record, "transferred": result["path"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m examples.transfer_gpt.refine", description=__doc__.splitlines()[0])
    p.add_argument("directory", help="the proxy sweep's directory, holding transferred.yaml")
    p.add_argument("--lrs", default="-9:-3", help="log2 base lrs: LO:HI (integers, inclusive) or k1,k2,...")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="data order and init seeds (default 0 1)")
    a = p.parse_args(argv)
    try:
        r = refine(a.directory, check.log2_grid(a.lrs), a.seeds)
    except (FileNotFoundError, ValueError) as e:
        print(f"refine: error: {e}", file=sys.stderr)
        return 2
    print("| log2 lr | " + " | ".join(f"seed {s}" for s in a.seeds) + " | mean |")
    print("|---|" + "---|" * (len(a.seeds) + 1))
    for k, v in r["mean"].items():
        cells = " | ".join(f"{r['runs'][f'{s},{k}']['val_loss']:.4f}" for s in a.seeds)
        print(f"| {k} | {cells} | {v:.4f} |")
    print(f"refined base lr 2^{r['best_k']:g} (the sweep's winner: 2^{r['winner_log2_lr']:.2f}); "
          f"transferred config written to {r['transferred']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

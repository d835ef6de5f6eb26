"""The figures of docs/transfer_guide.md, drawn from what the workflow left in runs/transfer_gpt/.

    python -m examples.transfer_gpt.figures [--runs runs/transfer_gpt] [--out docs/figures]

- ``transfer_best_so_far.png``: the proxy sweeps' best full-budget loss against the compute spent so far, with
  the compute of the direct learning-rate sweep at the target shape (and a quarter of it) marked;
- ``transfer_curves.png``: the CompleteP proxy sweep's learning curves, and its timeline: every segment of
  every trial in sweep time, so pauses (gaps) and resumptions (later segments) show;
- ``transfer_lr.png``: the target's own loss-against-learning-rate curve (the direct sweep) with the
  transferred learning rate on it, for CompleteP and SP;
- ``transfer_compute.png``: compute of the proxy sweeps against the direct sweeps, in FLOPs and in wall time.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from hpo.storage import Storage

__all__ = ["draw_all"]

SWEEPS = {"completep": "adamw_completep", "sp": "adamw_sp"}
COLORS = {"completep": "tab:blue", "sp": "tab:red"}


def _load(directory: Path) -> tuple[list[Any], list[dict[str, Any]], int]:
    with Storage(directory, readonly=True) as st:
        spec = st.load_spec() or {}
        return st.load_trials(), st.events(), int((spec["space"].get("fidelity") or {}).get("high", 0))


def _check(directory: Path) -> dict[str, Any] | None:
    path = directory / "check.json"
    return json.loads(path.read_text()).get("summary") if path.is_file() else None


def best_so_far(directory: Path) -> tuple[list[float], dict[int, list[float]]]:
    """Cumulative FLOPs at each finished segment, and for each rung (every step a segment ended at) the best
    loss at that step among the trials that had reached it by then."""
    trials, events, _ = _load(directory)
    by_id = {t.trial_id: t for t in trials}
    segments = [e for e in events if (e["data"] or {}).get("cost")]
    rungs = sorted({int(e["data"]["last_step"]) for e in segments})
    spent, xs = 0.0, []
    best = {r: math.inf for r in rungs}
    ys: dict[int, list[float]] = {r: [] for r in rungs}
    for e in segments:
        spent += float(e["data"]["cost"].get("flops", 0.0))
        for r in rungs:
            if e["data"].get("start_step", 0) < r <= e["data"]["last_step"]:
                value = by_id[e["trial_id"]].value("val_loss", r)
                if value is not None and math.isfinite(value):
                    best[r] = min(best[r], value)
        xs.append(spent)
        for r in rungs:
            ys[r].append(best[r])
    return xs, ys


def draw_best_so_far(runs: Path, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for p, name in SWEEPS.items():
        d = runs / name
        if not (d / "sweep.db").exists():
            continue
        xs, ys = best_so_far(d)
        top = max(ys)
        for r, values in ys.items():
            if r == top:
                ax.step(xs, values, where="post", color=COLORS[p], lw=2,
                        label=f"proxy {p}: best at {r} steps (full budget)")
            else:
                ax.step(xs, values, where="post", color=COLORS[p], lw=0.8, alpha=0.5,
                        label=f"proxy {p}: best at {r} steps" if r == min(ys) else None)
        s = _check(d)
        if s:
            ax.axvline(s["direct_flops"], color=COLORS[p], ls="--", lw=1,
                       label=f"direct lr sweep at the target, {p}")
            ax.axvline(s["direct_flops"] / 4, color=COLORS[p], ls=":", lw=1, label=f"a quarter of it, {p}")
    ax.set_xscale("log")
    ax.set_xlabel("compute spent (FLOPs, log scale)")
    ax.set_ylabel("best val loss so far (nats/char)")
    ax.set_ylim(top=min(ax.get_ylim()[1], 3.2))
    ax.set_title("Proxy sweeps: best-so-far against compute (thin: the earlier rungs 25, 75, 225)", fontsize=9)
    ax.legend(fontsize=6.5, loc="upper right", framealpha=0.95)
    fig.tight_layout()
    fig.savefig(out / "transfer_best_so_far.png", dpi=120)
    plt.close(fig)


def draw_curves(runs: Path, out: Path) -> None:
    d = runs / SWEEPS["completep"]
    trials, events, high = _load(d)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5))
    cmap = plt.get_cmap("viridis")
    t0 = min(e["time"] for e in events)
    for t in trials:
        if not t.curve:
            continue
        steps = [s for s, _ in t.curve]
        losses = [m["val_loss"] for _, m in t.curve]
        color = cmap(min(1.0, t.last_step / high))
        ax.plot(steps, losses, color=color, lw=0.8, alpha=0.8, marker="." if len(steps) == 1 else None)
        starts = sorted({int(m.get("start_step", 0)) for _, m in t.curve} - {0})
        for s in starts:  # where the trial was paused and later resumed from its checkpoint
            ax.plot([s], [t.value("val_loss", s)], "o", mfc="white", color=color, ms=4)
    ax.set_xlabel("training step")
    ax.set_ylabel("val loss (nats/char)")
    ax.set_ylim(top=min(4.6, ax.get_ylim()[1]))
    ax.set_title("Learning curves (open circles: a segment ended there;\nthe next one resumed from its checkpoint)",
                 fontsize=9)
    # Timeline: one row per trial, one bar per segment in sweep time; the gaps are pauses.
    open_: dict[int, tuple[float, str]] = {}
    for e in events:
        tid, kind, data = e["trial_id"], e["kind"], e["data"] or {}
        if tid is None:
            continue
        if kind in ("started", "resumed", "continued"):
            open_[tid] = (e["time"] - t0, kind)
        elif "cost" in data and tid in open_:
            start, how = open_.pop(tid)
            end = e["time"] - t0
            color = {"started": "tab:gray", "continued": "tab:blue", "resumed": "tab:orange"}[how]
            bx.barh(tid, end - start, left=start, color=color, height=0.8,
                    edgecolor="tab:green" if kind == "completed" else color, lw=1.5)
    bx.invert_yaxis()
    bx.set_xlabel("sweep time (s)")
    bx.set_ylabel("trial")
    bx.set_title("Segments: gray first, blue promoted at once,\norange resumed after a pause; "
                 "green edge: reached the full budget", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "transfer_curves.png", dpi=120)
    plt.close(fig)


def draw_lr(runs: Path, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for p, name in SWEEPS.items():
        s = _check(runs / name)
        if not s:
            continue
        direct = sorted((r for r in s["rows"] if r["kind"] == "direct"), key=lambda r: r["log2_lr"])
        xs = [r["log2_lr"] for r in direct if math.isfinite(r["val_loss"])]
        ys = [r["val_loss"] for r in direct if math.isfinite(r["val_loss"])]
        ax.plot(xs, ys, "o-", color=COLORS[p], label=f"{p}: direct lr sweep at the target")
        ax.plot([s["transferred_log2_lr"]], [s["transferred_val_loss"]], "*", ms=14, color=COLORS[p],
                mec="black", label=f"{p}: transferred ({100 * s['gap']:+.2f}% vs the sweep's best)")
    ax.set_xlabel("log2 base learning rate")
    ax.set_ylabel("val loss at the target (nats/char)")
    ax.set_title("Target (width 128, depth 4): the transferred lr on the target's own lr curve", fontsize=10)
    ax.set_ylim(top=min(ax.get_ylim()[1], 3.6))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "transfer_lr.png", dpi=120)
    plt.close(fig)


def draw_compute(runs: Path, out: Path) -> None:
    labels, flops, walls = [], [], []
    for p, name in SWEEPS.items():
        s = _check(runs / name)
        if not s:
            continue
        labels += [f"proxy\n{p}", f"direct\n{p}"]
        flops += [s["proxy"]["flops"], s["direct_flops"]]
        walls += [s["proxy"]["wall_seconds"], s["direct_wall_seconds"]]
    if not labels:
        return
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.8))
    colors = ["tab:blue", "tab:gray"] * (len(labels) // 2)
    ax.bar(labels, flops, color=colors)
    ax.set_ylabel("FLOPs")
    ax.set_title("Compute: proxy sweep vs direct lr sweep")
    bx.bar(labels, walls, color=colors)
    bx.set_ylabel("trial wall time (s), busy shared CPU")
    bx.set_title("Wall time of the trials")
    for a, vals in ((ax, flops), (bx, walls)):
        for i in range(0, len(vals), 2):
            a.text(i, vals[i], f"{vals[i] / vals[i + 1]:.2f}x", ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "transfer_compute.png", dpi=120)
    plt.close(fig)


def draw_all(runs: str | Path = "runs/transfer_gpt", out: str | Path = "docs/figures") -> list[Path]:
    """Draw every figure that the results in ``runs`` allow; return the files written."""
    runs, out = Path(runs), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if (runs / SWEEPS["completep"] / "sweep.db").exists():
        draw_curves(runs, out)
    draw_best_so_far(runs, out)
    draw_lr(runs, out)
    draw_compute(runs, out)
    return sorted(out.glob("transfer_*.png"))


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m examples.transfer_gpt.figures", description=__doc__.split("\n")[0])
    p.add_argument("--runs", default="runs/transfer_gpt")
    p.add_argument("--out", default="docs/figures")
    a = p.parse_args(argv)
    for path in draw_all(a.runs, a.out):
        print(path)


if __name__ == "__main__":
    main()

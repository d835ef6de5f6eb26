"""Loss against learning rate across widths (SP vs. muP) and depths (muP vs. CompleteP) on a character LM.

The experiment users trust before they tune small and transfer large: under muP the learning rate that
minimizes the loss stays put as the model widens, under SP it drifts down; under CompleteP it also stays put
as the model deepens, under muP without a depth rule it drifts.

Notation
--------
- ``n``: width (``n_embd``), ``L``: depth (``n_layer``); base shape ``(n_0, L_0) = (32, 2)``, where all
  parameterizations coincide but for the attention scale (``1/d_head`` vs. ``1/sqrt(d_head)``, a constant
  factor 4 here since ``d_head = 16`` at every width).
- ``eta = 2^k``: the base AdamW learning rate; each parameter group gets ``eta`` times its
  ``hpo.transfer.scaling`` factor, so under muP the x-axis is the lr *at the base shape*.
- loss: mean validation cross-entropy (nats per character) after ``steps`` AdamW steps, averaged over seeds.

Model and data: ``examples/transfer_gpt`` (pre-LN GPT, head dim 16, untied head, Python standard-library
sources).

Usage::

    python -m benchmarks.mup_lr_transfer --quick          # widths 32..256, 2 seeds, 200 steps
    python -m benchmarks.mup_lr_transfer --quick --depth  # the same plus depths 2, 4, 8 at width 64
    python -m benchmarks.mup_lr_transfer                  # widths 32..256, depths 2..16, 3 seeds, 300 steps

Writes ``benchmarks/results/mup_lr_transfer[_quick].{md,png,json}``. Finished runs are kept in the JSON file
and skipped when a command with the same budget runs again, so an interrupted sweep resumes where it stopped
and ``--quick --depth`` reuses the width runs of ``--quick``.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass

import torch

from examples.transfer_gpt.model import CharCorpus, GPTConfig, load_corpus, train

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


@dataclass(frozen=True)
class Settings:
    """One benchmark mode: the grid and the training budget of every run."""

    name: str
    command: str
    widths: tuple[int, ...]
    depths: tuple[int, ...]
    log2_lrs: tuple[int, ...]
    seeds: tuple[int, ...]
    steps: int
    batch_size: int
    block_size: int
    depth_width: int = 64  # width of the depth sweep
    base_width: int = 32
    base_depth: int = 2


QUICK = Settings(
    name="mup_lr_transfer_quick",
    command="python -m benchmarks.mup_lr_transfer --quick",
    widths=(32, 64, 128, 256),
    depths=(),
    log2_lrs=tuple(range(-12, -4)),
    seeds=(0, 1),
    steps=200,
    batch_size=8,
    block_size=64,
)
FULL = Settings(
    name="mup_lr_transfer",
    command="python -m benchmarks.mup_lr_transfer",
    widths=(32, 64, 128, 256),
    depths=(2, 4, 8, 16),
    log2_lrs=tuple(range(-12, -3)),
    seeds=(0, 1, 2),
    steps=300,
    batch_size=16,
    block_size=64,
)

# (experiment, parameterization) pairs compared in each sweep
WIDTH_SWEEP = ("width", ("sp", "mup"))
DEPTH_SWEEP = ("depth", ("mup", "completep"))


def _budget(settings: dict) -> tuple:
    """What makes two runs with the same key comparable: runs saved under the same budget are reused."""
    keys = ("steps", "batch_size", "block_size", "depth_width", "base_width", "base_depth")
    return tuple(settings.get(k) for k in keys)


def run_key(experiment: str, parameterization: str, size: int, log2_lr: int, seed: int) -> str:
    return f"{experiment}/{parameterization}/{size}/{log2_lr}/{seed}"


def alias(s: Settings, key: str) -> str:
    """The key of an identical run: at the base depth muP and CompleteP are the same model as the width
    sweep's muP model of width ``depth_width``, so the depth sweep reuses those runs."""
    experiment, _, size, k, seed = key.split("/")
    if experiment == "depth" and int(size) == s.base_depth and s.depth_width in s.widths:
        return run_key("width", "mup", s.depth_width, int(k), int(seed))
    return key


def one_run(
    s: Settings,
    corpus: CharCorpus,
    experiment: str,
    parameterization: str,
    size: int,
    log2_lr: int,
    seed: int,
) -> float:
    width, depth = (size, s.base_depth) if experiment == "width" else (s.depth_width, size)
    cfg = GPTConfig(
        vocab_size=corpus.vocab_size,
        n_embd=width,
        n_layer=depth,
        head_dim=16,
        block_size=s.block_size,
        parameterization=parameterization,
        base_width=s.base_width,
        base_depth=s.base_depth,
    )
    return train(cfg, corpus, lr=2.0**log2_lr, steps=s.steps, batch_size=s.batch_size, seed=seed)


def _worker_init(threads: int) -> None:
    global _CORPUS
    torch.set_num_threads(threads)
    _CORPUS = load_corpus()


def _worker_run(s: Settings, experiment: str, p: str, size: int, k: int, seed: int) -> tuple[float, float]:
    t0 = time.time()
    loss = one_run(s, _CORPUS, experiment, p, size, k, seed)
    return loss, time.time() - t0


_CORPUS: CharCorpus | None = None


def sweep(
    s: Settings, path: str, jobs: int = 1, threads: int = 1
) -> tuple[dict[str, float], dict[str, float]]:
    """Run every (experiment, parameterization, size, lr, seed) not already in ``path``, ``jobs`` at a time.

    Seed-major order: the whole grid for the first seed comes first, so a sweep stopped early still has
    complete curves for the seeds it finished. Returns the losses and the seconds each run took, keyed by
    ``run_key``.
    """
    done: dict[str, float] = {}
    seconds: dict[str, float] = {}
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        if _budget(saved.get("settings", {})) == _budget(asdict(s)):
            done = {k: float(v) for k, v in saved["losses"].items()}
            seconds = saved.get("seconds", {})
    todo = []
    for seed in s.seeds:
        for experiment, params in (WIDTH_SWEEP, DEPTH_SWEEP):
            for size in s.widths if experiment == "width" else s.depths:
                for p in params:
                    for k in s.log2_lrs:
                        key = run_key(experiment, p, size, k, seed)
                        if key not in done and alias(s, key) == key:
                            todo.append((key, (s, experiment, p, size, k, seed)))
    start = time.time()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init, initargs=(threads,)) as pool:
        futures = {pool.submit(_worker_run, *args): key for key, args in todo}
        for i, future in enumerate(as_completed(futures)):
            key = futures[future]
            done[key], seconds[key] = future.result()
            print(
                f"[{i + 1}/{len(todo)}] {key}: loss {done[key]:.4f} ({seconds[key]:.1f}s, "
                f"{(time.time() - start) / 60:.1f} min so far)",
                flush=True,
            )
            with open(path, "w") as f:
                json.dump({"settings": asdict(s), "losses": done, "seconds": seconds}, f, indent=1)
    return done, seconds


def mean_curve(losses: dict[str, float], s: Settings, experiment: str, p: str, size: int) -> list[float]:
    """Seed-mean loss at each grid lr over the seeds that ran; ``inf`` where any seed diverged."""
    out = []
    for k in s.log2_lrs:
        keys = [alias(s, run_key(experiment, p, size, k, seed)) for seed in s.seeds]
        values = [losses[key] for key in keys if key in losses]
        if not values:
            out.append(math.nan)
        else:
            out.append(statistics.fmean(values) if all(math.isfinite(v) for v in values) else math.inf)
    return out


def seeds_done(losses: dict[str, float], s: Settings) -> list[int]:
    """Seeds whose whole grid has run."""
    return [
        seed
        for seed in s.seeds
        if all(
            alias(s, run_key(e, p, size, k, seed)) in losses
            for (e, params), sizes in ((WIDTH_SWEEP, s.widths), (DEPTH_SWEEP, s.depths))
            for p in params
            for size in sizes
            for k in s.log2_lrs
        )
    ]


def best_log2_lr(curve: list[float], log2_lrs: tuple[int, ...]) -> tuple[int, float]:
    """The grid argmin, and a refined optimum from a parabola through it and its two neighbours.

    On a grid of spacing 1, with losses ``y_-, y_0, y_+`` around the argmin ``k``, the vertex of the parabola
    is ``k + (y_- - y_+) / (2 (y_- - 2 y_0 + y_+))``; at the grid's edge, or with a diverged neighbour, the
    grid argmin is kept.
    """
    i = min(range(len(curve)), key=lambda j: curve[j] if not math.isnan(curve[j]) else math.inf)
    k = float(log2_lrs[i])
    if 0 < i < len(curve) - 1 and all(math.isfinite(curve[j]) for j in (i - 1, i, i + 1)):
        y_m, y_0, y_p = curve[i - 1], curve[i], curve[i + 1]
        denom = y_m - 2 * y_0 + y_p
        if denom > 0:
            k += (y_m - y_p) / (2 * denom)
    return log2_lrs[i], k


def report(
    losses: dict[str, float], s: Settings, md_path: str, png_path: str, cpu_min: float, jobs: int = 1
) -> str:
    finished = seeds_done(losses, s)
    partial = (
        ""
        if finished == list(s.seeds)
        else f" **Incomplete: the full grid ran for seeds {finished} only; other seeds fill some cells.**"
    )
    lines = [
        f"# Learning-rate transfer: {s.name}",
        "",
        f"Command: `{s.command}`. "
        "Character LM on Python standard-library sources, pre-LN GPT (head dim 16), AdamW (betas 0.9, "
        f"0.95, no weight decay), {s.steps} steps of {s.batch_size} x {s.block_size} characters, linear "
        "warm-up 10% then cosine decay to 10%; validation loss (nats/char) averaged over seeds "
        f"{list(s.seeds)}.{partial} Base shape "
        f"(width {s.base_width}, depth {s.base_depth}); the x-axis is the base learning rate 2^k. "
        f"Sum of run times {cpu_min:.1f} min ({jobs} at a time) on a busy, shared 2-core CPU, one torch "
        "thread each. 'div' marks a run that diverged, 'n/a' one that did not run.",
        "",
    ]
    sections = [(WIDTH_SWEEP, s.widths, "width", f"depth {s.base_depth}")]
    if s.depths:
        sections.append((DEPTH_SWEEP, s.depths, "depth", f"width {s.depth_width}"))
    summary = []
    for (experiment, params), sizes, label, fixed in sections:
        lines += [f"## Across {label}s ({fixed})", ""]
        header = f"| parameterization | {label} | " + " | ".join(f"k={k}" for k in s.log2_lrs)
        lines += [header + " | best k (grid) | best k (fit) |", "|" + "---|" * (len(s.log2_lrs) + 4)]
        for p in params:
            bests = []
            for size in sizes:
                curve = mean_curve(losses, s, experiment, p, size)
                grid, fit = best_log2_lr(curve, s.log2_lrs)
                bests.append(grid)
                cells = " | ".join(
                    "n/a" if math.isnan(v) else "div" if math.isinf(v) else f"{v:.3f}" for v in curve
                )
                edge = " (grid edge)" if grid in (s.log2_lrs[0], s.log2_lrs[-1]) else ""
                lines.append(f"| {p} | {size} | {cells} | {grid}{edge} | {fit:.2f} |")
            summary.append(
                f"- {p}, {label}s {list(sizes)}: best log2 lr {bests} (drift {max(bests) - min(bests)})"
            )
        lines.append("")
    lines += [
        "## Best log2 learning rate",
        "",
        *summary,
        "",
        f"![loss vs lr]({os.path.basename(png_path)})",
        "",
    ]
    text = "\n".join(lines)
    with open(md_path, "w") as f:
        f.write(text)
    plot(losses, s, sections, png_path)
    return text


def plot(losses: dict[str, float], s: Settings, sections: list, png_path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install matplotlib); skipping the plot", file=sys.stderr)
        return
    panels = [
        (experiment, p, sizes, label) for (experiment, params), sizes, label, _ in sections for p in params
    ]
    fig, axes = plt.subplots(
        len(sections),
        2,
        figsize=(10, 4 * len(sections)),
        squeeze=False,
        sharey="row",
        constrained_layout=True,
    )
    for ax, (experiment, p, sizes, label) in zip(axes.flat, panels, strict=True):
        cmap = plt.get_cmap("viridis")
        for j, size in enumerate(sizes):
            curve = mean_curve(losses, s, experiment, p, size)
            xs = [k for k, v in zip(s.log2_lrs, curve, strict=True) if math.isfinite(v)]
            ys = [v for v in curve if math.isfinite(v)]
            color = cmap(j / max(1, len(sizes) - 1))
            ax.plot(xs, ys, "o-", color=color, label=f"{label} {size}")
            if ys:
                i = min(range(len(ys)), key=ys.__getitem__)
                ax.plot([xs[i]], [ys[i]], "*", color=color, markersize=14, markeredgecolor="k")
        ax.set_title(f"{p} across {label}s")
        ax.set_xlabel("log2 base learning rate")
        ax.set_ylabel("validation loss (nats/char)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    # Panels of a row share the y-axis: fit it to both panels' curves (not to the last one drawn).
    for row, ((experiment, params), sizes, _, _) in zip(axes, sections, strict=True):
        finite = [
            v
            for p in params
            for size in sizes
            for v in mean_curve(losses, s, experiment, p, size)
            if math.isfinite(v)
        ]
        if finite:
            low = min(finite)
            row[0].set_ylim(low - 0.05, min(max(finite), low + 1.2) + 0.05)
    fig.savefig(png_path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="widths only, 2 seeds, 200 short steps")
    parser.add_argument("--depth", action="store_true", help="with --quick: add the depth sweep (2, 4, 8)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (default 1)")
    args = parser.parse_args(argv)
    s = QUICK
    if args.quick and args.depth:
        # Same budget and files as --quick: the width runs already there are reused.
        s = Settings(**{**asdict(QUICK), "command": QUICK.command + " --depth", "depths": (2, 4, 8)})
    elif not args.quick:
        s = FULL
    torch.set_num_threads(args.threads)
    os.makedirs(RESULTS, exist_ok=True)
    base = os.path.join(RESULTS, s.name)
    losses, seconds = sweep(s, base + ".json", jobs=args.jobs, threads=args.threads)
    print(report(losses, s, base + ".md", base + ".png", sum(seconds.values()) / 60, args.jobs))


if __name__ == "__main__":
    main()

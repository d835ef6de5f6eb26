"""Loss against learning rate across widths (SP vs. muP) and depths (muP vs. CompleteP) on a character LM.

The experiment users trust before they tune small and transfer large: under muP the learning rate that
minimizes the loss stays put as the model widens, under SP it drifts down; under CompleteP it also stays put
as the model deepens, under muP without a depth rule it drifts.

Notation
--------
- ``n``: width (``n_embd``), ``L``: depth (``n_layer``); base shape ``(n_0, L_0) = (32, 2)``, where all
  parameterizations coincide.
- ``eta = 2^k``: the base AdamW learning rate; each parameter group gets ``eta`` times its
  ``hpo.transfer.scaling`` factor, so under muP the x-axis is the lr *at the base shape*.
- loss: mean validation cross-entropy (nats per character) after ``steps`` AdamW steps, averaged over seeds.

Model and data: ``examples/transfer_gpt`` (pre-LN GPT, head dim 16, untied head, Python standard-library
sources).

Usage::

    python -m benchmarks.mup_lr_transfer --preset cpu --jobs 2        # widths 32..256, 3 seeds, 400 steps (CPU)
    python -m benchmarks.mup_lr_transfer --preset depth_cpu --jobs 2  # depths 2..16 at width 64, 2 seeds (CPU)
    python -m benchmarks.mup_lr_transfer --preset quick   # widths 32..256, 2 seeds, 200 steps (CPU, noisy)
    python -m benchmarks.mup_lr_transfer --preset depth   # depths 2..16 at width 32, 1 seed, 300 steps (CPU)
    python -m benchmarks.mup_lr_transfer --preset full    # widths 32..256, depths 2..16, 3 seeds, 300 steps
    python -m benchmarks.mup_lr_transfer --preset gpu --device cuda --jobs 14 --time-limit 380 --out-dir DIR
    python -m benchmarks.mup_lr_transfer --report-only DIR/mup_lr_transfer_gpu.json   # md + png from a JSON

Any preset's grid can be overridden (``--widths``, ``--depths``, ``--lrs``, ``--seeds``, ``--steps``,
``--batch-size``, ``--block-size``, ``--depth-width``; lists as ``32,64`` or inclusive ranges as ``--lrs=-9:-4``,
with ``=`` since the value starts with a minus; then pass ``--name`` so the results do not mix).
Writes ``<out-dir>/<name>.{json,md,png}`` (default ``benchmarks/results``). Finished runs are kept in the JSON
file and skipped when a command with the same budget runs again, so an interrupted sweep resumes where it
stopped. ``--time-limit`` stops starting runs after that many seconds (seed-major order: whole seeds finish
first) and reports what finished. ``benchmarks/device_mup.sh`` runs the GPU sweeps within a time budget.
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
from dataclasses import asdict, dataclass, fields, replace

import torch

from benchmarks import _torch_only

_torch_only.install()  # before examples.transfer_gpt imports hpo.transfer

from examples.transfer_gpt.model import CharCorpus, GPTConfig, load_corpus, train  # noqa: E402

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
    device: str = "cpu"
    version: int = 2  # of the model and its parameterization; results of another version are not reused

    @classmethod
    def from_dict(cls, d: dict) -> Settings:
        known = {f.name for f in fields(cls)}
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known}
        return cls(**kw)


PRESETS: dict[str, Settings] = {
    "quick": Settings(
        name="mup_lr_transfer_quick",
        command="python -m benchmarks.mup_lr_transfer --preset quick",
        widths=(32, 64, 128, 256),
        depths=(),
        log2_lrs=tuple(range(-12, -4)),
        seeds=(0, 1),
        steps=200,
        batch_size=8,
        block_size=64,
    ),
    # Reduced CPU depth sweep: the base width, so a depth-16 run costs what a width-128 run does.
    "depth": Settings(
        name="mup_depth_transfer_cpu",
        command="python -m benchmarks.mup_lr_transfer --preset depth",
        widths=(),
        depths=(2, 4, 8, 16),
        log2_lrs=tuple(range(-9, -3)),
        seeds=(0,),
        steps=300,
        batch_size=8,
        block_size=64,
        depth_width=32,
    ),
    # The CPU benchmark of record (issue 7): 4x the quick preset's characters a step and 2x its steps, which is
    # what it takes on CPU for the loss-vs-lr curves to have an optimum sharper than the seed noise.
    "cpu": Settings(
        name="mup_lr_transfer_cpu",
        command="python -m benchmarks.mup_lr_transfer --preset cpu",
        widths=(32, 64, 128, 256),
        depths=(),
        log2_lrs=tuple(range(-11, -3)),
        seeds=(0, 1, 2),
        steps=400,
        batch_size=16,
        block_size=64,
    ),
    "depth_cpu": Settings(
        name="mup_depth_transfer_cpu64",
        command="python -m benchmarks.mup_lr_transfer --preset depth_cpu",
        widths=(),
        depths=(2, 4, 8, 16),
        log2_lrs=tuple(range(-10, -3)),
        seeds=(0, 1),
        steps=400,
        batch_size=16,
        block_size=64,
        depth_width=64,
    ),
    "full": Settings(
        name="mup_lr_transfer",
        command="python -m benchmarks.mup_lr_transfer --preset full",
        widths=(32, 64, 128, 256),
        depths=(2, 4, 8, 16),
        log2_lrs=tuple(range(-12, -3)),
        seeds=(0, 1, 2),
        steps=300,
        batch_size=16,
        block_size=64,
    ),
    # One GPU (benchmarks/device_mup.sh): widths to 2048 at the base depth, depths to 16 at width 128.
    "gpu": Settings(
        name="mup_lr_transfer_gpu",
        command="python -m benchmarks.mup_lr_transfer --preset gpu --device cuda",
        widths=(32, 64, 128, 256, 512, 1024, 2048),
        depths=(2, 4, 8, 16),
        log2_lrs=tuple(range(-12, -3)),
        seeds=(0, 1, 2),
        steps=500,
        batch_size=32,
        block_size=64,
        depth_width=128,
        device="cuda",
    ),
}

# (experiment, parameterization) pairs compared in each sweep
WIDTH_SWEEP = ("width", ("sp", "mup"))
DEPTH_SWEEP = ("depth", ("mup", "completep"))


def _budget(settings: dict) -> tuple:
    """What makes two runs with the same key comparable: runs saved under the same budget are reused."""
    keys = ("steps", "batch_size", "block_size", "depth_width", "base_width", "base_depth", "device", "version")
    return tuple(settings.get(k, "cpu" if k == "device" else None) for k in keys)


def run_key(experiment: str, parameterization: str, size: int, log2_lr: int, seed: int) -> str:
    return f"{experiment}/{parameterization}/{size}/{log2_lr}/{seed}"


def alias(s: Settings, key: str) -> str:
    """The key of an identical run: at the base depth muP and CompleteP are the same model as the width
    sweep's muP model of width ``depth_width``, so the depth sweep reuses those runs; at the base width muP
    is SP, so the width sweep reuses the SP run."""
    experiment, p, size, k, seed = key.split("/")
    if experiment == "depth" and int(size) == s.base_depth and s.depth_width in s.widths:
        return run_key("width", "mup", s.depth_width, int(k), int(seed))
    if experiment == "depth" and int(size) == s.base_depth and p == "completep":
        return run_key("depth", "mup", int(size), int(k), int(seed))
    if experiment == "width" and int(size) == s.base_width and p == "mup":
        return run_key("width", "sp", int(size), int(k), int(seed))
    return key


def shape_of(s: Settings, experiment: str, size: int) -> tuple[int, int]:
    return (size, s.base_depth) if experiment == "width" else (s.depth_width, size)


def one_run(
    s: Settings,
    corpus: CharCorpus,
    experiment: str,
    parameterization: str,
    size: int,
    log2_lr: int,
    seed: int,
) -> float:
    width, depth = shape_of(s, experiment, size)
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
    return train(
        cfg, corpus, lr=2.0**log2_lr, steps=s.steps, batch_size=s.batch_size, seed=seed, device=s.device
    )


_CORPUS: CharCorpus | None = None
_DEADLINE = math.inf


def _worker_init(threads: int, deadline: float) -> None:
    global _CORPUS, _DEADLINE
    torch.set_num_threads(threads)
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    _CORPUS = load_corpus()
    _DEADLINE = deadline


def _worker_run(s: Settings, experiment: str, p: str, size: int, k: int, seed: int) -> tuple[float, float] | None:
    if time.time() > _DEADLINE:
        return None  # out of time: leave it for a later run of the same command
    t0 = time.time()
    loss = one_run(s, _CORPUS, experiment, p, size, k, seed)
    return loss, time.time() - t0


def _cost(s: Settings, experiment: str, size: int) -> float:
    """Rough relative cost of a run, to start the longest runs of a seed first."""
    width, depth = shape_of(s, experiment, size)
    return depth * (1.0 + (width / 256) ** 2)


def load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def sweep(
    s: Settings, path: str, jobs: int = 1, threads: int = 1, time_limit: float | None = None
) -> tuple[dict[str, float], dict[str, float], dict]:
    """Run every (experiment, parameterization, size, lr, seed) not already in ``path``, ``jobs`` at a time.

    Seed-major order (within a seed the longest runs first): the whole grid for the first seed comes first, so
    a sweep stopped early still has complete curves for the seeds it finished. No run starts after
    ``time_limit`` seconds. Returns the losses and the seconds each run took, keyed by ``run_key``, and the
    run's metadata (device, jobs, wall time).
    """
    done: dict[str, float] = {}
    seconds: dict[str, float] = {}
    if os.path.exists(path):
        saved = load(path)
        if _budget(saved.get("settings", {})) == _budget(asdict(s)):
            done = {k: float(v) for k, v in saved["losses"].items()}
            seconds = saved.get("seconds", {})
    todo = []
    for seed in s.seeds:
        chunk = []
        for experiment, params in (WIDTH_SWEEP, DEPTH_SWEEP):
            for size in s.widths if experiment == "width" else s.depths:
                for p in params:
                    for k in s.log2_lrs:
                        key = run_key(experiment, p, size, k, seed)
                        if key not in done and alias(s, key) == key:
                            chunk.append((key, (s, experiment, p, size, k, seed)))
        chunk.sort(key=lambda item: -_cost(s, item[1][1], item[1][3]))
        todo += chunk
    start = time.time()
    deadline = start + time_limit if time_limit else math.inf
    device = s.device
    if torch.device(device).type == "cuda":
        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cuda (not available)"
    meta = {
        "device": device,
        "jobs": jobs,
        "threads": threads,
        "time_limit": time_limit,
        "skipped": 0,
        "resumed_runs": len(done),  # loaded from an earlier run of the same budget, not run now
    }
    ctx = multiprocessing.get_context("spawn")
    skipped = 0
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init, initargs=(threads, deadline)) as pool:
        futures = {pool.submit(_worker_run, *args): key for key, args in todo}
        for i, future in enumerate(as_completed(futures)):
            key = futures[future]
            result = future.result()
            if result is None:
                skipped += 1
                continue
            done[key], seconds[key] = result
            print(
                f"[{i + 1}/{len(todo)}] {key}: loss {done[key]:.4f} ({seconds[key]:.1f}s, "
                f"{(time.time() - start) / 60:.1f} min so far)",
                flush=True,
            )
            meta.update(wall_s=round(time.time() - start, 1), skipped=skipped)
            _save(path, s, done, seconds, meta)
    meta.update(wall_s=round(time.time() - start, 1), skipped=skipped)
    _save(path, s, done, seconds, meta)
    if skipped:
        print(f"time limit: {skipped} runs not started; run the same command again to add them", flush=True)
    return done, seconds, meta


def _save(path: str, s: Settings, done: dict, seconds: dict, meta: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"settings": asdict(s), "losses": done, "seconds": seconds, "meta": meta}, f, indent=0)
    os.replace(tmp, path)  # a kill mid-write leaves the previous file whole


def curve_seeds(losses: dict[str, float], s: Settings, experiment: str, p: str, size: int) -> list[int]:
    """The seeds whose runs cover this curve's whole lr grid (so every point of it averages the same seeds)."""
    return [
        seed
        for seed in s.seeds
        if all(alias(s, run_key(experiment, p, size, k, seed)) in losses for k in s.log2_lrs)
    ]


def mean_curve(losses: dict[str, float], s: Settings, experiment: str, p: str, size: int) -> list[float]:
    """Seed-mean loss at each grid lr; ``inf`` where any seed diverged.

    Averages the seeds that cover the whole curve (``curve_seeds``), or, where none does, whatever ran.
    """
    seeds = curve_seeds(losses, s, experiment, p, size) or list(s.seeds)
    out = []
    for k in s.log2_lrs:
        keys = [alias(s, run_key(experiment, p, size, k, seed)) for seed in seeds]
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
    i = min(range(len(curve)), key=lambda j: curve[j] if math.isfinite(curve[j]) else math.inf)
    k = float(log2_lrs[i])
    if 0 < i < len(curve) - 1 and all(math.isfinite(curve[j]) for j in (i - 1, i, i + 1)):
        y_m, y_0, y_p = curve[i - 1], curve[i], curve[i + 1]
        denom = y_m - 2 * y_0 + y_p
        if denom > 0:
            k += (y_m - y_p) / (2 * denom)
    return log2_lrs[i], k


def summarize(losses: dict[str, float], s: Settings) -> dict[str, dict[str, dict]]:
    """Per sweep and parameterization: each size's best log2 lr (grid and fit) and best loss."""
    out: dict[str, dict[str, dict]] = {}
    for (experiment, params), sizes in ((WIDTH_SWEEP, s.widths), (DEPTH_SWEEP, s.depths)):
        for p in params:
            rows = {}
            for size in sizes:
                curve = mean_curve(losses, s, experiment, p, size)
                if not any(math.isfinite(v) for v in curve):
                    continue
                grid, fit = best_log2_lr(curve, s.log2_lrs)
                rows[size] = {"grid": grid, "fit": fit, "loss": min(v for v in curve if math.isfinite(v))}
            if rows:
                out.setdefault(experiment, {})[p] = rows
    return out


def report(losses: dict[str, float], s: Settings, md_path: str, png_path: str, meta: dict, seconds: dict) -> str:
    finished = seeds_done(losses, s)
    partial = (
        ""
        if finished == list(s.seeds)
        else f" **Incomplete: the whole grid ran for seeds {finished} of {list(s.seeds)}; each curve averages "
        "the seeds that cover all its learning rates (column 'seeds').**"
    )
    device = meta.get("device", s.device)
    where = (
        f"on a busy, shared 2-core CPU, one torch thread each ({meta.get('jobs', 1)} at a time)"
        if s.device == "cpu"
        else f"on one {device} ({meta.get('jobs', 1)} processes sharing it)"
    )
    wall = f", wall time {meta['wall_s'] / 60:.1f} min" if meta.get("wall_s") else ""
    if meta.get("resumed_runs"):
        wall += f" for this call, which resumed {meta['resumed_runs']} runs from an earlier call"
    lines = [
        f"# Learning-rate transfer: {s.name}",
        "",
        f"Command: `{s.command}`. "
        "Character LM on Python standard-library sources, pre-LN GPT (head dim 16), AdamW (betas 0.9, "
        f"0.95, no weight decay), {s.steps} steps of {s.batch_size} x {s.block_size} characters, linear "
        "warm-up 10% then cosine decay to 10%; validation loss (nats/char) averaged over seeds "
        f"{list(s.seeds)}.{partial} Base shape "
        f"(width {s.base_width}, depth {s.base_depth}); the x-axis is the base learning rate 2^k. "
        f"Sum of run times {sum(seconds.values()) / 60:.1f} min {where}{wall}. "
        "'div' marks a run that diverged, 'n/a' one that did not run.",
        "",
    ]
    sections = []
    if s.widths:
        sections.append((WIDTH_SWEEP, s.widths, "width", f"depth {s.base_depth}"))
    if s.depths:
        sections.append((DEPTH_SWEEP, s.depths, "depth", f"width {s.depth_width}"))
    summary = []
    for (experiment, params), sizes, label, fixed in sections:
        lines += [f"## Across {label}s ({fixed})", ""]
        header = f"| parameterization | {label} | " + " | ".join(f"k={k}" for k in s.log2_lrs)
        lines += [header + " | best k (grid) | best k (fit) | seeds |", "|" + "---|" * (len(s.log2_lrs) + 5)]
        for p in params:
            grids, fits, bests, ran = [], [], [], []
            for size in sizes:
                curve = mean_curve(losses, s, experiment, p, size)
                cells = " | ".join(
                    "n/a" if math.isnan(v) else "div" if math.isinf(v) else f"{v:.3f}" for v in curve
                )
                n_seeds = len(curve_seeds(losses, s, experiment, p, size))
                if not n_seeds:  # no seed ran every lr of this curve: its argmin means nothing
                    lines.append(f"| {p} | {size} | {cells} | n/a | n/a | 0 |")
                    continue
                grid, fit = best_log2_lr(curve, s.log2_lrs)
                grids.append(grid)
                fits.append(fit)
                bests.append(min(v for v in curve if math.isfinite(v)))
                ran.append(size)
                edge = " (grid edge)" if grid in (s.log2_lrs[0], s.log2_lrs[-1]) else ""
                lines.append(f"| {p} | {size} | {cells} | {grid}{edge} | {fit:.2f} | {n_seeds} |")
            if grids:
                summary.append(
                    f"- {p}, {label}s {ran}: best log2 lr {grids} (drift {max(grids) - min(grids)}; fitted "
                    f"{[round(f, 2) for f in fits]}, drift {max(fits) - min(fits):.2f}); best loss "
                    f"{[round(b, 3) for b in bests]}"
                )
        lines.append("")
    lines += [
        "## Best log2 learning rate and best loss",
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
    if not sections:
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
            whole = bool(curve_seeds(losses, s, experiment, p, size))
            name = f"{label} {size}" + ("" if whole else " (part)")
            ax.plot(xs, ys, "o-" if whole else "o:", color=color, label=name)
            if ys and whole:
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


def _ints(text: str) -> tuple[int, ...]:
    """``'32,64,128'`` or a range ``'-12:-4'`` (inclusive) as a tuple of ints."""
    if ":" in text:
        lo, hi = (int(v) for v in text.split(":"))
        return tuple(range(lo, hi + 1))
    return tuple(int(v) for v in text.split(",") if v.strip())


def regenerate(json_path: str) -> str:
    """Write the md and png next to a results JSON (e.g. one returned from the GPU machine)."""
    saved = load(json_path)
    s = Settings.from_dict(saved["settings"])
    stem = json_path[: -len(".json")] if json_path.endswith(".json") else json_path
    losses = {k: float(v) for k, v in saved["losses"].items()}
    return report(losses, s, stem + ".md", stem + ".png", saved.get("meta", {}), saved.get("seconds", {}))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None, help="the grid and budget")
    parser.add_argument("--quick", action="store_true", help="same as --preset quick")
    parser.add_argument("--depth", action="store_true", help="with --quick: add depths 2, 4, 8 at width 64")
    parser.add_argument("--device", default=None, help="torch device, e.g. cuda (default: the preset's)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (default 1)")
    parser.add_argument("--time-limit", type=float, default=None, help="start no run after this many seconds")
    parser.add_argument("--out-dir", default=RESULTS, help="where the json/md/png go")
    parser.add_argument("--name", default=None, help="file stem (default: the preset's)")
    parser.add_argument("--report-only", metavar="JSON", default=None, help="regenerate md + png from a JSON")
    for flag in ("widths", "depths", "lrs", "seeds"):
        parser.add_argument(f"--{flag}", default=None, help="comma list or lo:hi (inclusive)")
    for flag in ("steps", "batch-size", "block-size", "depth-width"):
        parser.add_argument(f"--{flag}", type=int, default=None)
    args = parser.parse_args(argv)
    if args.report_only:
        print(regenerate(args.report_only))
        return
    preset = args.preset or ("quick" if args.quick else "full")
    s = PRESETS[preset]
    if args.quick and args.depth:
        s = replace(s, depths=(2, 4, 8))
    over = {
        "widths": args.widths and _ints(args.widths),
        "depths": args.depths and _ints(args.depths),
        "log2_lrs": args.lrs and _ints(args.lrs),
        "seeds": args.seeds and _ints(args.seeds),
        "steps": args.steps,
        "batch_size": args.batch_size,
        "block_size": args.block_size,
        "depth_width": args.depth_width,
        "device": args.device,
        "name": args.name,
    }
    s = replace(s, **{k: v for k, v in over.items() if v is not None})
    s = replace(s, command="python -m benchmarks.mup_lr_transfer " + " ".join(argv))
    if torch.device(s.device).type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {s.device}: CUDA is not available here; use --device cpu")
    torch.set_num_threads(args.threads)
    os.makedirs(args.out_dir, exist_ok=True)
    base = os.path.join(args.out_dir, s.name)
    losses, seconds, meta = sweep(s, base + ".json", jobs=args.jobs, threads=args.threads, time_limit=args.time_limit)
    print(report(losses, s, base + ".md", base + ".png", meta, seconds))


if __name__ == "__main__":
    main()

"""The issue-4 tables from stored runs: median final log10 regret per problem, method and worker count, and the two
criteria (AEGiS at or below the best peer at 4+ workers; within 0.3 of GP-EI at 1 worker).

Reads every ``raw/synthetic/<problem>/<method>/w<W>-exponential-b100-s<seed>.json`` under the given result
directories (later directories win for the same run) and prints markdown.

Usage: ``python -m benchmarks.aegis_summary benchmarks/results [more dirs] [--seeds 10] [--workers 1 4 8 16]
[--below -1.0] [--ours METHOD] [--versus BASE] [--plot PREFIX]``

``--ours`` scores an ablation (e.g. ``benchmarks.aegis_variants:AEGiSPaperBudget``) against the criteria in place of
``aegis``; ``--versus aegis`` then adds its seed-paired comparison with the default, both medians over the seeds the
two share. ``--plot PREFIX`` also draws, per worker count, the median and interquartile band of each method's
best-so-far log10 regret against evaluations (``PREFIX_w4.png`` ...) for the methods given by ``--methods``
(``--ours`` and ``--versus`` do not change them).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import binomtest

PROBLEMS = ("branin", "hartmann6", "ackley5", "levy10", "styblinski_tang10", "michalewicz10")
PEERS = ("optuna_gp", "optuna_tpe", "optuna_random", "random")
_NAME = re.compile(r"w(\d+)-exponential-b100-s(\d+)\.json$")


def _records(
    dirs: list[Path], seeds: int, methods: list[str] | None = None
) -> Iterator[tuple[tuple[str, str, int, int], dict[str, Any]]]:
    """Yield ``((problem, method, workers, seed), record)`` for every completed run with seed < ``seeds`` (of
    ``methods`` only, if given); a file is parsed only when its path matches. Later directories come later."""
    for d in dirs:
        for path in sorted((d / "raw" / "synthetic").glob("*/*/*.json")):
            m = _NAME.search(path.name)
            if not m or int(m.group(2)) >= seeds or (methods is not None and path.parent.name not in methods):
                continue
            try:
                rec = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if rec.get("status") == "ok" and rec["summary"].get("log10_regret") is not None:
                yield (path.parent.parent.name, path.parent.name, int(m.group(1)), int(m.group(2))), rec


def load(dirs: list[Path], seeds: int) -> dict[tuple[str, str, int], dict[int, float]]:
    """``{(problem, method, workers): {seed: final log10 regret}}`` of the completed runs with seed < ``seeds``."""
    out: dict[tuple[str, str, int], dict[int, float]] = defaultdict(dict)
    for (problem, method, workers, seed), rec in _records(dirs, seeds):
        out[(problem, method, workers)][seed] = float(rec["summary"]["log10_regret"])
    return out


def _cell(vals: dict[int, float]) -> str:
    if not vals:
        return "-"
    v = np.array(list(vals.values()))
    q25, q50, q75 = np.percentile(v, [25, 50, 75])
    return f"{q50:.2f} [{q25:.2f}, {q75:.2f}] (n={v.size})"


def _median(vals: dict[int, float]) -> float | None:
    return float(np.median(list(vals.values()))) if vals else None


def _paired(ours: dict[int, float], theirs: dict[int, float], reps: int = 2000) -> str:
    """Seed-paired comparison: on how many shared seeds ours is lower, the two-sided sign test's p, and a
    bootstrap 90% interval (over seeds) of the difference of the medians, ours minus theirs."""
    seeds = sorted(set(ours) & set(theirs))
    if not seeds:
        return "no shared seeds"
    a, b = np.array([ours[s] for s in seeds]), np.array([theirs[s] for s in seeds])
    lower, ties = int(np.sum(a < b)), int(np.sum(a == b))
    p = binomtest(lower, len(seeds) - ties).pvalue if len(seeds) > ties else 1.0
    idx = np.random.default_rng(0).integers(0, len(seeds), (reps, len(seeds)))
    diff = np.median(a[idx], axis=1) - np.median(b[idx], axis=1)
    lo, hi = np.percentile(diff, [5, 95])
    return (
        f"lower on {lower} of {len(seeds)} seeds (sign test p = {p:.2f}), "
        f"median difference 90% CI [{lo:+.2f}, {hi:+.2f}]"
    )


def _below(vals: dict[int, float], threshold: float) -> str:
    """``k/n (median m)``: how many runs ended below ``threshold`` and their median (e.g. Hartmann-6's runs that
    left the local basin, whose log10 regret is -0.92)."""
    v = np.array(list(vals.values()))
    hit = v[v < threshold]
    return f"{hit.size}/{v.size}" + (f" (median {np.median(hit):.2f})" if hit.size else "")


def report(
    data: dict[tuple[str, str, int], dict[int, float]],
    workers: list[int],
    methods: list[str],
    below: float | None = None,
    ours: str = "aegis",
    versus: str | None = None,
) -> str:
    """Markdown: per worker count, the table of ``methods``, then the criteria with ``ours`` as AEGiS (and, with
    ``versus``, the seed-paired comparison of ``ours`` against that method on every problem)."""
    lines: list[str] = []
    for w in workers:
        cols = [m for m in methods if any((p, m, w) in data for p in PROBLEMS)]
        cols += [m for m in (ours, versus) if m and m not in cols and any((p, m, w) in data for p in PROBLEMS)]
        if not cols:
            continue
        lines += [
            f"### {w} worker(s): median [IQR] final log10 regret after 100 evaluations",
            "",
            "| problem | " + " | ".join(c.rsplit(":", 1)[-1] for c in cols) + " |",
            "|---" * (len(cols) + 1) + "|",
        ]
        for p in PROBLEMS:
            lines.append(f"| {p} | " + " | ".join(_cell(data.get((p, m, w), {})) for m in cols) + " |")
        lines.append("")
        if below is not None:
            for p in PROBLEMS:
                cells = [f"{m} {_below(data[(p, m, w)], below)}" for m in cols if data.get((p, m, w))]
                lines.append(f"- {p}, runs below {below:g}: " + ", ".join(cells))
            lines.append("")
        if w >= 4:
            wins, total = 0, 0
            for p in PROBLEMS:
                a = _median(data.get((p, ours, w), {}))
                peers = {m: _median(data.get((p, m, w), {})) for m in PEERS}
                peers = {m: v for m, v in peers.items() if v is not None}
                if a is None or not peers:
                    continue
                best = min(peers, key=peers.get)
                total += 1
                ok = a <= peers[best]
                wins += ok
                verdict = "at or below" if ok else "ABOVE"
                paired = _paired(data.get((p, ours, w), {}), data.get((p, best, w), {}))
                lines.append(f"- {p}: AEGiS {a:.2f} vs best peer {best} {peers[best]:.2f}: {verdict}; {paired}")
            lines += [f"- **{w} workers: AEGiS at or below the best peer on {wins} of {total} problems**", ""]
        if w == 1:
            for p in PROBLEMS:
                a, g = _median(data.get((p, ours, 1), {})), _median(data.get((p, "gp_ei", 1), {}))
                if a is None or g is None:
                    continue
                verdict = "within 0.3 (or better)" if a - g <= 0.3 else "WORSE by more than 0.3"
                paired = _paired(data.get((p, ours, 1), {}), data.get((p, "gp_ei", 1), {}))
                lines.append(f"- {p}: AEGiS {a:.2f} vs GP-EI {g:.2f}: difference {a - g:+.2f}, {verdict}; {paired}")
            lines.append("")
        if versus:
            for p in PROBLEMS:
                a, b = data.get((p, ours, w), {}), data.get((p, versus, w), {})
                seeds = sorted(set(a) & set(b))
                if seeds:
                    a, b = {s: a[s] for s in seeds}, {s: b[s] for s in seeds}
                    lines.append(
                        f"- {p}: {ours} {_median(a):.2f} vs {versus} {_median(b):.2f} on the same {len(seeds)} "
                        f"seeds; " + _paired(a, b)
                    )
                elif a or b:
                    lines.append(f"- {p}: {ours} and {versus} share no seed at {w} worker(s)")
            lines.append("")
    return "\n".join(lines)


def plot(dirs: list[Path], seeds: int, workers: list[int], methods: list[str], prefix: Path) -> list[Path]:
    """One figure per worker count: each method's median best-so-far log10 regret (band: interquartile range)
    over the runs with seed < ``seeds``, on the six problems. Later directories win for the same run."""
    from benchmarks import report as rp

    runs = dict(_records(dirs, seeds, methods))  # later directories win for the same run
    groups = rp.cells(list(runs.values()))
    paths = []
    for w in workers:
        sub = {k: v for k, v in groups.items() if k[2] == w}
        if not sub:
            continue
        path = Path(f"{prefix}_w{w}.png")
        title = f"synthetic, {w} worker(s), budget 100: median and IQR over {seeds} seeds"
        rp.progress_figure(sub, "evals", path, title, "evaluations", "log10 regret")
        paths.append(path)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="+", type=Path, help="result directories holding raw/synthetic")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--methods", nargs="+", default=["aegis", "gp_ei", *PEERS])
    ap.add_argument(
        "--below",
        type=float,
        default=None,
        help="also count, per problem and method, the runs that ended below this log10 regret",
    )
    ap.add_argument("--ours", default="aegis", help="the method scored as AEGiS (an ablation's name, say)")
    ap.add_argument("--versus", default=None, help="also compare --ours seed by seed with this method")
    ap.add_argument("--plot", type=Path, default=None, help="also write PREFIX_w<W>.png for each worker count")
    args = ap.parse_args()
    if args.plot:
        for path in plot(args.dirs, args.seeds, args.workers, args.methods, args.plot):
            print(f"wrote {path}")
    print(report(load(args.dirs, args.seeds), args.workers, args.methods, args.below, args.ours, args.versus))


if __name__ == "__main__":
    main()

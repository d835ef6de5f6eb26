#!/usr/bin/env bash
# The issue-4 grid (synthetic suite, AEGiS / GP-EI / Optuna GPSampler, 10 seeds, 1/4/8/16 workers) on a many-core
# machine without internet, optuna or ray. Resumable: each finished run is one JSON file under
# benchmarks/results/raw/synthetic/<problem>/<method>/, and runs already stored are skipped.
#
#   JOBS=8 BUDGET_S=480 bash benchmarks/device_synthetic.sh
#
# Needs: Python 3.12 with torch, botorch, gpytorch, numpy, scipy, pandas, pyyaml; the wheels Optuna 5 needs in .whl/
# (see the download command in benchmarks/results/aegis_synthetic.md). Installs them to /tmp/site (no index, no
# dependencies resolved: every wheel is there), runs the grid in priority order (4 workers first, in two halves of
# the seeds so that a cut-off grid still has balanced seeds; then 1, 8, 16 workers) under one overall timeout, then
# tars the raw records of the three methods into "$OUT/synthetic_raw.tgz" ($OUT defaults to ./device_out).
set -u
cd "$(dirname "$0")/.."
JOBS=${JOBS:-8}
BUDGET_S=${BUDGET_S:-480}
OUT=${OUT:-$PWD/device_out}
PY=${PYTHON:-python3}
RESULTS=${RESULTS:-benchmarks/results}  # the harness's --out; raw records go to $RESULTS/raw/synthetic
EXTRA_ARGS=${EXTRA_ARGS:-}  # e.g. "--problems branin --budget 14" for a smoke test
mkdir -p "$OUT"
LOG="$OUT/device_synthetic.log"

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl >>"$LOG" 2>&1 \
        || echo "wheel install failed (see $LOG)" | tee -a "$LOG"
else
    echo "no wheels in .whl/: without Optuna the harness (benchmarks/peers.py imports it) cannot start" | tee -a "$LOG"
fi
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export CUDA_VISIBLE_DEVICES=""  # CPU runs, as on the development machine: the regret must not depend on the card

{
    echo "start $(date -u +%FT%TZ) jobs=$JOBS budget_s=$BUDGET_S nproc=$(nproc --all)"
    "$PY" -c "import sys, torch, botorch, gpytorch, optuna; print(sys.version.split()[0], 'torch', torch.__version__,
'botorch', botorch.__version__, 'gpytorch', gpytorch.__version__, 'optuna', optuna.__version__)"
} >>"$LOG" 2>&1

STAMP="$OUT/.start"
touch "$STAMP"
METHODS=${METHODS:-aegis gp_ei optuna_gp}
# An ablation, after the three methods' 4-worker runs: AEGiS without its Pareto move (VARIANTS="" to skip).
VARIANTS=${VARIANTS-benchmarks.aegis_variants:AEGiSThompsonOnly}
# Phases "workers|seeds|methods", one a line (PHASES overrides them; METHODS names the methods): 4 workers first
# (seeds 0-4, then 5-9, so that a grid cut off by the deadline still has balanced seeds), then 1, 8, 16 workers.
PHASES=${PHASES:-"4|5|$METHODS
4|10|$METHODS
4|10|$VARIANTS
1|5|$METHODS
1|10|$METHODS
8|5|$METHODS
8|10|$METHODS
16|5|$METHODS
16|10|$METHODS"}
# One overall deadline; timeout signals its whole process group, so the harness's worker processes stop too. A run
# cut off mid-way leaves no file (records are written to a temporary name and renamed).
export PY JOBS RESULTS EXTRA_ARGS PHASES
timeout -k 15 "$BUDGET_S" bash -c '
    while IFS="|" read -r w n methods; do
        [ -n "$methods" ] || continue
        echo "== workers $w seeds 0..$((n - 1)) methods $methods $(date -u +%T)"
        # shellcheck disable=SC2086
        "$PY" -m benchmarks run synthetic --methods $methods --seeds "$n" --workers "$w" --jobs "$JOBS" \
            --out "$RESULTS" $EXTRA_ARGS
    done <<< "$PHASES"
' >>"$LOG" 2>&1
rc=$?
echo "grid finished rc=$rc (124 = cut off by BUDGET_S) $(date -u +%FT%TZ)" >>"$LOG"

# The three methods' records (all of them: small JSON, about 10 kB a run), and a list of the ones new in this call.
find "$RESULTS/raw/synthetic" -name '*.json' -newer "$STAMP" >"$OUT/new_runs.txt" 2>/dev/null
files=$(for m in $METHODS $VARIANTS; do find "$RESULTS/raw/synthetic" -path "*/$m/*.json"; done)
# shellcheck disable=SC2086
tar czf "$OUT/synthetic_raw.tgz" $files
echo "$(wc -l <"$OUT/new_runs.txt") new runs; $(echo "$files" | wc -w) records in $OUT/synthetic_raw.tgz" | tee -a "$LOG"
tail -n 5 "$LOG"

#!/usr/bin/env bash
# muP/CompleteP learning-rate transfer on one GPU: widths 32..2048 (SP vs muP, depth 2) and depths 2..16
# (muP vs CompleteP, width 128), several seeds, within ${BUDGET_S:-480} seconds. Needs only torch (+ matplotlib
# for the PNG). Writes into "$OUT" (flat, 5 files): mup_lr_transfer_gpu.{json,md,png}, mup_gpu.log, gpu.txt.
#
#   OUT=/tmp/out BUDGET_S=480 bash benchmarks/device_mup.sh
#   python -m benchmarks.mup_lr_transfer --report-only /tmp/out/mup_lr_transfer_gpu.json   # md + png again
#
# Runs are ordered seed by seed (longest first within a seed); no run starts after 80% of the budget, and the
# report averages only the seeds that covered the whole grid. JOBS processes share the GPU (small models are
# launch-bound, so several processes keep it busy). EXTRA passes more flags, e.g. EXTRA="--steps 400".
# It resumes from benchmarks/results/mup_lr_transfer_gpu.json (seeds 0 and 1 whole, from two earlier calls), so a
# next call spends its budget on seed 2; RESUME=0 starts from scratch.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/device}
BUDGET_S=${BUDGET_S:-480}
JOBS=${JOBS:-14}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
LIMIT=$((BUDGET_S * 80 / 100))
# Resume from the runs an earlier call already did (same settings; the sweep skips them), unless OUT has its own.
SEED_JSON=benchmarks/results/mup_lr_transfer_gpu.json
if [ ! -f "$OUT/mup_lr_transfer_gpu.json" ] && [ -f "$SEED_JSON" ] && [ "${RESUME:-1}" = 1 ]; then
    cp "$SEED_JSON" "$OUT/mup_lr_transfer_gpu.json"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1 || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" >> "$OUT/gpu.txt" 2>&1
uptime >> "$OUT/gpu.txt"
# shellcheck disable=SC2086
timeout $((BUDGET_S - 10)) "$PY" -m benchmarks.mup_lr_transfer --preset gpu --device cuda --jobs "$JOBS" \
    --time-limit "$LIMIT" --out-dir "$OUT" ${EXTRA:-} > "$OUT/mup_gpu.log" 2>&1
echo "sweep exit code $?" >> "$OUT/mup_gpu.log"
# The sweep writes the report itself; if the timeout cut it short, write it from the JSON.
if [ -f "$OUT/mup_lr_transfer_gpu.json" ]; then
    "$PY" -m benchmarks.mup_lr_transfer --report-only "$OUT/mup_lr_transfer_gpu.json" > /dev/null 2>> "$OUT/mup_gpu.log"
fi
tail -n 30 "$OUT/mup_gpu.log"

#!/usr/bin/env bash
# workflow.sh for a machine with many cores: the proxy sweeps run CONC trials at a time and the target-shape
# checks JOBS runs at a time (both checks at once). From the repository root:
#   CONC=4 JOBS=8 bash examples/transfer_gpt/workflow_parallel.sh      # 16 cores: about 6 minutes
# MUON=1 also sweeps Muon and checks its transfer. RUNS sets where the sweeps go (default runs/transfer_gpt).
set -euo pipefail
HPO_TUNE=${HPO_TUNE:-hpo-tune}
RUNS=${RUNS:-runs/transfer_gpt}
TARGET=${TARGET:-width=128,depth=4}
CONC=${CONC:-4}
JOBS=${JOBS:-8}
tmp=$(mktemp -d)
for s in adamw adamw_sp muon; do
  sed "s/^max_concurrent: .*/max_concurrent: $CONC/" examples/transfer_gpt/sweep_$s.yaml > "$tmp/sweep_$s.yaml"
done
declare -A DIRS=([adamw]=adamw_completep [adamw_sp]=adamw_sp [muon]=muon_completep)
declare -A DIRECT=([adamw]=-9:-3 [adamw_sp]=-11:-3 [muon]=-9:-3)
sweep() {  # sweep, transfer and check one sweep file
  local s=$1 jobs=$2 dir=$RUNS/${DIRS[$1]}
  $HPO_TUNE "$tmp/sweep_$s.yaml" --quiet --directory "$dir"
  $HPO_TUNE transfer "$dir" --target "$TARGET"
  python -m examples.transfer_gpt.check "$dir" --grid= --direct="${DIRECT[$1]}" --jobs "$jobs"
}
sweep adamw "$JOBS" > "$RUNS.adamw.log" 2>&1 &
sleep 5
sweep adamw_sp "$JOBS" > "$RUNS.adamw_sp.log" 2>&1 &
if [ "${MUON:-0}" = 1 ]; then sleep 5; sweep muon "$JOBS" > "$RUNS.muon.log" 2>&1 & fi
wait
tail -n 4 "$RUNS".*.log

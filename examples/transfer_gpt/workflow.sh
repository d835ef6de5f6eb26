#!/usr/bin/env bash
# Tune small, transfer large: the whole workflow of docs/transfer_guide.md, one command per step, for CompleteP
# and (for comparison) SP. From the repository root:
#   bash examples/transfer_gpt/workflow.sh            # about an hour on a busy 2-core CPU
# Every step resumes where it stopped when run again. HPO_TUNE overrides the CLI (e.g. "python -m hpo").
set -euo pipefail
HPO_TUNE=${HPO_TUNE:-hpo-tune}
TARGET=${TARGET:-width=128,depth=4}
for sweep in adamw adamw_sp; do
  # the direct sweep's range: SP's best lr at the target lies lower than CompleteP's
  case $sweep in
    adamw) dir=runs/transfer_gpt/adamw_completep direct=-9:-3 ;;
    adamw_sp) dir=runs/transfer_gpt/adamw_sp direct=-11:-3 ;;
  esac
  # 1. sweep the proxy (width 32, depth 2): random search + ASHA, pausing and resuming trials from checkpoints
  $HPO_TUNE examples/transfer_gpt/sweep_$sweep.yaml --quiet
  # 2. transfer the best hyperparameters to the target shape (writes $dir/transferred.yaml)
  $HPO_TUNE transfer $dir --target "$TARGET"
  # 3. refine the learning rate on the proxy (base shape, 7 lrs x 2 seeds) and transfer the refined value
  python -m examples.transfer_gpt.refine $dir --lrs=-9:-3 --seeds 0 1
  # 4. train the target with them, and a direct learning-rate sweep at the target for comparison
  python -m examples.transfer_gpt.check $dir --grid= --direct=$direct
done

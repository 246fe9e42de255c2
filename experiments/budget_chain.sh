#!/usr/bin/env bash
# Issue 18: the budget runs one after another on one core (each resumes where it stopped).
# All use the AT run's held-out check on the test split (val_split=test) so that every run trains on the same 20,000
# images; the final evaluation uses last.pt, never a checkpoint chosen on the test split.
# Usage: bash experiments/budget_chain.sh   (run it with nohup; it is safe to kill and start again)
cd "$(dirname "$0")/.."
bash experiments/budget_runs.sh at-w025-e40-s0 none 0 40
bash experiments/budget_runs.sh ewas-w025-e40-s0 ewas 0 40 --val-split test
bash experiments/budget_runs.sh cas-w025-e40-s0 cas 0 40 --val-split test
bash experiments/budget_runs.sh cifs-w025-e40-s0 cifs 0 40 --val-split test

#!/usr/bin/env bash
# Speed on a CUDA machine, when one is lent: U-Net throughput at 256x256 with mixed precision (bf16 autocast
# where supported, else fp16 with a grad scaler) and channels_last, against a plain fp32 NCHW loop in the same
# run; then, unless STUDY=0, the reference-scale study (72 trials, 50 epochs, 4 at a time) timed end to end.
#
#   bash benchmarks/gpu_throughput.sh [OUT]
#
# Settings: AEROTUNE_DATA (the Dubai folder), PYTHON (default .venv/bin/python, else python3), STUDY (1 or 0),
# SIZES (default 256), and anything gpu_reference_study.sh reads (TIMEOUT). Figures go to OUT/throughput.txt;
# the study's output to OUT/study (see gpu_reference_study.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-runs/gpu-speed}"
data="${AEROTUNE_DATA:-$here/../shared/datasets/dubai-aerial}"
python="${PYTHON:-$here/.venv/bin/python}"
[ -x "$python" ] || python="python3"
mkdir -p "$out"

if ! "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA device visible to $python; this benchmark is meant for a GPU machine" >&2
  exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

# channels_last is the CUDA default (auto); the variants measure it off, and torch.compile on, in the same run.
"$python" "$here/benchmarks/train_throughput.py" --device cuda --data "$data" --sizes "${SIZES:-256}" \
  --repeats 5 --batches 10 --variants "channels_last=off,compile=on" --work "$out/cache" | tee "$out/throughput.txt"

if [ "${STUDY:-1}" = "1" ]; then
  start=$(date +%s)
  bash "$here/benchmarks/gpu_reference_study.sh" "$out/study" 2>&1 | tee "$out/study.log"
  echo "reference-scale study, end to end: $(( $(date +%s) - start )) s" | tee -a "$out/throughput.txt"
fi

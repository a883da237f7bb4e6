#!/usr/bin/env bash
# The reference-scale study on a GPU machine: the Dubai set at full resolution, 256x256 patches,
# 50 epochs per trial (HyperBand's R), 72 trials, 4 worker processes (one GPU each where several exist),
# the reference's NNI search space verbatim, minimising validation loss; the reference's initial
# parameters run as trial 0 (never pruned). Compare the epochs it spends with the reference's 3,455.
#
#   bash benchmarks/gpu_reference_study.sh [OUT] [extra aerotune tune options...]
#
# Prints the plan first (--dry-run), then runs; running it again resumes the study. Everything lands in
# OUT (default runs/gpu-reference-study): summary.json, trials.csv/json, best_params.json,
# best_checkpoint.pt. Settings worth knowing:
#   AEROTUNE_DATA   the Dubai folder (default ../shared/datasets/dubai-aerial next to the repository)
#   PYTHON          the interpreter with aerotune installed (default .venv/bin/python, else python3)
#   TIMEOUT         seconds after which no new trial starts (default 7200)
#   DEVICE          cpu to run it without a GPU (a smoke test of the script; default cuda)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-runs/gpu-reference-study}"
shift || true
data="${AEROTUNE_DATA:-$here/../shared/datasets/dubai-aerial}"
python="${PYTHON:-$here/.venv/bin/python}"
[ -x "$python" ] || python="python3"
timeout="${TIMEOUT:-7200}"

if [ "${DEVICE:-cuda}" = cuda ] && ! "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA device visible to $python; this study is meant for a GPU machine" >&2
  exit 1
fi
"$python" -c "import torch; print('GPUs:', [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])" || true
nproc_all="$(nproc)"

args=(tune --data "$data" --out "$out"
      --patch-size 256 --scale 1 --unknown-colors ignore --epochs 50
      --trials 72 --workers 4 --sampler tpe --seed 0 --study-name gpu-reference-study
      --min-resource 2 --reduction-factor 3 --timeout "$timeout"
      --set train.progress=false --set "train.threads=$(( nproc_all / 4 > 0 ? nproc_all / 4 : 1 ))"
      "$@")

"$python" -m aerotune "${args[@]}" --dry-run
start=$(date +%s)
"$python" -m aerotune "${args[@]}"
echo "wall time: $(( $(date +%s) - start )) s (the reference: 2 h 46 min with 4 trials at a time, 3,455 epochs)"

#!/usr/bin/env bash
# The quality benchmark at full scale on a lent GPU (the `device` tool: 15 minutes, one H100/H200), in one command
# that ends inside BUDGET seconds and appends results as each run finishes (benchmarks/quality.py), so a cut-short
# lease still returns what it finished:
#
#   1. the reference's protocol (random 80/20 patch split, all 8 tiles) at 256 px, default and reference recipes;
#   2. leave-one-tile-out folds at 256 px, as many as the budget allows, both recipes.
#
# The Dubai set (33 MB) travels with the working tree: copy it into a git-ignored folder and carry that folder:
#
#   echo /.data/ >> .git/info/exclude; mkdir -p .data; cp -r ../shared/datasets/dubai-aerial .data/
#   device run: bash benchmarks/gpu_quality.sh        with carry [".data"]
#
# Settings: BUDGET (seconds, default 540), EPOCHS (default 30), SCALE (default 1), PATCH (the cached patch side,
# default 256, the reference's: the default recipe trains on random 128-px windows of them, the reference on the
# whole patches; both are validated and scored on whole patches and whole tiles), FOLDS (default 1,...,8), PYTHON (default python3). Results land in $OUT (the device tool's), else
# runs/gpu-quality. Wheels in .whl/ (optuna and its needs, for a machine without them) are installed first.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${OUT:-runs/gpu-quality}"
python="${PYTHON:-python3}"
budget="${BUDGET:-540}"
mkdir -p "$out"
if ls "$here"/.whl/*.whl >/dev/null 2>&1; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$here"/.whl/*.whl && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
args=(--data "$here/.data/dubai-aerial" --work "$out/work" --epochs "${EPOCHS:-30}" --scale "${SCALE:-1}"
      --patch-size "${PATCH:-256}")
timeout "$budget" "$python" "$here/benchmarks/quality.py" "${args[@]}" --folds "${FOLDS:-1,2,3,4,5,6,7,8}" \
  2>&1 | tee "$out/quality.log"
"$python" "$here/benchmarks/quality.py" "${args[@]}" --report > "$out/quality.md"
cp "$out/work/results.jsonl" "$out/results.jsonl" 2>/dev/null || true

#!/usr/bin/env bash
# Record Dubai learning curves for the HPO replay (record_dubai.py) on a lent GPU machine, inside a 15-minute lease.
#
#   bash benchmarks/hpo_replay/gpu_record_dubai.sh [OUT]     # OUT defaults to $OUT (the device tool's), else runs/dubai-record
#
# SHARDS processes (default 4) share the GPU and append to one table, which starts as a copy of the committed
# benchmarks/hpo_replay/curves-dubai.jsonl (so a second lease continues the first); no run starts after BUDGET
# seconds (default 420: the machine's start, the cache and the copy-back fit in the rest of 15 minutes), and a run
# still going at BUDGET + GRACE seconds (default 120) is killed (it is lost, the table is not). The table, its meta
# file and the log land in OUT: commit them as benchmarks/hpo_replay/curves-dubai.jsonl and curves-dubai.meta.json.
#
# The Dubai set must be on the machine: DATA (default: ../shared/datasets/dubai-aerial beside the repository, else
# shared/datasets/dubai-aerial inside it, which the device tool carries where the checkout has it), or CACHE, a patch
# cache cut here with the same settings (scale 0.25, 64-px patches, unknown colours ignored) and carried.
# Settings: SHARDS, BUDGET, GRACE, EPOCHS (R, default 9), PYTHON (default python3).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:-${OUT:-runs/dubai-record}}"
shards="${SHARDS:-4}"
budget="${BUDGET:-420}"
grace="${GRACE:-120}"
epochs="${EPOCHS:-9}"
python="${PYTHON:-python3}"
work=/tmp/aerotune-dubai-record
mkdir -p "$out" "$work"
exec > >(tee -a "$out/record.log") 2>&1
export PYTHONPATH="$here/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

data="${DATA:-}"
for d in "$here/../shared/datasets/dubai-aerial" "$here/shared/datasets/dubai-aerial"; do
  [[ -z "$data" && -d "$d" ]] && data="$d"
done
src=(--data "${data:-/nonexistent}")
[[ -n "${CACHE:-}" ]] && src=(--cache "$CACHE")
if [[ -z "$data" && -z "${CACHE:-}" ]]; then
  echo "no Dubai set: set DATA=folder or CACHE=patch-cache (see the header of this script)"; exit 2
fi

table="$work/curves-dubai.jsonl"
committed="$here/benchmarks/hpo_replay/curves-dubai.jsonl"
[[ -f "$committed" && ! -f "$table" ]] && cp "$committed" "$table"
[[ -f "${committed%.jsonl}.meta.json" && ! -f "${table%.jsonl}.meta.json" ]] && cp "${committed%.jsonl}.meta.json" "${table%.jsonl}.meta.json"
touch "$table"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
threads=$(( $(nproc) / shards )); (( threads < 1 )) && threads=1

record=("$python" "$here/benchmarks/hpo_replay/record.py" --dataset dubai --out "$table" --epochs "$epochs")
"${record[@]}" "${src[@]}" --work "$work/w0" --meta-only || exit 1   # cut the cache and the chance loss, once
[[ -z "${CACHE:-}" ]] && src=(--cache "$work/w0/cache")               # every shard reads that cache
pids=()
for ((i = 0; i < shards; i++)); do
  timeout -s INT $(( budget + grace )) "${record[@]}" "${src[@]}" --work "$work/w$i" --shard "$i/$shards" \
    --deadline "$budget" --threads "$threads" > "$out/shard$i.log" 2>&1 &
  pids+=($!)
done
while :; do  # copy the table back as it grows: a lease cut short still returns what was recorded
  cp "$table" "${table%.jsonl}.meta.json" "$out/" 2>/dev/null
  alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
  (( alive )) || break
  sleep 15
done
cp "$table" "${table%.jsonl}.meta.json" "$out/"
tail -n 3 "$out"/shard*.log
echo "$(wc -l < "$table") runs in $out/curves-dubai.jsonl"

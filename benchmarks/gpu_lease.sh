#!/usr/bin/env bash
# Everything a short GPU lease (the `device` tool's H200: 15 minutes, 16 cores) should measure, in one command
# that ends inside BUDGET seconds and writes as it goes, so a cut-short run still returns its figures:
#
#   1. the missing configurations of the learning-curve table (hpo_replay/record.py), on SHARDS CPU
#      processes beside the GPU work (CPU fp32, 1 thread each, as the committed rows were recorded);
#   2. training throughput at 256x256 on CUDA (train_throughput.py): plain fp32 NCHW against aerotune's path
#      (bf16 autocast, channels_last, fused Adam), channels_last off and torch.compile on, in the same run;
#   3. whole-scene prediction speed on CUDA (predict_scene.py, a SCENE x SCENE PNG), ONNX Runtime beside it;
#   4. the reference-scale study (gpu_reference_study.sh: 72 trials, 50 epochs, 4 at a time) until the
#      budget ends, then a summary of what it ran read from its journal (trials, epochs, epochs per second).
#
# The Dubai set does not travel to the lent machine, so steps 2-4 use a synthetic set of Dubai's scale
# (72 images of SYNTH x SYNTH in 8 tiles: 1,152 patches of 256 against Dubai's 1,305).
#
#   bash benchmarks/gpu_lease.sh [OUT]        # OUT defaults to $OUT (the device tool's), else runs/gpu-lease
#
# Settings: BUDGET (seconds, default 540), SHARDS (default 8), SCENE (default 4096), SYNTH (default 1152),
# PARTS (default record,throughput,predict,study), PYTHON (default python3); for a smoke test on a CPU: DEVICE=cpu SIZES=64, THROUGHPUT_S,
# PREDICT_S, STUDY_ARGS (extra tune options, e.g. a smaller patch size). Wheels in .whl/ (optuna and its needs, for a machine without them) are installed
# into /tmp/site first. At most 8 files land in OUT.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-${OUT:-runs/gpu-lease}}"
budget="${BUDGET:-540}"
shards="${SHARDS:-8}"
python="${PYTHON:-python3}"
work=/tmp/aerotune-gpu-lease
t0=$(date +%s)
left() { echo $(( budget - ($(date +%s) - t0) )); }
mkdir -p "$out" "$work"
exec > >(tee -a "$out/lease.log") 2>&1

if ls "$here"/.whl/*.whl >/dev/null 2>&1; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$here"/.whl/*.whl && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$here/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYTHON="$python"
{
  date -u; nproc; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$python" -c "import torch, optuna, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'optuna', optuna.__version__, 'numpy', numpy.__version__, torch.cuda.get_device_name(0))"
} > "$out/env.txt" 2>&1
cat "$out/env.txt"

parts="${PARTS:-record,throughput,predict,study}"
has() { [[ ",$parts," == *",$1,"* ]]; }
has record || shards=0
echo "== 1. learning-curve table: $shards CPU shards in the background ($(left) s left)"
for i in $(seq 0 $(( shards - 1 ))); do
  CUDA_VISIBLE_DEVICES="" nice -n 5 "$python" "$here/benchmarks/hpo_replay/record.py" --shard "$i/$shards" \
    --out "$work/record-$i.jsonl" --work "$work/record-$i" > "$work/record-$i.log" 2>&1 &
done

echo "== data: synthetic set of Dubai's scale"
[ -d "$work/data" ] || "$python" -m aerotune data synth "$work/data" --scenes 72 --size "${SYNTH:-1152}" --tiles 8 >/dev/null \
  || echo "synthetic data failed"

echo "== 2. training throughput at 256 ($(left) s left)"
has throughput && timeout -k 10 "${THROUGHPUT_S:-200}" "$python" "$here/benchmarks/train_throughput.py" --device "${DEVICE:-cuda}" \
  --data "$work/data" --sizes "${SIZES:-256}" --repeats 5 --batches 10 --variants "channels_last=off,compile=on" --work "$work/throughput" \
  2>&1 | tee "$out/throughput.txt"

echo "== 3. whole-scene prediction ($(left) s left)"
has predict && timeout -k 10 "${PREDICT_S:-120}" "$python" "$here/benchmarks/predict_scene.py" --parts throughput --no-tta \
  --size "${SCENE:-4096}" --work "$work/scene" 2>&1 | tee "$out/predict.txt"

echo "== 4. reference-scale study until the budget ends ($(left) s left)"
has study || exit 0
study_s=$(( $(left) - 45 ))
start=$(date +%s)
AEROTUNE_DATA="$work/data" TIMEOUT=$(( study_s - 30 )) timeout -s INT -k 20 "$study_s" \
  bash "$here/benchmarks/gpu_reference_study.sh" "$work/study" --set train.threads=2 ${STUDY_ARGS:-} > "$out/study.log" 2>&1
rc=$?
echo "study stopped after $(( $(date +%s) - start )) s (exit $rc)" | tee -a "$out/study.log"
"$python" - "$work/study" <<'EOF' 2>&1 | tee -a "$out/study.log"
import collections, sys
from pathlib import Path
import optuna
from optuna.storages.journal import JournalFileBackend
run = Path(sys.argv[1])
storage = optuna.storages.JournalStorage(JournalFileBackend(str(run / "journal.log")))
for s in storage.get_all_studies():
    trials = optuna.load_study(study_name=s.study_name, storage=storage).get_trials(deepcopy=False)
    states = collections.Counter(t.state.name for t in trials)
    epochs = sum(len(t.intermediate_values) for t in trials)
    done = [t for t in trials if t.value is not None]
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    span = max((max(ends) - min(starts)).total_seconds(), 1e-9) if starts and ends else float("nan")
    best = min((t.value for t in done), default=float("nan"))
    print(f"study {s.study_name}: {len(trials)} trials {dict(states)}; {epochs} epochs in {span:.0f} s "
          f"({epochs / span:.2f} epochs/s over 4 workers); best validation loss {best:.4f}")
EOF
cp "$work/study/trials.csv" "$out/study-trials.csv" 2>/dev/null || true

echo "== 1. learning-curve table: collecting ($(left) s left)"
wait_until=$(( $(date +%s) + $(left) - 10 ))
while [ "$(jobs -rp | wc -l)" -gt 0 ] && [ "$(date +%s)" -lt "$wait_until" ]; do sleep 5; done
kill $(jobs -rp) 2>/dev/null
cat "$work"/record-*.jsonl > "$out/curves-new.jsonl" 2>/dev/null
tail -n 3 "$work"/record-*.log > "$out/record.log" 2>&1
echo "recorded $(wc -l < "$out/curves-new.jsonl") new rows; whole lease script: $(( $(date +%s) - t0 )) s"
sleep 1  # let tee write the log's end

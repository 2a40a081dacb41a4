#!/usr/bin/env bash
# Device call for the VRAM planner (issue 10): on the random-weight full-size model (bf16 files),
# `zimage generate` at 1024² under --vram-budget none, 24, 16, 12, 8, 4 GiB (bf16 and fp8; batch 4
# unbudgeted), each a fresh process with nvidia-smi sampled every 50 ms; the plan line, the
# process's exit, measured peak and seconds, and the planner's prediction (`zimage advise --json`)
# go to $OUT/vram.json. Then `zimage devices` (NVML) and a served `/api/v1/system` + `/metrics`.
# Expects .carrypack3/ with carry.tar.xz (.carry/ with zimage), the diffusers wheel, the tokenizer.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; P=.carrypack3
tar -xJf $P/carry.tar.xz
python3 -m pip install -q --no-index --no-deps --target /tmp/site $P/diffusers-*.whl && export PYTHONPATH=/tmp/site
cudnn=$(python3 -c "import os, nvidia.cudnn as m; print(os.path.join(list(m.__path__)[0], 'lib'))" 2>/dev/null)
export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}:$cudnn"
export XDG_CACHE_HOME=/tmp/zimage-cache
M=/tmp/zfull
python3 tools/fullsize/make_random_zimage.py $M --transformer-dtype bf16 | tail -1
xz -dkc $P/tokenizer.json.xz > $M/tokenizer/tokenizer.json; cp $P/tokenizer_config.json $M/tokenizer/
sync
.carry/zimage devices > "$OUT/devices.txt" 2>&1; cat "$OUT/devices.txt"
echo '[' > /tmp/runs.json
run() {  # label precision budget batch
    local label=$1 precision=$2 budget=$3 batch=$4
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 50 > /tmp/mem.txt & local sampler=$!
    local s=$(date +%s%N)
    .carry/zimage generate --model $M --device cuda --precision $precision --vram-budget $budget --batch $batch \
        --prompt "a red fox in the snow" --width 1024 --height 1024 --steps 8 --seed 42 --output /tmp/zv > "$OUT/run-$label.txt" 2>&1
    local rc=$? e=$(date +%s%N); kill $sampler; wait $sampler 2>/dev/null
    local peak=$(sort -n /tmp/mem.txt | tail -1)
    .carry/zimage advise --json --width 1024 --height 1024 --batch $batch --vram-budget $budget > /tmp/advise.json 2>/dev/null
    python3 - "$label" "$precision" "$budget" "$batch" "$rc" "$(( (e - s) / 1000000 ))" "$peak" "$OUT/run-$label.txt" >> /tmp/runs.json <<'PY'
import json, re, sys
label, precision, budget, batch, rc, ms, peak, log = sys.argv[1:]
text = open(log).read()
plan = [l for l in text.splitlines() if l.startswith("plan:") or "refus" in l.lower() or "would fit" in l]
m = re.search(r"generating ([0-9.]+) s", text)
try: advice = json.load(open("/tmp/advise.json"))
except Exception: advice = None
print(json.dumps({"label": label, "precision": precision, "budget": budget, "batch": int(batch), "exit": int(rc),
                  "process_s": int(ms) / 1000, "generating_s": float(m.group(1)) if m else None,
                  "peak_nvidia_smi_mib": float(peak) if peak else None, "plan_lines": plan[:3],
                  "device_memory_line": [l for l in text.splitlines() if "peak device memory" in l][:1],
                  "advise": advice}) + ",")
PY
    echo "$label: rc $rc, $(( (e - s) / 1000000 )) ms, peak $peak MiB | $(grep -E '^plan:|peak device memory' "$OUT/run-$label.txt" | tr '\n' ' ' | cut -c1-300)"
    [ $rc = 0 ] || tail -2 "$OUT/run-$label.txt"
}
for b in none 24 16 12 8 4; do run bf16-$b bf16 $b 1; done
for b in none 16 12; do run fp8-$b fp8 $b 1; done
run bf16-none-batch4 bf16 none 4
echo '{}]' >> /tmp/runs.json
python3 -c "import json; r=[x for x in json.load(open('/tmp/runs.json')) if x]; json.dump({'card': open('$OUT/devices.txt').read()[:300], 'runs': r}, open('$OUT/vram.json','w'), indent=1)"
# The server's view: /api/v1/system (gpus, memory, plan) and the GPU gauges of /metrics.
.carry/zimage serve --model $M --device cuda --port 7861 --data-dir /tmp/zsrv > /tmp/serve.log 2>&1 & S=$!
for i in $(seq 1 60); do curl -sf localhost:7861/api/v1/system > "$OUT/system.json" 2>/dev/null && break; sleep 1; done
curl -s localhost:7861/metrics | grep -E "zimage_gpu|memory" > "$OUT/metrics.txt"
kill $S; head -c 1500 "$OUT/system.json"; echo; head -20 "$OUT/metrics.txt"

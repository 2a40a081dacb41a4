#!/usr/bin/env bash
# Device call for the VRAM planner's Done-when table (issue 10): on the random-weight full-size model
# (bf16 files), `zimage generate` at 1024² for each budget in $BUDGETS (4 8 12 16 24 GiB and none),
# batch 1 and batch 4 where the planner says it fits, each a fresh process with nvidia-smi sampled
# every 50 ms; then two images of one prompt under the 16 GiB plan and unbudgeted (the second image's
# time is the repeated-prompt time). Each row: budget, batch, the plan and its settings, measured peak
# (nvidia-smi, whole device) and pool peak, measured seconds per image, the planner's predicted peak and
# seconds (`zimage advise --json`, same budget and batch), within 10 % / 25 %. ONE file: $OUT/vram-table.json;
# every run's log, samples and advice under $OUT/runs/. A failed or refused run is a row with its error.
# Then `zimage devices` (NVML) and a served /api/v1/system, /api/v1/hardware and /metrics.
#
#   bash bench/device_vram.sh                 # on the GPU machine (expects .carrypack3/, as before)
# Environment: OUT (default /tmp/out), BUDGETS, PRECISIONS (default "auto"; e.g. "auto fp8"),
# ZIMAGE (default .carry/zimage), MODEL (default /tmp/zfull), NVIDIA_SMI (default nvidia-smi),
# SKIP_SETUP=1 (carry and model already there), SKIP_SERVER=1 (no serve part), FORCED (rows forced into a
# memory mode, "BUDGET:PRECISION:MODE ...", e.g. "12:fp8:resident 8:fp8:text-streaming": the planner picks
# the weights and tiling, `--memory-mode` the placement; predicted from that mode's costing; MODE "plan":
# the planner's own choice for that precision).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT/runs"; P=.carrypack3
BUDGETS=${BUDGETS:-"4 8 12 16 24 none"}
PRECISIONS=${PRECISIONS:-auto}
ZIMAGE=${ZIMAGE:-.carry/zimage}
M=${MODEL:-/tmp/zfull}
SMI=${NVIDIA_SMI:-nvidia-smi}
PROMPT=${PROMPT:-"a red fox in the snow"}
if [ "${SKIP_SETUP:-0}" != 1 ]; then
    tar -xJf $P/carry.tar.xz
    python3 -m pip install -q --no-index --no-deps --target /tmp/site $P/diffusers-*.whl && export PYTHONPATH=/tmp/site
    cudnn=$(python3 -c "import os, nvidia.cudnn as m; print(os.path.join(list(m.__path__)[0], 'lib'))" 2>/dev/null)
    export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}:$cudnn"
    export XDG_CACHE_HOME=/tmp/zimage-cache
    python3 tools/fullsize/make_random_zimage.py $M --transformer-dtype bf16 | tail -1
    xz -dkc $P/tokenizer.json.xz > $M/tokenizer/tokenizer.json; cp $P/tokenizer_config.json $M/tokenizer/
    sync
fi
"$ZIMAGE" devices > "$OUT/devices.txt" 2>&1; cat "$OUT/devices.txt"
ROWS="$OUT/runs/rows.jsonl"; : > "$ROWS"

# advise LABEL BUDGET BATCH PRECISION: the prediction for that run (no file when advise failed).
advise() {
    local fixed=()
    [ "$4" = auto ] || fixed=(--precision "$4")   # advise plans every format; generate fixes one with --precision
    "$ZIMAGE" advise --json --width 1024 --height 1024 --batch "$3" --vram-budget "$2" ${fixed[@]+"${fixed[@]}"} \
        > "$OUT/runs/$1.advise.json" 2> "$OUT/runs/$1.advise.err" || rm -f "$OUT/runs/$1.advise.json"
}

# run LABEL BUDGET BATCH PRECISION [MODE]: one fresh `zimage generate`, sampled; appends one row (never aborts).
run() {
    local label=$1 budget=$2 batch=$3 precision=$4 mode=${5:-}
    local forced=()
    [ -n "$mode" ] && forced=(--memory-mode "$mode")
    local log="$OUT/runs/$label.log" samples="$OUT/runs/$label.mem"
    advise "$label" "$budget" "$batch" "$precision"
    "$SMI" --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 50 > "$samples" 2>/dev/null &
    local sampler=$!
    sleep 0.3   # a baseline sample before the process starts
    local s e rc
    s=$(date +%s%N)
    "$ZIMAGE" generate --model "$M" --device cuda --precision "$precision" --vram-budget "$budget" --batch "$batch" \
        ${forced[@]+"${forced[@]}"} --prompt "$PROMPT" --width 1024 --height 1024 --steps 8 --seed 42 --output "$OUT/runs/images-$label" > "$log" 2>&1
    rc=$?
    e=$(date +%s%N)
    sleep 0.2
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
    rm -rf "$OUT/runs/images-$label"
    if ! python3 bench/vram_table.py row "$label" "$budget" "$batch" "$precision" "$rc" "$(( (e - s) / 1000000 ))" \
        "$log" "$samples" "$OUT/runs/$label.advise.json" "$mode" >> "$ROWS" 2> "$OUT/runs/$label.parse.err"; then
        python3 -c 'import json, sys; print(json.dumps({"label": sys.argv[1], "budget": sys.argv[2], "batch": int(sys.argv[3]),
            "exit": int(sys.argv[4]), "error": "row not parsed: " + open(sys.argv[5]).read()[-300:]}))' \
            "$label" "$budget" "$batch" "$rc" "$OUT/runs/$label.parse.err" >> "$ROWS"
    fi
    echo "$label: rc $rc, $(( (e - s) / 1000000 )) ms | $(grep -E '^plan:|image\(s\) in|^per image|peak device memory' "$log" | tr '\n' ' ' | cut -c1-400)"
    [ "$rc" = 0 ] || tail -2 "$log"
}

# fits BUDGET BATCH PRECISION: whether the planner chose a plan for it (none: always).
fits() {
    [ "$1" = none ] && return 0
    advise probe "$1" "$2" "$3"
    python3 -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))["this_build"].get("chosen") else 1)' \
        "$OUT/runs/probe.advise.json" 2>/dev/null
}

# A warm-up (NVRTC's kernel cache filled on disk), not in the table.
"$ZIMAGE" generate --model "$M" --device cuda --vram-budget none --prompt "$PROMPT" --width 512 --height 512 --steps 2 \
    --seed 1 --output "$OUT/runs/images-warmup" > "$OUT/runs/warmup.log" 2>&1 || tail -2 "$OUT/runs/warmup.log"
rm -rf "$OUT/runs/images-warmup"
for precision in $PRECISIONS; do
    for b in $BUDGETS; do
        run "$precision-$b" "$b" 1 "$precision"
        if fits "$b" 4 "$precision"; then run "$precision-$b-batch4" "$b" 4 "$precision"; fi
    done
done
for f in ${FORCED:-}; do
    IFS=: read -r b precision mode <<< "$f"
    forced=$mode; [ "$mode" = plan ] && forced=""   # "plan": the planner's own choice for that precision
    run "$precision-$b-$mode" "$b" 1 "$precision" "$forced"
done
# The repeated prompt: two images, one prompt; the second image's time against the predicted
# repeated-prompt seconds (16 GiB plan, and resident unbudgeted).
run repeat-16 16 2 auto
run repeat-none none 2 auto
python3 bench/vram_table.py table "$ROWS" "$OUT/devices.txt" "$OUT/vram-table.json"

[ "${SKIP_SERVER:-0}" = 1 ] && exit 0
# The server's view: /api/v1/system (gpus, memory, plan), /api/v1/hardware and the GPU gauges of /metrics.
"$ZIMAGE" serve --model "$M" --device cuda --port 7861 --data-dir /tmp/zsrv > "$OUT/serve.log" 2>&1 & S=$!
for _ in $(seq 1 60); do curl -sf localhost:7861/api/v1/system > "$OUT/system.json" 2>/dev/null && break; sleep 1; done
curl -s localhost:7861/api/v1/hardware > "$OUT/hardware.json"
curl -s localhost:7861/metrics | grep -E "zimage_gpu|memory" > "$OUT/metrics.txt"
kill "$S"; head -c 1500 "$OUT/system.json"; echo; head -c 600 "$OUT/hardware.json"; echo; head -20 "$OUT/metrics.txt"

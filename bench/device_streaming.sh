#!/usr/bin/env bash
# Device call for block streaming and the memory pool's limit (issue 10): on the random-weight
# full-size model (bf16 files), `zimage generate` at 1024² (batch 2, same prompt: the second image
# shows the repeated-prompt speed) resident, text-streaming and block-streaming (bf16 and fp8),
# each a fresh process with nvidia-smi sampled every 50 ms. The images of a streamed run must equal
# the resident run's with the same decode, pixel for pixel. Writes $OUT/streaming.json.
# Expects .carrypack3/ with carry.tar.xz (.carry/ with zimage), the diffusers wheel, the tokenizer.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; P=.carrypack3
tar -xJf $P/carry.tar.xz
python3 -m pip install -q --no-index --no-deps --target /tmp/site $P/diffusers-*.whl && export PYTHONPATH=/tmp/site
LOGS=/tmp/logs; mkdir -p $LOGS
cudnn=$(python3 -c "import os, nvidia.cudnn as m; print(os.path.join(list(m.__path__)[0], 'lib'))" 2>/dev/null)
export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}:$cudnn"
export XDG_CACHE_HOME=/tmp/zimage-cache
M=/tmp/zfull
python3 tools/fullsize/make_random_zimage.py $M --transformer-dtype bf16 | tail -1
xz -dkc $P/tokenizer.json.xz > $M/tokenizer/tokenizer.json; cp $P/tokenizer_config.json $M/tokenizer/
sync
echo '[' > /tmp/runs.json
run() {  # label precision budget extra-flags...
    local label=$1 precision=$2 budget=$3; shift 3
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 50 > /tmp/mem.txt & local sampler=$!
    local s=$(date +%s%N)
    .carry/zimage generate --model $M --device cuda --precision $precision --vram-budget $budget --batch 2 \
        --prompt "a red fox in the snow" --width 1024 --height 1024 --steps 8 --seed 42 --output /tmp/zs-$label "$@" \
        > "$LOGS/run-$label.txt" 2>&1
    local rc=$? e=$(date +%s%N); kill $sampler; wait $sampler 2>/dev/null
    local base=$(sort -n /tmp/mem.txt | head -1) peak=$(sort -n /tmp/mem.txt | tail -1)
    python3 - "$label" "$precision" "$budget" "$*" "$rc" "$(( (e - s) / 1000000 ))" "$base" "$peak" "$LOGS/run-$label.txt" >> /tmp/runs.json <<'PY'
import json, re, sys
label, precision, budget, flags, rc, ms, base, peak, log = sys.argv[1:]
text = open(log).read()
m = re.search(r"generating ([0-9.]+) s", text)
print(json.dumps({"label": label, "precision": precision, "budget": budget, "flags": flags, "exit": int(rc),
                  "process_s": int(ms) / 1000, "generating_s_batch2": float(m.group(1)) if m else None,
                  "idle_mib": float(base) if base else None, "peak_nvidia_smi_mib": float(peak) if peak else None,
                  "lines": [l for l in text.splitlines() if re.search(r"plan:|memory mode|peak device|load:|image\(s\)|error|rror:", l)][:8]}) + ",")
PY
    echo "$label: rc $rc, $(( (e - s) / 1000000 )) ms, peak $peak MiB (idle $base) | $(grep -E 'image\(s\)|peak device memory' "$LOGS/run-$label.txt" | tr '\n' ' ' | cut -c1-400)"
    [ $rc = 0 ] || tail -4 "$LOGS/run-$label.txt"
}
run warmup bf16 none --steps 1
run bf16-resident bf16 none
run bf16-resident-tiled bf16 none --tiled-decode
run bf16-budget24 bf16 24GiB
run bf16-text-streaming bf16 none --memory-mode text-streaming
run bf16-block-streaming-tiled bf16 none --memory-mode block-streaming --tiled-decode
run fp8-resident-tiled fp8 none --tiled-decode
run fp8-text-streaming-tiled fp8 none --memory-mode text-streaming --tiled-decode
run fp8-block-streaming-tiled fp8 none --memory-mode block-streaming --tiled-decode
echo '{}]' >> /tmp/runs.json
python3 - "$OUT" <<'PY'
import glob, hashlib, json, sys
out = sys.argv[1]
runs = [r for r in json.load(open("/tmp/runs.json")) if r]
def pixels(label):
    files = sorted(glob.glob(f"/tmp/zs-{label}/*.png"))
    try:
        from PIL import Image
        return [hashlib.sha256(Image.open(f).convert("RGB").tobytes()).hexdigest()[:16] for f in files]
    except Exception as error:
        return [f"unreadable: {error}"]
same = {}
for a, b in [("bf16-resident", "bf16-text-streaming"), ("bf16-resident-tiled", "bf16-block-streaming-tiled"),
             ("fp8-resident-tiled", "fp8-text-streaming-tiled"), ("fp8-resident-tiled", "fp8-block-streaming-tiled"),
             ("bf16-resident", "bf16-resident-tiled")]:
    pa, pb = pixels(a), pixels(b)
    same[f"{a} == {b}"] = {"equal": bool(pa) and pa == pb, "a": pa, "b": pb}
json.dump({"runs": runs, "images_equal": same}, open(f"{out}/streaming.json", "w"), indent=1)
for k, v in same.items(): print(k, v["equal"], v["a"], v["b"])
PY
tar -czf "$OUT/logs.tar.gz" -C /tmp logs

#!/usr/bin/env bash
# Device call: the tiled VAE decode's cost by tile size (issue 10, the 16 GiB plan's repeated-prompt
# speed). `zimage generate` at 1024², batch 4 (one prompt: images 2–4 are the repeated-prompt time),
# under the 16 GiB plan (bf16 text streaming, tiled) with ZIMAGE_DECODE_TILE 64 (the planner's) and
# 80 (2 × 2 tiles of 640² instead of 3 × 3 of 512²: 1.56 × the pixels instead of 2.25 ×) and 54 (3 × 3
# of 432²: 1.60 ×), the 24 GiB
# plan (resident, tiled) likewise, and unbudgeted (resident, full decode); nvidia-smi every 50 ms.
# Writes $OUT/tiles.json. Expects .carrypack3/ as bench/device_vram.sh (SKIP_SETUP=1: already there).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT/tiles"; P=.carrypack3; M=${MODEL:-/tmp/zfull}; W=$OUT/tiles
if [ "${SKIP_SETUP:-0}" != 1 ]; then
    tar -xJf $P/carry.tar.xz
    python3 -m pip install -q --no-index --no-deps --target /tmp/site $P/diffusers-*.whl && export PYTHONPATH=/tmp/site
    python3 tools/fullsize/make_random_zimage.py $M --transformer-dtype bf16 | tail -1
    xz -dkc $P/tokenizer.json.xz > $M/tokenizer/tokenizer.json; cp $P/tokenizer_config.json $M/tokenizer/
fi
export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}" XDG_CACHE_HOME=/tmp/zimage-cache
run() {  # label budget tile
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 50 > $W/$1.mem & local sampler=$!
    sleep 0.3
    ZIMAGE_DECODE_TILE=$3 .carry/zimage generate --model $M --device cuda --vram-budget $2 --batch 4 \
        --prompt "a red fox in the snow" --width 1024 --height 1024 --steps 8 --seed 42 --output $W/img-$1 > $W/$1.log 2>&1
    echo $? > $W/$1.rc; sleep 0.2; kill $sampler; wait $sampler 2>/dev/null
    echo "$1: rc $(cat $W/$1.rc), peak $(sort -n $W/$1.mem | tail -1) MiB | $(grep -E '^plan:|per image' $W/$1.log | cut -c1-160 | tr '\n' ' ')"
}
.carry/zimage generate --model $M --device cuda --vram-budget none --prompt warm --width 512 --height 512 --steps 2 \
    --output $W/img-warm > $W/warm.log 2>&1
run full-none none 64
run tiled64-16 16 64
run tiled80-16 16 80
run tiled54-16 16 54
run tiled64-24 24 64
run tiled80-24 24 80
python3 - "$W" "$OUT/tiles.json" <<'PY'
import glob, json, math, re, sys
import numpy as np
from PIL import Image
w, out = sys.argv[1:]
def images(label):
    return [np.asarray(Image.open(f).convert("RGB"), dtype=np.float64) for f in sorted(glob.glob(f"{w}/img-{label}/*.png"))]
full = images("full-none")
rows = []
for label in ["full-none", "tiled64-16", "tiled80-16", "tiled54-16", "tiled64-24", "tiled80-24"]:
    log = open(f"{w}/{label}.log").read()
    mem = [float(x) for x in open(f"{w}/{label}.mem").read().split() if x.strip()]
    per = re.search(r"per image: (.*) \(the first", log)
    per = [float(x.split()[0]) for x in per.group(1).split(", ")] if per else None
    psnr = []
    for a, b in zip(images(label), full):
        mse = float(((a - b) ** 2).mean())
        psnr.append(round(10 * math.log10(255 ** 2 / mse), 2) if mse > 0 else None)
    rows.append({"label": label, "exit": int(open(f"{w}/{label}.rc").read()), "peak_nvidia_smi_mib": max(mem) if mem else None,
                 "per_image_s": per, "repeated_prompt_s": round(sum(per[1:]) / len(per[1:]), 4) if per else None,
                 "psnr_vs_full_decode_db": psnr,
                 "plan": next((l for l in log.splitlines() if l.startswith("plan:")), None)})
json.dump({"rows": rows}, open(out, "w"), indent=1)
for r in rows: print(r["label"], r["exit"], r["peak_nvidia_smi_mib"], r["repeated_prompt_s"], r["psnr_vs_full_decode_db"])
PY

#!/usr/bin/env bash
# Device call for the weight formats and fp16 (issue 10): on the random-weight full-size model (bf16
# files), `zimage generate` at 1024², seed 42, batch 2 (same prompt), unbudgeted in bf16, fp8, int8,
# fp16 and fp8 widened (ZIMAGE_FP8_WIDEN=1: the path of cards without FP8 tensor cores), and fp8/int8
# under 8 and 12 GiB budgets; nvidia-smi sampled every 50 ms. Each image's PSNR against the bf16
# image of its seed (the full-size relative error of the format), whether fp16 drew a black or NaN
# image. Writes $OUT/precisions.json. Expects .carrypack3/ as bench/device_vram.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; P=.carrypack3; W=/tmp/prec; mkdir -p $W
tar -xJf $P/carry.tar.xz
python3 -m pip install -q --no-index --no-deps --target /tmp/site $P/diffusers-*.whl && export PYTHONPATH=/tmp/site
cudnn=$(python3 -c "import os, nvidia.cudnn as m; print(os.path.join(list(m.__path__)[0], 'lib'))" 2>/dev/null)
export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}:$cudnn"
export XDG_CACHE_HOME=/tmp/zimage-cache
M=/tmp/zfull
python3 tools/fullsize/make_random_zimage.py $M --transformer-dtype bf16 | tail -1
xz -dkc $P/tokenizer.json.xz > $M/tokenizer/tokenizer.json; cp $P/tokenizer_config.json $M/tokenizer/
sync
run() {  # label precision budget [env...]
    local label=$1 precision=$2 budget=$3; shift 3
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 50 > $W/$label.mem & local sampler=$!
    env "$@" .carry/zimage generate --model $M --device cuda --precision $precision --vram-budget $budget --batch 2 \
        --prompt "a red fox in the snow" --width 1024 --height 1024 --steps 8 --seed 42 --output $W/img-$label \
        > $W/$label.log 2>&1
    echo $? > $W/$label.rc; kill $sampler; wait $sampler 2>/dev/null
    echo "$label: rc $(cat $W/$label.rc), peak $(sort -n $W/$label.mem | tail -1) MiB | $(grep -E '^plan:|per image|peak device' $W/$label.log | tr '\n' ' ' | cut -c1-300)"
}
run warmup bf16 none
run bf16 bf16 none
run fp8 fp8 none
run int8 int8 none
run fp16 fp16 none
run fp8-widened fp8 none ZIMAGE_FP8_WIDEN=1
for b in 8 12; do run fp8-$b fp8 ${b}GiB; run int8-$b int8 ${b}GiB; done
python3 - "$OUT" $W <<'PY'
import glob, json, math, os, re, sys
out, w = sys.argv[1:]
import numpy as np
from PIL import Image
def images(label):
    return [np.asarray(Image.open(f).convert("RGB"), dtype=np.float64) for f in sorted(glob.glob(f"{w}/img-{label}/*.png"))]
ref = images("bf16")
rows = []
for label in ["bf16", "fp8", "int8", "fp16", "fp8-widened", "fp8-8", "int8-8", "fp8-12", "int8-12"]:
    log = open(f"{w}/{label}.log").read()
    mem = [float(x) for x in open(f"{w}/{label}.mem").read().split() if x.strip()]
    imgs = images(label)
    psnr = []
    for a, b in zip(imgs, ref):
        mse = float(((a - b) ** 2).mean())
        psnr.append(round(10 * math.log10(255 ** 2 / mse), 2) if mse > 0 else None)
    per = re.search(r"per image: (.*) \(the first", log)
    rows.append({"label": label, "exit": int(open(f"{w}/{label}.rc").read()),
                 "peak_nvidia_smi_mib": max(mem) if mem else None,
                 "per_image_s": [float(x.split()[0]) for x in per.group(1).split(", ")] if per else None,
                 "psnr_vs_bf16_db": psnr, "mean_pixel": [round(float(i.mean()), 2) for i in imgs],
                 "black_or_flat": [bool(i.std() < 1) for i in imgs],
                 "lines": [l for l in log.splitlines() if re.search(r"plan:|peak device|image\(s\)|rror", l)][:5]})
json.dump({"rows": rows}, open(f"{out}/precisions.json", "w"), indent=1)
for r in rows: print(r["label"], r["exit"], r["peak_nvidia_smi_mib"], r["per_image_s"], r["psnr_vs_bf16_db"], r["black_or_flat"])
PY

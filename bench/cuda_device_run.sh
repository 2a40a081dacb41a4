#!/usr/bin/env bash
# Runs on the GPU machine (see bench/README.md): the CUDA slice checked against the CPU backend,
# and cuBLASLt's bf16 rate next to PyTorch's for the same product, in one run. Expects the
# release binaries and their shared libraries in .carry/ (bench/prepare_carry.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
out=${OUT:-/tmp/zimage-out}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
.carry/zimage devices | tee "$out/devices.txt"
for run in 1 2; do
    .carry/ZImageBench cuda-check --tiny-model Tests/Fixtures/tiny-zimage > "$out/cuda-check-$run.json" 2> "$out/cuda-check-$run.err"
    echo "cuda-check run $run: exit $?"; cat "$out/cuda-check-$run.err"
    python3 bench/torch_matmul_rate.py > "$out/torch-matmul-$run.json"
done
# The demo model end to end on the GPU (first run compiles and caches the kernels).
for run in 1 2; do
    XDG_CACHE_HOME=/tmp/zimage-cache .carry/zimage generate --device cuda --prompt "a fox" --width 1024 --height 1024 \
        --seed 1 --output /tmp/zimage-images 2>&1 | tail -1 | tee "$out/generate-$run.txt"
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
for run in (1, 2):
    try:
        ours = json.load(open(f"{out}/cuda-check-{run}.json"))
    except Exception as error:
        print("run", run, "no report:", error); continue
    theirs = json.load(open(f"{out}/torch-matmul-{run}.json"))
    if run == 1:
        for c in ours["checks"]:
            print(f"{'ok ' if c['passed'] else 'BAD'} {c['name']:48} {c['relative_error']:.2e} (bound {c['bound']:.0e})")
    m = ours["matmul_bf16_4096x3840x10240"]
    print(f"run {run}: {ours['device']}: cuBLASLt bf16 {m['median_ms']:.3f} ms = {m['tflops']:.0f} TFLOP/s; "
          f"torch {theirs['torch']} {theirs['median_ms']:.3f} ms = {theirs['tflops']:.0f} TFLOP/s; "
          f"ratio ours/torch {m['tflops'] / theirs['tflops']:.3f}")
PY

#!/usr/bin/env bash
# Device call: the GPU test suite itself (FusedKernelGPUTests, every fused kernel and the attention
# against the reference defaults; the rest of the CUDA test target too), then the first image after
# start with the Hub's fp32 transformer files: cold and warm kernel cache, profiled (per-component
# load, staged-upload fill/wait split, per-stage GPU time), and the staging knobs varied.
# Expects $PACK/carry.tar.xz holding .carry/ (zimage, bench/prepare_carry.sh) and, for the
# tests, .carry-tests/ (bench/prepare_test_carry.sh), the diffusers wheel and the tokenizer files in $PACK/. The
# static zimage and the test bundle together pass the device's 64 MiB carry limit: carry a zimage
# linked against the Swift libraries of .carry-tests/ (a plain release build) with the tests.
set -uo pipefail
cd "$(dirname "$0")/.."
PACK=${PACK:-.carrypack1}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
tar -xJf $PACK/carry.tar.xz
python3 -m pip install -q --no-index --no-deps --target /tmp/site $PACK/diffusers-*.whl 2>/dev/null && export PYTHONPATH=/tmp/site
cudnn=$(python3 -c "import os, nvidia.cudnn as m; print(os.path.join(list(m.__path__)[0], 'lib'))" 2>/dev/null)
export LD_LIBRARY_PATH="$PWD/.carry-tests/lib:$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}:$cudnn"
export XDG_CACHE_HOME=/tmp/zimage-cache
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
if [ -x .carry-tests/zimagePackageTests.xctest ]; then
# 1. The GPU tests, in the test bundle built on the development machine (KernelSourcesTests reads
#    the source tree by its path there, so it is skipped here; CI runs it).
timeout 300 .carry-tests/zimagePackageTests.xctest --testing-library swift-testing \
    --filter "ZImageCUDATests" --skip "KernelSourcesTests" > "$OUT/gpu-tests.txt" 2>&1
echo "gpu tests exit $?"; grep -E "passed|failed|skipped|issue" "$OUT/gpu-tests.txt" | grep -vE "^.*Test .* started" | tail -25
fi
[ -x .carry/zimage ] || exit 0
# 2. First image after start, fp32 transformer files in the page cache.
M=/tmp/zfull; t0=$(date +%s)
python3 tools/fullsize/make_random_zimage.py $M --transformer-dtype fp32 | tail -1
xz -dkc $PACK/tokenizer.json.xz > $M/tokenizer/tokenizer.json; cp $PACK/tokenizer_config.json $M/tokenizer/
sync; echo "model written in $(( $(date +%s) - t0 )) s"; du -sh $M/*
run() {  # label, then environment assignments
    local label=$1; shift
    s=$(date +%s%N)
    env "$@" ZIMAGE_PROFILE=1 .carry/zimage generate --model $M --device cuda --precision bf16 --prompt "a red fox in the snow" \
        --width 1024 --height 1024 --steps 8 --seed 42 --output /tmp/zimg > "$OUT/first-$label.txt" 2>&1
    e=$(date +%s%N)
    echo "first image $label: $(( (e - s) / 1000000 )) ms | $(grep -E '^load:' "$OUT/first-$label.txt") | $(grep -E 'staged uploads' "$OUT/first-$label.txt")"
    grep -E "wall" "$OUT/first-$label.txt" | head -5 | sed 's/^/    /'
}
rm -rf "$XDG_CACHE_HOME"
run cold
run warm
run warm2
run threads8 ZIMAGE_STAGING_THREADS=8
run threads32 ZIMAGE_STAGING_THREADS=32
run chunk128 ZIMAGE_STAGING_CHUNK_MIB=128
run unstaged ZIMAGE_STAGED_UPLOAD=0
grep -E "image\(s\) in" "$OUT"/first-*.txt

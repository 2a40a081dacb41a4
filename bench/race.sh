#!/usr/bin/env bash
# The same-run race on the GPU machine: zimage (bf16; fused kernels on, then off for the "before"
# profile) against diffusers 0.42.1 eager and torch.compile, on one random-weight Z-Image-Turbo
# with the real configuration, 1024², 8 steps, guidance 0, seed 42. Writes $OUT/race.json (the
# bench/results/<date>-<card>-race.json format), the profiles, and both seed-42 images.
# Expects .carrypack/ with carry.tar.xz (bench/prepare_carry.sh, compressed), the diffusers 0.42.1
# wheel and the Qwen3 tokenizer files (tokenizer.json or tokenizer.json.xz, tokenizer_config.json).
# TRANSFORMER_DTYPE=fp32 writes the Hub's fp32 transformer shards (for first-image-after-start).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
tar -xJf .carrypack/carry.tar.xz
python3 -m pip install -q --no-index --no-deps --target /tmp/site .carrypack/diffusers-*.whl && export PYTHONPATH=/tmp/site
export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export XDG_CACHE_HOME=/tmp/zimage-cache
# cuDNN for the convolutions: the system's, else the one PyTorch's wheels carry.
cudnn=$(python3 -c "import os, nvidia.cudnn as m; print(os.path.join(list(m.__path__)[0], 'lib'))" 2>/dev/null)
[ -n "$cudnn" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$cudnn"
M=/tmp/zfull
t0=$(date +%s)
[ -f $M/vae/diffusion_pytorch_model.safetensors ] || \
    python3 tools/fullsize/make_random_zimage.py $M --transformer-dtype "${TRANSFORMER_DTYPE:-bf16}" | tail -1
[ -f .carrypack/tokenizer.json ] || xz -dk .carrypack/tokenizer.json.xz
cp .carrypack/tokenizer.json .carrypack/tokenizer_config.json $M/tokenizer/
echo "model written in $(( $(date +%s) - t0 )) s"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
peak() { sort -n "$1" | tail -1; }
sample() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 50 > "$1" & echo $!; }

# 1. Kernels against the CPU reference (fused ops, flash attention, every op, tiny pipeline).
.carry/ZImageBench cuda-check --tiny-model Tests/Fixtures/tiny-zimage > "$OUT/cuda-check.json" 2> "$OUT/cuda-check.err"
echo "cuda-check exit $?"; tail -3 "$OUT/cuda-check.err"
# 2. First image after start: a fresh process, cold then warm kernel cache.
rm -rf "$XDG_CACHE_HOME"
for cache in cold warm; do
    P=$(sample /tmp/mem_first_$cache.txt)
    s=$(date +%s%N)
    .carry/zimage generate --model $M --device cuda --precision bf16 --prompt "a red fox in the snow" \
        --width 1024 --height 1024 --steps 8 --seed 42 --output /tmp/zimg-$cache > /tmp/first_$cache.txt 2>&1
    e=$(date +%s%N); kill $P
    seconds=$(python3 -c "print(round(($e - $s) / 1e9, 2))")
    echo "first image ($cache kernel cache): $seconds s, peak $(peak /tmp/mem_first_$cache.txt) MiB"
    echo "$seconds" > "$OUT/first_$cache.txt"; peak /tmp/mem_first_$cache.txt >> "$OUT/first_$cache.txt"
done
cp /tmp/zimg-warm/*.png "$OUT/zimage-seed42.png"
# 3. Stage timings in one process, fused kernels on, then the composed reference ops ("before").
P=$(sample /tmp/mem_bench.txt)
.carry/ZImageBench pipeline --model $M --profile > "$OUT/zimage-bf16.json" 2> "$OUT/profile-after.txt"
kill $P; peak /tmp/mem_bench.txt > "$OUT/zimage-bf16-peak.txt"
cat "$OUT/zimage-bf16.json"
# 3b. FP8: stage timings (profiled) and the seed-42 image.
P=$(sample /tmp/mem_fp8.txt)
.carry/ZImageBench pipeline --model $M --precision fp8 --profile > "$OUT/zimage-fp8.json" 2> "$OUT/profile-fp8.txt"
kill $P; peak /tmp/mem_fp8.txt > "$OUT/zimage-fp8-peak.txt"
cat "$OUT/zimage-fp8.json"
.carry/zimage generate --model $M --device cuda --precision fp8 --prompt "a red fox in the snow" \
    --width 1024 --height 1024 --steps 8 --seed 42 --output /tmp/zimg-fp8 > /tmp/fp8.txt 2>&1 || tail -3 /tmp/fp8.txt
cp /tmp/zimg-fp8/*.png "$OUT/zimage-fp8-seed42.png" 2>/dev/null
[ "${SKIP_REFERENCE:-0}" = 1 ] || ZIMAGE_CUDA_REFERENCE_OPS=1 .carry/ZImageBench pipeline --model $M --repeats 1 \
    --profile > "$OUT/zimage-reference-ops.json" 2> "$OUT/profile-before.txt"
[ "${SKIP_DIFFUSERS:-0}" = 1 ] && { python3 bench/race_summary.py "$OUT"; exit 0; }
# 4. diffusers eager and compiled, PSNR against zimage's seed-42 image.
P=$(sample /tmp/mem_d.txt)
python3 bench/race_diffusers.py $M "$OUT/diffusers.json" "$OUT/zimage-seed42.png" "$OUT/zimage-fp8-seed42.png" > /dev/null 2> "$OUT/diffusers.err"
echo "diffusers exit $?"; tail -2 "$OUT/diffusers.err"
kill $P; peak /tmp/mem_d.txt > "$OUT/diffusers-peak.txt"
python3 bench/race_summary.py "$OUT"

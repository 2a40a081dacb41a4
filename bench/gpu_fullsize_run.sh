#!/usr/bin/env bash
# On the GPU machine: writes the random-weight model with the real configuration
# (tools/fullsize/make_random_zimage.py) and times `zimage generate --device cuda` at 1024x1024,
# 8 steps, bf16. Expects .carrypack/ with carry.tar.xz, the diffusers wheel and the Qwen3
# tokenizer files (see bench/README.md).
set -uo pipefail
cd "$(dirname "$0")/.."
tar -xJf .carrypack/carry.tar.xz
python3 -m pip install -q --no-index --no-deps --target /tmp/site .carrypack/diffusers-*.whl && export PYTHONPATH=/tmp/site
export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
model=/tmp/zimage-fullsize
start=$(date +%s)
[ -f "$model/vae/diffusion_pytorch_model.safetensors" ] || python3 tools/fullsize/make_random_zimage.py "$model" | tail -3
cp .carrypack/tokenizer.json .carrypack/tokenizer_config.json "$model/tokenizer/"
echo "model written in $(( $(date +%s) - start )) s"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
for run in 1 2 3; do
    /usr/bin/time -f "run $run: wall %e s, max RSS %M KiB" .carry/zimage generate --model "$model" --device cuda \
        --precision bf16 --prompt "a red fox in the snow" --width 1024 --height 1024 --steps 8 --seed 42 \
        --output /tmp/zimage-fullsize-images
done

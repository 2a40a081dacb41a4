#!/usr/bin/env bash
# Device call: the race without diffusers on the Hub's fp32 transformer files (first image after
# start, cold and warm kernel cache; stage timings bf16 and fp8), then the warm first image again
# with staged uploads off (ZIMAGE_STAGED_UPLOAD=0) for comparison.
set -uo pipefail
FINAL=$OUT
mkdir -p /tmp/r
OUT=/tmp/r SKIP_REFERENCE=1 SKIP_DIFFUSERS=1 TRANSFORMER_DTYPE=fp32 timeout 420 bash bench/race.sh > /tmp/r/race.log 2>&1
echo "race rc $?"
grep -E "first image|model written|cuda-check exit|Error|error" /tmp/r/race.log | head
python3 bench/race_summary.py /tmp/r 2>/dev/null | sed -n 1,4p
export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}:$(python3 -c "import os, nvidia.cudnn as m; print(os.path.join(list(m.__path__)[0], 'lib'))")"
export XDG_CACHE_HOME=/tmp/zimage-cache
for staged in 1 0; do
    s=$(date +%s%N)
    ZIMAGE_STAGED_UPLOAD=$staged ZIMAGE_PROFILE=1 .carry/zimage generate --model /tmp/zfull --device cuda --precision bf16 \
        --prompt "a red fox in the snow" --width 1024 --height 1024 --steps 8 --seed 42 --output /tmp/zs$staged > /tmp/r/staged$staged.txt 2>&1
    e=$(date +%s%N); echo "first image warm, staged uploads $staged: $(( (e - s) / 1000000 )) ms"
done
grep -iE "load|wall" /tmp/r/staged1.txt | head -12
cp /tmp/r/race.json /tmp/r/profile-after.txt /tmp/r/profile-fp8.txt "$FINAL/" 2>/dev/null
tar -czf "$FINAL/race-out.tgz" -C /tmp/r --exclude='*.png' .

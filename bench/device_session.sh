#!/usr/bin/env bash
# One device call of a session (run by the `device` tool from the repository root): the race
# (bench/race.sh, outputs tarred into $OUT), then compute-sanitizer's four tools on a tiny-model
# 64² one-step generate with the same binary. Prints the race table, the cuda-check failures and
# each tool's error summary.
set -uo pipefail
FINAL=$OUT
mkdir -p /tmp/r
OUT=/tmp/r timeout ${RACE_TIMEOUT:-480} bash bench/race.sh > /tmp/r/race.log 2>&1
echo "race rc $?"
grep -E "first image|model written|cuda-check exit|diffusers exit|Error|error" /tmp/r/race.log | head -20
python3 bench/race_summary.py /tmp/r 2>/dev/null | tail -12
python3 - <<'PY'
import json
try:
    d = json.load(open('/tmp/r/cuda-check.json'))
except Exception as e:
    print('cuda-check.json unreadable', e); raise SystemExit
rows = d.get('rows', d.get('checks', []))
print('cuda-check rows', len(rows), 'failed', [r for r in rows if not r.get('passed')])
for r in rows:
    if any(w in r.get('name', '') for w in ('fp8', 'conv', 'attention')):
        print(f"  {r['name']}: {r.get('relative_error')} (bound {r.get('bound')})")
PY
if [ "${SANITIZE:-1}" = 1 ]; then
    export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
    cudnn=$(python3 -c "import os, nvidia.cudnn as m; print(os.path.join(list(m.__path__)[0], 'lib'))" 2>/dev/null)
    [ -n "$cudnn" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$cudnn"
    for tool in memcheck racecheck synccheck initcheck; do
        timeout 120 /usr/local/cuda/bin/compute-sanitizer --tool $tool --print-limit 5 .carry/zimage generate \
            --model Tests/Fixtures/tiny-zimage --device cuda --precision bf16 --prompt "a red fox" --width 64 \
            --height 64 --steps 1 --seed 1 --output /tmp/san-$tool > /tmp/r/sanitizer-$tool.txt 2>&1
        echo "$tool rc $?: $(grep -E 'ERROR SUMMARY|LEAK SUMMARY|RACECHECK SUMMARY' /tmp/r/sanitizer-$tool.txt | tr '\n' ' ')"
    done
fi
cp /tmp/r/race.json /tmp/r/profile-after.txt /tmp/r/profile-fp8.txt "$FINAL/" 2>/dev/null
cp /tmp/r/zimage-seed42.png /tmp/r/zimage-fp8-seed42.png /tmp/r/diffusers-fp8-seed42.png "$FINAL/" 2>/dev/null
tar -czf "$FINAL/race-out.tgz" -C /tmp/r --exclude='*.png' .

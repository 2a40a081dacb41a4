#!/usr/bin/env bash
# bench/device_workers.sh without a GPU: two CPU workers of the demo model (one worker, then two) and a
# fake nvidia-smi; then workers.json checked: every job done once, both workers used, a speedup.
#   bash bench/test_device_workers.sh [ZIMAGE_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/debug/zimage}
fake=$(mktemp -d)
trap 'rm -rf "$fake"' EXIT
cat > "$fake/nvidia-smi" <<'SMI'
#!/usr/bin/env bash
case "$*" in
*name*) echo "0, Fake GPU, 1024 MiB" ;;
*) while true; do echo "0, 90, 512"; sleep 0.1; done ;;
esac
SMI
chmod +x "$fake/nvidia-smi"
OUT="$fake/out" SKIP_SETUP=1 SETS="cpu cpu,cpu" JOBS=4 SIZE=256 MODEL= ZIMAGE="$bin" NVIDIA_SMI="$fake/nvidia-smi" \
    PORT=$((20000 + RANDOM % 20000)) XDG_CACHE_HOME="$fake/cache" bash bench/device_workers.sh > "$fake/stdout" 2>&1 \
    || { cat "$fake/stdout"; echo "FAIL: the script failed"; exit 1; }
python3 - "$fake/out/workers.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
def check(ok, message):
    if not ok:
        sys.exit(f"FAIL: {message}\n{json.dumps(doc, indent=1)[:3000]}")
sets = doc["sets"]
check([s["devices"] for s in sets] == ["cpu", "cpu,cpu"], "both sets ran")
for s in sets:
    check(s["done"] == 4 and s["every_job_done_once"], f"every job done once in {s['devices']}")
    check(sum(w["jobs_completed"] for w in s["system_workers"]) == 4 + s["workers"], "system counts jobs and warm-ups")
check(len(sets[1]["jobs_per_worker"]) == 2 and sets[1]["most_running_at_once"] == 2, "two workers ran jobs at once")
check(sets[0]["most_running_at_once"] == 1 and sets[1]["workers"] == 2, "one worker, then two")
check(doc["speedup"] == round(sets[1]["jobs_per_minute"] / sets[0]["jobs_per_minute"], 3), "speedup is the ratio")
check(sets[0]["gpu_busy_share"] == {"0": 1.0}, "the samples are read")
print(f"device_workers.sh with two CPU workers: every job done once, both workers used, speedup {doc['speedup']}")
PY

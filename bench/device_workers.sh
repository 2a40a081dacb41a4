#!/usr/bin/env bash
# Worker-per-device throughput (issue 13): `zimage serve` with the random-weight full-size model, for
# each worker set in $SETS (default "cuda:0 all": one GPU, then every GPU), $JOBS jobs of 1024²
# (8 steps, distinct prompts and seeds) submitted at once through the native API; nvidia-smi samples
# every GPU's utilisation and memory every 100 ms. Per set: seconds from the first submit to the
# last job done, jobs a minute, jobs per worker, every job done exactly once (history ids unique and
# all `done`), how many workers ran jobs at the same time, each GPU's busy share (samples > 50 %
# utilisation while jobs ran), `/api/v1/system`'s workers. ONE file: $OUT/workers.json with
# `speedup` = the last set's throughput ÷ the first's.
#
#   bash bench/device_workers.sh                               # on a 2-GPU machine (issue 13)
#   SETS="cuda:0 cuda:0,cuda:0" bash bench/device_workers.sh   # one GPU: two workers share it (dispatch exercised)
# Environment: OUT (default /tmp/out), SETS, JOBS (16), ZIMAGE (.carry/zimage), MODEL (/tmp/zfull),
# SKIP_SETUP=1 (carry and model already there), PORT (7870), SIZE (1024), NVIDIA_SMI. Checked without a
# GPU by bench/test_device_workers.sh (two CPU workers, the demo model, a fake nvidia-smi).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; P=.carrypack3
SETS=${SETS:-"cuda:0 all"}; JOBS=${JOBS:-16}; PORT=${PORT:-7870}
ZIMAGE=${ZIMAGE:-.carry/zimage}; M=${MODEL-/tmp/zfull}; SIZE=${SIZE:-1024}; SMI=${NVIDIA_SMI:-nvidia-smi}
model=(); [ -n "$M" ] && model=(--model "$M")   # MODEL= (empty): the demo model (the CPU check of this script)
if [ "${SKIP_SETUP:-0}" != 1 ]; then
    tar -xJf $P/carry.tar.xz
    export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
    python3 tools/fullsize/make_random_zimage.py $M --transformer-dtype bf16 | tail -1
    xz -dkc $P/tokenizer.json.xz > $M/tokenizer/tokenizer.json; cp $P/tokenizer_config.json $M/tokenizer/
fi
export XDG_CACHE_HOME=${XDG_CACHE_HOME:-/tmp/zimage-cache}
"$SMI" --query-gpu=index,name,memory.total --format=csv,noheader > "$OUT/gpus.txt"; cat "$OUT/gpus.txt"
: > "$OUT/sets.jsonl"
n=0
for set in $SETS; do
    n=$((n + 1)); data=/tmp/zworkers-$n; rm -rf $data; mkdir -p $data
    "$ZIMAGE" serve ${model[@]+"${model[@]}"} --devices "$set" --port $PORT --data-dir $data --node-name bench --vram-budget none \
        > "$OUT/serve-$n.log" 2>&1 & server=$!
    up=0
    for _ in $(seq 1 300); do
        curl -sf "localhost:$PORT/api/v1/system" > $data/system.json 2>/dev/null \
            && python3 -c 'import json,sys; w=json.load(open(sys.argv[1]))["workers"]; sys.exit(0 if w and all(x["state"] in ("idle", "running") for x in w) else 1)' \
                $data/system.json 2>/dev/null && { up=1; break; }
        sleep 0.5
    done
    [ $up = 1 ] || { echo "set $set: server not ready"; tail -5 "$OUT/serve-$n.log"; kill $server; continue; }
    # One warm-up job (kernel caches, cuDNN plans) per worker before the clock starts.
    workers=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["workers"]))' $data/system.json)
    for i in $(seq 1 "$workers"); do
        curl -sf -X POST "localhost:$PORT/api/v1/generations" \
            -d "{\"prompt\":\"warm-up $i\",\"width\":$SIZE,\"height\":$SIZE,\"steps\":8,\"seed\":$i}" > /dev/null
    done
    python3 - "$PORT" "$workers" <<'PY'
import json, sys, time, urllib.request
port, workers = sys.argv[1], int(sys.argv[2])
get = lambda p: json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}{p}"))
deadline = time.time() + 300
while time.time() < deadline and get(f"/api/v1/history?per_page=100")["total"] < workers:
    time.sleep(0.2)
PY
    "$SMI" --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader,nounits -lms 100 > $data/smi.csv & sampler=$!
    python3 - "$PORT" "$JOBS" "$set" "$workers" $data/smi.csv "$SIZE" >> "$OUT/sets.jsonl" <<'PY'
import concurrent.futures, json, sys, time, urllib.request
port, jobs, devices, workers, smi, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
base = f"http://127.0.0.1:{port}"
get = lambda p: json.load(urllib.request.urlopen(base + p))
def submit(i):
    body = json.dumps({"prompt": f"a lighthouse at dusk, study {i}", "width": size, "height": size, "steps": 8,
                       "seed": 1000 + i}).encode()
    req = urllib.request.Request(base + "/api/v1/generations", body, {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))["id"]
start = time.time()
with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
    ids = list(pool.map(submit, range(jobs)))
submitted = time.time() - start
together, deadline = 0, time.time() + 540
while time.time() < deadline:
    queue = get("/api/v1/queue")
    together = max(together, len(queue["running_jobs"]))
    if not queue["queued"] and not queue["running_jobs"]:
        break
    time.sleep(0.05)
elapsed = time.time() - start
jobs_seen = [get(f"/api/v1/generations/{i}") for i in ids]
history = [item for item in get("/api/v1/history?per_page=100")["items"] if item["id"] in set(ids)]
per_worker = {}
for job in jobs_seen:
    per_worker[job.get("worker")] = per_worker.get(job.get("worker"), 0) + 1
system = get("/api/v1/system")
samples = {}
for line in open(smi):
    parts = [p.strip() for p in line.split(",")]
    if len(parts) == 3 and all(p.replace(".", "").isdigit() for p in parts):
        samples.setdefault(parts[0], []).append((float(parts[1]), float(parts[2])))
busy = {gpu: round(sum(1 for u, _ in s if u > 50) / len(s), 3) for gpu, s in samples.items() if s}
done = [j for j in jobs_seen if j["status"] == "done"]
print(json.dumps({
    "devices": devices, "workers": workers, "jobs": jobs, "submit_s": round(submitted, 3), "seconds": round(elapsed, 3),
    "jobs_per_minute": round(60 * len(done) / elapsed, 2), "seconds_per_job": round(elapsed / max(len(done), 1), 3),
    "done": len(done), "every_job_done_once": len(done) == jobs and len(set(ids)) == jobs
        and sorted(h["id"] for h in history) == sorted(ids) and all(j.get("attempts", 1) == 1 for j in jobs_seen),
    "attempts": sorted({j.get("attempts") for j in jobs_seen}, key=str), "jobs_per_worker": per_worker,
    "most_running_at_once": together, "gpu_busy_share": busy,
    "gpu_peak_memory_mib": {gpu: max(m for _, m in s) for gpu, s in samples.items() if s},
    "system_workers": [{k: w.get(k) for k in ("id", "device", "engine_device", "state", "jobs_completed", "jobs_failed",
                                               "memory", "device_memory")} for w in system.get("workers", [])],
    "errors": [j.get("error") for j in jobs_seen if j["status"] != "done"][:3]}))
PY
    kill $sampler 2>/dev/null; wait $sampler 2>/dev/null
    kill $server; wait $server 2>/dev/null
    tail -1 "$OUT/sets.jsonl" | cut -c1-400
done
python3 - "$OUT" <<'PY'
import datetime, json, subprocess, sys
out = sys.argv[1]
sets = [json.loads(l) for l in open(f"{out}/sets.jsonl") if l.strip()]
gpus = open(f"{out}/gpus.txt").read().strip().splitlines()
commit = open(".carrypack3/commit.txt").read().strip() if __import__("os").path.exists(".carrypack3/commit.txt") else None
speedup = round(sets[-1]["jobs_per_minute"] / sets[0]["jobs_per_minute"], 3) if len(sets) > 1 and sets[0]["jobs_per_minute"] else None
doc = {"card": gpus, "date": datetime.date.today().isoformat(), "commit": commit,
       "workload": "zimage serve, random-weight full-size model (bf16 files), jobs of 1024x1024, 8 steps, submitted at "
                   "once through POST /api/v1/generations after one warm-up job a worker; nvidia-smi every 100 ms",
       "speedup": speedup, "sets": sets}
json.dump(doc, open(f"{out}/workers.json", "w"), indent=1)
print(json.dumps({"speedup": speedup, "sets": [(s["devices"], s["jobs_per_minute"], s["every_job_done_once"],
                                                s["most_running_at_once"], s["gpu_busy_share"]) for s in sets]}))
PY

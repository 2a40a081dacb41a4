#!/usr/bin/env bash
# One process, two CPU workers (issue 12): `zimage serve --devices cpu,cpu` with the demo model
# runs two jobs at once, one on each worker, and reports both in /api/v1/system and /metrics.
# Usage: test_devices.sh ZIMAGE_BINARY PORT
set -euo pipefail
bin=$1; port=$2
data=$(mktemp -d)
"$bin" serve --port "$port" --data-dir "$data" --devices cpu,cpu --node-name duo >"$data/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
for i in 1 2 3 4; do
    curl -sf -X POST "http://127.0.0.1:$port/api/v1/generations" \
        -d "{\"prompt\":\"duo $i\",\"width\":256,\"height\":256,\"seed\":$i,\"steps\":8}" >/dev/null
done
python3 - "$port" <<'PY'
import json, sys, time, urllib.request
port = sys.argv[1]
get = lambda path: json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}{path}"))
together = set()
deadline = time.time() + 120
while time.time() < deadline:
    queue = get("/api/v1/queue")
    running = {job["worker"] for job in queue["running_jobs"]}
    if len(running) == 2:
        together = running
    if not queue["queued"] and not queue["running_jobs"]:
        break
    time.sleep(0.05)
assert together == {"duo/0", "duo/1"}, f"two jobs never ran at once: {together}"
history = get("/api/v1/history?per_page=100")["items"]
assert len(history) == 4 and {item["worker"] for item in history} == {"duo/0", "duo/1"}, history
workers = get("/api/v1/system")["workers"]
assert [w["device"] for w in workers] == ["cpu", "cpu"] and sum(w["jobs_completed"] for w in workers) == 4, workers
metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
assert 'zimage_worker_jobs_completed_total{node="duo",worker="duo/1"}' in metrics
print("devices: two CPU workers in one process ran jobs at once; 4 jobs done, both workers used")
PY

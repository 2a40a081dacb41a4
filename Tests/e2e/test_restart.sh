#!/usr/bin/env bash
# Restart test (issue #5): queue several jobs, kill -9 the server in the middle of one, start it
# again on the same data folder: every job ends done, none lost, none duplicated.
# Usage: test_restart.sh ZIMAGE_BINARY PORT
set -euo pipefail
bin=$1; port=$2
data=$(mktemp -d)
log=$(mktemp)
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$data" "$log"' EXIT
start() {
    "$bin" serve --port "$port" --data-dir "$data" >>"$log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && return; sleep 0.1; done
    echo "FAIL: server did not start"; cat "$log"; exit 1
}
start
ids=()
for i in 1 2 3 4; do
    id=$(curl -sf -X POST "http://127.0.0.1:$port/api/v1/generations" \
        -d "{\"prompt\":\"job $i\",\"width\":768,\"height\":768,\"seed\":$i,\"steps\":8}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    ids+=("$id")
done
# Wait until the second job is running, then kill the server without warning.
for _ in $(seq 600); do
    status=$(curl -sf "http://127.0.0.1:$port/api/v1/generations/${ids[1]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
    [ "$status" = running ] && break
    sleep 0.1
done
[ "$status" = running ] || { echo "FAIL: job 2 never ran"; exit 1; }
sleep 0.3
kill -9 $pid; wait $pid 2>/dev/null || true
start
for _ in $(seq 1200); do
    left=$(curl -sf "http://127.0.0.1:$port/api/v1/queue" | python3 -c 'import json,sys; q=json.load(sys.stdin); print(len(q["queued"]) + (q["running"] is not None))')
    [ "$left" = 0 ] && break
    sleep 0.1
done
python3 - "$port" "${ids[@]}" <<'PY'
import json, sys, urllib.request
port, ids = sys.argv[1], sys.argv[2:]
get = lambda path: json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}{path}"))
for i, id in enumerate(ids):
    job = get(f"/api/v1/generations/{id}")
    assert job["status"] == "done", (i, job["status"], job.get("error"))
    assert len(job["images"]) == 1 and job["images"][0]["seed"] == i + 1, job["images"]
history = get("/api/v1/history?per_page=100")
listed = [item["id"] for item in history["items"]]
assert sorted(listed) == sorted(ids) and len(listed) == len(set(listed)), listed
print(f"restart: {len(ids)} jobs queued, server killed mid-job, all {len(ids)} done once after restart")
PY

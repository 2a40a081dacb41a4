#!/usr/bin/env bash
# Load on loopback (issue #5): hundreds of concurrent status and history requests while the
# server generates (demo model, 1024x1024 jobs keep the worker busy). wrk with 200 connections
# for 20 s, half job-status and half history requests. Records p50/p99 latency and errors in
# bench/results/<date>-server-load-<host>.json. Needs wrk (Debian package).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)"; exit 1; }
swift build -c release --product zimage >/dev/null
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
XDG_CACHE_HOME="$work/cache" .build/release/zimage serve --port $port --data-dir "$work/data" > "$work/log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
# Keep the worker busy for the whole run.
. bench/load_mix.sh
queue_load_jobs "http://127.0.0.1:$port" "$work"
busy_before=$(curl -sf "http://127.0.0.1:$port/api/v1/queue" | python3 -c 'import json,sys; print(json.load(sys.stdin)["running"] is not None)')
wrk -t2 -c200 -d20s --latency -s "$work/mix.lua" "http://127.0.0.1:$port" | tee "$work/wrk.txt"
busy_after=$(curl -sf "http://127.0.0.1:$port/api/v1/queue" | python3 -c 'import json,sys; print(json.load(sys.stdin)["running"] is not None)')
done_jobs=$(curl -sf "http://127.0.0.1:$port/api/v1/history?per_page=100" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
python3 - "$work/wrk.txt" "$busy_before" "$busy_after" "$done_jobs" <<'PY'
import datetime, json, re, subprocess, sys
text, busy_before, busy_after, done_jobs = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3], int(sys.argv[4])
def latency(p):
    m = re.search(rf"^\s*{p}%\s+([\d.]+)(us|ms|s)", text, re.M)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
requests = int(re.search(r"(\d+) requests in", text).group(1))
errors = re.search(r"Socket errors: (.*)", text)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
report = {
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
    "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
    "workload": "wrk -t2 -c200 -d20s, alternating GET /api/v1/generations/{id} and GET /api/v1/history, "
                "while the demo model generates 1024x1024 batches on the same 2 cores",
    "generating_during_run": [busy_before == "True", busy_after == "True"], "jobs_finished_meanwhile": done_jobs,
    "requests": requests, "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
    "latency_ms": {"p50": latency(50), "p75": latency(75), "p90": latency(90), "p99": latency(99)},
    "socket_errors": errors.group(1) if errors else "none", "non_2xx": int(non2xx.group(1)) if non2xx else 0,
}
out = f"bench/results/{datetime.date.today().isoformat()}-server-load-{subprocess.run(['hostname', '-s'], capture_output=True, text=True).stdout.strip()}.json"
json.dump(report, open(out, "w"), indent=1)
print(json.dumps(report, indent=1))
assert report["non_2xx"] == 0 and report["socket_errors"] == "none", "errors under load"
PY

#!/usr/bin/env bash
# bench/run_server_load.sh's load, through nginx (deploy/nginx-zimage.conf) in front of two
# `zimage serve` nodes sharing one PostgreSQL (issue 12): wrk with 200 connections for 20 s,
# half job-status and half history requests, while both nodes generate 1024x1024 batches on the
# same 2 cores. Records p50/p99 latency and errors in
# bench/results/<date>-cluster-load-<host>.json. Needs wrk, nginx and PostgreSQL (Debian packages;
# scripts/test-services.sh install).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)"; exit 1; }
./scripts/test-services.sh install
swift build -c release --product zimage >/dev/null
bin=.build/release/zimage
work=$(mktemp -d)
chmod 755 "$work"
port=$((20000 + RANDOM % 20000))
a=$port; b=$((port + 1)); front=$((port + 2)); pg=$((port + 3))
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$work/nginx/nginx.pid" ] && kill -QUIT "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true
    ./scripts/test-services.sh stop-postgres "$work/pg"
    rm -rf "$work"
}
trap cleanup EXIT
url=$(./scripts/test-services.sh postgres "$work/pg" $pg)
XDG_CACHE_HOME="$work/cache" "$bin" generate --prompt warm --width 64 --height 64 --steps 1 --output "$work/warm" >/dev/null
for node in A B; do
    p=$a; [ $node = B ] && p=$b
    XDG_CACHE_HOME="$work/cache" "$bin" serve --port $p --data-dir "$work/$node" --database "$url" --node-name $node \
        > "$work/$node.log" 2>&1 &
    pids+=($!)
done
mkdir -p "$work/nginx"
sed -e "s/127.0.0.1:7860/127.0.0.1:$a/" -e "s/127.0.0.1:7861/127.0.0.1:$b/" -e "s/listen 127.0.0.1:8080/listen 127.0.0.1:$front/" \
    deploy/nginx-zimage.conf > "$work/nginx/zimage.conf"
cat > "$work/nginx/nginx.conf" <<CONF
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
worker_processes 1;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    include $work/nginx/zimage.conf;
}
CONF
"$(command -v nginx || echo /usr/sbin/nginx)" -p "$work/nginx" -c "$work/nginx/nginx.conf"
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$front/health" >/dev/null && curl -sf "http://127.0.0.1:$b/health" >/dev/null \
    && curl -sf "http://127.0.0.1:$a/health" >/dev/null && break; sleep 0.1; done
# Keep both nodes' workers busy for the whole run.
. bench/load_mix.sh
queue_load_jobs "http://127.0.0.1:$front" "$work"
running() { curl -sf "http://127.0.0.1:$front/api/v1/queue" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["running_jobs"]))'; }
sleep 2
busy_before=$(running)
wrk -t2 -c200 -d20s --latency -s "$work/mix.lua" "http://127.0.0.1:$front" | tee "$work/wrk.txt"
busy_after=$(running)
done_jobs=$(curl -sf "http://127.0.0.1:$front/api/v1/history?per_page=100" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
python3 - "$work/wrk.txt" "$busy_before" "$busy_after" "$done_jobs" <<'PY'
import datetime, json, re, subprocess, sys
text, busy_before, busy_after, done_jobs = open(sys.argv[1]).read(), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
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
    "workload": "wrk -t2 -c200 -d20s through nginx (deploy/nginx-zimage.conf) to two nodes on one PostgreSQL, alternating "
                "GET /api/v1/generations/{id} and GET /api/v1/history, while both nodes generate 1024x1024 batches "
                "with the demo model on the same 2 cores",
    "jobs_running_during_run": [busy_before, busy_after], "jobs_finished_meanwhile": done_jobs,
    "requests": requests, "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
    "latency_ms": {"p50": latency(50), "p75": latency(75), "p90": latency(90), "p99": latency(99)},
    "socket_errors": errors.group(1) if errors else "none", "non_2xx": int(non2xx.group(1)) if non2xx else 0,
}
out = f"bench/results/{datetime.date.today().isoformat()}-cluster-load-{subprocess.run(['hostname', '-s'], capture_output=True, text=True).stdout.strip()}.json"
json.dump(report, open(out, "w"), indent=1)
print(json.dumps(report, indent=1))
assert report["non_2xx"] == 0 and report["socket_errors"] == "none", "errors under load"
PY

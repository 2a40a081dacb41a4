#!/usr/bin/env bash
# CPU op benchmark: zimage and PyTorch (CPU) on the same machine, same threads, one run.
# Writes bench/results/<date>-cpu-ops-<host>.json and prints a table. Needs torch (pip, CPU wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${THREADS:-$(nproc)}
repeats=${REPEATS:-5}
swift build -c release --product ZImageBench >/dev/null
ours=$(.build/release/ZImageBench cpu-ops --threads "$threads" --repeats "$repeats")
theirs=$(python3 bench/cpu_ops_torch.py "$threads" "$repeats")
out="bench/results/$(date -u +%Y-%m-%d)-cpu-ops-$(hostname -s).json"
python3 - "$out" "$ours" "$theirs" <<'PY'
import json, platform, subprocess, sys, datetime
out, ours, theirs = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
by = {c["case"]: c for c in theirs["cases"]}
rows = []
print(f"{'case':32} {'zimage ms':>10} {'torch ms':>10} {'torch/zimage':>13}")
for c in ours["cases"]:
    t = by[c["case"]]
    ratio = t["ms"] / c["ms"]
    rows.append({"case": c["case"], "zimage_ms": c["ms"], "torch_ms": t["ms"], "speed_vs_torch": ratio,
                 "zimage_gflops": c["gflops"], "torch_gflops": t["gflops"]})
    print(f"{c['case']:32} {c['ms']:10.2f} {t['ms']:10.2f} {ratio:13.2f}")
json.dump({"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "commit": commit,
           "cpu": cpu, "threads": ours["threads"], "torch": theirs["torch"], "cases": rows}, open(out, "w"), indent=1)
print("wrote", out)
PY

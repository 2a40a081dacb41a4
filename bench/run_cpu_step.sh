#!/usr/bin/env bash
# CPU seconds per step, mid-size DiT (dim 768, 8 layers) at 512x512: zimage and diffusers on the
# same machine, same threads, one run. Writes bench/results/<date>-cpu-step-<host>.json.
# Needs torch (CPU) and diffusers 0.42.1 (pip install -r tools/fixtures/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${THREADS:-$(nproc)}
repeats=${REPEATS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
swift build -c release --product ZImageBench >/dev/null
theirs=$(python3 bench/cpu_step_diffusers.py "$work" "$threads" "$repeats" 2>/dev/null)
ours=$(.build/release/ZImageBench cpu-step --model "$work" --threads "$threads" --repeats "$repeats")
out="bench/results/$(date -u +%Y-%m-%d)-cpu-step-$(hostname -s).json"
python3 - "$out" "$ours" "$theirs" <<'PY'
import datetime, json, platform, subprocess, sys
out, ours, theirs = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "commit": commit,
          "cpu": cpu, "threads": ours["threads"], "torch": theirs["torch"],
          "workload": "ZImageTransformer2DModel dim 768, 6x128 heads, 8 layers + 2+2 refiners, cap 2560; 512x512 "
                      "(1024 image tokens), 64 caption tokens, float32, one forward = one step at guidance 0",
          "diffusers_s_per_step": theirs["seconds_per_step"], "zimage_s_per_step": ours["seconds_per_step"],
          "zimage_s_per_step_caption_cached": ours["seconds_per_step_caption_cached"],
          "speed_vs_diffusers": theirs["seconds_per_step"] / ours["seconds_per_step"]}
json.dump(report, open(out, "w"), indent=1)
print(f"diffusers {report['diffusers_s_per_step']:.3f} s/step; zimage {report['zimage_s_per_step']:.3f} s/step "
      f"({report['zimage_s_per_step_caption_cached']:.3f} with the caption cached); "
      f"diffusers/zimage = {report['speed_vs_diffusers']:.2f}")
print("wrote", out)
PY

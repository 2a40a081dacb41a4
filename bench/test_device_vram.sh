#!/usr/bin/env bash
# bench/device_vram.sh without a GPU: a fake `zimage` (plans, refusals, a crash, the timing lines
# generate prints) and a fake `nvidia-smi` (samples every 50 ms), then the table file checked.
#   bash bench/test_device_vram.sh
set -euo pipefail
cd "$(dirname "$0")/.."
fake=$(mktemp -d)
trap 'rm -rf "$fake"' EXIT
[ "${KEEP:-0}" = 1 ] && trap - EXIT && echo "kept $fake"
echo 527 > "$fake/peak"
cat > "$fake/nvidia-smi" <<EOF
#!/usr/bin/env bash
while true; do cat "$fake/peak"; sleep 0.05; done
EOF
cat > "$fake/zimage" <<EOF
#!/usr/bin/env bash
# Fake zimage: advise/generate/devices with fixed numbers.
command=\$1; shift
budget=none; batch=1
while [ \$# -gt 0 ]; do
    case \$1 in --vram-budget) budget=\$2; shift ;; --batch) batch=\$2; shift ;; esac
    shift
done
plan() {  # weights mode tiled peak seconds newprompt textEncoder transformer
    echo "{\"weights\": \"\$1\", \"mode\": \"\$2\", \"tiled_decode\": \$3, \"peak_bytes\": \$4, \"seconds_per_image\": \$5,
      \"seconds_per_image_new_prompt\": \$6, \"runnable\": true, \"missing\": [],
      \"settings\": {\"text_encoder\": \"\$7\", \"transformer\": \"\$8\", \"weights\": \"\$1\", \"tiled_decode\": \$3}}"
}
resident=\$(plan bf16 resident false 29647706112 0.78 0.79 resident resident)
residentTiled=\$(plan bf16 resident true 24793000000 0.83 0.84 resident resident)
case \$command in
devices) echo "cuda:0: Fake H200, 143771 MiB" ;;
advise)
    case \$budget in
    16) chosen=\$(plan bf16 text-streaming true 17350000000 0.80 0.95 streamed resident) ;;
    24) chosen=\$(plan bf16 resident true 24793000000 0.83 0.84 resident resident) ;;
    none) chosen=\$resident ;;
    *) chosen=null ;;
    esac
    echo "{\"this_build\": {\"chosen\": \$chosen, \"reason\": \"fake reason \$budget\", \"candidates\": [\$resident, \$residentTiled]}}" ;;
generate)
    case \$budget in
    4) echo "plan: nothing fits 4.0 GiB budget at 1024x1024" >&2
       echo "Error: --vram-budget: refusing to start: nothing fits 4.0 GiB budget" >&2; exit 1 ;;
    8) echo "plan: fake" >&2; echo "Segmentation fault" >&2; exit 139 ;;
    16) echo 16000 > "$fake/peak" ;;
    24) echo 22731 > "$fake/peak" ;;
    none) echo 28275 > "$fake/peak" ;;
    esac
    [ \$budget = none ] || echo "plan: fake plan within \$budget GiB" >&2
    sleep 0.3
    echo 527 > "$fake/peak"
    gen=\$(python3 -c "print(f'{0.9 + 0.8 * (\$batch - 1):.2f}')")
    echo "\$batch image(s) in 3.1 s (loading 1.2 s, generating \$gen s), peak memory 1.2 GiB (now 1 GiB allocated, 40 GiB of memory-mapped files)" >&2
    if [ \$batch -gt 1 ]; then
        echo "per image: 0.900 s\$(for i in \$(seq 2 \$batch); do printf ', 0.800 s'; done) (the first encodes the prompt)" >&2
    fi
    echo "peak device memory (cuda:0): peak 20.16 GiB in tensors, 21.66 GiB held from the driver; device 22.2 GiB of 140.4 GiB in use now" >&2 ;;
esac
EOF
chmod +x "$fake/zimage" "$fake/nvidia-smi"
OUT="$fake/out" SKIP_SETUP=1 SKIP_SERVER=1 BUDGETS="4 8 16 24 none" FORCED="16:auto:resident 24:auto:plan" ZIMAGE="$fake/zimage" NVIDIA_SMI="$fake/nvidia-smi" \
    MODEL="$fake/model" bash bench/device_vram.sh > "$fake/stdout" 2>&1 || { cat "$fake/stdout"; echo "FAIL: the script failed"; exit 1; }
python3 - "$fake/out/vram-table.json" "$fake/out/runs" <<'PY'
import json, os, sys
table = json.load(open(sys.argv[1]))
rows = {r["label"]: r for r in table["rows"]}
def check(ok, message):
    if not ok:
        sys.exit(f"FAIL: {message}\n{json.dumps(table, indent=1)[:3000]}")
want = ["auto-4", "auto-8", "auto-16", "auto-16-batch4", "auto-24", "auto-24-batch4", "auto-none", "auto-none-batch4",
        "auto-16-resident", "auto-24-plan", "repeat-16", "repeat-none"]
check(sorted(rows) == sorted(want), f"rows {sorted(rows)}")
r = rows["auto-4"]
check(r["exit"] == 1 and "refusing to start" in r["error"] and r["measured_seconds_per_image"] is None, "a refusal is a row with its error")
r = rows["auto-8"]
check(r["exit"] == 139 and "Segmentation fault" in r["error"], "a crash is a row with its error")
r = rows["auto-16"]
check(r["plan"] == "bf16, text-streaming, tiled VAE decode" and r["settings"]["text_encoder"] == "streamed", "16 GiB plan and settings")
check(r["measured_peak_bytes"] == 16000 << 20 and r["baseline_mib"] == 527, f"nvidia-smi peak and baseline {r}")
check(r["pool_peak_in_use_bytes"] == int(20.16 * 2**30) and r["pool_peak_held_bytes"] == int(21.66 * 2**30), "pool marks")
check(r["measured_seconds_per_image"] == 0.9 and r["predicted_seconds_per_image"] == 0.95, "seconds per image (new prompt)")
check(r["within_10pct_memory"] is True and r["within_25pct_time"] is True and r["under_budget"] is True, "within checks")
r = rows["auto-none"]
check(r["plan"] == "bf16, resident, full VAE decode" and r["within_10pct_memory"] is True, "unplanned run against bf16 resident")
r = rows["auto-16-resident"]
check(r["memory_mode_forced"] == "resident" and r["plan"] == "bf16, resident, tiled VAE decode"
      and r["predicted_peak_bytes"] == 24793000000, f"a forced row is predicted from its mode's costing {r}")
check(rows["auto-16"]["memory_mode_forced"] is None, "an unforced row says so")
check(rows["auto-24-plan"]["memory_mode_forced"] is None and rows["auto-24-plan"]["plan"] == rows["auto-24"]["plan"],
      "a 'plan' row follows the planner")
r = rows["repeat-16"]
check(r["per_image_s"] == [0.9, 0.8] and r["repeated_prompt_seconds_per_image"] == 0.8, "the second image's time")
check(r["predicted_seconds_repeated_prompt"] == 0.8 and r["within_25pct_repeated_time"] is True, "repeated prediction")
b4 = rows["auto-24-batch4"]
check(b4["batch"] == 4 and abs(b4["measured_seconds_per_image"] - (0.9 + 2.4) / 4) < 1e-9, "batch 4 per image")
check(table["summary"]["runs"] == 12 and table["summary"]["failed_or_refused"] == 2, "summary counts")
for label in want:
    check(os.path.exists(os.path.join(sys.argv[2], label + ".log")), f"log of {label} kept")
print("device_vram.sh with a fake zimage and nvidia-smi: 12 rows (one forced into a memory mode), refusal and crash recorded, plans, peaks, times parsed")
PY

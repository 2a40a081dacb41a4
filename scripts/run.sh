#!/usr/bin/env bash
# The main job: installs what is missing, builds zimage (release) and runs it with the given
# arguments; with none, generates an image with the built-in demo model into ./outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
swift build -c release --product zimage 2>&1 | grep -E "error|warning: unre|Compiling|Build complete" | tail -n 3 >&2
if [ $# -eq 0 ]; then set -- generate --prompt "a red fox in the snow, watercolor" --width 512 --height 512 --seed 42; fi
exec .build/release/zimage "$@"

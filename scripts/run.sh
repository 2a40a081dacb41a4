#!/usr/bin/env bash
# The main job: installs what is missing, builds zimage (release) and runs it with the given
# arguments; with none, inspects the bundled tiny model.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
swift build -c release --product zimage 2>&1 | grep -E "error|warning: unre|Compiling|Build complete" | tail -n 3 >&2
if [ $# -eq 0 ]; then set -- inspect Tests/Fixtures/tiny-zimage; fi
exec .build/release/zimage "$@"

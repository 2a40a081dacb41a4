#!/usr/bin/env bash
# Installs what building zimage needs on Debian/Ubuntu: OpenBLAS (CPU matrix products), libpng
# (PNG files) and SQLite (the server's job store). A Swift 6 toolchain must already be on PATH
# (https://swift.org/install).
set -euo pipefail
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

command -v swift >/dev/null || { echo "zimage needs a Swift 6 toolchain on PATH (https://swift.org/install)" >&2; exit 1; }
missing=()
header() { for dir in /usr/include /usr/include/x86_64-linux-gnu /usr/include/aarch64-linux-gnu; do [ -e "$dir/$1" ] && return 0; done; return 1; }
header cblas.h || missing+=(libopenblas-dev)
header png.h || missing+=(libpng-dev)
header sqlite3.h || missing+=(libsqlite3-dev)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

#!/usr/bin/env bash
# Installs what building zimage needs on Debian/Ubuntu: OpenBLAS (CPU matrix products).
# A Swift 6 toolchain must already be on PATH (https://swift.org/install).
set -euo pipefail
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

command -v swift >/dev/null || { echo "zimage needs a Swift 6 toolchain on PATH (https://swift.org/install)" >&2; exit 1; }
if ! [ -e /usr/include/x86_64-linux-gnu/cblas.h ] && ! [ -e /usr/include/aarch64-linux-gnu/cblas.h ] \
    && ! [ -e /usr/include/cblas.h ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev pkg-config >/dev/null
fi

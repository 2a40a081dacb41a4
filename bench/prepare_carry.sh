#!/usr/bin/env bash
# Builds the release binaries with a static Swift runtime and gathers them, stripped, with the
# shared libraries a bare GPU machine lacks (OpenBLAS and its Fortran runtime) into .carry/.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --static-swift-stdlib --product zimage
swift build -c release --static-swift-stdlib --product ZImageBench
rm -rf .carry && mkdir -p .carry/lib
for binary in zimage ZImageBench; do
    cp .build/release/$binary .carry/ && strip .carry/$binary
done
# SwiftPM's resource bundles (web UI, OpenAPI document, bundled tokenizer) go beside the binaries.
cp -r .build/release/zimage_*.resources .carry/
ldd .carry/ZImageBench | awk '/=>/ {print $3}' | grep -E "openblas|gfortran|quadmath" | while read -r lib; do
    cp -L "$lib" .carry/lib/
done
du -sh .carry

#!/usr/bin/env bash
# Gathers the debug test bundle (every test target, FusedKernelGPUTests among them), stripped,
# with the shared libraries it needs that a bare GPU machine lacks (the Swift runtime, Foundation,
# Swift Testing, XCTest, libpng, SQLite; OpenBLAS comes in .carry/ from prepare_carry.sh) into
# .carry-tests/, so the GPU test suite runs on the device itself (bench/device_gpu_tests.sh):
#   LD_LIBRARY_PATH=.carry-tests/lib:.carry/lib:/usr/local/cuda/lib64 \
#       .carry-tests/zimagePackageTests.xctest --testing-library swift-testing --filter FusedKernelGPUTests
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
bundle=$(swift build --show-bin-path)/zimagePackageTests.xctest
rm -rf .carry-tests && mkdir -p .carry-tests/lib
cp "$bundle" .carry-tests/ && strip .carry-tests/zimagePackageTests.xctest
ldd "$bundle" | awk '/=>/ {print $3}' | grep -vE "openblas|gfortran|quadmath|/libc\.so|/libm\.so|/libstdc\+\+|/libgcc_s|ld-linux|/libdl|/libpthread|/librt" |
    while read -r lib; do cp -L "$lib" .carry-tests/lib/; done
strip --strip-unneeded .carry-tests/lib/* 2>/dev/null || true
du -sh .carry-tests

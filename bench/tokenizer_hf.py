#!/usr/bin/env python3
"""Time Hugging Face `tokenizers` on ~1 MB of mixed text, for comparison with the Swift tokenizer.

Usage: python3 bench/tokenizer_hf.py TOKENIZER_JSON OUT_TEXT_PATH [--repeats N] [--corpus PATH]

The text: the lines of Tests/Fixtures/tokenizer/corpus.jsonl (decoded JSON strings, in file order,
cycling from the start again when exhausted), each followed by "\\n", until the text has at least
1,000,000 UTF-8 bytes. It is written to OUT_TEXT_PATH as raw UTF-8, so the Swift benchmark can read
exactly the same bytes. Corpus lines may themselves contain "\\n" or "\\r", so "lines" below means:
split the text on "\\n" and drop the final empty piece (the same rule is easy to reproduce in Swift).

Measured (add_special_tokens=False throughout; every mode in its own subprocess):
  one_string      tok.encode(text)
  encode_batch    tok.encode_batch(lines)
  loop            [tok.encode(l) for l in lines]
  load            Tokenizer.from_file(TOKENIZER_JSON)
under two environments:
  single_thread   RAYON_NUM_THREADS=1, TOKENIZERS_PARALLELISM=false
  default         both variables removed from the environment
Each timing is reported as the first (cold: empty BPE cache) run and min/median of the following
`--repeats` runs (warm: the BPE word cache of tokenizers' model is populated; it holds up to 10,000
words). Output: one JSON object on stdout.
"""
import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_CORPUS = os.path.join(REPO, "Tests", "Fixtures", "tokenizer", "corpus.jsonl")
TARGET_BYTES = 1_000_000


def build_text(corpus_path):
    lines = []
    with open(corpus_path, "r", encoding="utf-8", newline="\n") as f:
        for raw in f:
            lines.append(json.loads(raw.rstrip("\n")))
    parts, n, i = [], 0, 0
    while n < TARGET_BYTES:
        s = lines[i % len(lines)] + "\n"
        parts.append(s)
        n += len(s.encode("utf-8"))
        i += 1
    return "".join(parts)


def split_lines(text):
    pieces = text.split("\n")
    assert pieces[-1] == ""
    return pieces[:-1]


def timed(fn, repeats):
    t0 = time.perf_counter()
    r = fn()
    first = time.perf_counter() - t0
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return r, {"first_s": first, "min_s": min(ts) if ts else first,
               "median_s": statistics.median(ts) if ts else first, "runs": repeats}


def child(args):
    from tokenizers import Tokenizer
    with open(args.text_path, "rb") as f:
        text = f.read().decode("utf-8")
    lines = split_lines(text)
    out = {}
    t0 = time.perf_counter()
    tok = Tokenizer.from_file(args.tokenizer_json)
    out["load_s"] = time.perf_counter() - t0
    if args.child == "one_string":
        r, t = timed(lambda: tok.encode(text, add_special_tokens=False), args.repeats)
        out.update(t, tokens=len(r.ids))
    elif args.child == "encode_batch":
        r, t = timed(lambda: tok.encode_batch(lines, add_special_tokens=False), args.repeats)
        out.update(t, tokens=sum(len(e.ids) for e in r))
    elif args.child == "loop":
        r, t = timed(lambda: [tok.encode(l, add_special_tokens=False) for l in lines], args.repeats)
        out.update(t, tokens=sum(len(e.ids) for e in r))
    json.dump(out, sys.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tokenizer_json")
    ap.add_argument("text_path")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--corpus", default=DEFAULT_CORPUS)
    ap.add_argument("--child", choices=["one_string", "encode_batch", "loop"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    import tokenizers
    text = build_text(args.corpus)
    data = text.encode("utf-8")
    os.makedirs(os.path.dirname(os.path.abspath(args.text_path)), exist_ok=True)
    with open(args.text_path, "wb") as f:
        f.write(data)
    lines = split_lines(text)

    envs = {}
    base = {k: v for k, v in os.environ.items() if k not in ("RAYON_NUM_THREADS", "TOKENIZERS_PARALLELISM",
                                                                "RAYON_RS_NUM_CPUS")}
    envs["single_thread"] = dict(base, RAYON_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    envs["default"] = dict(base)
    results = {}
    for env_name, env in envs.items():
        results[env_name] = {}
        for mode in ("one_string", "encode_batch", "loop"):
            cmd = [sys.executable, os.path.abspath(__file__), args.tokenizer_json, args.text_path,
                   "--repeats", str(args.repeats), "--child", mode]
            p = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if p.returncode != 0:
                sys.stderr.write(p.stderr)
                sys.exit(f"child {env_name}/{mode} failed")
            results[env_name][mode] = json.loads(p.stdout)

    tok_one = results["single_thread"]["one_string"]["tokens"]
    tok_lines = results["single_thread"]["loop"]["tokens"]
    for env_name in results:
        assert results[env_name]["one_string"]["tokens"] == tok_one
        assert results[env_name]["encode_batch"]["tokens"] == tok_lines
        assert results[env_name]["loop"]["tokens"] == tok_lines
    report = {
        "tokenizers_version": tokenizers.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "text_path": args.text_path,
        "text_bytes": len(data),
        "text_chars": len(text),
        "text_sha256": hashlib.sha256(data).hexdigest(),
        "lines": len(lines),
        "tokens_one_string": tok_one,
        "tokens_lines_total": tok_lines,
        "repeats": args.repeats,
        "results": results,
        "mb_per_s_single_thread_one_string_warm": len(data) / 1e6 / results["single_thread"]["one_string"]["min_s"],
    }
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

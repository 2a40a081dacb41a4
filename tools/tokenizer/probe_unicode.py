#!/usr/bin/env python3
"""Measure, for every Unicode scalar, how HF tokenizers' Qwen3 pre-tokenizer regex and NFC normalizer
treat it, and write Tests/Fixtures/tokenizer/hf_unicode.json.

Why: HF `tokenizers` 0.23.3 runs the Split regex with Oniguruma (\\p{L}, \\p{N} from Unicode 16.0,
\\s = White_Space) and NFC with the `unicode-normalization-alignments` crate (Unicode 9.0 tables).
A Swift port that uses Swift's own Unicode data (Unicode 17 in Swift 6.3) differs on a few
hundred rare code points. This file lists exactly what HF does so Swift tests can check every
scalar, not only the corpus.

Method (no Unicode tables are trusted for the HF side; everything is observed):
  * classes: for each scalar c, pre-tokenize (Split regex only, no NFC) the probes
      "1a" c "1"  -> no boundary between a and c     => c is \\p{L}
      "1" c "!1"  -> no boundary between c and !     => c is "other" (not L, N, \\s)
      "1" c "\\n1" -> no boundary between c and \\n   => c is \\s
      otherwise                                      => c is \\p{N}
    ("1" is always a one-token boundary; U+0020 is special-cased: ' ?[^\\s…]' absorbs it, it is \\s.)
  * NFC: compared against `unicodedata2` (the reference version is recorded) on every single scalar,
    the NFD of every scalar, and a canonical-reordering probe for every combining mark.

Output JSON (code points as integers):
  regex_classes.{L,N,S}: sorted inclusive ranges [first, last] of the scalars HF's regex puts in
    \\p{L}, \\p{N}, \\s. Every other scalar (surrogates excluded) is "other".
  reference: unicodedata2 version used for the comparisons below.
  class_differences_vs_reference: {"L": {"hf_only": ranges, "reference_only": ranges}, "N": …}
  nfc_ccc_zero_in_hf: [[cp, ccc_in_reference], …] combining marks HF treats as class 0 (not reordered,
    block composition like a starter would)
  nfc_compositions_missing_in_hf: [[first, second, composite], …] primary composites HF does not
    compose (it still leaves the precomposed character itself unchanged)
  nfc_other_differences: inputs (as code point lists) where HF NFC differs from the reference for
    reasons not explained by the two lists above (expected: empty)

Usage: python3 tools/tokenizer/probe_unicode.py TOKENIZER_JSON [--out DIR]   (about a minute)
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def ranges(cps):
    out = []
    for c in sorted(cps):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tokenizer_json")
    ap.add_argument("--out", default=os.path.join(REPO, "Tests", "Fixtures", "tokenizer"))
    args = ap.parse_args()

    import tokenizers
    import unicodedata2 as ud
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers

    tj = json.load(open(args.tokenizer_json, encoding="utf-8"))
    split_cfg = tj["pre_tokenizer"]["pretokenizers"][0]
    assert split_cfg["type"] == "Split" and split_cfg["behavior"] == "Isolated" and not split_cfg["invert"]
    sp = pre_tokenizers.Split(Regex(split_cfg["pattern"]["Regex"]), behavior="isolated", invert=False)
    assert tj["normalizer"] == {"type": "NFC"}
    nfc = normalizers.NFC()
    Tokenizer.from_file(args.tokenizer_json)  # must load

    scalars = [c for c in range(0x110000) if not (0xD800 <= c <= 0xDFFF)]

    def merged(make):
        parts, pos, off = [], [], 0
        for c in scalars:
            s, k = make(chr(c))
            parts.append(s)
            pos.append(off + k)
            off += len(s)
        starts = {o[0] for _, o in sp.pre_tokenize_str("".join(parts))}
        return [p not in starts for p in pos]

    A = merged(lambda ch: ("1a" + ch + "1", 2))
    C = merged(lambda ch: ("1" + ch + "!1", 2))
    G = merged(lambda ch: ("1" + ch + "\n1", 2))
    cls = {}
    for i, c in enumerate(scalars):
        cls[c] = "L" if A[i] else "O" if C[i] else "S" if G[i] else "N"
    cls[0x20] = "S"
    # sanity
    assert cls[ord("a")] == "L" and cls[ord("1")] == "N" and cls[ord("\n")] == "S" and cls[ord("!")] == "O"

    ref = {}
    for c in scalars:
        cat = ud.category(chr(c))
        ref[c] = "L" if cat[0] == "L" else "N" if cat[0] == "N" else "O"
    ws_ref = {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029,
              0x202F, 0x205F, 0x3000}  # PropList White_Space (unchanged since Unicode 6.3)
    for c in ws_ref:
        ref[c] = "S"
    diffs = {}
    for k in ("L", "N", "S"):
        hf_only = [c for c in scalars if cls[c] == k and ref[c] != k]
        ref_only = [c for c in scalars if ref[c] == k and cls[c] != k]
        diffs[k] = {"hf_only": ranges(hf_only), "reference_only": ranges(ref_only)}

    # ---- NFC --------------------------------------------------------------------------------
    SEP = "\x00"

    def batch(strs):
        out = nfc.normalize_str(SEP.join(strs)).split(SEP)
        assert len(out) == len(strs)
        return out

    nz = [c for c in scalars if c != 0]
    ccc_zero = []
    for m in nz:
        cc = ud.combining(chr(m))
        if not cc:
            continue
        other = "\u0301" if cc != 230 else "\u0323"
        oc = ud.combining(other)
        s = "x" + (chr(m) + other if cc > oc else other + chr(m))
        if nfc.normalize_str(s) != ud.normalize("NFC", s):
            ccc_zero.append([m, cc])
    ccc_zero_set = {m for m, _ in ccc_zero}

    singles = [chr(c) for c in nz]
    got = batch(singles)
    other_diffs = [[ord(ch) for ch in s] for s, g in zip(singles, got) if g != ud.normalize("NFC", s)]

    missing = []
    nfds = [(c, ud.normalize("NFD", chr(c))) for c in nz if ud.normalize("NFD", chr(c)) != chr(c)]
    got = batch([d for _, d in nfds])
    for (c, d), g in zip(nfds, got):
        if g != ud.normalize("NFC", d):
            # primary composite whose canonical decomposition is a pair (possibly after full decomposition)
            dec = ud.decomposition(chr(c)).split()
            if len(dec) == 2 and not dec[0].startswith("<"):
                missing.append([int(dec[0], 16), int(dec[1], 16), c])
            else:
                other_diffs.append([ord(ch) for ch in d])
    # compositions missing only because of an inner missing composition are covered by the pair list
    missing_pairs = {(a, b) for a, b, _ in missing}
    missing_comps = {x for _, _, x in missing}
    other_diffs = [d for d in other_diffs
                   if not any(ch in ccc_zero_set or ch in missing_comps for ch in d)
                   and not any((d[i], d[i + 1]) in missing_pairs for i in range(len(d) - 1))]

    out = {
        "tokenizers_version": tokenizers.__version__,
        "regex": split_cfg["pattern"]["Regex"],
        "regex_classes": {k: ranges([c for c in scalars if cls[c] == k]) for k in ("L", "N", "S")},
        "counts": {k: sum(1 for c in scalars if cls[c] == k) for k in ("L", "N", "S", "O")},
        "reference": "unicodedata2 " + ud.unidata_version,
        "class_differences_vs_reference": diffs,
        "nfc_ccc_zero_in_hf": ccc_zero,
        "nfc_compositions_missing_in_hf": missing,
        "nfc_other_differences": other_diffs,
    }
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "hf_unicode.json")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("{\n")
        items = list(out.items())
        for i, (k, v) in enumerate(items):
            f.write(f" {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" + (",\n" if i + 1 < len(items) else "\n"))
        f.write("}\n")
    print(json.dumps({k: out[k] for k in ("tokenizers_version", "counts", "reference")}))
    for k, v in diffs.items():
        print(k, "hf_only", sum(b - a + 1 for a, b in v["hf_only"]), "reference_only",
              sum(b - a + 1 for a, b in v["reference_only"]), v["hf_only"][:5], v["reference_only"][:5])
    print("nfc ccc-zero-in-hf marks:", len(ccc_zero), "missing compositions:", len(missing),
          "other differences:", len(other_diffs))
    print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()

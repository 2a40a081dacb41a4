#!/usr/bin/env python3
"""`zimage pull` against a Hub look-alike on 127.0.0.1 (Tests/e2e/hub_server.py).

Checks: a full pull; an interrupted pull (SIGKILL) resumed by a new process with Range; the cache
read back unchanged by huggingface_hub.snapshot_download(local_files_only=True) and hf_hub_download,
and equal, entry for entry, to the cache huggingface_hub itself writes from the same server;
`--model org/name` resolving through the cache; HF_HUB_OFFLINE; the token sent to the Hub and
never to the CDN; and clear errors (exit 1, nothing half-written in snapshots/) for a corrupted
byte, a 404, a wrong token and a full disk.

Usage: python3 Tests/e2e/test_pull.py path/to/zimage
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURE = HERE.parent / "Fixtures" / "tiny-zimage"
REPO = "zimage-test/tiny-zimage"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fail(message: str):
    print(f"FAIL: {message}")
    sys.exit(1)


class Server:
    def __init__(self, root: Path, log: Path, *extra: str):
        self.log = log
        self.process = subprocess.Popen([sys.executable, str(HERE / "hub_server.py"), "--root", str(root),
                                         "--log", str(log), *extra], stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline().split()
        if not line or line[0] != "ready":
            fail(f"hub server did not start: {line}")
        self.endpoint = f"http://127.0.0.1:{line[1]}"

    def requests(self) -> list[dict]:
        return [json.loads(x) for x in self.log.read_text().splitlines()] if self.log.exists() else []

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


def make_repo(root: Path) -> dict[str, bytes]:
    """The tiny model (symlinked folders resolved) plus a 3 MB LFS file in a nested folder."""
    repo = root / REPO
    shutil.copytree(FIXTURE, repo)
    big = repo / "extra" / "deep" / "big.bin"
    big.parent.mkdir(parents=True)
    big.write_bytes(hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32))
    return {str(p.relative_to(repo)): p.read_bytes() for p in repo.rglob("*") if p.is_file()}


def env(cache: Path, endpoint: str, **extra) -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    e.update(HF_ENDPOINT=endpoint, HF_HUB_CACHE=str(cache), HF_HOME=str(cache.parent / "hf-home"))
    e.update({k: str(v) for k, v in extra.items()})
    return e


def pull(zimage: str, environment: dict, *args: str, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([zimage, "pull", *args], env=environment, capture_output=True, text=True, timeout=timeout)


def snapshot_files(cache: Path) -> list[Path]:
    folder = cache / "models--zimage-test--tiny-zimage" / "snapshots"
    return sorted(p for p in folder.rglob("*") if not p.is_dir()) if folder.exists() else []


def check_layout(cache: Path, expected: dict[str, bytes]):
    storage = cache / "models--zimage-test--tiny-zimage"
    if (storage / "refs" / "main").read_text() != COMMIT:
        fail("refs/main does not hold the commit (with no newline)")
    snap = storage / "snapshots" / COMMIT
    for rel, data in expected.items():
        link = snap / rel
        if not link.is_symlink():
            fail(f"{rel} is not a symlink in the snapshot")
        target = os.readlink(link)
        depth = rel.count("/")
        if not target.startswith("../" * (depth + 2) + "blobs/"):
            fail(f"{rel} links to {target}, not a relative ../../blobs path")
        if link.read_bytes() != data:
            fail(f"{rel}: content differs")
        blob = Path(target).name
        want = hashlib.sha256(data).hexdigest() if rel.endswith((".safetensors", ".bin")) else \
            hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        if blob != want:
            fail(f"{rel}: blob named {blob}, expected {want}")
    leftovers = [p.name for p in (storage / "blobs").iterdir() if p.name.endswith(".incomplete")]
    if leftovers:
        fail(f"incomplete blobs left: {leftovers}")


def check_huggingface_hub_reads_it(cache: Path, expected: dict[str, bytes]):
    code = f"""
import json, os, sys
from huggingface_hub import snapshot_download, hf_hub_download
path = snapshot_download({REPO!r}, cache_dir={str(cache)!r}, local_files_only=True)
files = {{}}
for folder, _, names in os.walk(path):
    for n in names:
        p = os.path.join(folder, n)
        files[os.path.relpath(p, path)] = open(p, 'rb').read().hex()
one = hf_hub_download({REPO!r}, 'transformer/config.json', cache_dir={str(cache)!r}, local_files_only=True)
print(json.dumps({{'path': path, 'files': files, 'one': one}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if not k.startswith("HF_")})
    if out.returncode != 0:
        fail(f"huggingface_hub could not read the cache: {out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not result["path"].endswith(f"snapshots/{COMMIT}"):
        fail(f"snapshot_download returned {result['path']}")
    got = {k: bytes.fromhex(v) for k, v in result["files"].items()}
    if got != expected:
        fail(f"huggingface_hub sees other files: {sorted(set(got) ^ set(expected))}")
    if not result["one"].endswith("transformer/config.json"):
        fail(f"hf_hub_download returned {result['one']}")


def main():
    zimage = os.path.abspath(sys.argv[1])
    work = Path(tempfile.mkdtemp(prefix="zimage-pull-"))
    servers: list[Server] = []
    try:
        root = work / "hub"
        expected = make_repo(root)

        # 1. Interrupted by SIGKILL during the transfer, resumed by a new process with Range.
        cache = work / "cache" / "hub"
        slow = Server(root, work / "slow.log", "--throttle", "400000", "--token", "hf_right")
        servers.append(slow)
        e = env(cache, slow.endpoint, HF_TOKEN="hf_right")
        first = subprocess.Popen([zimage, "pull", REPO, "--jobs", "2"], env=e, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        blobs = cache / "models--zimage-test--tiny-zimage" / "blobs"
        deadline = time.time() + 60
        while time.time() < deadline:
            partial = [p for p in blobs.glob("*.incomplete")] if blobs.exists() else []
            if any(p.stat().st_size > 300_000 for p in partial):
                break
            time.sleep(0.05)
        else:
            fail("the first pull never wrote a partial blob")
        first.send_signal(signal.SIGKILL)
        first.wait()
        partial_sizes = {p.name: p.stat().st_size for p in blobs.glob("*.incomplete")}
        for f in snapshot_files(cache):
            if not f.resolve().exists() or f.resolve().name.endswith(".incomplete"):
                fail(f"snapshot entry {f} points at a partial file after the kill")
        slow.stop()
        servers.remove(slow)
        fast = Server(root, work / "fast.log", "--token", "hf_right")
        servers.append(fast)
        second = pull(zimage, env(cache, fast.endpoint, HF_TOKEN="hf_right"), REPO)
        if second.returncode != 0:
            fail(f"resumed pull failed: {second.stderr}")
        if second.stdout.strip() != str(cache / "models--zimage-test--tiny-zimage" / "snapshots" / COMMIT):
            fail(f"pull printed {second.stdout!r}")
        ranges = [r for r in fast.requests() if r["cdn"] and r["range"]]
        resumed = {int(r["range"][6:-1]) for r in ranges}
        if not ranges or not resumed & set(partial_sizes.values()):
            fail(f"no Range request resumed the partial files {partial_sizes}: {ranges}")
        if any(r["auth"] for r in slow.requests() + fast.requests() if r["cdn"]):
            fail("the token reached the CDN")
        if not all(r["auth"] == "Bearer hf_right" for r in fast.requests() if not r["cdn"]):
            fail("the token was not sent to the Hub")
        check_layout(cache, expected)
        print(f"pull: interrupted with {len(partial_sizes)} partial blob(s), resumed with Range from "
              f"{sorted(resumed)}; the token went to the Hub only")

        # 2. huggingface_hub reads the cache back unchanged; a second pull downloads nothing.
        check_huggingface_hub_reads_it(cache, expected)
        again = pull(zimage, env(cache, fast.endpoint, HF_TOKEN="hf_right"), REPO)
        if again.returncode != 0 or "0 B downloaded" not in again.stderr:
            fail(f"a second pull downloaded again: {again.stderr}")
        print("pull: huggingface_hub.snapshot_download(local_files_only=True) reads the cache unchanged")

        # 2b. huggingface_hub itself downloads the repo from the look-alike: its cache has exactly the
        # entries, link targets, refs and tree listing zimage wrote, and zimage generates from it.
        hf_cache = work / "hf" / "hub"
        code = f"from huggingface_hub import snapshot_download; print(snapshot_download({REPO!r}))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env(hf_cache, fast.endpoint, HF_TOKEN="hf_right"))
        if out.returncode != 0:
            fail(f"huggingface_hub could not download from the look-alike: {out.stderr[-2000:]}")

        def entries(root: Path) -> list[str]:
            return sorted(f"{'l' if p.is_symlink() else 'd' if p.is_dir() else 'f'} {p.relative_to(root)} "
                          f"{os.readlink(p) if p.is_symlink() else ''}" for p in root.rglob("*"))
        ours, theirs = entries(cache), entries(hf_cache)
        if ours != theirs:
            fail(f"the caches differ: {sorted(set(ours) ^ set(theirs))[:10]}")
        storage = "models--zimage-test--tiny-zimage"
        for rel in ("CACHEDIR.TAG", f"{storage}/refs/main"):
            if (cache / rel).read_bytes() != (hf_cache / rel).read_bytes():
                fail(f"{rel} differs from huggingface_hub's")
        tree = f"{storage}/trees/{COMMIT}.json"
        if json.loads((cache / tree).read_text()) != json.loads((hf_cache / tree).read_text()):
            fail("trees/<commit>.json differs from huggingface_hub's")
        gen = subprocess.run([zimage, "generate", "--model", REPO, "--prompt", "a fox", "--width", "64", "--height", "64",
                              "--steps", "2", "--seed", "2", "--output", str(work / "hf-images")],
                             env=env(hf_cache, "http://127.0.0.1:9", HF_HUB_OFFLINE=1), capture_output=True, text=True)
        if gen.returncode != 0:
            fail(f"generate from huggingface_hub's cache failed: {gen.stderr}")
        print("pull: huggingface_hub's own download of the repo gives the same cache entries, refs and listing; "
              "zimage generates from it")

        # 3. --model ORG/NAME through the cache, online and with HF_HUB_OFFLINE; offline pull answers from it.
        gen = subprocess.run([zimage, "generate", "--model", REPO, "--prompt", "a fox", "--width", "64",
                              "--height", "64", "--steps", "2", "--seed", "1", "--output", str(work / "images")],
                             env=env(cache, "http://127.0.0.1:9", HF_HUB_OFFLINE=1), capture_output=True, text=True)
        if gen.returncode != 0 or not gen.stdout.strip().endswith("00000-1.png"):
            fail(f"generate --model {REPO} failed: {gen.stderr}")
        if b"Model: tiny-zimage" not in Path(gen.stdout.strip()).read_bytes():
            fail("the PNG's parameters do not name the repository")
        offline = pull(zimage, env(cache, "http://127.0.0.1:9", HF_HUB_OFFLINE=1), REPO)
        if offline.returncode != 0 or COMMIT not in offline.stdout:
            fail(f"offline pull of a cached repo failed: {offline.stderr}")
        missing = pull(zimage, env(cache, "http://127.0.0.1:9", HF_HUB_OFFLINE=1), "zimage-test/other")
        if missing.returncode != 1 or "HF_HUB_OFFLINE" not in missing.stderr:
            fail(f"offline pull of an uncached repo: {missing.returncode} {missing.stderr}")
        print("pull: --model ORG/NAME resolves through the cache; HF_HUB_OFFLINE answers from it")

        # 4. Errors: each exit 1 with a clear message and nothing half-written in snapshots/.
        def expect_error(name: str, result, words: list[str], cache_dir: Path):
            if result.returncode != 1 or not all(w in result.stderr for w in words):
                fail(f"{name}: exit {result.returncode}: {result.stderr}")
            for f in snapshot_files(cache_dir):
                target = f.resolve()
                if not target.exists() or target.name.endswith(".incomplete"):
                    fail(f"{name}: snapshot entry {f} is not a complete blob")
            print(f"pull: {name}: {result.stderr.strip().splitlines()[-1]}")

        damaged = "transformer/diffusion_pytorch_model-00001-of-00002.safetensors"
        corrupt = Server(root, work / "corrupt.log", "--corrupt", damaged)
        servers.append(corrupt)
        c_cache = work / "corrupt" / "hub"
        result = pull(zimage, env(c_cache, corrupt.endpoint), REPO)
        expect_error("corrupted byte", result, ["corrupted", "sha256"], c_cache)
        if any(f.name.startswith("diffusion_pytorch_model-00001") for f in snapshot_files(c_cache)):
            fail("the corrupted file was linked into snapshots/")
        damaged_blob = hashlib.sha256(expected[damaged]).hexdigest()
        if list((c_cache / "models--zimage-test--tiny-zimage" / "blobs").glob(damaged_blob + "*")):
            fail("the corrupted partial file was kept")
        expect_error("404", pull(zimage, env(c_cache, corrupt.endpoint), "zimage-test/nope"), ["not found"], c_cache)
        expect_error("unknown revision", pull(zimage, env(c_cache, corrupt.endpoint), REPO, "--revision", "v9"),
                     ["no revision 'v9'"], c_cache)
        w_cache = work / "wrong" / "hub"
        expect_error("wrong token", pull(zimage, env(w_cache, fast.endpoint, HF_TOKEN="hf_wrong"), REPO),
                     ["access refused", "HTTP 401", "token"], w_cache)
        expect_error("no token", pull(zimage, env(w_cache, fast.endpoint), REPO), ["HF_TOKEN"], w_cache)
        expect_error("unreachable Hub", pull(zimage, env(w_cache, "http://127.0.0.1:9"), REPO), ["127.0.0.1:9"], w_cache)

        # A full disk: a 1 MB tmpfs when this machine lets us mount one.
        small = work / "small"
        small.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)],
                                 capture_output=True).returncode == 0
        if mounted:
            try:
                expect_error("disk full", pull(zimage, env(small / "hub", fast.endpoint, HF_TOKEN="hf_right"), REPO),
                             ["not enough free space"], small / "hub")
            finally:
                subprocess.run(["umount", str(small)])
        else:
            print("pull: disk full: skipped (cannot mount a tmpfs here)")
        print("pull: all checks passed")
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

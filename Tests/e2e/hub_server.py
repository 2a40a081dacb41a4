#!/usr/bin/env python3
"""A Hugging Face Hub look-alike on 127.0.0.1 for `zimage pull` tests (standard library only).

Serves every repository under ROOT (ROOT/org/name/...) at one fixed commit, speaking the parts of
the Hub's protocol that huggingface_hub and zimage use:

  GET  /api/models/{repo}/revision/{rev}[?blobs=true]   sha + siblings (size, blobId, lfs{sha256,size})
  GET  /api/models/{repo}/tree/{rev}?recursive=true     the tree listing (huggingface_hub 2.x)
  HEAD/GET /{repo}/resolve/{rev}/{path}                  plain files: 307 (relative) to
       /api/resolve-cache/models/{repo}/{commit}/{path}, then 200 with ETag (git sha1);
       LFS files (*.safetensors, *.bin): 302 to the "CDN" (a second port, i.e. another host) with
       X-Linked-Etag (sha256), X-Linked-Size and X-Repo-Commit
  GET  CDN /cdn/{sha256}                                 the bytes, with Range; refuses any Authorization

Errors carry X-Error-Code like the Hub: RepoNotFound (401 without a valid token, 404 with one),
RevisionNotFound, EntryNotFound; a wrong token is a 401.

Options: --token T (require it), --throttle B (CDN bytes per second), --corrupt PATH (flip one
byte of that file as served), --drop-once N (the first CDN answer for each object stops after N
bytes and closes the connection), --extra-sibling NAME (list a name that is not there, such as
../evil), --log FILE (one JSON line per request). Prints "ready PORT CDNPORT".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS_SUFFIXES = (".safetensors", ".bin")


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, root: str, name: str):
        self.name = name
        self.files: dict[str, dict] = {}
        base = os.path.join(root, name)
        for folder, _, names in os.walk(base, followlinks=True):
            for n in sorted(names):
                path = os.path.join(folder, n)
                rel = os.path.relpath(path, base).replace(os.sep, "/")
                data = open(path, "rb").read()
                entry = {"path": rel, "disk": path, "size": len(data)}
                if rel.endswith(LFS_SUFFIXES):
                    sha = hashlib.sha256(data).hexdigest()
                    pointer = (f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n").encode()
                    entry.update(lfs=True, sha256=sha, blob_id=git_sha1(pointer), pointer_size=len(pointer))
                else:
                    entry.update(lfs=False, blob_id=git_sha1(data))
                self.files[rel] = entry


class State:
    def __init__(self, args):
        self.args = args
        self.repos: dict[str, Repo] = {}
        for org in sorted(os.listdir(args.root)):
            for name in sorted(os.listdir(os.path.join(args.root, org))):
                self.repos[f"{org}/{name}"] = Repo(args.root, f"{org}/{name}")
        self.by_sha = {e["sha256"]: e for r in self.repos.values() for e in r.files.values() if e["lfs"]}
        self.lock = threading.Lock()
        self.cdn_port = 0
        self.dropped: set[str] = set()


def make_handler(state: State, cdn: bool):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def record(self, status: int):
            if not state.args.log:
                return
            line = json.dumps({"cdn": cdn, "method": self.command, "path": self.path, "status": status,
                               "range": self.headers.get("Range"), "auth": self.headers.get("Authorization")})
            with state.lock, open(state.args.log, "a") as f:
                f.write(line + "\n")

        def reply(self, status: int, headers: dict | None = None, body: bytes = b"", error_code: str | None = None):
            self.record(status)
            self.send_response(status)
            headers = dict(headers or {})
            if error_code:
                headers["X-Error-Code"] = error_code
                body = json.dumps({"error": error_code}).encode()
                headers["Content-Type"] = "application/json"
            headers.setdefault("Content-Length", str(len(body)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD" and body:
                self.wfile.write(body)

        def authorized(self) -> tuple[bool, bool]:
            """(token ok, token sent)."""
            sent = self.headers.get("Authorization")
            if state.args.token is None:
                return True, sent is not None
            return sent == f"Bearer {state.args.token}", sent is not None

        def do_HEAD(self):
            self.handle_any()

        def do_GET(self):
            self.handle_any()

        def handle_any(self):
            try:
                (self.handle_cdn if cdn else self.handle_hub)()
            except (BrokenPipeError, ConnectionResetError):
                pass

        def repo_or_error(self, repo_name: str, rev: str):
            ok, sent = self.authorized()
            if sent and not ok:
                self.reply(401, error_code=None, body=b'{"error":"Invalid credentials in Authorization header"}')
                return None
            repo = state.repos.get(repo_name)
            if repo is None or not ok:
                self.reply(404 if sent else 401, error_code="RepoNotFound")
                return None
            if rev not in ("main", COMMIT):
                self.reply(404, error_code="RevisionNotFound")
                return None
            return repo

        def handle_hub(self):
            url = urlsplit(self.path)
            path = unquote(url.path)
            m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/(.+)", path)
            if m:
                repo = self.repo_or_error(m.group(1), m.group(2))
                if repo is None:
                    return
                siblings = []
                for e in repo.files.values():
                    s = {"rfilename": e["path"]}
                    if "blobs=true" in url.query:
                        s.update(size=e["size"], blobId=e["blob_id"])
                        if e["lfs"]:
                            s["lfs"] = {"sha256": e["sha256"], "size": e["size"], "pointerSize": e["pointer_size"]}
                    siblings.append(s)
                for name in state.args.extra_sibling or []:
                    siblings.append({"rfilename": name, "size": 1, "blobId": "0" * 40})
                body = json.dumps({"id": repo.name, "modelId": repo.name, "sha": COMMIT, "private": False,
                                   "siblings": siblings}).encode()
                return self.reply(200, {"Content-Type": "application/json"}, body)
            m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)", path)
            if m:
                repo = self.repo_or_error(m.group(1), m.group(2))
                if repo is None:
                    return
                entries = []
                for e in repo.files.values():
                    item = {"type": "file", "path": e["path"], "size": e["size"], "oid": e["blob_id"]}
                    if e["lfs"]:
                        item["lfs"] = {"oid": e["sha256"], "size": e["size"], "pointerSize": e["pointer_size"]}
                    entries.append(item)
                return self.reply(200, {"Content-Type": "application/json"}, json.dumps(entries).encode())
            m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
            cached = re.fullmatch(r"/api/resolve-cache/models/([^/]+/[^/]+)/([^/]+)/(.+)", path)
            if m or cached:
                repo_name, rev, file = (m or cached).groups()
                repo = self.repo_or_error(repo_name, rev)
                if repo is None:
                    return
                e = repo.files.get(file)
                if e is None:
                    return self.reply(404, {"X-Repo-Commit": COMMIT}, error_code="EntryNotFound")
                if e["lfs"]:
                    location = f"http://127.0.0.1:{state.cdn_port}/cdn/{e['sha256']}?name={file.split('/')[-1]}"
                    return self.reply(302, {"Location": location, "X-Repo-Commit": COMMIT,
                                            "X-Linked-Etag": f'"{e["sha256"]}"', "X-Linked-Size": str(e["size"]),
                                            "ETag": f'"{e["blob_id"]}"'})
                if m:  # plain files: a relative redirect first, as the Hub does
                    return self.reply(307, {"Location": f"/api/resolve-cache/models/{repo_name}/{COMMIT}/{file}",
                                            "X-Repo-Commit": COMMIT})
                return self.send_bytes(e, {"ETag": f'"{e["blob_id"]}"', "X-Repo-Commit": COMMIT}, throttle=False)
            self.reply(404, body=b"no such endpoint")

        def handle_cdn(self):
            if self.headers.get("Authorization"):
                return self.reply(400, body=b"the token was sent to the CDN")
            m = re.fullmatch(r"/cdn/([0-9a-f]{64})", urlsplit(self.path).path)
            e = state.by_sha.get(m.group(1)) if m else None
            if e is None:
                return self.reply(404, body=b"no such object")
            self.send_bytes(e, {"ETag": f'"{e["sha256"]}"'}, throttle=True)

        def send_bytes(self, e: dict, headers: dict, throttle: bool):
            data = bytearray(open(e["disk"], "rb").read())
            if state.args.corrupt == e["path"]:
                data[len(data) // 2] ^= 0x01
            start = 0
            status = 200
            rng = self.headers.get("Range")
            if rng:
                m = re.fullmatch(r"bytes=(\d+)-", rng.strip())
                if not m:
                    return self.reply(400, body=b"bad range")
                start = int(m.group(1))
                if start >= len(data):
                    return self.reply(416, {"Content-Range": f"bytes */{len(data)}"})
                status = 206
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            body = bytes(data[start:])
            headers.update({"Content-Length": str(len(body)), "Accept-Ranges": "bytes",
                            "Content-Type": "application/octet-stream"})
            self.record(status)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command == "HEAD":
                return
            rate = state.args.throttle if throttle else 0
            chunk = 16384
            if throttle and state.args.drop_once:
                with state.lock:
                    drop = e["path"] not in state.dropped
                    state.dropped.add(e["path"])
                if drop:
                    self.wfile.write(body[:state.args.drop_once])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
            for i in range(0, len(body), chunk):
                self.wfile.write(body[i:i + chunk])
                if rate:
                    self.wfile.flush()
                    time.sleep(chunk / rate)

    return Handler


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):  # clients killed mid-transfer are expected
            super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token")
    parser.add_argument("--throttle", type=int, default=0)
    parser.add_argument("--corrupt")
    parser.add_argument("--drop-once", type=int, default=0)
    parser.add_argument("--extra-sibling", action="append", help="list a file name that is not there (e.g. ../x)")
    parser.add_argument("--log")
    args = parser.parse_args()
    state = State(args)
    hub = QuietServer(("127.0.0.1", args.port), make_handler(state, cdn=False))
    cdn = QuietServer(("127.0.0.1", 0), make_handler(state, cdn=True))
    state.cdn_port = cdn.server_address[1]
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    print(f"ready {hub.server_address[1]} {state.cdn_port}", flush=True)
    try:
        hub.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()

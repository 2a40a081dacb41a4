#!/usr/bin/env python3
"""Hostile-client fuzz harness for `zimage serve` (issue 8), loopback only.

Starts the server itself (demo model, a temporary data folder, a web-UI copy with an empty file,
a subfolder and a symlink that points out of the folder) and drives every route of the native,
A1111 and OpenAI APIs, the static files and the SSE streams with generated hostile values:
integer and float extremes, wrong types, deep nesting, Unicode edge cases, invalid UTF-8, huge
and truncated bodies, duplicate keys and raw HTTP framing. After each request it asserts: no 5xx
(except the 501/503 the server is meant to give for some framing), no internals in the body
(paths, SQL, Swift or Foundation error dumps), and the server still alive. Then it runs a second
server under `ulimit -n 128` with more idle connections than that, and checks that it stays up,
answers 503 or waits instead of failing, serves again once idle connections time out, and that a
job running meanwhile still ends `done`.

Usage: fuzz_server.py ZIMAGE_BINARY [--seed N] [--requests N] [--seconds S]
Exits non-zero on the first failure, printing the request that caused it.
"""
import argparse
import http.client
import json
import os
import random
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from urllib.parse import quote

INTERNALS = ["NSCocoaErrorDomain", "Error Domain", "SQLITE", "sqlite", "DatabaseError", ".swift", "Fatal error",
             "/tmp/", "/work/", "/home/", "/root/", "Swift.", "ZImageServer.", "GRDB", "NIOCore", "errno"]
EXPECTED_5XX = {501, 503}


class Failure(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, extra=(), nofile=None, public=None):
        self.port = free_port()
        self.data = tempfile.mkdtemp(prefix="zimage-fuzz-data-")
        self.log = open(os.path.join(self.data, "server.log"), "w+")
        args = [binary, "serve", "--port", str(self.port), "--data-dir", self.data, *extra]
        if public:
            args += ["--public-dir", public]

        def limit():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=limit)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise Failure(f"server exited at start with {self.process.returncode}: {self.tail()}")
            try:
                if self.request("GET", "/health", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise Failure("server did not start")

    def tail(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()[-3000:]

    def alive(self):
        if self.process.poll() is not None:
            raise Failure(f"server died with status {self.process.returncode}: {self.tail()}")

    def request(self, method, path, body=None, headers=None, timeout=60):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read(), dict(response.getheaders())
        finally:
            connection.close()

    def raw(self, data, timeout=5, read_until_close=True):
        """Sends bytes as they are; returns what came back (b"" if the server closed at once)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            chunks = []
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    if not read_until_close and b"\r\n\r\n" in b"".join(chunks):
                        break
            except (socket.timeout, ConnectionResetError):
                pass
            return b"".join(chunks)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()
        shutil.rmtree(self.data, ignore_errors=True)


class Harness:
    def __init__(self, server, rng):
        self.server, self.rng = server, rng
        self.count = 0
        self.statuses = {}

    def check(self, what, status, body, sent=b""):
        self.count += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status >= 500 and status not in EXPECTED_5XX:
            raise Failure(f"{what}: status {status}: {body[:500]!r}")
        # Base64 images may spell anything ("/tmp/" included); only the text around them counts.
        text = re.sub(r"[A-Za-z0-9+/=]{120,}", "", body[:4_000_000].decode("utf-8", "replace"))
        sent_text = sent.decode("utf-8", "replace") if isinstance(sent, bytes) else str(sent)
        for marker in INTERNALS:
            if marker in text and marker not in sent_text:
                raise Failure(f"{what}: body shows internals ({marker!r}): {text[:500]!r}")
        self.server.alive()
        if self.count % 50 == 0:
            code = self.server.request("GET", "/health", timeout=30)[0]
            if code != 200:
                raise Failure(f"/health answered {code} after {what}")

    def send(self, method, path, body=None, headers=None, expect=None, timeout=60):
        what = f"{method} {path[:200]} {body[:300] if isinstance(body, bytes) else body!r:.300}"
        began = time.time()
        try:
            status, data, response_headers = self.server.request(method, path, body, headers, timeout)
            self.slowest = sorted(getattr(self, "slowest", []) + [(time.time() - began, what[:160])])[-5:]
        except (ConnectionError, http.client.HTTPException, socket.timeout) as error:
            self.server.alive()
            # A refusal by closing the connection is allowed for framing the parser rejects; for
            # normal requests it is a failure.
            raise Failure(f"{what}: no response ({error!r})")
        self.check(what, status, data, (path + " " + (body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or ""))))
        if expect is not None and status not in (expect if isinstance(expect, (set, tuple)) else {expect}):
            raise Failure(f"{what}: expected {expect}, got {status}: {data[:300]!r}")
        return status, data, response_headers

    def send_raw(self, label, data, expect_prefix=None):
        reply = self.server.raw(data)
        line = reply.split(b"\r\n", 1)[0]
        status = int(line.split()[1]) if line.startswith(b"HTTP/1.") and len(line.split()) > 1 else 0
        if status:
            self.check(f"raw {label}", status, reply, data)
        else:
            self.count += 1
            self.server.alive()
        if expect_prefix is not None and not line.startswith(expect_prefix):
            raise Failure(f"raw {label}: expected {expect_prefix!r}, got {line!r}")
        return status, reply


# Generated hostile values.
def integers():
    return [0, -1, -2, 1, 15, 16, 63, 64, 65, 2047, 2048, 2049, 4096, 2**31 - 1, 2**31, -2**31 - 1, 2**32, 2**53,
            2**53 + 1, 2**63 - 1, 2**63, -2**63, -2**63 - 1, 2**64, 2**64 + 1, 10**30, -10**30, 4000000000,
            9223372036854775807, 18446744073709551615]


def floats():
    return [0.0, -0.0, 0.5, 64.5, 1e-320, 5e-324, 1e308, -1e308, 1.7976931348623157e308, 2.0**63, 2.0**64,
            31.0, 30.000001, 1.0000001]


def raw_numbers():
    """JSON number texts Python would not write itself."""
    return ["1e400", "-1e400", "1" + "0" * 400, "NaN", "Infinity", "-Infinity", "0x10", "01", "1.", ".5", "+1",
            "1e-400", "123456789012345678901234567890", "-0", "1E+2", "9223372036854775808"]


def wrong_types():
    return ["64", "", "x" * 1000, None, True, False, [], [64], {}, {"a": 1}, [[[]]], "\u0000", "١٢٣"]


def unicode_strings(rng):
    return ["", " ", "\u0000", "a\u0000b", "\ud800", "\udfff", "\ufeffBOM", "e" + "\u0301" * 5000,
            "x" + "\u0301" * 60000, "\u202eRTL", "👩‍👩‍👧‍👦" * 500, "\U0010ffff", "中文提示" * 2500, "\r\n\t",
            "a" * 10_001, "a" * 9_999, "é" * 20_001, "\\", '"' * 1000, "<script>alert(1)</script>",
            "%s%n%x", "../../../../etc/passwd", "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(300))]


def nested(depth):
    return "[" * depth + "]" * depth


SMALL = {"width": 64, "height": 64, "steps": 1}


def fuzz_json_routes(h, rng, budget_end):
    """Every JSON-body route, each field with each hostile value; other fields small and valid."""
    routes = [
        ("/api/v1/generations", ["prompt", "negative_prompt", "width", "height", "steps", "guidance_scale", "seed",
                                 "batch_size", "cfg_normalization", "cfg_truncation", "tiled_decode"],
         dict(prompt="fuzz", **SMALL)),
        ("/sdapi/v1/txt2img", ["prompt", "negative_prompt", "width", "height", "steps", "cfg_scale", "seed",
                               "batch_size", "n_iter", "sampler_name", "override_settings"],
         dict(prompt="fuzz", **SMALL)),
        ("/v1/images/generations", ["prompt", "n", "size", "seed", "response_format", "model", "quality"],
         dict(prompt="fuzz", size="64x64")),
        ("/sdapi/v1/options", ["zimage_sd_defaults", "samples_format", "sd_model_checkpoint", "unknown_key"], {}),
    ]
    values = integers() + floats() + wrong_types() + unicode_strings(rng)
    always = [2**63, -2**63 - 1, 2**64, 4000000000, 2**53 + 1, -1, 0, 1e308, None, "x" * 1000, [64], {"a": 1}]
    for path, fields, base in routes:
        for field in fields:
            for value in always + rng.sample(values, 14):
                if time.time() > budget_end:
                    return
                if path.startswith("/v1/") and field == "size" and value is None:
                    continue   # no size is "auto": a valid 1024x1024 request of 8 steps, not a hostile one
                body = dict(base)
                body[field] = value
                data = json.dumps(body, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
                status, reply, _ = h.send("POST", path, data, {"Content-Type": "application/json"})
                cleanup(h, status, reply)
            for text in rng.sample(raw_numbers(), 5):
                body = json.dumps(base)[:-1] + ("," if base else "") + f'"{field}": {text}' + "}"
                status, reply, _ = h.send("POST", path, body.encode(), {"Content-Type": "application/json"})
                cleanup(h, status, reply)


def cleanup(h, status, reply):
    """Cancels accepted native jobs so the queue stays short."""
    if status == 202:
        try:
            job = json.loads(reply)["id"]
        except (ValueError, KeyError):
            raise Failure(f"202 without an id: {reply[:200]!r}")
        h.send("POST", f"/api/v1/generations/{job}/cancel", expect={200, 409})


def small(fields):
    """A JSON object text with the given raw fields and a small, fast size."""
    return b'{"width": 64, "height": 64, "steps": 1, "size": "64x64", ' + fields + b"}"


def fuzz_bodies(h, rng):
    """Malformed, huge, truncated and duplicate-key bodies on every POST route."""
    posts = ["/api/v1/generations", "/sdapi/v1/txt2img", "/v1/images/generations", "/sdapi/v1/options",
             "/sdapi/v1/interrupt", "/sdapi/v1/skip", "/sdapi/v1/img2img", "/v1/images/edits"]
    valid = json.dumps(dict(prompt="fuzz", size="64x64", **SMALL)).encode()
    bodies = [b"", b"{", b"}", b"[]", b"null", b"42", b'"x"', b"{prompt", valid[:len(valid) // 2],
              small(b'"prompt": "a", "prompt": 5'), small(b'"prompt": "a", "width": "x"'), small(b'"prompt": "a", "size": "x"'),
              b'{"prompt": "\xff\xfe"}', b"\xff" * 100, small(b'"prompt": "a\\ud800"'), small(b'"prompt": "\\u0000"'),
              small(b'"prompt": "\\udc00\\ud800", "negative_prompt": "\\uffff"'), small(b'"prompt": "x", "seed": 1e400'),
              nested(100).encode(), nested(20000).encode(), ('{"a":' * 5000 + "1" + "}" * 5000).encode(),
              b"\x00" * 1000, b" " * (2 << 20), b'{"prompt": "' + b"a" * (1 << 20) + b'"}',
              json.dumps({"prompt": "x", **SMALL, "size": "64x64", **{f"k{i}": i for i in range(20000)}}).encode(),
              b"\xef\xbb\xbf" + valid]
    blocking = {"/sdapi/v1/txt2img", "/v1/images/generations"}
    for path in posts:
        for body in bodies:
            if path in blocking and body == b"":
                continue   # a valid A1111 request with every default: a 1024x1024 generation, not a hostile one
            status, reply, _ = h.send("POST", path, body, {"Content-Type": rng.choice(["application/json", "text/plain"])})
            cleanup(h, status, reply)


def fuzz_queries(h, rng):
    """Path and query parameters: ids, pages, traversal, encodings."""
    numbers = ["0", "-1", "1", "abc", "1.5", "", "%00", "9223372036854775807", "9223372036854775808",
               "-9223372036854775808", "99999999999999999999", "1e3", "0x10", " 1", "１"]
    for page in numbers:
        for per_page in ["24", "0", "101", "100", "abc", "9223372036854775807", "-5"]:
            query = f"page={quote(page, safe='%')}&per_page={quote(per_page, safe='%')}"
            h.send("GET", f"/api/v1/history?{query}")
    ids = ["nope", "..", "..%2F..%2Fzimage.sqlite", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "a" * 5000, "%ff%fe", "%00",
           "00000000-0000-0000-0000-000000000000", "'; DROP TABLE jobs; --", "\u00e9".encode().decode("latin-1")]
    for job in ids:
        for method, template in [("GET", "/api/v1/generations/{}"), ("GET", "/api/v1/generations/{}/events"),
                                 ("POST", "/api/v1/generations/{}/cancel"), ("DELETE", "/api/v1/history/{}"),
                                 ("GET", "/api/v1/images/{}")]:
            path = template.format(quote(job, safe="%"))
            h.send(method, path, timeout=10)
    for method in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "FOO"]:
        for path in ["/api/v1/system", "/api/v1/queue", "/sdapi/v1/progress", "/sdapi/v1/sd-models",
                     "/api/v1/loras", "/sdapi/v1/loras", "/sdapi/v1/samplers", "/sdapi/v1/schedulers", "/sdapi/v1/options", "/v1/models", "/metrics",
                     "/health", "/api/v1/openapi.json", "/", "/index.html", "/app.js", "/i18n/en.json",
                     "/no/such/route"]:
            h.send(method, path, timeout=10)


def static_files(h):
    """Ranges, HEAD, symlinks out of the folder, `//` paths, traversal."""
    status, full, _ = h.send("GET", "/app.js", expect=200)
    size = len(full)
    cases = [("bytes=0-9", 206, full[:10]), ("bytes=-5", 206, full[-5:]), (f"bytes={size - 1}-", 206, full[-1:]),
             ("bytes=999999999-", 416, None), (f"bytes={size}-", 416, None), ("bytes=-0", 416, None),
             ("bytes=5-1", 200, full), ("bytes=0-0,2-3", 200, full), ("items=0-5", 200, full),
             ("bytes=abc", 200, full), ("bytes=0-99999999999999999999999", 206, full),
             ("bytes=-99999999999999999999999", 206, full), ("bytes=99999999999999999999999-", 416, None)]
    for header, expected, content in cases:
        status, data, headers = h.send("GET", "/app.js", headers={"Range": header}, expect=expected)
        if content is not None and data != content:
            raise Failure(f"Range {header}: wrong bytes ({len(data)} bytes, expected {len(content)})")
        if "Content-Length" in headers and int(headers["Content-Length"]) < 0:
            raise Failure(f"Range {header}: negative Content-Length")
    for header in ["bytes=0-", "bytes=-1", "bytes=0-0"]:
        h.send("GET", "/empty.txt", headers={"Range": header}, expect=416)
    h.send("GET", "/empty.txt", expect=200)
    status, data, headers = h.send("HEAD", "/app.js", expect=200)
    if data or headers.get("Content-Length") != str(size):
        raise Failure(f"HEAD /app.js: body {len(data)} bytes, Content-Length {headers.get('Content-Length')}")
    status, data, _ = h.send("HEAD", "/api/v1/system", expect=200)
    if data:
        raise Failure("HEAD /api/v1/system sent a body")
    for path in ["/leak", "/leak-dir/passwd", "/sub/../leak", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd"]:
        status, data, _ = h.send("GET", path, expect=404)
        if b"root:" in data:
            raise Failure(f"{path} served a file outside the folder")
    h.send("GET", "/sub/", expect=200)
    for path in ["//evil.example", "//evil.example/", "///evil.example", "/sub", "//sub"]:
        status, data, headers = h.send("GET", path)
        location = headers.get("Location", "")
        if location.startswith("//") or "evil" in location:
            raise Failure(f"{path}: redirect to {location!r}")


def raw_framing(h):
    """Raw HTTP/1 framing the parser must refuse (4xx, or a close), never a crash or a hang."""
    host = b"Host: 127.0.0.1\r\n"
    cases = [
        ("garbage", b"\x00\x01\x02\r\n\r\n", None),
        ("no version", b"GET /\r\n\r\n", None),
        ("http 0.9", b"GET /health\r\n", None),
        ("http2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", None),
        ("bad version", b"GET /health HTTP/9.9\r\n" + host + b"\r\n", None),
        ("no colon", b"GET /health HTTP/1.1\r\n" + host + b"NoColonHere\r\n\r\n", None),
        ("nul in header", b"GET /health HTTP/1.1\r\n" + host + b"X-A: a\x00b\r\n\r\n", None),
        ("huge header", b"GET /health HTTP/1.1\r\n" + host + b"X-Big: " + b"a" * 200_000 + b"\r\n\r\n", None),
        ("many headers", b"GET /health HTTP/1.1\r\n" + host + b"".join(b"X-%d: 1\r\n" % i for i in range(3000)) + b"\r\n", None),
        ("huge uri", b"GET /" + b"a" * 200_000 + b" HTTP/1.1\r\n" + host + b"\r\n", None),
        ("negative length", b"POST /api/v1/generations HTTP/1.1\r\n" + host + b"Content-Length: -5\r\n\r\n", None),
        ("two lengths", b"POST /api/v1/generations HTTP/1.1\r\n" + host + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", None),
        ("huge length", b"POST /api/v1/generations HTTP/1.1\r\n" + host + b"Content-Length: 99999999999999999999\r\n\r\n", None),
        ("length and chunked", b"POST /api/v1/generations HTTP/1.1\r\n" + host +
         b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", None),
        ("bad chunk", b"POST /api/v1/generations HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", None),
        ("chunk overflow", b"POST /api/v1/generations HTTP/1.1\r\n" + host +
         b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffffff\r\nab\r\n", None),
        ("truncated body", b"POST /api/v1/generations HTTP/1.1\r\n" + host + b"Content-Length: 100\r\n\r\n{\"pro", None),
        ("bare lf", b"GET /health HTTP/1.1\n" + host.replace(b"\r\n", b"\n") + b"\n", None),
        ("gzip coding", b"POST /api/v1/generations HTTP/1.1\r\n" + host + b"Transfer-Encoding: gzip\r\n\r\n", None),
        ("gzip, chunked", b"POST /api/v1/generations HTTP/1.1\r\n" + host +
         b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", b"HTTP/1.1 501"),
        ("connect", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", None),
        ("absolute form", b"GET http://evil.example/health HTTP/1.1\r\n" + host + b"\r\n", None),
        ("asterisk", b"OPTIONS * HTTP/1.1\r\n" + host + b"\r\n", None),
        ("unknown expect", b"POST /api/v1/generations HTTP/1.1\r\n" + host + b"Expect: 200-ok\r\nContent-Length: 0\r\n\r\n",
         b"HTTP/1.1 417"),
        ("pipelined", (b"GET /health HTTP/1.1\r\n" + host + b"\r\n") * 50, b"HTTP/1.1 200"),
    ]
    for label, data, prefix in cases:
        status, reply = h.send_raw(label, data, prefix)
        if label == "connect" and status and status < 400:
            raise Failure(f"CONNECT answered {status}")
    # Expect: 100-continue: the interim response comes before the body is sent.
    body = json.dumps({"prompt": "continue", "width": 100}).encode()
    with socket.create_connection(("127.0.0.1", h.server.port), timeout=5) as s:
        s.sendall(b"POST /api/v1/generations HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\n"
                  b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        interim = s.recv(4096)
        if not interim.startswith(b"HTTP/1.1 100"):
            raise Failure(f"Expect: 100-continue answered {interim[:100]!r}")
        s.sendall(body)
        final = b""
        while b"\r\n\r\n" not in final:
            chunk = s.recv(4096)
            if not chunk:
                break
            final += chunk
        h.check("expect 100-continue", int(final.split()[1]), final)
        if b" 422 " not in final.split(b"\r\n")[0]:
            raise Failure(f"after 100 Continue: {final[:100]!r}")
    # A slow client that never finishes its head is closed (header timeout), not kept forever.
    with socket.create_connection(("127.0.0.1", h.server.port), timeout=20) as s:
        s.sendall(b"GET /health HTTP/1.1\r\n")
        started = time.time()
        try:
            closed = s.recv(100) == b""
        except (socket.timeout, ConnectionResetError):
            closed = False
        if not closed or time.time() - started > 15:
            raise Failure("a connection with an unfinished head was not closed by the header timeout")
    h.server.alive()


def sse_and_jobs(h):
    """A real job: its SSE stream ends with done, a late stream opens with done, cancel and delete."""
    status, reply, _ = h.send("POST", "/api/v1/generations",
                              json.dumps({"prompt": "sse", "width": 64, "height": 64, "steps": 4}).encode(),
                              expect=202)
    job = json.loads(reply)["id"]
    status, stream, _ = h.send("GET", f"/api/v1/generations/{job}/events", timeout=120, expect=200)
    kinds = [line[7:] for line in stream.decode().splitlines() if line.startswith("event: ")]
    if kinds[-1:] != ["done"]:
        raise Failure(f"events of {job}: {kinds}")
    status, stream, _ = h.send("GET", f"/api/v1/generations/{job}/events", timeout=30, expect=200)
    if not stream.startswith(b"event: done"):
        raise Failure(f"late events of {job}: {stream[:100]!r}")
    # Streams dropped half-way leave the server serving.
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", h.server.port), timeout=5) as s:
            s.sendall(f"GET /api/v1/generations/{job}/events HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    h.send("GET", f"/api/v1/generations/{job}", expect=200)
    h.send("POST", f"/api/v1/generations/{job}/cancel", expect=409)
    status, reply, _ = h.send("GET", f"/api/v1/generations/{job}", expect=200)
    image = json.loads(reply)["images"][0]["id"]
    h.send("GET", f"/api/v1/images/{image}", expect=200)
    h.send("HEAD", f"/api/v1/images/{image}", expect=200)
    h.send("DELETE", f"/api/v1/history/{job}", expect=204)
    h.send("GET", f"/api/v1/images/{image}", expect=404)
    # OpenAI url: the configured public URL, not the client's Host header.
    status, reply, _ = h.send("POST", "/v1/images/generations",
                              json.dumps({"prompt": "u", "size": "64x64", "response_format": "url"}).encode(),
                              headers={"Host": "evil.example"}, timeout=120, expect=200)
    url = json.loads(reply)["data"][0]["url"]
    if "evil.example" in url or not url.startswith("http://zimage.test:1234/api/v1/images/"):
        raise Failure(f"image URL {url}")


def crash_requests(h):
    """The two single requests that killed the server before (issue 8)."""
    h.send("POST", "/sdapi/v1/txt2img", b'{"prompt":"x","batch_size":4000000000,"n_iter":4000000000}',
           {"Content-Type": "application/json"}, expect={400, 422})
    h.send("GET", "/api/v1/history?page=9223372036854775807", expect=400)
    h.send("POST", "/sdapi/v1/txt2img", b'{"prompt":"x","batch_size":3037000500,"n_iter":3037000500}',
           {"Content-Type": "application/json"}, expect={400, 422})


def random_requests(h, rng, count, budget_end):
    """Random mixtures of fields and values on random routes."""
    keys = ["prompt", "negative_prompt", "width", "height", "steps", "guidance_scale", "cfg_scale", "seed",
            "batch_size", "n_iter", "n", "size", "response_format", "cfg_truncation", "cfg_normalization"]
    pool = integers() + floats() + wrong_types() + unicode_strings(rng)[:12]
    for _ in range(count):
        if time.time() > budget_end:
            return
        path = rng.choice(["/api/v1/generations", "/sdapi/v1/txt2img", "/v1/images/generations", "/sdapi/v1/options"])
        body = {k: rng.choice(pool) for k in rng.sample(keys, rng.randrange(1, 6))}
        # Always small and quick when valid: a missing or null size means 1024x1024.
        body = {**dict(prompt="r", size="64x64", **SMALL), **{k: v for k, v in body.items()
                                                              if v is not None or k not in ("width", "height", "size")}}
        data = json.dumps(body).encode("utf-8", "surrogatepass")
        status, reply, _ = h.send("POST", path, data, {"Content-Type": "application/json"})
        cleanup(h, status, reply)


def descriptor_exhaustion(binary):
    """More idle connections than descriptors: the server stays up, refuses or waits, serves again
    once the idle ones time out, and a job running meanwhile ends done."""
    server = Server(binary, ["--idle-timeout", "3"], nofile=128)
    sockets = []
    try:
        status, reply, _ = server.request("POST", "/api/v1/generations", json.dumps(
            {"prompt": "during the flood", "width": 256, "height": 256, "steps": 20}).encode())
        assert status == 202, (status, reply)
        job = json.loads(reply)["id"]
        for _ in range(300):
            try:
                sockets.append(socket.create_connection(("127.0.0.1", server.port), timeout=2))
            except OSError:
                break
        opened = len(sockets)
        refused = served = 0
        for s in sockets[:200]:
            try:
                s.sendall(b"GET /api/v1/system HTTP/1.1\r\nHost: x\r\n\r\n")
            except OSError:
                continue
        for s in sockets[:200]:
            s.settimeout(0.05)
            try:
                line = s.recv(100).split(b"\r\n")[0]
            except OSError:
                continue
            if line.startswith(b"HTTP/1.1 503"):
                refused += 1
            elif line.startswith(b"HTTP/1.1 200"):
                served += 1
            elif line:
                raise Failure(f"under descriptor pressure: {line!r}")
        server.alive()
        # Idle connections time out; the server serves again.
        deadline = time.time() + 30
        while True:
            try:
                if server.request("GET", "/health", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise Failure("the server did not serve again after the idle connections timed out")
            time.sleep(0.2)
        for s in sockets:
            s.close()
        sockets = []
        deadline = time.time() + 120
        while True:
            server.alive()
            state = json.loads(server.request("GET", f"/api/v1/generations/{job}")[1])["status"]
            if state not in ("queued", "running"):
                break
            if time.time() > deadline:
                raise Failure("the job did not finish under descriptor pressure")
            time.sleep(0.2)
        if state != "done":
            raise Failure(f"the job running during the flood ended {state}")
        server.alive()
        print(f"descriptor exhaustion: ulimit -n 128, {opened} of 300 connections opened, {served} served and "
              f"{refused} refused with 503 while flooded; served again after the idle timeout; job done; server alive")
    finally:
        for s in sockets:
            s.close()
        server.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400, help="random mixed requests after the systematic ones")
    parser.add_argument("--seconds", type=float, default=100, help="time budget for the generated requests")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    started = time.time()
    public = tempfile.mkdtemp(prefix="zimage-fuzz-public-")
    source = os.path.join(os.path.dirname(__file__), "..", "..", "Sources", "ZImageServer", "Resources", "public")
    shutil.copytree(source, public, dirs_exist_ok=True)
    open(os.path.join(public, "empty.txt"), "w").close()
    os.makedirs(os.path.join(public, "sub"))
    with open(os.path.join(public, "sub", "index.html"), "w") as f:
        f.write("<!doctype html><title>sub</title>")
    os.symlink("/etc/passwd", os.path.join(public, "leak"))
    os.symlink("/etc", os.path.join(public, "leak-dir"))
    server = Server(args.binary, ["--public-url", "http://zimage.test:1234", "--max-queue", "8"], public=public)
    h = Harness(server, rng)
    try:
        budget_end = started + args.seconds
        phases = [("crash requests", lambda: crash_requests(h)), ("static files", lambda: static_files(h)),
                  ("raw framing", lambda: raw_framing(h)), ("SSE and jobs", lambda: sse_and_jobs(h)),
                  ("paths and queries", lambda: fuzz_queries(h, rng)), ("bodies", lambda: fuzz_bodies(h, rng)),
                  ("fields", lambda: fuzz_json_routes(h, rng, budget_end)),
                  ("random mixes", lambda: random_requests(h, rng, args.requests, budget_end)),
                  ("crash requests again", lambda: crash_requests(h))]
        for name, phase in phases:
            before, phase_start = h.count, time.time()
            phase()
            print(f"  {name}: {h.count - before} requests, {time.time() - phase_start:.1f} s")
        server.alive()
        elapsed = time.time() - started
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(h.statuses.items()))
        print(f"fuzz: {h.count} hostile requests in {elapsed:.0f} s (seed {args.seed}); statuses {codes}; "
              "no unexpected 5xx, no internals, server alive")
    except Failure as failure:
        print(f"FAIL: {failure}\n--- server log ---\n{server.tail()}", file=sys.stderr)
        sys.exit(1)
    finally:
        server.stop()
        shutil.rmtree(public, ignore_errors=True)
    try:
        descriptor_exhaustion(args.binary)
    except Failure as failure:
        print(f"FAIL: {failure}", file=sys.stderr)
        sys.exit(1)
    print(f"fuzz harness: {time.time() - started:.0f} s in all")
    for seconds, what in reversed(getattr(h, "slowest", [])):
        print(f"  slowest: {seconds:.1f} s {what}")


if __name__ == "__main__":
    main()

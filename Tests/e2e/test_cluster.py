#!/usr/bin/env python3
"""Cluster test (issue 12): two `zimage serve` nodes with the demo model on one PostgreSQL,
behind nginx with deploy/nginx-zimage.conf. Jobs go in through nginx with the real `openai`
client and the native API (some with the same Idempotency-Key); node A is killed with SIGKILL
while it runs a job; every job ends done exactly once (the killed node's job finished by node B);
history is the same through either node; SSE through nginx delivers progress; a cancel sent to
node B stops a job running on node A; node A restarted takes work again.

Usage: test_cluster.py ZIMAGE_BINARY POSTGRES_URL
(POSTGRES_URL: a server where this test may create a database, as scripts/test-services.sh starts.)"""
import concurrent.futures
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import openai

BIN, BASE_URL = sys.argv[1], sys.argv[2]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
work = tempfile.mkdtemp(prefix="zimage-cluster-")
base_port = 21000 + random.randrange(20000)
ports = {"A": base_port, "B": base_port + 1}
nginx_port = base_port + 2
processes = {}


def request(url, method="GET", body=None, headers=None, timeout=60):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def get_json(url):
    status, _, body = request(url)
    assert status == 200, (url, status, body[:300])
    return json.loads(body)


def node_url(name):
    return f"http://127.0.0.1:{ports[name]}"


front = f"http://127.0.0.1:{nginx_port}"
parsed = urllib.parse.urlparse(BASE_URL)
database = f"zimage_cluster_{os.getpid()}"
db_url = urllib.parse.urlunparse(parsed._replace(path="/" + database))


def psql(sql, url=BASE_URL):
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url.split("?")[0], "-c", sql], check=True,
                   stdout=subprocess.DEVNULL)


def start_node(name):
    log = open(os.path.join(work, f"{name}.log"), "ab")
    processes[name] = subprocess.Popen(
        [BIN, "serve", "--port", str(ports[name]), "--data-dir", os.path.join(work, name), "--database", db_url,
         "--node-name", name, "--lease-seconds", "3", "--max-queue", "100"], stdout=log, stderr=subprocess.STDOUT)


def wait_healthy(url, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if request(url + "/health", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never became healthy")


def start_nginx():
    conf = open(os.path.join(ROOT, "deploy", "nginx-zimage.conf")).read()
    conf = conf.replace("127.0.0.1:7860", f"127.0.0.1:{ports['A']}").replace("127.0.0.1:7861", f"127.0.0.1:{ports['B']}")
    conf = conf.replace("listen 127.0.0.1:8080", f"listen 127.0.0.1:{nginx_port}")
    os.makedirs(os.path.join(work, "nginx"), exist_ok=True)
    with open(os.path.join(work, "nginx", "zimage.conf"), "w") as f:
        f.write(conf)
    with open(os.path.join(work, "nginx", "nginx.conf"), "w") as f:
        f.write(f"""daemon off;
pid {work}/nginx/nginx.pid;
error_log {work}/nginx/error.log warn;
worker_processes 1;
events {{ worker_connections 512; }}
http {{
    access_log {work}/nginx/access.log;
    client_body_temp_path {work}/nginx/body;
    proxy_temp_path {work}/nginx/proxy;
    fastcgi_temp_path {work}/nginx/fastcgi;
    uwsgi_temp_path {work}/nginx/uwsgi;
    scgi_temp_path {work}/nginx/scgi;
    include {work}/nginx/zimage.conf;
}}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    subprocess.run([nginx, "-t", "-p", f"{work}/nginx", "-c", f"{work}/nginx/nginx.conf"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    processes["nginx"] = subprocess.Popen([nginx, "-p", f"{work}/nginx", "-c", f"{work}/nginx/nginx.conf"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def submit(body, key=None, url=None):
    headers = {"Idempotency-Key": key} if key else {}
    status, _, data = request((url or front) + "/api/v1/generations", "POST", body, headers)
    assert status == 202, (status, data[:300])
    return json.loads(data)["id"]


def job(id, url=None):
    return get_json(f"{url or front}/api/v1/generations/{id}")


def wait_until(predicate, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out: {what}")


def running_on(id, name, url=None):
    current = job(id, url)
    return current["status"] == "running" and (current.get("worker") or "").startswith(name + "/")


def cleanup():
    for name, process in processes.items():
        if process.poll() is None:
            # nginx's master stops its workers on SIGQUIT; SIGKILL would leave them running.
            process.send_signal(signal.SIGQUIT if name == "nginx" else signal.SIGKILL)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    try:
        psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    except Exception:
        pass
    shutil.rmtree(work, ignore_errors=True)


def main():
    psql(f"CREATE DATABASE {database}")
    # Both nodes start at once: the schema migration must be safe when they race.
    start_node("A")
    start_node("B")
    wait_healthy(node_url("A"))
    wait_healthy(node_url("B"))
    start_nginx()
    wait_healthy(front)

    # 40 submissions through nginx: 20 native (every fourth one a retry of the one before, with
    # the same Idempotency-Key) and 20 with the openai client (five pairs sharing a key).
    small = {"width": 64, "height": 64, "steps": 2}
    native_ids, expected_unique = [], 0
    for index in range(20):
        if index % 4 == 3:
            key = f"native-{index - 1}"
            body = {"prompt": f"native {index - 1}", "seed": index - 1, **small}
        else:
            key = f"native-{index}" if index % 4 == 2 else None
            body = {"prompt": f"native {index}", "seed": index, **small}
            expected_unique += 1
        native_ids.append(submit(body, key))
    for index in range(20):
        if index % 4 == 3:
            assert native_ids[index] == native_ids[index - 1], "a retry with the same key made a second job"

    client = openai.OpenAI(base_url=f"{front}/v1", api_key="not-needed", max_retries=0, timeout=600)

    def openai_call(index):
        # Calls 0-9 come in pairs sharing a key (as a client retrying would); every call retries
        # with its key when its connection fails (node A dies under some of them).
        group = index // 2 if index < 10 else index
        key = f"openai-{group}"
        for attempt in range(5):
            try:
                result = client.images.generate(model="z-image-turbo", prompt=f"openai {group}", size="64x64", n=1,
                                                response_format="url", extra_body={"seed": 1000 + group},
                                                extra_headers={"Idempotency-Key": key})
                return result.data[0].url
            except (openai.APIConnectionError, openai.InternalServerError) as error:
                status = getattr(error, "status_code", "no answer")
                print(f"cluster: openai call {index} failed ({type(error).__name__}, {status}); retrying with its key")
                time.sleep(1)
        raise AssertionError(f"openai call {index} kept failing")

    # A slow job for node A to be running when it is killed.
    slow = {"width": 256, "height": 256, "steps": 8}
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        futures = [pool.submit(openai_call, index) for index in range(20)]
        victim = None
        for attempt in range(40):
            candidate = submit({"prompt": f"slow {attempt}", "seed": 7, **slow})
            wait_until(lambda: job(candidate)["status"] != "queued", 120, "the slow job to start")
            if running_on(candidate, "A"):
                victim = candidate
                break
        assert victim, "node A never ran a slow job"
        processes["A"].send_signal(signal.SIGKILL)
        processes["A"].wait()
        print(f"cluster: node A killed while running {victim}")
        urls = [future.result() for future in futures]
    openai_images = {url.rsplit("/", 1)[1] for url in urls}
    assert len(openai_images) == 15, f"10 openai calls in 5 key pairs + 10 plain calls: {len(openai_images)} images"

    finished = wait_until(lambda: job(victim)["status"] == "done" and job(victim), 120, "node B to finish the killed node's job")
    assert finished["worker"].startswith("B/") and finished["attempts"] == 2, finished
    print(f"cluster: the killed node's job finished by {finished['worker']} on attempt {finished['attempts']}")

    # Every job done exactly once: one image each, no image twice.
    wait_until(lambda: get_json(front + "/api/v1/queue")["queued"] == [] and not get_json(front + "/api/v1/queue")["running_jobs"],
               300, "the queue to drain")
    history = get_json(node_url("B") + "/api/v1/history?per_page=100")
    items = history["items"]
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)), "a job listed twice"
    image_ids = [image["id"] for item in items for image in item["images"]]
    assert len(image_ids) == len(set(image_ids)) and all(len(item["images"]) == 1 for item in items), "duplicate images"
    assert set(native_ids) <= set(ids) and victim in ids
    assert openai_images <= set(image_ids)
    assert len(set(native_ids)) == expected_unique, (len(set(native_ids)), expected_unique)
    count = subprocess.run(["psql", "-tA", db_url.split("?")[0], "-c", "SELECT count(*) FROM images"], check=True,
                           capture_output=True, text=True).stdout.strip()
    assert int(count) == len(image_ids), f"{count} image rows, {len(image_ids)} in the history"
    print(f"cluster: {len(ids)} jobs done once each ({len(set(native_ids))} native, {len(openai_images)} openai, the rest slow ones, the killed one among them)")

    # SSE through nginx delivers progress.
    sse_job = submit({"prompt": "events", "seed": 3, "width": 128, "height": 128, "steps": 6})
    with urllib.request.urlopen(f"{front}/api/v1/generations/{sse_job}/events", timeout=120) as stream:
        kinds = []
        for raw in stream:
            line = raw.decode().strip()
            if line.startswith("event: "):
                kinds.append(line[7:])
                if kinds[-1] in ("done", "failed", "cancelled"):
                    break
    assert "progress" in kinds and kinds[-1] == "done", kinds
    print(f"cluster: SSE through nginx: {kinds.count('progress')} progress events, then done")

    # Node A rejoins; two long jobs run at once, one on each node.
    start_node("A")
    wait_healthy(node_url("A"))
    long = {"width": 256, "height": 256, "steps": 30}
    pair = [submit({"prompt": f"long {i}", "seed": i, **long}, url=node_url("B")) for i in range(2)]
    wait_until(lambda: all(job(id)["status"] == "running" for id in pair), 120, "both long jobs to run")
    workers = sorted(job(id)["worker"].split("/")[0] for id in pair)
    assert workers == ["A", "B"], f"the restarted node A takes work: {workers}"
    print("cluster: node A restarted and took a job")

    # A cancel sent to node B stops the job running on node A.
    on_a = next(id for id in pair if running_on(id, "A"))
    status, _, body = request(f"{node_url('B')}/api/v1/generations/{on_a}/cancel", "POST", {})
    assert status == 200, (status, body)
    started = time.time()
    wait_until(lambda: job(on_a, node_url("A"))["status"] == "cancelled", 10, "node A to stop the cancelled job")
    print(f"cluster: a cancel sent to node B stopped node A's job in {time.time() - started:.2f} s")
    other = next(id for id in pair if id != on_a)
    request(f"{node_url('A')}/api/v1/generations/{other}/cancel", "POST", {})
    wait_until(lambda: job(other)["status"] == "cancelled", 10, "node B to stop its job")

    # History is the same through either node (and nginx).
    through = [get_json(url + "/api/v1/history?per_page=100") for url in (node_url("A"), node_url("B"), front)]
    assert through[0] == through[1] == through[2], "history differs between nodes"
    png_a = request(node_url("A") + items[0]["images"][0]["url"])[2]
    png_b = request(node_url("B") + items[0]["images"][0]["url"])[2]
    assert png_a[:8] == b"\x89PNG\r\n\x1a\n" and png_a == png_b, "an image differs between nodes"
    metrics = request(front + "/metrics")[2].decode()
    for name in ("zimage_queue_length", "zimage_queue_wait_seconds_count", "zimage_worker_jobs_completed_total"):
        assert name in metrics, name
    print("cluster: history and images identical through node A, node B and nginx")


try:
    main()
except BaseException:
    for name in ("A", "B"):
        path = os.path.join(work, f"{name}.log")
        if os.path.exists(path):
            print(f"--- node {name} log (tail) ---")
            print(open(path, errors="replace").read()[-4000:])
    raise
finally:
    cleanup()

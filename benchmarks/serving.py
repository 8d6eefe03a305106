"""Serving figures on loopback: feedsvc, a bare Flask app and nginx, one at a time, each under wrk.

Each server gets the same bytes (feedsvc's gzip body of one category feed), a warm-up, then a 200 run
(Accept-Encoding: gzip) and a 304 run (If-None-Match with the server's own ETag).
"""
from __future__ import annotations

import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import quote

from . import wrk
from .setup import nginx_binary
from .sites import PROJECT

GZIP = {"Accept-Encoding": "gzip"}


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict, bytes]:
    """One GET on loopback: status, headers (lower-case names) and body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _cpu_ticks(root: int) -> int:
    """CPU ticks used so far by a process and its children."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == root or int(fields[1]) == root:  # fields[1] is the parent's pid
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def wait_ready(proc: subprocess.Popen, port: int, timeout: float) -> None:
    """Until the server answers and its process tree has gone idle: every worker has finished loading."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise RuntimeError(f"server on port {port} not ready after {timeout:.0f} s")
        try:
            if get(port, "/healthz", {})[0] < 500:
                break
        except OSError:
            pass
        time.sleep(0.2)
    last = _cpu_ticks(proc.pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _cpu_ticks(proc.pid)
        if now - last <= 2:  # ≤ 20 ms of CPU in half a second: nobody is building any more
            return
        last = now


@contextmanager
def running(cmd: list[str], port: int, env: dict | None = None, cwd: str | None = None, timeout: float = 900):
    """Start a server, wait until it is ready, and stop it (TERM, then KILL) however the block ends."""
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL)
    try:
        wait_ready(proc, port, timeout)
        yield proc
    except Exception:
        log.seek(0)
        sys.stderr.write(log.read().decode("utf-8", "replace")[-3000:])
        raise
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def measure(targets: dict[str, tuple[int, str]], path: str, seconds: int, rounds: int) -> dict:
    """Warm every server up, then run 200 and 304 on each in turn, `rounds` times; medians per server and kind.

    Taking turns spreads the noise of a shared machine over all servers alike, so the ratios hold.
    """
    for port, _ in targets.values():
        wrk.run(f"http://127.0.0.1:{port}{path}", GZIP, seconds=1)
    runs: dict = {name: {"200": [], "304": []} for name in targets}
    for _ in range(rounds):
        for name, (port, etag) in targets.items():
            url = f"http://127.0.0.1:{port}{path}"
            runs[name]["200"].append(wrk.run(url, GZIP, seconds=seconds))
            runs[name]["304"].append(wrk.run(url, {**GZIP, "If-None-Match": etag}, seconds=seconds))
    return {name: {kind: _median_run(found) for kind, found in kinds.items()} for name, kinds in runs.items()}


def _median_run(found: list[dict]) -> dict:
    return {
        "rps": statistics.median(r["rps"] for r in found),
        "p99_ms": statistics.median(r["p99_ms"] for r in found),
        "p50_ms": statistics.median(r["p50_ms"] for r in found),
        "errors": sum(r["socket_errors"] + r["non_2xx_3xx"] for r in found),
        "runs": [{"rps": r["rps"], "p99_ms": r["p99_ms"]} for r in found],
    }


def _check(port: int, path: str, body: bytes) -> str:
    """The server's ETag, after checking it sends the same bytes and answers the conditional with 304."""
    status, headers, got = get(port, path, GZIP)
    if status != 200 or got != body:
        raise RuntimeError(f"port {port}{path}: status {status}, {len(got)} bytes, not the {len(body)} bytes expected")
    if get(port, path, {**GZIP, "If-None-Match": headers["etag"]})[0] != 304:
        raise RuntimeError(f"port {port}{path}: If-None-Match {headers['etag']} did not give 304")
    return headers["etag"]


NGINX_CONF = """\
{user}worker_processes {workers};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
    types {{ {media_type} rss; }}
    sendfile on;
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
        gzip_static on;  # feed.rss.gz, the same gzip bytes feedsvc sends
    }}
}}
"""


def serve_all(corpus: Path, feed_path: str, workers: int, seconds: int, rounds: int) -> dict:
    """feedsvc, bare Flask and nginx serving one category feed, all up at once, measured in turns under wrk."""
    path = "/" + quote(feed_path, safe="/")
    results: dict = {"path": path, "workers": workers, "wrk": f"-t2 -c32 -d{seconds}s, {rounds} rounds"}
    targets: dict[str, tuple[int, str]] = {}
    with tempfile.TemporaryDirectory(prefix="feedsvc-serve-") as tmp, ExitStack() as servers:
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(PROJECT), "FEEDSVC_STATE_PATH": f"{tmp}/state.sqlite3",
               "FEEDSVC_SITE_URL": f"http://127.0.0.1:{port}", "FEEDSVC_REFRESH_SECONDS": "3600",
               "FEEDSVC_RATE_LIMIT": "0"}  # one load generator is one client: no per-address budget
        cmd = [sys.executable, "-m", "feedsvc", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--articles", str(corpus / "articles"), "--workers", str(workers)]
        servers.enter_context(running(cmd, port, env=env, cwd=tmp))
        status, headers, body = get(port, path, GZIP)
        if status != 200 or headers.get("content-encoding") != "gzip":
            raise RuntimeError(f"feedsvc {path}: status {status}, encoding {headers.get('content-encoding')}")
        media_type = headers["content-type"]
        results["body_bytes"] = len(body)
        targets["feedsvc"] = (port, _check(port, path, body))

        Path(tmp, "body.gz").write_bytes(body)
        port = free_port()
        cmd = [sys.executable, "-m", "benchmarks.bareflask", "--port", str(port), "--workers", str(workers),
               "--body", f"{tmp}/body.gz", "--etag", headers["etag"], "--content-type", media_type]
        servers.enter_context(running(cmd, port, env={**os.environ, "PYTHONPATH": str(PROJECT)}, cwd=str(PROJECT)))
        targets["flask"] = (port, _check(port, path, body))

        www = Path(tmp, "www", feed_path).parent
        www.mkdir(parents=True)
        (www / "feed.rss.gz").write_bytes(body)
        (www / "feed.rss").write_bytes(b"")  # gzip_static answers from the .gz; the plain file only marks the path
        port = free_port()
        conf = NGINX_CONF.format(user="user root;\n" if os.geteuid() == 0 else "", workers=workers, tmp=tmp, port=port,
                                 media_type=media_type.split(";")[0])
        Path(tmp, "nginx.conf").write_text(conf)
        servers.enter_context(running([nginx_binary() or "nginx", "-p", tmp, "-c", f"{tmp}/nginx.conf"], port))
        targets["nginx"] = (port, _check(port, path, body))

        results.update(measure(targets, path, seconds, rounds))
    return results

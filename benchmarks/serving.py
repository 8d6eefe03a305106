"""Serving figures on loopback: feedsvc, a bare Flask app and nginx, each under wrk, in turns.

Each server gets the same bytes (feedsvc's gzip body of the site-wide /feed.rss), a warm-up, then a 200 run
(Accept-Encoding: gzip) and a 304 run (If-None-Match with the server's own ETag).
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

from . import bareflask, procs, server, wrk
from .server import PROJECT, free_port, get
from .setup import nginx_binary

GZIP = {"Accept-Encoding": "gzip"}


def wait_ready(proc: subprocess.Popen, port: int, timeout: float) -> None:
    """Until the server answers and its process tree has gone idle: every worker has finished loading."""
    deadline = time.monotonic() + timeout
    while not 0 < get(port, "/healthz", {})[0] < 500:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise RuntimeError(f"server on port {port} not ready after {timeout:.0f} s")
        time.sleep(0.2)
    procs.wait_idle(proc.pid, timeout=max(1.0, deadline - time.monotonic()))


@contextmanager
def running(cmd: list[str], port: int, env: dict | None = None, cwd: str | None = None, timeout: float = 900):
    """Start a server, wait until it is ready, and stop it (TERM, then KILL) however the block ends.

    In a session of its own, as feedsvc's server.Server starts `feedsvc serve`: Linux's autogroup scheduling
    shares the CPU out by session, so a server left in the harness's session (with wrk) got about twice the
    CPU of one in its own on a loaded machine (bare Flask: 0.77–0.98 of a core against 0.41, measured).
    """
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_ready(proc, port, timeout)
        yield proc
    except Exception:
        log.seek(0)
        sys.stderr.write(log.read().decode("utf-8", "replace")[-3000:])
        raise
    finally:
        procs.end(proc)
        log.close()


def measure(targets: dict[str, tuple[int, str, int]], path: str, seconds: int, rounds: int) -> dict:
    """Warm every server up, then run 200 and 304 on each in turn, `rounds` times; medians per server and kind.

    targets: name → (port, ETag, the server's root PID). Taking turns spreads the noise of a shared machine
    over all servers alike, so the ratios hold. Each run also notes the CPU time the server's process tree
    used per request: what a request costs, whatever share of the machine the server got meanwhile.
    """
    for port, _, _ in targets.values():
        wrk.run(f"http://127.0.0.1:{port}{path}", GZIP, seconds=1)
    runs: dict = {name: {"200": [], "304": []} for name in targets}
    for _ in range(rounds):
        for name, (port, etag, pid) in targets.items():
            url = f"http://127.0.0.1:{port}{path}"
            runs[name]["200"].append(_run(url, GZIP, seconds, pid))
            runs[name]["304"].append(_run(url, {**GZIP, "If-None-Match": etag}, seconds, pid))
    return {name: {kind: _median_run(found) for kind, found in kinds.items()} for name, kinds in runs.items()}


def _run(url: str, headers: dict, seconds: int, pid: int) -> dict:
    """One wrk run, with the server tree's CPU microseconds per request."""
    before = procs.cpu_ticks(pid)
    found = wrk.run(url, headers, seconds=seconds)
    used = (procs.cpu_ticks(pid) - before) / os.sysconf("SC_CLK_TCK")
    found["cpu_us"] = used * 1e6 / found["requests"] if found.get("requests") else None
    return found


def _median_run(found: list[dict]) -> dict:
    cpu = [r["cpu_us"] for r in found if r.get("cpu_us") is not None]
    return {
        "rps": statistics.median(r["rps"] for r in found),
        "p99_ms": statistics.median(r["p99_ms"] for r in found),
        "p50_ms": statistics.median(r["p50_ms"] for r in found),
        "cpu_us": statistics.median(cpu) if cpu else None,
        "errors": sum(r["socket_errors"] + r["non_2xx_3xx"] for r in found),
        "runs": [{"rps": r["rps"], "p99_ms": r["p99_ms"], "cpu_us": r.get("cpu_us")} for r in found],
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
    types {{ {media_type} {ext}; }}
    sendfile on;
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
        gzip_static on;  # feed.rss.gz: the same gzip bytes feedsvc sends
    }}
}}
"""


def serve_all(articles: Path, workers: int, seconds: int, rounds: int, path: str = "/feed.rss") -> dict:
    """feedsvc, bare Flask and nginx serving one hot feed with the same worker count, measured in turns under wrk."""
    results: dict = {"path": path, "workers": workers, "wrk": f"-t2 -c32 -d{seconds}s, {rounds} rounds"}
    targets: dict[str, tuple[int, str]] = {}
    with tempfile.TemporaryDirectory(prefix="feedsvc-serve-") as tmp, ExitStack() as servers:
        feedsvc = servers.enter_context(server.Server(articles, Path(tmp, "state"), workers=workers,
                                                      env={"FEEDSVC_REFRESH_SECONDS": "3600"}))
        feedsvc.wait_feeds()
        procs.wait_idle(feedsvc.proc.pid, timeout=900)  # every worker has finished loading
        port = feedsvc.port
        status, headers, body = get(port, path, GZIP)
        if status != 200 or headers.get("content-encoding") != "gzip":
            raise RuntimeError(f"feedsvc {path}: status {status}, encoding {headers.get('content-encoding')}")
        media_type = headers["content-type"]
        results["body_bytes"] = len(body)
        targets["feedsvc"] = (port, _check(port, path, body), feedsvc.proc.pid)

        Path(tmp, "body.gz").write_bytes(body)
        port = free_port()
        cmd = [sys.executable, "-m", "benchmarks.bareflask", "--port", str(port), "--workers", str(workers),
               "--body", f"{tmp}/body.gz", "--etag", headers["etag"], "--content-type", media_type]
        flask = servers.enter_context(running(cmd, port, env={**os.environ, "PYTHONPATH": str(PROJECT)}, cwd=str(PROJECT)))
        targets["flask"] = (port, _check(port, path, body), flask.pid)
        results["flask_worker_class"] = bareflask.serving_like_feedsvc()[0]

        www = Path(tmp, "www", path.lstrip("/")).parent
        www.mkdir(parents=True, exist_ok=True)
        name = path.rsplit("/", 1)[-1]
        (www / f"{name}.gz").write_bytes(body)
        (www / name).write_bytes(b"")  # gzip_static answers from the .gz; the plain file only marks the path
        port = free_port()
        conf = NGINX_CONF.format(user="user root;\n" if os.geteuid() == 0 else "", workers=workers, tmp=tmp, port=port,
                                 media_type=media_type.split(";")[0], ext=name.rsplit(".", 1)[-1])
        Path(tmp, "nginx.conf").write_text(conf)
        nginx = servers.enter_context(running([nginx_binary() or "nginx", "-p", tmp, "-c", f"{tmp}/nginx.conf"], port))
        targets["nginx"] = (port, _check(port, path, body), nginx.pid)

        results.update(measure(targets, path, seconds, rounds))
    return results

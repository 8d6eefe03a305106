"""HTTP checks shared by every test that talks to a real server (the app under gunicorn, nginx)."""
from __future__ import annotations

import gzip
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

import brotli

from feedsvc.children import die_with_parent

ROOT = Path(__file__).resolve().parents[1]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
NGINX_PROXY_CONF = ROOT / "deploy" / "nginx-proxy.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"  # root's PATH has /usr/sbin, another user's may not

MEDIA_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
    "opml": "text/x-opml; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


@dataclass
class Reply:
    """A response read whole."""

    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())



class QuietHandler(BaseHTTPRequestHandler):
    """A handler for a test's own loopback server (an image, a feed a reader subscribes to), with nothing on stderr."""

    def send_bytes(self, body: bytes, media_type: str) -> None:
        """A 200 with these bytes."""
        self.send_response(200)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        """http.server writes a line a request to stderr, which would bury a failing test's own output."""

def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def end_process(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM a child process, SIGKILL it if it has not gone within timeout seconds; reap it either way."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def fetch(base: str, path: str, method: str = "GET", headers: dict | None = None) -> Reply:
    """One request over a fresh connection to a loopback server; path is sent as given (raw)."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        res = conn.getresponse()
        body = res.read()
        return Reply(res.status, {k.lower(): v for k, v in res.getheaders()}, body)
    finally:
        conn.close()


def wait_until_up(base: str, proc: subprocess.Popen | None = None, path: str = "/healthz", timeout: float = 30,
                  status: int = 200) -> None:
    """Poll until the server answers path with status, or fail (at once when the process has exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if fetch(base, path).status == status:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{base}{path} did not answer {status} within {timeout} s")


def until(check, timeout: float, what: str):
    """Poll check() every 50 ms until it gives something true (returned), or fail saying what never came."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


class Process:
    """A server process on a free loopback port (self.port, self.base), its output in a log file."""

    def __init__(self, command: list[str], log: Path, ready: str, env: dict | None = None, cwd: Path | None = None,
                 ready_status: int = 200):
        self.log_path = log
        self.log = open(log, "w+b")
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                     preexec_fn=die_with_parent)
        try:
            wait_until_up(self.base, self.proc, ready, status=ready_status)
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"{command[0]} did not start ({exc}):\n{self.output()}") from None

    def output(self) -> str:
        """Everything the process printed so far (also after stop())."""
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def stop(self) -> None:
        end_process(self.proc)
        self.log.close()


class Server(Process):
    """`feedsvc serve` as a real process on a free loopback port."""

    def __init__(self, articles: Path, state: Path, workers: int = 1, env: dict | None = None, command: list[str] | None = None,
                 ready: str = "/healthz", ready_status: int = 200):
        self.state = state
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        checkout = str(ROOT)  # serve this checkout's code
        environ = {**os.environ, "FEEDSVC_STATE_PATH": str(state), "FEEDSVC_SITE_URL": self.base,
                   "PYTHONPATH": checkout + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {})}
        environ = {name: value for name, value in environ.items() if value is not None}  # env={"X": None} unsets X
        command = command or [sys.executable, "-m", "feedsvc", "serve", "--port", "{port}", "--articles", "{articles}", "--workers", "{workers}"]
        command = [part.format(port=self.port, articles=articles, workers=workers, checkout=checkout) for part in command]
        super().__init__(command, state.parent / f"server-{self.port}.log", ready, environ, state.parent, ready_status)


def run_feedsvc(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """The real `python -m feedsvc ARGS` as a process of this checkout; env={"X": None} unsets X."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {})}
    environ = {name: value for name, value in environ.items() if value is not None}
    return subprocess.run([sys.executable, "-m", "feedsvc", *args], capture_output=True, text=True, env=environ,
                          cwd=cwd, timeout=timeout)


class Nginx(Process):
    """deploy/nginx.conf run by Debian's nginx on a free loopback port, serving an export folder.

    The config's listen and root lines are replaced, as a deployer would; `-p workdir` keeps its pid,
    logs and temporary files inside workdir.
    """

    def __init__(self, export: Path, workdir: Path, port: int | None = None):
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        conf = NGINX_CONF.read_text(encoding="utf-8")
        conf = re.sub(r"^(\s*)listen \S+;", rf"\g<1>listen 127.0.0.1:{self.port};", conf, count=1, flags=re.MULTILINE)
        conf = re.sub(r"^(\s*)root \S+;", rf"\g<1>root {export};", conf, count=1, flags=re.MULTILINE)
        for folder in ("logs", "temp"):
            (workdir / folder).mkdir(exist_ok=True)
        (workdir / "nginx.conf").write_text(conf, encoding="utf-8")
        # As root, nginx's workers would drop to nobody, who cannot read pytest's private tmp folders.
        extra = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
        command = [NGINX, "-p", f"{workdir}/", "-c", str(workdir / "nginx.conf"), "-g", extra]
        super().__init__(command, workdir / "nginx.log", "/feeds.opml")


class NginxProxy(Process):
    """deploy/nginx-proxy.conf run by Debian's nginx on a free loopback port, in front of a feedsvc at upstream.

    Its listen and upstream server lines are replaced, as a deployer would; logs stay inside workdir.
    """

    def __init__(self, upstream: str, workdir: Path, ready: str = "/healthz", header_timeout: str | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        conf = NGINX_PROXY_CONF.read_text(encoding="utf-8")
        conf = re.sub(r"^(\s*)listen \S+;", rf"\g<1>listen 127.0.0.1:{self.port};", conf, count=1, flags=re.MULTILINE)
        conf = re.sub(r"^(\s*)server 127\.0\.0\.1:\d+;", rf"\g<1>server {upstream};", conf, count=1, flags=re.MULTILINE)
        if header_timeout:  # a test need not wait the full 10 s
            conf = re.sub(r"client_header_timeout \S+;", f"client_header_timeout {header_timeout};", conf, count=1)
        for folder in ("logs", "temp"):
            (workdir / folder).mkdir(exist_ok=True)
        (workdir / "nginx.conf").write_text(conf, encoding="utf-8")
        self.access_log = workdir / "logs" / "access.log"
        extra = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
        command = [NGINX, "-p", f"{workdir}/", "-c", str(workdir / "nginx.conf"), "-g", extra]
        super().__init__(command, workdir / "nginx.log", ready)


def check_feed_http(base: str, path: str, media_type: str) -> Reply:
    """The HTTP rules every feed follows; returns the plain 200 reply."""
    plain = fetch(base, path)
    assert plain.status == 200, (path, plain.status)
    assert plain.header("content-type") == media_type
    etag, modified = plain.header("etag"), plain.header("last-modified")
    assert etag and etag.startswith('"') and modified and modified.endswith("GMT")
    assert plain.header("access-control-allow-origin") == "*"
    assert "Accept-Encoding" in (plain.header("vary") or "")
    assert (plain.header("cache-control") or "").startswith("public, max-age=")
    assert plain.header("x-content-type-options") == "nosniff"
    # 304 both ways, If-None-Match deciding when both are sent (RFC 9110 §13.2.2)
    inm = fetch(base, path, headers={"If-None-Match": etag})
    assert inm.status == 304 and inm.body == b""
    ims = fetch(base, path, headers={"If-Modified-Since": modified})
    assert ims.status == 304 and ims.body == b""
    both = fetch(base, path, headers={"If-None-Match": '"other"', "If-Modified-Since": modified})
    assert both.status == 200
    # HEAD: the headers, no body
    head = fetch(base, path, method="HEAD")
    assert head.status == 200 and head.body == b"" and head.header("etag") == etag
    # gzip and brotli made once, beforehand: each decompresses to the same bytes and has its own ETag
    for coding, decompress in (("gzip", gzip.decompress), ("br", brotli.decompress)):
        coded = fetch(base, path, headers={"Accept-Encoding": coding})
        assert coded.header("content-encoding") == coding
        assert decompress(coded.body) == plain.body
        assert coded.header("etag") not in (None, etag) and "Accept-Encoding" in (coded.header("vary") or "")
    return plain


def check_not_found(base: str, path: str, statuses: tuple[int, ...] = (404,)) -> None:
    """A path that is not published is a 404 (or one of statuses) with a short body."""
    res = fetch(base, path)
    assert res.status in statuses, (path, res.status)
    assert len(res.body) < 2048

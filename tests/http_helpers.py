"""HTTP checks shared by every test that talks to a real server (the app under gunicorn, nginx)."""
from __future__ import annotations

import gzip
import http.client
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def wait_until_up(base: str, proc: subprocess.Popen | None = None, path: str = "/healthz", timeout: float = 30) -> None:
    """Poll until the server answers path with 200, or fail with its output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if fetch(base, path).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{base}{path} did not answer 200 within {timeout} s")


class Server:
    """`feedsvc serve` as a real process on a free loopback port."""

    def __init__(self, articles: Path, state: Path, workers: int = 1, env: dict | None = None, command: list[str] | None = None):
        self.state = state
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(state.parent / f"server-{self.port}.log", "w+b")
        checkout = str(Path(__file__).resolve().parents[1])  # serve this checkout's code
        environ = {**os.environ, "FEEDSVC_STATE_PATH": str(state), "FEEDSVC_SITE_URL": self.base,
                   "PYTHONPATH": checkout + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {})}
        command = command or [sys.executable, "-m", "feedsvc", "serve", "--port", "{port}", "--articles", "{articles}", "--workers", "{workers}"]
        self.proc = subprocess.Popen(
            [part.format(port=self.port, articles=articles, workers=workers, checkout=checkout) for part in command],
            stdout=self.log, stderr=subprocess.STDOUT, env=environ, cwd=state.parent,
        )
        try:
            wait_until_up(self.base, None)
        except Exception:
            self.stop()
            raise RuntimeError("server did not start:\n" + self.output()) from None

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


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
    # gzip made once at render time, decompresses to the same bytes
    zipped = fetch(base, path, headers={"Accept-Encoding": "gzip"})
    assert zipped.header("content-encoding") == "gzip"
    assert gzip.decompress(zipped.body) == plain.body
    return plain


def check_not_found(base: str, path: str) -> None:
    """A path that is not published is a 404 with a short text body."""
    res = fetch(base, path)
    assert res.status == 404, (path, res.status)
    assert len(res.body) < 2048

"""A small WebDriver BiDi client for Debian's headless Firefox, which Playwright cannot drive.

Firefox's own remote agent speaks WebDriver BiDi over a websocket (https://w3c.github.io/webdriver-bidi/):
start it with --remote-debugging-port, open a session, then navigate, evaluate and take screenshots.
"""
from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
import struct
import time
import zlib
from pathlib import Path

from websockets.sync.client import connect

from tests.http_helpers import end_process

FIREFOX = shutil.which("firefox-esr") or shutil.which("firefox") or "/usr/bin/firefox-esr"
# The remote agent already turns off most background traffic; these keep the rest (remote settings, updates,
# telemetry, captive-portal checks) off the network, and send anything left to a closed loopback port: the
# tests talk to 127.0.0.1 only (checked with strace: no DNS query, no connection elsewhere).
NOWHERE = "127.0.0.1", 9
PREFS = {
    "app.update.disabledForTesting": True,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.page": 0,
    "datareporting.policy.dataSubmissionEnabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.trr.mode": 5,  # no DNS over HTTPS
    "network.proxy.type": 1,  # a manual proxy for every host but localhost: the closed port
    "network.proxy.http": NOWHERE[0], "network.proxy.http_port": NOWHERE[1],
    "network.proxy.ssl": NOWHERE[0], "network.proxy.ssl_port": NOWHERE[1],
    "services.settings.server": f"http://{NOWHERE[0]}:{NOWHERE[1]}/v1",
    "toolkit.telemetry.enabled": False,
}
LISTENING = re.compile(r"WebDriver BiDi listening on (ws://\S+)")


class BiDiError(Exception):
    """A command Firefox answered with an error: the command, the error and its message."""


class Firefox:
    """Headless Firefox in a fresh profile, driven over WebDriver BiDi; a context manager."""

    def __init__(self, profile: Path, width: int = 1000, height: int = 900, timeout: float = 60):
        profile.mkdir(parents=True, exist_ok=True)
        (profile / "user.js").write_text("".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in PREFS.items()))
        self.log_path = profile.parent / "firefox.log"
        self._log = open(self.log_path, "w+b")
        self.proc = subprocess.Popen(
            [FIREFOX, "--headless", "--no-remote", "--profile", str(profile), "--remote-debugging-port", "0",
             f"--width={width}", f"--height={height}", "about:blank"],
            stdout=self._log, stderr=subprocess.STDOUT,
            env={**os.environ, "MOZ_REMOTE_SETTINGS_DEVTOOLS": "1"})  # else release builds ignore services.settings.server
        self._ids = itertools.count(1)
        self._closing = contextlib.ExitStack()
        self.ws = None
        try:
            url = self._websocket_url(timeout) + "/session"
            self.ws = self._closing.enter_context(connect(url, open_timeout=timeout, max_size=None))
            self.command("session.new", {"capabilities": {}})
            self.context = self.command("browsingContext.getTree", {})["contexts"][0]["context"]
        except Exception:
            self.close()
            raise

    def _websocket_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = LISTENING.search(self.log_path.read_text("utf-8", "replace"))
            if found:
                return found.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"Firefox did not start its remote agent:\n{self.log_path.read_text('utf-8', 'replace')}")

    def command(self, method: str, params: dict) -> dict:
        """Send one command and return its result, skipping the events that come in between."""
        id_ = next(self._ids)
        self.ws.send(json.dumps({"id": id_, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") != id_:
                continue
            if message.get("type") == "error":
                raise BiDiError(f"{method}: {message.get('error')}: {message.get('message')}")
            return message["result"]

    def navigate(self, url: str) -> None:
        """Open url in the tab and wait until it has loaded."""
        self.command("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page, passed through JSON."""
        result = self.command("script.evaluate", {"expression": f"JSON.stringify({expression})", "awaitPromise": True,
                                                  "target": {"context": self.context}})
        if result["type"] != "success":
            raise BiDiError(f"script.evaluate: {result.get('exceptionDetails', {}).get('text')}")
        return json.loads(result["result"]["value"])

    def screenshot(self, path: Path | None = None, box: tuple[float, float, float, float] | None = None) -> bytes:
        """A PNG of the whole document, or of a box (x, y, width, height) of it; written to path if given."""
        params = {"context": self.context, "origin": "document"}
        if box is not None:
            params["clip"] = dict(zip(("x", "y", "width", "height"), box), type="box")
        png = base64.b64decode(self.command("browsingContext.captureScreenshot", params)["data"])
        if path is not None:
            path.write_bytes(png)
        return png

    def set_viewport(self, width: int, height: int) -> None:
        """Resize the page's viewport, as a narrow phone screen would be."""
        self.command("browsingContext.setViewport", {"context": self.context, "viewport": {"width": width, "height": height}})

    def close(self) -> None:
        try:
            if self.ws is not None:
                try:
                    self.command("browser.close", {})
                except Exception:  # Firefox may close the socket before it answers
                    pass
            self._closing.close()
        finally:
            end_process(self.proc)
            self._log.close()

    def __enter__(self) -> "Firefox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def png_pixels(png: bytes) -> list[list[tuple[int, ...]]]:
    """Rows of (r, g, b[, a]) pixels of an 8-bit, non-interlaced RGB or RGBA PNG (what Firefox's screenshots are)."""
    chunks, at = {}, 8
    while at < len(png):
        length, kind = struct.unpack(">I4s", png[at:at + 8])
        chunks[kind] = chunks.get(kind, b"") + png[at + 8:at + 8 + length]
        at += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert depth == 8 and colour in (2, 6) and not interlace, "only 8-bit RGB(A) PNGs"
    size = 4 if colour == 6 else 3
    raw, stride, rows, previous = zlib.decompress(chunks[b"IDAT"]), width * size, [], bytearray(width * size)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):  # undo the row filter (PNG spec §9)
            left = line[i - size] if i >= size else 0
            up, corner = previous[i], previous[i - size] if i >= size else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                nearest = min((abs(p - left), 0, left), (abs(p - up), 1, up), (abs(p - corner), 2, corner))[2]
                line[i] = (line[i] + nearest) & 255
        rows.append([tuple(line[x:x + size]) for x in range(0, stride, size)])
        previous = line
    return rows

"""WebSub publishing: tell the hub which feeds changed, from a background thread, retrying with backoff.

A refresh only hands over URLs; it never waits on the hub. https://www.w3.org/TR/websub/#publishing
(the publish ping itself, hub.mode=publish with hub.url, is the convention hubs share; the spec leaves it open).
"""
from __future__ import annotations

import heapq
import logging
import threading
import time
import urllib.error
import urllib.request
from typing import Callable, Iterable
from urllib.parse import urlencode

log = logging.getLogger(__name__)


def post_publish(hub: str, url: str, timeout: float) -> None:
    """One publish ping; raises OSError (urllib's errors included) when the hub does not accept it."""
    data = urlencode({"hub.mode": "publish", "hub.url": url}).encode("ascii")
    request = urllib.request.Request(hub, data=data, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "feedsvc"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the configured hub
        if not 200 <= response.status < 300:
            raise OSError(f"hub answered {response.status}")


class HubNotifier:
    """Queues changed feed URLs and pings the hub for each, retrying a failed ping with growing delays."""

    def __init__(self, hub: str, *, attempts: int = 6, first_delay: float = 1.0, timeout: float = 5.0,
                 post: Callable[[str, str, float], None] = post_publish):
        self.hub, self.attempts, self.first_delay, self.timeout, self.post = hub, attempts, first_delay, timeout, post
        self._due: list[tuple[float, int, str]] = []  # (when, attempt, url), a heap
        self._pending: set[str] = set()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self.sent = 0  # pings the hub accepted (for /healthz and tests)

    def notify(self, urls: Iterable[str]) -> None:
        """Queue a publish ping for each URL not already queued; returns at once."""
        with self._wake:
            for url in urls:
                if url not in self._pending:
                    self._pending.add(url)
                    heapq.heappush(self._due, (time.monotonic(), 0, url))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="websub", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._wake.wait(timeout=None if not self._due else self._due[0][0] - time.monotonic())
                when, attempt, url = heapq.heappop(self._due)
                self._pending.discard(url)
            try:
                self.post(self.hub, url, self.timeout)
                self.sent += 1
            except (OSError, ValueError) as exc:
                if attempt + 1 >= self.attempts:
                    log.error("WebSub hub %s refused %s %d times, giving up: %s", self.hub, url, attempt + 1, exc)
                    continue
                delay = self.first_delay * 2 ** attempt
                log.warning("WebSub hub %s: %s (retrying %s in %.0f s)", self.hub, exc, url, delay)
                with self._wake:
                    if url not in self._pending:  # a newer ping for the same URL supersedes the retry
                        self._pending.add(url)
                        heapq.heappush(self._due, (time.monotonic() + delay, attempt + 1, url))

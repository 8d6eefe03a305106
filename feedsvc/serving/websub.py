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
    """Queues changed feed URLs and pings the hub for each, retrying a failed ping with growing delays.

    With background=True (the app) one daemon thread sends the pings as they fall due; with background=False
    nothing runs by itself and the caller sends what is due with send_due() (tests, with their own clock).
    """

    def __init__(self, hub: str, *, attempts: int = 6, first_delay: float = 1.0, timeout: float = 5.0,
                 post: Callable[[str, str, float], None] = post_publish, clock: Callable[[], float] = time.monotonic,
                 background: bool = True):
        self.hub, self.attempts, self.first_delay, self.timeout = hub, attempts, first_delay, timeout
        self.post, self.clock, self.background = post, clock, background
        self._due: list[tuple[float, int, str]] = []  # (when, attempt, url), a heap
        self._pending: set[str] = set()
        self._sending = 0  # pings on the wire right now
        self._closed = False
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self.sent = 0  # pings the hub accepted (for tests)
        self.given_up = 0  # URLs dropped after `attempts` refusals

    def notify(self, urls: Iterable[str]) -> None:
        """Queue a publish ping for each URL not already queued; returns at once."""
        with self._wake:
            if self._closed:
                return
            for url in urls:
                if url not in self._pending:
                    self._pending.add(url)
                    heapq.heappush(self._due, (self.clock(), 0, url))
            if self.background and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="websub", daemon=True)
                self._thread.start()
            self._wake.notify_all()

    def send_due(self) -> float | None:
        """Send every ping that is due now; returns the seconds until the next one, or None when none is queued."""
        while True:
            with self._wake:
                if self._closed or not self._due:
                    return None
                wait = self._due[0][0] - self.clock()
                if wait > 0:
                    return wait
                _, attempt, url = heapq.heappop(self._due)
                self._pending.discard(url)
                self._sending += 1
            try:
                self._send(url, attempt)
            finally:
                with self._wake:
                    self._sending -= 1
                    self._wake.notify_all()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until no ping is due or on the wire (retries planned for later do not count); False on timeout."""
        with self._wake:
            return self._wake.wait_for(lambda: self._closed or (
                not self._sending and not (self._due and self._due[0][0] <= self.clock())), timeout)

    def close(self) -> None:
        """Stop sending: drop what is queued and wait for the ping on the wire, if any, and the thread to end."""
        with self._wake:
            self._closed = True
            dropped = len(self._due)
            self._due.clear()
            self._pending.clear()
            self._wake.notify_all()
        if dropped:
            log.warning("WebSub: %d publish pings to %s not sent (stopping)", dropped, self.hub)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.timeout + 1)

    def _send(self, url: str, attempt: int) -> None:
        try:
            self.post(self.hub, url, self.timeout)
        except (OSError, ValueError) as exc:
            if attempt + 1 >= self.attempts:
                self.given_up += 1
                log.error("WebSub hub %s refused %s %d times, giving up: %s", self.hub, url, attempt + 1, exc)
                return
            delay = self.first_delay * 2 ** attempt
            log.warning("WebSub hub %s: %s (retrying %s in %.0f s)", self.hub, exc, url, delay)
            with self._wake:
                if url not in self._pending and not self._closed:  # a newer ping for the same URL supersedes the retry
                    self._pending.add(url)
                    heapq.heappush(self._due, (self.clock() + delay, attempt + 1, url))
            return
        self.sent += 1

    def _run(self) -> None:
        while True:
            self.send_due()
            with self._wake:
                if self._closed:
                    return
                wait = self._due[0][0] - self.clock() if self._due else None
                if wait is None or wait > 0:
                    self._wake.wait(timeout=wait)

"""WebSub publishing: tell the hub which feeds changed, from background threads, retrying with backoff.

A refresh only hands over URLs; it never waits on the hub. https://www.w3.org/TR/websub/#publishing
(the publish ping itself, hub.mode=publish with hub.url, is the convention hubs share; the spec leaves it open).
The pings the hub has not taken yet are kept in the state file (Unsent): a restart, a takeover or the next
`feedsvc build` sends them, so that neither a stop during the retries nor a hub down for long loses a change.
"""
from __future__ import annotations

import contextlib
import heapq
import http.client
import logging
import socket
import sqlite3
import ssl
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import urlencode, urljoin, urlsplit

log = logging.getLogger(__name__)

REDIRECTS = 3  # a hub's redirects followed, each POSTed to again (urllib's own turned the POST into a GET)
SENDERS = 4  # pings on the wire at once: a slow hub (seconds a ping) takes the hundred feeds of a change in turns
AGAIN_AFTER = 3600.0  # seconds between tries once a ping's attempts are spent: a hub down for hours still hears of it


class HubRefused(OSError):
    """The hub answered a ping with a 4xx other than 408 and 429: it will never take it (an unknown topic, a feed of an
    old SITE_URL), so it is not tried again."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand a redirect back as the answer: urllib follows a 301, 302 or 303 with a GET without the form, which the
    hub never hears of as a ping (and answers 200: it looked sent)."""

    def redirect_request(self, *args, **kwargs):
        return None


class _Deadline:
    """The whole of one ping within `seconds`: urllib's timeout is each read's, and a hub that sends its answer a byte
    every few seconds held a sender (and `feedsvc build`) for ever. Each connection opened for the ping is noted as
    soon as it exists (before a proxy's tunnel, which reads from it too), and given only the seconds left to connect
    and to shake hands; once past the deadline, they are shut and the read waiting on them ends. (Looking the name up is not
    bounded; an address that does not answer takes what is left, each address of the name in turn.)"""

    def __init__(self, seconds: float):
        self.sockets: list = []
        self.passed = False
        self.ends = time.monotonic() + seconds
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> "_Deadline":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        self.passed = True
        for sock in list(self.sockets):
            with contextlib.suppress(OSError, ValueError):  # closed meanwhile: nothing left to end
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the socket's own: an SSLSocket's would unwrap it

    def _note(self, sock) -> None:
        self.sockets.append(sock)
        if self.passed:  # opened just as the deadline passed
            self._expire()

    def opener(self) -> urllib.request.OpenerDirector:
        """urllib's opener (proxies and all) without redirects, its connections noted (_note)."""
        deadline = self

        def noted(base: type) -> type:
            class Noted(base):
                def __init__(self, *args, **kwargs):
                    super().__init__(*args, **kwargs)
                    create = self._create_connection

                    def connect_noted(address, timeout=None, source_address=None):
                        left = max(0.01, deadline.ends - time.monotonic())
                        sock = create(address, left if timeout is None else min(timeout, left), source_address)
                        deadline._note(sock)
                        return sock
                    self._create_connection = connect_noted

                def connect(self):
                    if not isinstance(self, http.client.HTTPSConnection):
                        super().connect()
                        return
                    # HTTPSConnection.connect, with the handshake given only the seconds left: the socket noted is
                    # detached as TLS wraps it, so shutting it could not end a handshake that hangs (or a tunnel's
                    # slow answer had used the time up: 3.7 s for a 2 s deadline).
                    http.client.HTTPConnection.connect(self)
                    self.sock.settimeout(max(0.01, deadline.ends - time.monotonic()))
                    self.sock = self._context.wrap_socket(self.sock, server_hostname=self._tunnel_host or self.host)
                    deadline._note(self.sock)
            return Noted

        class Http(urllib.request.HTTPHandler):
            def http_open(self, req):
                return self.do_open(noted(http.client.HTTPConnection), req)

        class Https(urllib.request.HTTPSHandler):
            def https_open(self, req):
                return self.do_open(noted(http.client.HTTPSConnection), req, context=self._context)

        return urllib.request.build_opener(_NoRedirect, Http, Https(context=ssl.create_default_context()))


def post_publish(hub: str, url: str, timeout: float) -> None:
    """One publish ping, all of it (redirects too) within `timeout` seconds (_Deadline); raises OSError (urllib's errors
    and a malformed answer's included) when the hub does not accept it."""
    taken = False
    with _Deadline(timeout) as deadline:
        try:
            _post(hub, url, timeout, deadline.opener())
            taken = not deadline.passed  # an answer read in full before the deadline (a shut socket reads as an end)
        except http.client.HTTPException as exc:  # a status line or headers no HTTP (urllib passes them through)
            if not deadline.passed:
                raise OSError(f"hub answered no HTTP ({type(exc).__name__})") from None
        except (OSError, ValueError) as exc:
            if not deadline.passed or isinstance(exc, HubRefused):  # a refusal read in full is an answer
                raise
        # Whatever was read by the deadline is no answer; one read in full before it is, whenever the timer fires.
        if deadline.passed and not taken:
            raise OSError(f"hub did not answer within {timeout:g} s")


def _post(hub: str, url: str, timeout: float, opener: urllib.request.OpenerDirector) -> None:
    """post_publish() through this opener.

    A redirect (301, 302, 307, 308) on the hub's own host is followed by POSTing the ping to its Location, up to
    REDIRECTS times (RFC 9110 §15.4: a client may keep the method; a hub moved from http: to https: takes the ping); a
    303 says the ping was taken and where to read about it (§15.4.4)."""
    data = urlencode({"hub.mode": "publish", "hub.url": url}).encode("ascii")
    target = hub
    for _ in range(REDIRECTS + 1):
        request = urllib.request.Request(target, data=data, method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "feedsvc"})
        try:
            with opener.open(request, timeout=timeout) as response:  # noqa: S310 - the configured hub
                status, location = response.status, response.headers.get("Location")
        except urllib.error.HTTPError as exc:  # urllib raises every status from 300 on
            status, location = exc.code, exc.headers.get("Location")
            exc.close()
            if 400 <= status < 500 and status not in (408, 429):
                raise HubRefused(f"hub answered {status}") from None
            if status not in (301, 302, 303, 307, 308):
                raise
        if 200 <= status < 300 or status == 303:
            return
        if status not in (301, 302, 307, 308) or not location:
            raise OSError(f"hub answered {status}")
        moved = urljoin(target, location)
        if not _same_place(target, moved):
            # Never elsewhere: a hub (or what answers at its address) could have feedsvc POST to any address it can
            # reach, loopback and the private network included.
            raise OSError(f"hub answered {status} to another host ({moved}): set WEBSUB_HUB to it if that is the hub")
        target = moved
        if status in (301, 308):
            log.warning("WebSub hub %s moved for good to %s: set WEBSUB_HUB to it", hub, target)
    raise OSError(f"hub redirected more than {REDIRECTS} times (last to {target})")


def _same_place(old: str, new: str) -> bool:
    """Whether a redirect stays where the hub is: the same host and port, or the same host moved from http: on its
    default port to https: on its own."""
    was, now = urlsplit(old), urlsplit(new)
    try:
        ports = (was.port or {"http": 80, "https": 443}.get(was.scheme), now.port or {"http": 80, "https": 443}.get(now.scheme))
    except ValueError:  # a port that is not a number
        return False
    same = (was.hostname or "") == (now.hostname or "") and now.scheme in ("http", "https")
    return same and (ports[0] == ports[1] or (was.scheme, now.scheme, ports) == ("http", "https", (80, 443)))


class Unsent:
    """The feeds whose publish ping the hub has not taken yet, kept in the state file (table websub_unsent) until it
    does: what a process that stopped (or a build whose hub was down) leaves for the next one to send."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._warned = False
        self._run("CREATE TABLE IF NOT EXISTS websub_unsent (url TEXT PRIMARY KEY)")

    def all(self) -> list[str]:
        """Every feed URL kept, in order."""
        return [row[0] for row in self._run("SELECT url FROM websub_unsent WHERE typeof(url) = 'text' ORDER BY url") or ()]

    def add(self, urls: Iterable[str]) -> bool:
        """Keep these URLs; whether they are kept."""
        return self._run("INSERT OR IGNORE INTO websub_unsent (url) VALUES (?)", [(u,) for u in urls]) is not None

    def remove(self, urls: Iterable[str]) -> bool:
        """Keep these URLs no more (the hub took them); whether that is written."""
        return self._run("DELETE FROM websub_unsent WHERE url = ?", [(u,) for u in urls]) is not None

    def _run(self, sql: str, rows: list | None = None) -> list | None:
        """One statement (for each row) in one transaction on a connection of its own, never the state store's (whose
        held writes it would commit early); None when it failed, which is logged (once until one succeeds again)."""
        if rows is not None and not rows:
            return []
        try:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            try:
                conn.execute("PRAGMA busy_timeout=30000")
                conn.execute("PRAGMA synchronous=NORMAL")  # as the state store's: WAL, no fsync a commit
                if rows is None:
                    found = conn.execute(sql).fetchall()
                else:
                    with conn:
                        conn.execute("BEGIN IMMEDIATE")
                        conn.executemany(sql, rows)
                    found = []
            finally:
                conn.close()
        except sqlite3.Error as exc:
            if not self._warned:
                self._warned = True
                log.warning("WebSub: cannot keep the unsent pings in %s (%s): a stop before the hub takes them loses them",
                            self.path, exc)
            return None
        self._warned = False
        return found


class HubNotifier:
    """Queues changed feed URLs and pings the hub for each, retrying a failed ping with growing delays.

    With background=True (the app) up to SENDERS daemon threads send the pings as they fall due; with background=False
    nothing runs by itself and the caller sends what is due with send_due() (tests, with their own clock). Once kept
    in an Unsent (keep_in: the builder's), every URL queued is kept there until the hub takes it.
    """

    def __init__(self, hub: str, *, attempts: int = 12, first_delay: float = 1.0, max_delay: float = 300.0,
                 timeout: float = 5.0, post: Callable[[str, str, float], None] = post_publish,
                 clock: Callable[[], float] = time.monotonic, background: bool = True, senders: int = SENDERS):
        self.hub, self.attempts, self.first_delay, self.max_delay, self.timeout = hub, attempts, first_delay, max_delay, timeout
        self.post, self.clock, self.background, self.senders = post, clock, background, senders
        self._due: list[tuple[float, int, str]] = []  # (when, attempt, url), a heap
        self._pending: set[str] = set()
        self._sending = 0  # pings on the wire right now
        self._closed = False
        self._wake = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._keep: Unsent | None = None
        self._to_keep: list[str] = []  # queued, not yet written to _keep (by a sender: a refresh never waits for it)
        self._to_drop: list[str] = []  # taken by the hub (or refused for good), not yet removed from _keep
        self._keeping = threading.Lock()  # one sender at a time takes and writes those two, so they reach _keep in order
        self.sent = 0  # pings the hub accepted (for tests)
        self.given_up = 0  # URLs whose `attempts` were spent (tried again every AGAIN_AFTER) or refused for good

    def keep_in(self, keep: "Unsent | str | Path") -> None:
        """Keep every URL queued in `keep` (an Unsent, or the state file's path) until the hub takes it, and queue those
        it holds from before (a process that stopped, a build whose hub was down)."""
        keep = keep if isinstance(keep, Unsent) else Unsent(keep)
        with self._wake:
            self._keep = keep
            self._to_keep.extend(self._pending)  # queued before: kept too
        self.notify(keep.all())

    def notify(self, urls: Iterable[str]) -> None:
        """Queue a publish ping for each URL not already queued; returns at once."""
        with self._wake:
            if self._closed:
                return
            for url in urls:
                if url not in self._pending:
                    self._pending.add(url)
                    heapq.heappush(self._due, (self.clock(), 0, url))
                    if self._keep is not None:
                        self._to_keep.append(url)
                    if url in self._to_drop:  # taken a moment ago, queued again: kept for this ping
                        self._to_drop.remove(url)
            if self.background:
                while len(self._threads) < min(self.senders, len(self._due) + self._sending):
                    thread = threading.Thread(target=self._run, name="websub", daemon=True)
                    self._threads.append(thread)
                    thread.start()
            self._wake.notify_all()

    def send_due(self) -> float | None:
        """Send every ping that is due now; returns the seconds until the next one, or None when none is queued."""
        while True:
            self._write_kept()  # what was queued is kept before it is sent; what the hub took is forgotten
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
                self._write_kept()  # before it counts as done: drain() waits for the store to know
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
        """Stop sending: drop what is queued (kept, when keep_in was given, for the next start) and wait for the pings
        on the wire, if any, and the threads to end."""
        with self._wake:
            self._closed = True
            dropped = len(self._due)
            self._due.clear()
            self._pending.clear()
            keep = self._keep
            self._wake.notify_all()
        self._write_kept()
        if dropped:
            log.warning("WebSub: %d publish pings to %s not sent (stopping)%s", dropped, self.hub,
                        "; kept in the state file, the next start sends them" if keep is not None else "")
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=self.timeout + 1)

    def _write_kept(self) -> None:
        """Write what was queued to _keep, and remove what the hub took (unless queued again since), in that order."""
        with self._keeping:
            with self._wake:  # a URL queued again left _to_drop then (notify): none is both kept and dropped here
                keep, adds, drops = self._keep, self._to_keep, self._to_drop
                self._to_keep, self._to_drop = [], []
            if keep is not None:
                keep.add(adds)
                keep.remove(drops)

    def _send(self, url: str, attempt: int) -> None:
        try:
            self.post(self.hub, url, self.timeout)
        except HubRefused as exc:
            log.error("WebSub hub %s refused %s for good (%s): not sent again", self.hub, url, exc)
            with self._wake:
                self.given_up += 1
                if url not in self._pending:
                    self._to_drop.append(url)
            return
        except Exception as exc:  # noqa: BLE001 - any failure is one more attempt: a URL taken off the queue is never lost
            if not isinstance(exc, (OSError, ValueError, http.client.HTTPException)):
                log.exception("WebSub: sending %s to %s failed unexpectedly", url, self.hub)
            spent = attempt + 1 >= self.attempts
            if attempt + 1 == self.attempts:
                log.error("WebSub hub %s refused %s %d times: trying again every %.0f s%s: %s", self.hub, url, attempt + 1,
                          AGAIN_AFTER, " and at the next start (kept in the state file)" if self._keep is not None else "", exc)
            elif not spent:
                log.warning("WebSub hub %s: %s (retrying %s in %.0f s)", self.hub, exc, url,
                            min(self.first_delay * 2 ** attempt, self.max_delay))
            delay = AGAIN_AFTER if spent else min(self.first_delay * 2 ** attempt, self.max_delay)
            with self._wake:
                self.given_up += attempt + 1 == self.attempts
                if url not in self._pending and not self._closed:  # a newer ping for the same URL supersedes the retry
                    self._pending.add(url)
                    heapq.heappush(self._due, (self.clock() + delay, min(attempt + 1, self.attempts), url))
                    if self._keep is not None:  # on the wire as keep_in came: kept now
                        self._to_keep.append(url)
            return
        with self._wake:
            self.sent += 1
            if url not in self._pending:  # queued again while it was on the wire: kept until that one goes
                self._to_drop.append(url)

    def _run(self) -> None:
        while True:
            try:
                self.send_due()
            except Exception:  # noqa: BLE001 - a sender that died sent nothing more for the life of the process
                log.exception("WebSub: a sender failed; it goes on")
                time.sleep(1)
            with self._wake:
                if self._closed:
                    return
                wait = self._due[0][0] - self.clock() if self._due else None
                if wait is None or wait > 0:
                    self._wake.wait(timeout=wait)

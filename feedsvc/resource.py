"""One published resource (Rendered): its bytes, media type and validators (ETag, Last-Modified), and its
gzip and brotli forms, each made once.

Neutral: the builder renders resources (building/), the store keeps and returns them (store.py), a serving
process answers with them (serving/).
"""
from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Callable

import brotli
from zlib_ng import zlib_ng


def _gzip(body: bytes) -> bytes:
    """A gzip member (RFC 1952) of body, level 6, with no name and time 0, so the same bytes every time: deflate by
    zlib-ng, which lets go of the GIL as zlib does. On the 10,000-article benchmark's precompressed files (160 files,
    29 MB: feeds' first pages, pages, sitemaps) it took 0.37 s of CPU for 19.8% of the bytes, where zlib's level 6 took
    0.94 s for 20.2% (each file within 1% of zlib's; zlib's level 9: 2.6 s for 19.6%)."""
    return zlib_ng.compress(body, 6, wbits=31)  # 16 + 15: a gzip header and trailer, the largest window


# Each content coding's function, made once per body: what the build store keeps, a serving process makes on a request
# and the export writes beside a file (building/precompress.py). gzip level 6 and brotli quality 5: within 1-3% of the
# smallest output at a fraction of the time (a 305 kB RSS feed: gzip 4.5 ms; brotli 10 ms, 36 at quality 9), which
# matters when a refresh renders many feeds.
CODINGS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": _gzip,
    "br": lambda body: brotli.compress(body, quality=5),
}


class Rendered:
    """One published resource: bytes, media type, validators, and its compressed forms made once."""

    __slots__ = ("_body", "media_type", "last_modified", "etag", "max_age", "headers", "http_date", "validators", "_coded", "_lock",
                 "_stored", "_load")

    def __init__(self, body: bytes, media_type: str, last_modified: datetime, *, precompress: bool = True,
                 max_age: int | None = None, headers: tuple[tuple[str, str], ...] = (), digest: str | None = None):
        """digest: the body's SHA-256 (hex) when the caller has made it already (the renderer hashes what it
        renders to date it): a second hash of a 1.3 MB sitemap or a feed is a share of a one-file refresh."""
        self._body: bytes | None = body
        self._describe('"' + (digest or hashlib.sha256(body).hexdigest())[:32] + '"', media_type, last_modified, max_age, headers)
        if precompress:  # feeds: compressed when rendered, never on a request
            for name in CODINGS:
                self.coded(name)

    @classmethod
    def stored(cls, etag: str, media_type: str, last_modified: datetime, *, max_age: int | None,
               headers: tuple[tuple[str, str], ...], load: Callable[[str], bytes | None]) -> "Rendered":
        """A resource as the build store holds it, its validators known at once: its bytes and each coding are read
        with load("body" / "gzip" / "br") when first asked for, then kept. A 304 reads none of them; a client that
        takes gzip, only that. load returns None for a coding not stored yet (then it is made here), and raises
        LookupError once the store holds other bytes at this path (a build replaced them meanwhile)."""
        res = cls.__new__(cls)
        res._body = None
        res._describe(etag, media_type, last_modified, max_age, headers)
        res._load = load
        return res

    def _describe(self, etag: str, media_type: str, last_modified: datetime, max_age: int | None,
                  headers: tuple[tuple[str, str], ...]) -> None:
        self._stored: Callable[[], "Rendered | None"] | None = None
        self._load: Callable[[str], bytes | None] | None = None
        self.media_type = media_type
        self.last_modified = last_modified
        self.max_age = max_age  # None: the site's refresh interval
        self.headers = headers  # extra response headers, e.g. WebSub's Link
        self.etag = etag
        self.http_date = http_date(last_modified)  # Last-Modified, formatted once
        # If-None-Match values that match outright: the ETag of each coding, strong or weak.
        tags = [etag] + [etag[:-1] + "-" + coding + '"' for coding in CODINGS]
        self.validators = frozenset(tags + ["W/" + tag for tag in tags])
        self._coded: dict[str, bytes] = {}
        self._lock = threading.Lock()

    @property
    def body(self) -> bytes:
        """The bytes; read from the build store on first use (stored()), or every time once released."""
        body = self._body
        if body is None:
            if self._load is None:
                return self._from_store().body
            body = self._body = self._load("body")  # two threads at once read the same bytes: either is kept
        return body

    def loaded(self, coding: str | None) -> bool:
        """Whether the bytes in this coding (None: as they are) are in memory, made or read, so no file is touched."""
        return self._body is not None if coding is None else coding in self._coded

    def release(self, stored: Callable[[], "Rendered | None"]) -> None:
        """Drop the bytes and their codings, which the build store now holds: `stored` reads them back from it.

        The builder, the one process that writes the store (a lock says so), keeps no second copy of a thousand
        committed feeds (34 MiB at 10,000 articles): a refresh reuses an unchanged Rendered by its key and
        validators, and never needs its bytes again.
        """
        with self._lock:
            self._stored, self._coded, self._body = stored, {}, None

    def _from_store(self) -> "Rendered":
        found = self._stored() if self._stored is not None else None
        if found is None or found.etag != self.etag:  # the one writer replaced it: whoever still holds this is stale
            raise LookupError(f"{self!r} was released and the build store no longer holds these bytes")
        return found

    def coded(self, coding: str) -> bytes:
        """The body in a content coding ("gzip" or "br"), made on first use and kept (read back once released)."""
        found = self._coded.get(coding)
        if found is None:
            if self._body is None and self._load is None:
                return self._from_store().coded(coding)
            with self._lock:
                found = self._coded.get(coding)
                if found is None:
                    found = self._load(coding) if self._load is not None else None
                    self._coded[coding] = found = found if found is not None else CODINGS[coding](self.body)
        return found

    def __repr__(self) -> str:
        size = f"{len(self._body)} bytes" if self._body is not None else "in the store" if self._load else "released"
        return f"Rendered({self.media_type}, {size}, {self.etag})"


def http_date(moment: datetime) -> str:
    """An HTTP date (RFC 9110 §5.6.7: "Sun, 06 Nov 1994 08:49:37 GMT") of a moment, naive ones taken as UTC: what
    werkzeug.http.http_date gives, without importing werkzeug (11 MiB) into the builder, which dates every resource."""
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return format_datetime(moment, usegmt=True)


def code_beside(resources: list[Rendered]) -> None:
    """Start making each coding of these resources on a thread of its own, the largest first, and return: zlib and
    brotli let go of the GIL, so another core makes them while this thread goes on. Whoever asks for a coding before
    it is made waits for it (coded() holds the resource's lock while it makes one), never makes it twice."""
    largest = sorted(resources, key=lambda res: len(res.body), reverse=True)
    for coding in CODINGS:
        threading.Thread(target=_code, args=(largest, coding), name=f"code-{coding}", daemon=True).start()


def _code(resources: list[Rendered], coding: str) -> None:
    for res in resources:
        res.coded(coding)


def compress_all(resources: list[Rendered]) -> None:
    """Make every content coding of these resources now (run in a thread right after a refresh)."""
    for res in resources:
        for coding in CODINGS:
            res.coded(coding)

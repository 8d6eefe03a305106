"""One published resource (Rendered): its bytes, media type and validators (ETag, Last-Modified), and its
gzip and brotli forms, each made once.

Neutral: the builder renders resources (building/), the store keeps and returns them (store.py), a serving
process answers with them (serving/).
"""
from __future__ import annotations

import gzip
import hashlib
import threading
from datetime import datetime
from typing import Callable

import brotli
from werkzeug.http import http_date

# Level 6 and quality 5: within 2% of the smallest output at a quarter of the time (a 375 kB feed:
# gzip 13 ms instead of 41, brotli 10 ms instead of 36), which matters when a refresh renders many feeds.
_CODINGS = {
    "gzip": lambda body: gzip.compress(body, compresslevel=6, mtime=0),  # mtime=0: same bytes every time
    "br": lambda body: brotli.compress(body, quality=5),
}


class Rendered:
    """One published resource: bytes, media type, validators, and its compressed forms made once."""

    __slots__ = ("_body", "media_type", "last_modified", "etag", "max_age", "headers", "http_date", "validators", "_coded", "_lock",
                 "_stored")

    def __init__(self, body: bytes, media_type: str, last_modified: datetime, *, precompress: bool = True,
                 max_age: int | None = None, headers: tuple[tuple[str, str], ...] = ()):
        self._body: bytes | None = body
        self._stored: Callable[[], "Rendered | None"] | None = None
        self.media_type = media_type
        self.last_modified = last_modified
        self.max_age = max_age  # None: the site's refresh interval
        self.headers = headers  # extra response headers, e.g. WebSub's Link
        self.etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        self.http_date = http_date(last_modified)  # Last-Modified, formatted once
        # If-None-Match values that match outright: the ETag of each coding, strong or weak.
        tags = [self.etag] + [self.etag[:-1] + "-" + coding + '"' for coding in _CODINGS]
        self.validators = frozenset(tags + ["W/" + tag for tag in tags])
        self._coded: dict[str, bytes] = {}
        self._lock = threading.Lock()
        if precompress:  # feeds: compressed when rendered, never on a request
            for name in _CODINGS:
                self.coded(name)

    @property
    def body(self) -> bytes:
        """The bytes; once released, read back from the build store."""
        body = self._body
        return body if body is not None else self._from_store().body

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
            if self._body is None:
                return self._from_store().coded(coding)
            with self._lock:
                found = self._coded.get(coding)
                if found is None:
                    found = self._coded[coding] = _CODINGS[coding](self.body)
        return found

    def __repr__(self) -> str:
        size = "released" if self._body is None else f"{len(self._body)} bytes"
        return f"Rendered({self.media_type}, {size}, {self.etag})"


def compress_all(resources: list[Rendered]) -> None:
    """Make every content coding of these resources now (run in a thread right after a refresh)."""
    for res in resources:
        for coding in _CODINGS:
            res.coded(coding)

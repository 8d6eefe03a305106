"""Archive pages (RFC 5005 §3, ?page=N) in the static export: which of them a build must touch, and how to
touch them without rendering again what did not change.

An archive page's items are counted from the oldest, so they rarely change, and each page carries a date of its
own (its Last-Modified, and the RSS <lastBuildDate> or Atom <updated>: versions.py), which moves only when what it
shows does. So each page has a key made of what its bytes are made from apart from that date (the settings, the
listing's head, its page number and place, and each of its items as the build store made it). Same key, new date
(archive pages dated by their listing before, in a state store kept from older code): the page on disk is redated
in place (JSON Feed has no date of its own: only its time moves). Archive pages get no coded form
(precompress.py): nginx compresses the few asked for as they are asked.
"""
from __future__ import annotations

import hashlib
from datetime import datetime

from ..formats.content import redate, rfc2822

# The date element each format carries for the whole document, and how it writes a date there (formats/*.py).
DATES = {"rss": ("lastBuildDate", rfc2822), "atom": ("updated", datetime.isoformat)}


def page_key(shape: str, head: str, made_by: str, size: int, digest: str) -> str:
    """An archive page's key from the digest the state store dated it by (versions.py: its items' IDs, content and
    dates, its number and links), with what that digest leaves out: the code and settings that made the store's rows."""
    return hashlib.sha256(f"{shape}\0{head}\0{made_by}\0{size}\0{digest}".encode()).hexdigest()[:32]


def redated(fmt: str, body: bytes, before: datetime, after: datetime) -> bytes:
    """The page's bytes with its own date moved from `before` to `after` (formats' redate: the first element)."""
    if fmt not in DATES:
        return body
    tag, write = DATES[fmt]
    return redate(body, tag, write(before), write(after))


def redated_head(fmt: str, body, before: datetime, after: datetime) -> tuple[bytes, int]:
    """redated() in two parts, for a page mapped from its file (mmap, or bytes) and never copied whole: the new bytes
    up to and with its own date element, and where in `body` the rest (unchanged) begins. ValueError: no such date."""
    tag, write = DATES[fmt]
    old = f"<{tag}>{write(before)}</{tag}>".encode()
    at = body.find(old)  # the document's own date comes before any item's (formats/content.py redate)
    if at < 0:
        raise ValueError(f"no <{tag}>{write(before)}</{tag}> in the page")
    return body[:at] + f"<{tag}>{write(after)}</{tag}>".encode(), at + len(old)

"""Archive pages (RFC 5005 §3, ?page=N) in the static export: which of them a build must touch, and how to
touch them without rendering or compressing again what did not change.

An archive page's items are counted from the oldest, so they rarely change; but every page of a listing
carries the listing's date (its Last-Modified, and the RSS <lastBuildDate> or Atom <updated>), which moves
whenever the listing does — one new article moves every page of the site-wide feed. So each page has a key
made of what its bytes are made from apart from that date (the settings, the listing's head, its page
number and place, and each of its items as the build store made it). Same key, new date: the page on disk
is redated in place (JSON Feed has no date of its own: only its time moves), and its gzip form spliced —
written as two deflate streams, the head up to the date and the rest, so a new date compresses a few
hundred bytes and copies the rest (RFC 1951 §3.2.3: a stream is a sequence of blocks; RFC 1952 §2.3).
"""
from __future__ import annotations

import hashlib
import struct
import zlib
from datetime import datetime

from lxml import etree  # noqa: F401  (feedgen.util uses lxml.etree without importing it)
from feedgen.util import formatRFC2822

from ..formats.content import redate

# gzip level of archive pages: at 10,000 articles (386 KiB a page) level 4 makes 23.7% of the body in 3.9 ms of
# CPU, level 6 21.9% in 9.2 ms, level 1 28.4% in 2.6 ms (README "Static export"). A page is compressed once
# for its items' lifetime (a new date is spliced in), so the knee of the curve, not the fastest.
LEVEL = 4
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, mtime 0, OS unknown
# The date element each format carries for the whole document, and how it writes a date there (formats/*.py).
DATES = {"rss": ("lastBuildDate", formatRFC2822), "atom": ("updated", datetime.isoformat)}


def page_items(total: int, size: int, page: int) -> tuple[int, int, bool]:
    """(start, end, complete): the slice of a listing's items (newest first) that archive page `page` holds,
    as feeds.page_feed cuts it, and whether the page is complete."""
    chunk = page - 2  # 0 = the oldest archive chunk
    older = total - size
    return total - min((chunk + 1) * size, older), total - chunk * size, (chunk + 1) * size <= older


def page_keys(shape: str, head: str, ids: list[str], made: dict[str, str], size: int, pages: int) -> dict[int, str]:
    """Each archive page's key: everything its bytes are made from except the listing's date."""
    keys = {}
    for page in range(2, pages + 1):
        start, end, complete = page_items(len(ids), size, page)
        digest = hashlib.sha256(f"{shape}\0{head}\0{size} {page} {page == pages} {complete}".encode())
        for id_ in ids[start:end]:
            digest.update(f"\0{id_}\0{made.get(id_)}".encode())
        keys[page] = digest.hexdigest()[:32]
    return keys


def date_end(fmt: str, body: bytes) -> int:
    """Where the document's own date element ends (0 for a format without one): the head/rest split."""
    if fmt not in DATES:
        return 0
    at = body.find(f"</{DATES[fmt][0]}>".encode())
    return 0 if at < 0 else at + len(DATES[fmt][0]) + 3


def redated(fmt: str, body: bytes, before: datetime, after: datetime) -> bytes:
    """The page's bytes with its own date moved from `before` to `after` (formats' redate: the first element)."""
    if fmt not in DATES:
        return body
    tag, write = DATES[fmt]
    return redate(body, tag, write(before), write(after))


def gzip_split(body: bytes, split: int, level: int = LEVEL) -> tuple[bytes, int]:
    """The gzip form of body as two deflate streams, cut at `split`; returns it and where the second begins."""
    head = _deflated_head(body[:split], level)
    rest = zlib.compressobj(level, zlib.DEFLATED, -15)
    return _GZIP_HEADER + head + rest.compress(body[split:]) + rest.flush() + _trailer(body), len(_GZIP_HEADER) + len(head)


def gzip_respliced(coded: bytes, rest_at: int, body: bytes, split: int, level: int = LEVEL) -> tuple[bytes, int]:
    """gzip_split(body, split) of a body whose part from `split` on is the one `coded` holds from `rest_at`:
    only the head is compressed again."""
    head = _deflated_head(body[:split], level)
    return _GZIP_HEADER + head + coded[rest_at:-8] + _trailer(body), len(_GZIP_HEADER) + len(head)


def _deflated_head(data: bytes, level: int) -> bytes:
    # A full flush ends the head's blocks on a byte boundary, and the rest never refers back into it.
    head = zlib.compressobj(level, zlib.DEFLATED, -15)
    return head.compress(data) + head.flush(zlib.Z_FULL_FLUSH)


def _trailer(body: bytes) -> bytes:
    return struct.pack("<II", zlib.crc32(body), len(body) & 0xFFFFFFFF)

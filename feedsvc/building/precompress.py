"""Which exported files get a .gz and a .br beside them, and at which level: the forms nginx's gzip_static
and brotli_static serve (deploy/nginx.conf), made once per bytes and never again for the same bytes.

Only what is asked for often pays for its coded forms: feeds' first pages, the site's pages, the feeds'
pages for browsers, the OPML, the sitemaps and the stylesheets, whose forms the build store already keeps.
Article pages and archive pages get none (cold: each is asked for seldom, and a whole build would
compress 10,000 article pages twice and 450 MB of archive pages): nginx gzips them on the fly at level 1
when asked (deploy/nginx.conf `gzip on`), 0.08 ms of CPU for a 7 KiB article page, 2.5 ms for a 390 KiB
archive page (README "Static export").

Measured on the 10,000-article benchmark export (README "Static export"): gzip level 6 and brotli quality 5
are within 1–3% of the smallest output at a fraction of the time (brotli 9 costs 10–20× more for 1–2%), and
they are the levels the build store already keeps for feeds and pages (render.py), so those are written as
stored. A form is written only where it pays: at most PAYS of the body (favicon.ico compresses by 0.1%:
nginx then sends the file itself), and brotli only where it is smaller than gzip.
"""
from __future__ import annotations

from ..resource import CODINGS
from ..urls import archive_feed, is_article

PAYS = 0.9  # a coded form at most this share of the body, or nginx sends the body
SUFFIXES = {"gzip": ".gz", "br": ".br"}  # the names gzip_static and brotli_static look for


def precompressed(path: str) -> bool:
    """Whether the file of this URL path gets coded forms: not an article page nor an archive page (?page=N)."""
    return not is_article(path) and archive_feed(path) is None


def coded_forms(body: bytes, stored: dict[str, bytes | None] | None = None) -> dict[str, bytes]:
    """The forms worth writing beside a file: coding → bytes, taken from `stored` where the store has them."""
    stored = stored or {}
    out = {}
    for coding, make in CODINGS.items():  # the store's own codings: a stored form is written as it is
        data = stored.get(coding)
        if data is None:
            data = make(body)
        out[coding] = bytes(data)
    return chosen(len(body), out)


def chosen(size: int, forms: dict[str, bytes]) -> dict[str, bytes]:
    """Of these forms, the ones that pay: at most PAYS of the body, and brotli only when smaller than gzip."""
    out = {coding: data for coding, data in forms.items() if len(data) <= PAYS * size}
    if "br" in out and "gzip" in out and len(out["br"]) >= len(out["gzip"]):
        del out["br"]
    return out

"""A feed page rendered when asked for — an archive page, a delta, a partner's view — from its items'
fragments (formats/fragments.py), dated by its listing, and kept by content.

Neutral: building/render.py's Renderer renders every first page ahead of time on top of this; a serving
process renders what is asked for by query with it (serving/variants.py).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from ..model import Feed, Site
from ..resource import Rendered
from ..urls import feed_url
from . import FORMATS

if TYPE_CHECKING:
    from .fragments import Fragments

VARIANT_BYTES = 64 << 20  # archive pages, deltas and partner views kept, with their compressed forms

class FeedRenderer:
    """Renders feed pages on demand, keeping the last ones (pages, deltas, partner views) by content."""

    def __init__(self, site: Site, archive_max_age: int = 86400, variants: int = 512, fragments: int | None = None):
        self.site = site
        self.archive_max_age = archive_max_age
        self._variants: OrderedDict[tuple[str, Feed], Rendered] = OrderedDict()  # pages, deltas, partner views
        self._variants_max = variants
        self._variants_bytes = 0  # their bodies and compressed forms
        self._variants_lock = threading.Lock()
        self._fragments_bytes = fragments
        self._fragments: Fragments | None = None

    @property
    def fragments(self) -> "Fragments":
        """Each item's bytes per format, shared by every feed it is in; `fragments` bytes at most (default: BUDGET).
        Made with the first feed rendered: fragments.py loads feedgen and lxml, which a worker that only answers
        from the store never needs."""
        if self._fragments is None:
            from .fragments import Fragments

            self._fragments = Fragments(self.site) if self._fragments_bytes is None else Fragments(self.site, self._fragments_bytes)
        return self._fragments

    def _feed_options(self, fmt: str, feed: Feed) -> dict:
        headers = ()
        if feed.hub:  # WebSub discovery by HTTP header too: https://www.w3.org/TR/websub/#discovery
            headers = (("Link", f'<{feed.hub}>; rel="hub", <{feed_url(self.site, feed, fmt)}>; rel="self"'),)
        return {"max_age": self.archive_max_age if feed.archive else None, "headers": headers}


    def feed(self, fmt: str, feed: Feed) -> Rendered:
        """A feed page rendered on demand (archive pages, deltas, partners' views), cached by content."""
        key = (fmt, feed)
        with self._variants_lock:
            found = self._variants.get(key)
            if found is not None:
                self._variants.move_to_end(key)
                return found
        found = self._render_feed(fmt, feed)
        with self._variants_lock:
            if key not in self._variants:
                self._variants[key] = found
                self._variants_bytes += _size(found)
            # At most so many, and so many bytes: 512 full-text archive pages at 10,000 articles are 280 MiB.
            while len(self._variants) > 1 and (len(self._variants) > self._variants_max or self._variants_bytes > VARIANT_BYTES):
                self._variants_bytes -= _size(self._variants.popitem(last=False)[1])
        return found

    def _render_feed(self, fmt: str, feed: Feed) -> Rendered:
        """A feed rendered with the date it carries (a page, delta or partner view: its listing's time)."""
        return Rendered(self.fragments.assemble(fmt, feed), FORMATS[fmt].media_type, feed.updated, **self._feed_options(fmt, feed))


def _size(res: Rendered) -> int:
    return len(res.body) + sum(len(coded) for coded in res._coded.values())

"""The feed formats, one table: FORMATS maps a format key (also the file extension) to its path suffix, media
type, the name people read, whether any origin may fetch it, and its writer. The routes, the pages' links,
the previews, the export, WebSub and the metrics derive from it; no other module lists the formats.

The writers are imported when a feed is first rendered or dated, not with the table: a serving process that
only answers from the build store never loads feedgen and lxml.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Callable

from ..model import Feed, Site
from ..urls import FEED_XSL, STATIC

RSS_TYPE, ATOM_TYPE, JSON_FEED_TYPE, OPML_TYPE = "application/rss+xml", "application/atom+xml", "application/feed+json", "text/x-opml"


@dataclass(frozen=True)
class Format:
    """A feed format: its key, path suffix, media type, label, CORS, the function that renders a feed to bytes,
    and the one that sets the date of a feed rendered UNDATED (formats/content.py)."""

    key: str
    suffix: str  # what a feed's path ends with: feed.rss, category/<slug>/feed.rss
    media_type: str
    label: str  # the name people read, on the pages' subscribe links
    cors: bool  # any origin may fetch it (feed readers that run in a browser)
    render: Callable[[Feed, Site], bytes]
    date: Callable[..., bytes]  # (body, when) → dated; (body, when, True) → UNDATED again


def _writer(module: str, name: str) -> Callable:
    """formats.<module>.<name>, imported on its first call."""
    found: list[Callable] = []

    def call(*args):
        if not found:
            found.append(getattr(import_module(f"{__name__}.{module}"), name))
        return found[0](*args)

    call.__name__ = name
    return call


FORMATS = {
    "rss": Format("rss", ".rss", RSS_TYPE, "RSS", True, _writer("rss", "render_rss"), _writer("rss", "date_rss")),
    "atom": Format("atom", ".atom", ATOM_TYPE, "Atom", True, _writer("atom", "render_atom"), _writer("atom", "date_atom")),
    "json": Format("json", ".json", JSON_FEED_TYPE, "JSON Feed", True, _writer("jsonfeed", "render_json_feed"),
                   _writer("jsonfeed", "date_json_feed")),
}
# What any origin may fetch: the feeds that say so, the OPML list of them and the stylesheet they name.
CORS_TYPES = frozenset([f.media_type for f in FORMATS.values() if f.cors] + [OPML_TYPE, STATIC[FEED_XSL]])

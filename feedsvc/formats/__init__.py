"""The feed formats, one table: FORMATS maps a format key (also the file extension) to its path suffix, media
type, the name people read, whether any origin may fetch it, and its writer. The routes, the pages' links,
the previews, the export, WebSub and the metrics derive from it; no other module lists the formats.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from ..model import Feed, Site
from . import atom, jsonfeed, opml, rss


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
    date: Callable[[bytes, datetime], bytes]


FORMATS = {
    "rss": Format("rss", ".rss", rss.MEDIA_TYPE, "RSS", True, rss.render_rss, rss.date_rss),
    "atom": Format("atom", ".atom", atom.MEDIA_TYPE, "Atom", True, atom.render_atom, atom.date_atom),
    "json": Format("json", ".json", jsonfeed.MEDIA_TYPE, "JSON Feed", True, jsonfeed.render_json_feed, jsonfeed.date_json_feed),
}
# What any origin may fetch: the feeds that say so, the OPML list of them and the stylesheet they name.
CORS_TYPES = frozenset([f.media_type for f in FORMATS.values() if f.cors] + [opml.MEDIA_TYPE, "text/xsl"])

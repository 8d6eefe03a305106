"""How each format is written. FORMATS maps a format key (also the file extension) to its writer."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from ..model import Feed, Site
from . import atom, jsonfeed, rss


@dataclass(frozen=True)
class Format:
    """A feed format: its key, media type, the function that renders a feed to bytes, and the one that
    sets the date of a feed rendered UNDATED (formats/content.py)."""

    key: str
    media_type: str
    render: Callable[[Feed, Site], bytes]
    date: Callable[[bytes, datetime], bytes]


FORMATS = {
    "rss": Format("rss", rss.MEDIA_TYPE, rss.render_rss, rss.date_rss),
    "atom": Format("atom", atom.MEDIA_TYPE, atom.render_atom, atom.date_atom),
    "json": Format("json", jsonfeed.MEDIA_TYPE, jsonfeed.render_json_feed, jsonfeed.date_json_feed),
}

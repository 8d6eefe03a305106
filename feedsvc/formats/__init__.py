"""How each format is written. FORMATS maps a format key (also the file extension) to its writer."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..model import Feed, Site
from . import atom, jsonfeed, rss


@dataclass(frozen=True)
class Format:
    """A feed format: its key, media type and the function that renders a feed to bytes."""

    key: str
    media_type: str
    render: Callable[[Feed, Site], bytes]


FORMATS = {
    "rss": Format("rss", rss.MEDIA_TYPE, rss.render_rss),
    "atom": Format("atom", atom.MEDIA_TYPE, atom.render_atom),
    "json": Format("json", jsonfeed.MEDIA_TYPE, jsonfeed.render_json_feed),
}

"""Feeds assembled from per-item fragments: each item's bytes are rendered once per (article, format, content
mode, whether it names its own language) and kept; a feed is its format's head, its items' bytes, its foot.

Every piece is cut from the formats' own renderings: the head and foot from the feed rendered with no items (feedgen
for RSS and Atom, formats/jsonfeed.py for JSON Feed), split where the items go. An RSS or Atom item is feedgen's
rendering of an item of its shape, cut where its values go, with the article's values written in (formats/templates.py);
feedgen renders the few items whose values that does not cover, in a throwaway feed they are cut out of. The one edit
made to an item's bytes is its own language, named or not (an Atom entry's xml:lang attribute, a JSON item's last
member, each as its serialiser writes it: Pieces.relang), so that a feed in another language reuses an item. The
whole-feed renderers (FORMATS[fmt].render) stay the definition of the bytes: tests/test_fragments.py proves, for random
article sets and every paging, delta and partner option, that assembled and whole feeds are byte-identical.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from functools import lru_cache
from itertools import chain, repeat
from dataclasses import dataclass, replace
from typing import Callable, Sequence

from lxml import etree

from ..model import UNDATED, Article, Feed, Site
from . import atom, jsonfeed, rss
from .content import listed_language
from .templates import ItemCuts

HEADS_KEPT = 1024  # heads of recently assembled feeds (each a few hundred bytes)
BUDGET = 48 << 20  # bytes of items kept: every first page's at 10,000 articles (23 MiB) and as much again


class FragmentError(Exception):
    """A format's rendering no longer splits where its items go: formats/fragments.py needs the new shape."""


@dataclass(frozen=True)
class Pieces:
    """How one format's rendering is cut: the head and foot of a feed, and its items' bytes."""

    head_foot: Callable[[Feed, Site], tuple[bytes, bytes]]
    items: Callable[[Sequence[Article], Site, str, bool], list[bytes]]
    join: bytes  # between two items
    own_language: bool  # whether an item's bytes depend on its language differing from the feed's
    # The feed rendered whole and cut into (head, items, foot), or None where it cannot be cut: cheaper than its head
    # and its items one by one when most items are not made yet (JSON Feed: one encoder call for them all).
    whole: Callable[[Feed, Site], tuple[bytes, list[bytes], bytes] | None] | None = None
    # A feed's bytes as rendered (dated or not) cut into its items' bytes, or None where they do not cut so.
    cut: Callable[[bytes, Feed, Site], list[bytes] | None] | None = None
    # An item's bytes naming its own language (own) from the bytes of the same item that do not, or the other way;
    # None where they do not differ so. A category's page in another language than the site-wide page's takes
    # that page's items instead of rendering them again (a quarter of a whole export's items).
    relang: Callable[[bytes, str, bool], bytes | None] | None = None
    # An XML format's items filled into feedgen's cut of their shape (formats/templates.py), given an item's values.
    cuts: ItemCuts | None = None


def _xml_pieces(module, open_tag: bytes, close_tag: bytes) -> Pieces:
    """Pieces of a feedgen format: `module` has channel(), item_values(), put_item(), ITEM_SLOTS, serialise() and FOOT."""
    foot = module.FOOT

    def head_foot(feed: Feed, site: Site) -> tuple[bytes, bytes]:
        body = module.serialise(module.channel(feed, site))
        if not body.endswith(foot):
            raise FragmentError(f"an empty {module.__name__} feed does not end with {foot!r}")
        return body[:-len(foot)], foot

    throwaway: dict[Site, bytes] = {}  # the head of the feed items are rendered in, per site

    def rendered(values: Sequence[dict], site: Site) -> list[bytes]:
        """feedgen's items of these values (module.item_values), cut out of one throwaway feed holding them."""
        head = throwaway.get(site)
        if head is None:
            head = throwaway[site] = head_foot(_THROWAWAY, site)[0]
        fg = module.channel(_THROWAWAY, site)
        for each in values:
            module.put_item(fg, each)
        body = module.serialise(fg)
        if not (body.startswith(head) and body.endswith(foot)):
            raise FragmentError(f"{module.__name__} renders items in a feed whose head or foot moved")
        parts = split(body[len(head):len(body) - len(foot)], len(values))
        if parts is None:
            return [piece for each in values for piece in rendered([each], site)]
        return parts

    # Items filled into feedgen's cut of their shape (formats/templates.py); feedgen makes the rest itself.
    cuts = ItemCuts(module.ITEM_SLOTS, lambda values: rendered([values], _THROWAWAY_SITE)[0], module.ITEM_DEFAULTED)

    def items(articles: Sequence[Article], site: Site, language: str, full_text: bool) -> list[bytes]:
        values = [module.item_values(article, site, language, full_text) for article in articles]
        made = [cuts.item(each) for each in values]
        left = [at for at, piece in enumerate(made) if piece is None]
        if left:
            for at, piece in zip(left, rendered([values[at] for at in left], site)):
                made[at] = piece
        return made

    def split(middle: bytes, count: int) -> list[bytes] | None:
        """The items' bytes between a head and a foot, each with its indentation and final new line."""
        if count == 1:
            return [middle]
        # The separator has no prefix that is also its suffix, so its occurrences never overlap: exactly
        # one fewer than the items means none sits inside an item (RSS content is CDATA: it could).
        parts = middle.split(close_tag + open_tag)
        if len(parts) != count:
            return None
        last = count - 1
        return [(open_tag if i else b"") + part + (close_tag if i < last else b"") for i, part in enumerate(parts)]

    def cut(body: bytes, feed: Feed, site: Site) -> list[bytes] | None:
        # Text and attribute values in the head are escaped, so the first item's start tag is the first
        # "<item>" (or "<entry>") at an item's indentation; the head's own date (dated feeds) comes before it.
        at = body.find(b"\n" + open_tag) + 1
        if not feed.items or at <= 0 or not body.endswith(foot):
            return None
        return split(body[at:len(body) - len(foot)], len(feed.items))

    # No `whole`: items from their cuts cost less than feedgen's whole feed, and the head is kept (Fragments._head_foot).
    return Pieces(head_foot, items, b"", own_language=module is atom, cut=cut,
                  relang=_atom_relang if module is atom else None, cuts=cuts)


def _atom_relang(piece: bytes, language: str, own: bool) -> bytes | None:
    """An Atom entry with its xml:lang attribute (own) or without: the attribute is the only one of the start tag
    (atom._EntryExtras sets it), as lxml writes it, naming the language as atom.item_values does."""
    bare, named = b"  <entry>", b"  <entry" + _xml_lang(listed_language(language)) + b">"
    have, want = (bare, named) if own else (named, bare)
    return want + piece[len(have):] if piece.startswith(have) else None


@lru_cache(maxsize=256)
def _xml_lang(language: str) -> bytes:
    """ xml:lang="…" as lxml writes the attribute (its escaping)."""
    return etree.tostring(etree.Element("entry", {atom.XML_LANG: language}))[len(b"<entry"):-len(b"/>")]


def _json_head_foot(feed: Feed, site: Site) -> tuple[bytes, bytes]:
    body = jsonfeed.serialise(jsonfeed.document(feed, site, [])) + b"\n"
    # Inside a JSON string every quote is escaped, so this can only be the key itself.
    at = body.find(b'"items":[]')
    if at < 0:
        raise FragmentError("an empty JSON Feed has no empty items array")
    at += len(b'"items":[')
    return body[:at], body[at:]


def _json_items(articles: Sequence[Article], site: Site, language: str, full_text: bool) -> list[bytes]:
    return [jsonfeed.serialise(jsonfeed.item(article, site, language, full_text)) for article in articles]


_JSON_ITEM = b'{"id":'  # every item starts with its id; no other object in a feed has that key


def _json_relang(piece: bytes, language: str, own: bool) -> bytes | None:
    """A JSON Feed item with its "language" member (own) or without: jsonfeed.item adds it last."""
    member = b"," + jsonfeed.serialise({"language": language})[1:-1] + b"}"
    if own:
        return piece[:-1] + member if piece.endswith(b"}") else None
    return piece[:-len(member)] + b"}" if piece.endswith(member) else None


def _json_whole(feed: Feed, site: Site) -> tuple[bytes, list[bytes], bytes] | None:
    """The feed serialised in one go (one encoder call, not one per item) and cut between its items."""
    items = [jsonfeed.item(article, site, feed.language, feed.full_text) for article in feed.items]
    body = jsonfeed.serialise(jsonfeed.document(feed, site, items)) + b"\n"
    parts = _json_cut(body, feed, site)
    if parts is None:
        return None
    head, foot = _json_head_foot(feed, site)
    return head, parts, foot


def _json_cut(body: bytes, feed: Feed, site: Site) -> list[bytes] | None:
    """A JSON Feed's bytes cut into its items' (the format has no date of its own: as rendered is as stored)."""
    head, foot = _json_head_foot(feed, site)
    if not feed.items or not (body.startswith(head) and body.endswith(foot)):
        return None
    # Inside a JSON string every quote is escaped: '},{"id":' only ever sits between two items.
    parts = body[len(head):len(body) - len(foot)].split(b"}," + _JSON_ITEM)
    if len(parts) != len(feed.items):
        return None
    last = len(parts) - 1
    return [(_JSON_ITEM if i else b"") + part + (b"}" if i < last else b"") for i, part in enumerate(parts)]


PIECES = {
    # An item's start tag up to its name (an Atom entry may carry xml:lang), and its end tag.
    "rss": _xml_pieces(rss, b"    <item", b"</item>\n"),
    "atom": _xml_pieces(atom, b"  <entry", b"</entry>\n"),
    "json": Pieces(_json_head_foot, _json_items, b",", own_language=True, whole=_json_whole, cut=_json_cut,
                   relang=_json_relang),
}

# The feed items are rendered in to be cut out: any feed will do, since an item's bytes depend only on the
# article, the site, the content mode and whether the item's language is the feed's (passed explicitly).
_THROWAWAY = Feed(key="", title="-", description="-", category=None, items=(), language="und", updated=UNDATED,
                  page_url="http://fragments.invalid/")
_THROWAWAY_SITE = Site(title="-", url="http://fragments.invalid", description="-", author="-", language="und", max_age=60)


class Fragments:
    """Each live article's item bytes, made once per (format, content mode, own language) and reused by
    every feed, page, delta and partner view it is in; forgotten when the article changes or goes.

    At most `budget` bytes are kept: past it, the articles whose items were least recently used go first
    (a crawl of every archive page would otherwise keep every article's items: 235 MiB at 10,000 articles).
    """

    def __init__(self, site: Site, budget: int = BUDGET):
        self.site = site
        self.budget = budget
        # ID → [article, key → bytes, bytes held], least recently used first
        self._kept: OrderedDict[str, list] = OrderedDict()
        self._held = 0  # bytes in all kept items
        self._lock = threading.Lock()  # requests assemble variants while a refresh assembles first pages
        self._heads: OrderedDict[tuple[str, Feed], tuple[bytes, bytes]] = OrderedDict()
        self._heads_lock = threading.Lock()
        self.made = 0  # item fragments rendered so far (for tests and measurements)
        self.relanged = 0  # item fragments made from the same item with or without its own language (Pieces.relang)

    def assemble(self, fmt: str, feed: Feed) -> bytes:
        """The feed's bytes in a format: byte for byte what FORMATS[fmt].render(feed, site) gives."""
        pieces = PIECES[fmt]
        found, missing = self._look_up(fmt, feed.items, feed.language, feed.full_text)
        if pieces.whole is not None and missing and 2 * len(missing) >= len(found):
            cut = pieces.whole(feed, self.site)  # most items are new: render it whole and keep its pieces
            if cut is not None:
                return self.adopt(fmt, feed, cut)
        head, foot = self._head_foot(fmt, feed)
        if missing:  # all in one throwaway feed of this feed's language
            made = pieces.items([feed.items[at] for at in missing], self.site, feed.language, feed.full_text)
            for at, piece in zip(missing, made):
                found[at] = piece
            self._keep(fmt, feed.items, feed.language, feed.full_text, missing, made)
        return _joined(head, pieces.join, found, foot)  # type: ignore[arg-type]

    def adopt(self, fmt: str, feed: Feed, cut: tuple[bytes, list[bytes], bytes]) -> bytes:
        """The feed's bytes from its rendering whole, cut into (head, items, foot) by Pieces.whole; its head and items
        kept for the feeds, pages and views assembled next."""
        head, made, foot = cut
        self._keep_head(fmt, feed, (head, foot))
        self._keep(fmt, feed.items, feed.language, feed.full_text, range(len(made)), made)
        return _joined(head, PIECES[fmt].join, made, foot)

    def refill(self, fmt: str, feed: Feed, before: Feed, body: Callable[[], bytes]) -> int:
        """Keep the items that `feed` shares with `before` (an earlier version of it) and that are not kept, cut
        from before's bytes as rendered (body(): dated or not, e.g. read back from the build store): a builder
        that keeps no items but the site-wide page's (Renderer.let_go) assembles a changed feed from them and
        its new items. How many were taken: none when before's bytes do not cut into its items, or body()
        raises LookupError (the store holds other bytes now); assemble() then renders what is missing."""
        pieces = PIECES[fmt]
        if pieces.cut is None or before.full_text != feed.full_text:
            return 0
        _, missing = self._look_up(fmt, feed.items, feed.language, feed.full_text)
        wanted = {feed.items[at].id: feed.items[at] for at in missing}
        if not wanted:
            return 0
        # Only the very article, or an equal one (an edited article's old bytes are not its item any more), and one
        # that names its own language in both feeds or in neither.
        positions = [at for at, article in enumerate(before.items)
                     if (now := wanted.get(article.id)) is not None and (now is article or now == article)
                     and (not pieces.own_language or (article.lang != before.language) == (article.lang != feed.language))]
        if not positions:
            return 0
        try:
            parts = pieces.cut(body(), before, self.site)
        except LookupError:
            return 0
        if parts is None:
            return 0
        # Kept under the articles as `feed` holds them (equal): an entry is one article object for every format.
        current = [wanted[before.items[at].id] for at in positions]
        self._keep(fmt, current, before.language, before.full_text, range(len(current)), [parts[at] for at in positions], made=False)
        return len(positions)

    def forget(self, ids) -> None:
        """Drop the fragments of these articles (changed or gone)."""
        with self._lock:
            for id_ in ids:
                entry = self._kept.pop(id_, None)
                if entry is not None:
                    self._held -= entry[2]

    def keep_only(self, ids, spare: int = 0) -> None:
        """Drop the fragments of every article but these, least recently used first, until the others hold at most
        `spare` bytes (a builder keeps its first pages' items, or the site-wide page's and a few more: let_go)."""
        with self._lock:
            others = [(id_, entry[2]) for id_, entry in self._kept.items() if id_ not in ids]  # least recent first
            over = sum(size for _, size in others) - spare
            for id_, size in others:
                if over <= 0:
                    break
                del self._kept[id_]
                self._held -= size
                over -= size

    def __len__(self) -> int:
        return sum(len(entry[1]) for entry in self._kept.values())

    @property
    def held(self) -> int:
        """Bytes of the items kept."""
        return self._held

    def _look_up(self, fmt: str, articles: Sequence[Article], language: str, full_text: bool) -> tuple[list, list[int]]:
        """The items already made (None for the others) and the positions of those still to make. An item kept only
        with the other own-language form is made from it here (Pieces.relang), kept, and counted against the budget."""
        own_language, kept, relang = PIECES[fmt].own_language, self._kept, PIECES[fmt].relang
        found: list[bytes | None] = []
        missing: list[int] = []
        with self._lock:
            for at, article in enumerate(articles):
                entry = kept.get(article.id)
                piece = None
                if entry is not None:
                    if entry[0] is not article:
                        if entry[0] != article:  # changed since: its fragments are stale
                            self._held -= entry[2]
                            del kept[article.id]
                            entry = None
                        else:  # an equal copy: keep the fragments, hold the newer object
                            entry[0] = article
                    if entry is not None:
                        kept.move_to_end(article.id)
                        own = own_language and article.lang != language
                        piece = entry[1].get((fmt, full_text, own))
                        if piece is None and relang is not None and (other := entry[1].get((fmt, full_text, not own))):
                            piece = relang(other, article.lang, own)
                            if piece is not None:
                                entry[1][(fmt, full_text, own)] = piece
                                entry[2] += len(piece)
                                self._held += len(piece)
                                self.relanged += 1
                if piece is None:
                    missing.append(at)
                found.append(piece)
            self._trim()  # the items made from others (relang) count too
        return found, missing

    def _keep(self, fmt: str, articles: Sequence[Article], language: str, full_text: bool, positions, pieces: list[bytes],
              made: bool = True) -> None:
        """Keep these items' bytes; made: rendered now (counted), not cut from a feed's bytes (refill)."""
        own_language, kept = PIECES[fmt].own_language, self._kept
        with self._lock:
            self.made += len(pieces) if made else 0
            for at, piece in zip(positions, pieces):
                article = articles[at]
                entry = kept.get(article.id)
                if entry is None or entry[0] is not article:
                    if entry is not None:
                        self._held -= entry[2]
                    entry = kept[article.id] = [article, {}, 0]
                key = (fmt, full_text, own_language and article.lang != language)
                grown = len(piece) - len(entry[1].get(key, b""))
                entry[1][key] = piece
                entry[2] += grown
                self._held += grown
                kept.move_to_end(article.id)
            self._trim()

    def _trim(self) -> None:
        """Drop the least recently used articles' items while more than the budget is held (under self._lock)."""
        kept = self._kept
        while self._held > self.budget and len(kept) > 1:
            self._held -= kept.popitem(last=False)[1][2]

    def _head_foot(self, fmt: str, feed: Feed) -> tuple[bytes, bytes]:
        key = (fmt, replace(feed, items=()))
        with self._heads_lock:
            found = self._heads.get(key)
            if found is not None:
                self._heads.move_to_end(key)
                return found
        found = PIECES[fmt].head_foot(feed, self.site)
        self._keep_head(fmt, feed, found)
        return found

    def _keep_head(self, fmt: str, feed: Feed, head_foot: tuple[bytes, bytes]) -> None:
        with self._heads_lock:
            self._heads[(fmt, replace(feed, items=()))] = head_foot
            while len(self._heads) > HEADS_KEPT:
                self._heads.popitem(last=False)


def _joined(head: bytes, sep: bytes, items: Sequence[bytes], foot: bytes) -> bytes:
    """head + sep.join(items) + foot in one copy: a feed page is up to a megabyte, copied once per `+` otherwise."""
    parts = list(chain.from_iterable(zip(repeat(sep), items))) if sep else list(items)
    if sep and parts:
        parts[0] = head  # the first separator's place
    else:
        parts.insert(0, head)
    parts.append(foot)
    return b"".join(parts)

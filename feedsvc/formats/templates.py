"""An RSS item's or Atom entry's bytes without feedgen's cost per item (60-70 µs of the benchmark's articles, most of
a whole build's archive pages): feedgen renders one item of each shape (which optional parts it has, how many
categories) with placeholders for its values, that rendering is cut where the values go, and an article's item is the
cut with the article's values written in.

Only the writing of a value is done here, as libxml2 serialises it to UTF-8: in element text "&", "<" and ">" escaped
(xmlEscapeContent), in an attribute '"' too (xmlAttrSerializeTxtContent), in CDATA as it is, dates as feedgen formats
them; RSS plain text that could be read as HTML with its "&", "<" and ">" as the character references formats/rss.py
puts in its elements (hex_references). The element names, their order, namespaces, attributes and indentation are
feedgen's. A value those rules do not cover (empty, a control character, "]]>" in CDATA, a character lxml refuses, a
str subclass) is left to feedgen: item() gives None. Each cut is checked once as it is made: filled with values holding
every character these rules escape, it must give feedgen's own bytes, or feedgen renders every item of that shape
(another libxml2 that escaped otherwise). tests/test_fragments.py proves for random articles that items made so are feedgen's byte for byte.
"""
from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta, timezone
from html.entities import html5, name2codepoint
from typing import Callable, Sequence

from .content import rfc2822

# How a value is written: the kinds of a format's ITEM_SLOTS (formats/rss.py, formats/atom.py).
TEXT, ATTR, CDATA, RFC2822, ISO = "text", "attribute", "CDATA", "RFC 2822 date", "ISO 8601 date"
PLAIN = "RSS plain text"  # text, with hex_references where it could be read as HTML

# Bytes libxml2 would write as a character reference (or lxml refuses): a value holding one is feedgen's to write.
_NOT_IN_TEXT = bytes(range(0x09)) + bytes(range(0x0B, 0x20))  # tab and line feed are written as they are
_NOT_IN_ATTR = bytes(range(0x20))


def _utf8(value, refused: bytes) -> bytes | None:
    """The value's UTF-8 bytes, or None for an empty value or one with a character lxml refuses or a byte in refused."""
    if type(value) is not str or not value or "\ufffe" in value or "\uffff" in value:  # a subclass may encode otherwise
        return None
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return None
    # bytes.translate() deletes at C speed: a regular expression's search took 3 ns a character (15 µs an article body).
    return data if len(data.translate(None, refused)) == len(data) else None


def _text(value) -> bytes | None:
    data = _utf8(value, _NOT_IN_TEXT)
    return None if data is None else data.replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;")


# The RSS Best Practices Profile asks plain text to write "&" and "<" as hexadecimal character references, and ">" as
# &#x3E; (https://www.rssboard.org/rss-profile#data-types-characterdata): the form aggregators that take a title for
# HTML read as text. Where the text could be read as HTML: a tag ("<" and a letter or "/"), or a character or entity
# reference ("&" and "#", an HTML entity's name, or a name with a digit or "_": as the W3C Feed Validator counts them, it
# warns on such text unless a line of the element holds "&#x"). Other text ("3 < 4", "AT&T") is written as it always was.
_TAG = re.compile(r"<[/A-Za-z]")
_REFERENCE = re.compile(r"&(#?\w+)")
_HEX = {"&": "#x26", "<": "#x3C", ">": "#x3E"}


def _html_reference(match: re.Match) -> bool:
    name = match[1]
    return (not name.isalpha() or name in name2codepoint or name == "apos"
            or match.string.startswith(";", match.end()) and name + ";" in html5)


def hex_references(text: str) -> list[str] | None:
    """RSS plain text that could be read as HTML cut at each "&", "<" and ">": [text, reference, text, …, text], each
    reference the name of one (#x26, #x3C, #x3E) as lxml's etree.Entity takes it; None for text written as it is."""
    if not ("<" in text and _TAG.search(text) or "&" in text and any(map(_html_reference, _REFERENCE.finditer(text)))):
        return None
    parts = re.split("([&<>])", text)
    parts[1::2] = [_HEX[c] for c in parts[1::2]]
    return parts


def _plain(value) -> bytes | None:
    data = _text(value)
    if data is None or "&" not in value and "<" not in value:  # most titles: nothing that could be read as HTML
        return data
    parts = hex_references(value)
    if parts is None:
        return data
    # Between the references no character is left that libxml2 escapes.
    return b"".join(part.encode("utf-8") if at % 2 == 0 else f"&{part};".encode() for at, part in enumerate(parts))


def _attr(value) -> bytes | None:
    data = _utf8(value, _NOT_IN_ATTR)
    if data is None:
        return None
    return data.replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;").replace(b'"', b"&quot;")


def _cdata(value) -> bytes | None:
    data = _utf8(value, _NOT_IN_TEXT)
    return None if data is None or b"]]>" in data else data


def _rfc2822(value) -> bytes | None:
    return rfc2822(value).encode() if type(value) is datetime and value.tzinfo is not None else None


def _iso(value) -> bytes | None:  # a datetime, not a subclass: one may format itself otherwise
    return value.isoformat().encode() if type(value) is datetime and value.tzinfo is not None else None


WRITERS: dict[str, Callable[[object], bytes | None]] = {TEXT: _text, PLAIN: _plain, ATTR: _attr, CDATA: _cdata,
                                                        RFC2822: _rfc2822, ISO: _iso}
ONE = -1  # a shape's part that is one value (a count: a tuple of that many; None: left out)
SHAPES = 256  # cuts kept per format: a few dozen serve any real folder (how many tags an article has); feedgen past it
# Values a cut is checked with (ItemCuts._cut): every character the writers escape, and some they write as they are.
_PROBES = {TEXT: 'a&b<c>d"e\'f\tg\nh\u0085i\u2028j\U0001fffek', ATTR: 'a&b<c>d"e\'f\u0085g',
           CDATA: 'a&b<c>d"e\'f\tg\nh]]i', RFC2822: datetime(2026, 1, 2, 3, 4, 5, 678901, timezone(timedelta(hours=3))),
           ISO: datetime(2026, 1, 2, 3, 4, 5, 678901, timezone(timedelta(hours=-4, minutes=-30)))}
_PROBES[PLAIN] = _PROBES[TEXT]  # its "<c" reads as a tag: written with references


class _Cut:
    """An item of one shape cut where its values go: literals[0], value, literals[1], …, value, literals[-1]."""

    __slots__ = ("literals", "slots")

    def __init__(self, literals: Sequence[bytes], slots: Sequence[tuple[str, int, Callable]]):
        self.literals = literals
        self.slots = slots  # (name, position in a repeated part or ONE, writer)


class ItemCuts:
    """One format's cuts, each made the first time its shape is met. render(values) is the item feedgen makes of
    these values (the format's put_item, cut out of a feed holding it)."""

    def __init__(self, slots: Sequence[tuple[str, str]], render: Callable[[dict], bytes], defaulted: Sequence[str] = ()):
        self.slots, self.render = tuple(slots), render
        self.defaulted = tuple(defaulted)  # values feedgen fills in itself when given None (an Atom entry's updated: now)
        self._cuts: dict[tuple, _Cut | None] = {}
        self._lock = threading.Lock()

    def item(self, values: dict) -> bytes | None:
        """The item of these values (the format's item_values), or None where feedgen is to make it."""
        for name in self.defaulted:
            if values[name] is None:
                return None
        shape = tuple(None if (v := values[name]) is None else len(v) if isinstance(v, tuple) else ONE for name, _ in self.slots)
        cut = self._cuts.get(shape, self)
        if cut is self:  # a shape met for the first time: cut once, whichever thread meets it first
            with self._lock:
                cut = self._cuts.get(shape, self)
                if cut is self:
                    if len(self._cuts) >= SHAPES:  # a folder of ever new tag counts: those items are feedgen's
                        return None
                    cut = self._cuts[shape] = self._cut(shape)
        return None if cut is None else _filled(cut, values)

    def _cut(self, shape: tuple) -> _Cut | None:
        """feedgen's item of this shape with a placeholder for each value, cut where they are; None when a placeholder
        is not found exactly once (then feedgen makes every item of the shape)."""
        values: dict = {}
        marks: list[tuple[bytes, str, int, Callable]] = []  # (as written, name, position, writer)
        for (name, kind), count in zip(self.slots, shape):
            if count is None:
                values[name] = None
                continue
            made = []
            for position in ([ONE] if count == ONE else range(count)):
                if kind in (RFC2822, ISO):  # a date of its own for each: its year numbers it
                    value = datetime(1901 + len(marks), 2, 3, 4, 5, 6, tzinfo=timezone.utc)
                else:  # private-use characters, written as they are in text, attributes and CDATA alike
                    value = f"\ue000{len(marks)}\ue001"
                marks.append((WRITERS[kind](value), name, position, WRITERS[kind]))
                made.append(value)
            values[name] = made[0] if count == ONE else tuple(made)
        text = self.render(values)
        found = []
        for written, name, position, write in marks:
            at = text.find(written)
            if at < 0 or text.find(written, at + 1) >= 0:
                return None
            found.append((at, written, name, position, write))
        found.sort()
        literals, start = [], 0
        for at, written, _, _, _ in found:
            if at < start:
                return None
            literals.append(text[start:at])
            start = at + len(written)
        literals.append(text[start:])
        cut = _Cut(tuple(literals), tuple((name, position, write) for _, _, name, position, write in found))
        probe = {name: None if count is None else _PROBES[kind] if count == ONE else tuple(f"{_PROBES[kind]}{n}" for n in range(count))
                 for (name, kind), count in zip(self.slots, shape)}
        return cut if _filled(cut, probe) == self.render(probe) else None


def _filled(cut: _Cut, values: dict) -> bytes | None:
    """The cut with these values written in; None where a value is not one the writers cover."""
    literals = cut.literals
    parts = [literals[0]]
    for at, (name, position, write) in enumerate(cut.slots, 1):
        written = write(values[name] if position == ONE else values[name][position])
        if written is None:
            return None
        parts.append(written)
        parts.append(literals[at])
    return b"".join(parts)

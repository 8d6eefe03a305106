"""Front matter: the YAML block between --- lines at the top of a text, split off and its fields read.

Knows nothing of files: a block or field that cannot be used raises FrontMatterError(reason, fix).
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

from ..config import canonical_language, section_name
from .folder import quoted
from .text import collapse_space, drop_unsafe_chars

FRONT_MATTER_MAX = 16 * 1024  # characters: far more than any article's fields, little enough to parse at once
# An article is an item of every feed of its categories and tags, and each such item names all of them: n names make
# n feeds of n names each. 2,500 tags in 14 KB rendered 10,000 resources and grew the stores by 600 MB.
CATEGORIES_MAX = 10
TAGS_MAX = 50
# Characters in a category's, tag's or author's name: each is shown on every page, feed list and item that names it (a
# category of 500,000 characters made the site-wide Atom feed 12 MB). A newsroom's run to a few dozen, a scraped
# breadcrumb to a few hundred (`check` warns of one over 100); past this one is no name, and bounded it bloats nothing.
NAME_MAX = 1000
FLOW_NESTING_MAX = 64  # [ and { inside each other: real front matter has one or two
# libyaml's composer recurses in C without a limit (tens of thousands of levels crash the process), so
# it only gets text that cannot nest deeper than this; other text goes to the pure-Python composer,
# slower, whose recursion stops with RecursionError.
_C_NESTING_MAX = 1000
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")  # every other character, any script: a non-ASCII one is no closing bracket


class _NoAliases:
    """A safe loader that refuses YAML aliases (*x): "billion laughs" nests them to expand a few hundred
    bytes into gigabytes, and no field feedsvc reads needs one. It refuses a key written twice too (in any case: keys are
    read in lower case), where YAML would keep one of them silently (`date:` and `Date:`: neither the first nor the last)."""

    def construct_object(self, node, deep=False):
        if node in self.constructed_objects or node in self.recursive_objects:  # a node met twice: an alias
            raise FrontMatterError("front matter uses a YAML alias (*name)", "write the value out in full instead of `&name` and `*name`")
        return super().construct_object(node, deep)

    def construct_mapping(self, node, deep=False):
        seen: dict[str, str] = {}
        for key_node, _ in getattr(node, "value", ()):
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: {date: …}` brings keys past the check below
                raise FrontMatterError("front matter uses a YAML merge key (<<)", "write each key out in full instead")
            key = key_node.value
            if not isinstance(key, str):
                continue
            first = seen.get(key.lower())
            if first is not None:
                raise FrontMatterError(f"front matter writes `{key}` twice" if first == key else
                                       f"front matter writes `{first}` and `{key}`, one key (keys are read in any case)",
                                       f"keep one `{key.lower()}:` line")
            seen[key.lower()] = key
        return super().construct_mapping(node, deep)


# The YAML 1.1 readings of a plain value that change what was written: `id: 0042` is the octal 34, `title: 1:30` the
# sexagesimal 90, `tags: [1.50]` 1.5, `title: yes` true. Every field feedsvc reads is text, a date or `draft:` (which
# takes true/yes/on and false/no/off as words), so such values are kept as written; null and timestamps are still read.
_AS_WRITTEN = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool"}


def _as_written(resolvers: dict) -> dict:
    """A loader's implicit resolvers without those of _AS_WRITTEN."""
    return {first: [(tag, rx) for tag, rx in found if tag not in _AS_WRITTEN] for first, found in resolvers.items()}


@lru_cache(maxsize=None)
def _yaml():
    """PyYAML and its two loaders, imported with the first front matter (10 ms a process: a folder of .txt has none)."""
    import yaml

    class Loader(_NoAliases, yaml.SafeLoader):
        """The pure-Python safe loader, without aliases: its recursion stops with RecursionError."""

    class CLoader(_NoAliases, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        """libyaml's safe loader, without aliases: ten times faster, for text that cannot nest deeper than _C_NESTING_MAX."""

    for loader in (Loader, CLoader):
        loader.yaml_implicit_resolvers = _as_written(loader.yaml_implicit_resolvers)
    return yaml, Loader, CLoader


_FRONT_MATTER_OPEN = re.compile(r"---[ \t]*(?:\n|\Z)")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t]*\n)+")
_KEYS = {
    "title", "date", "updated", "category", "categories", "tags", "author", "summary", "image", "image_alt", "id", "lang",
    "draft",
}
_NO_YEAR = datetime(1, 1, 1)  # dateutil fills missing parts from this; year 1 means none was written
_NO_DAY = datetime(1, 2, 2)  # parsed again with this: a date that moves wrote no day (or no month)
# Day and month as numbers before the year (12/11/2026, 07.12.2026): dateutil reads the month first, where most of the
# world writes the day first; refused when both readings are dates (a number over 12 can only be the day).
# A year of two digits (27-01-15) can be any of the three: refused too, unless a year of four is written beside it.
_SLASHED = re.compile(r"(?<!\d)(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{2,4})(?!\d)")  # 27-01-15T09:00 too
_FULL_YEAR = re.compile(r"(?<!\d)\d{4}(?!\d)")
_TRUE_WORDS, _FALSE_WORDS = {"true", "yes", "on"}, {"false", "no", "off"}


class FrontMatterError(ValueError):
    """Front matter that cannot be used: the reason and the fix, without the file (the caller knows it)."""

    def __init__(self, reason: str, fix: str):
        super().__init__(f"{reason}; {fix}")
        self.reason, self.fix = reason, fix


def split_front_matter(text: str) -> tuple[dict, str]:
    """The front matter as a dict with lower-case keys, and the text after it ({} and text when there is none)."""
    stripped = _LEADING_BLANK_LINES.sub("", text)
    if not _FRONT_MATTER_OPEN.match(stripped):  # "----------" as a first line is a rule, not front matter
        return {}, text
    match = _FRONT_MATTER.match(stripped)
    if not match:
        raise FrontMatterError("front matter opened with --- is never closed", "end the front matter block with a --- line")
    fix = "fix the YAML between the --- lines (quote values that contain ': ')"
    block = match.group(1) or ""
    if len(block) > FRONT_MATTER_MAX:
        raise FrontMatterError(f"front matter is {len(block)} characters, over the {FRONT_MATTER_MAX} limit",
                               "move long text into the body, below the closing --- line")
    flow, lines = _nesting(block)
    if flow > FLOW_NESTING_MAX:
        raise FrontMatterError(f"front matter nests lists or mappings {flow} deep, over the {FLOW_NESTING_MAX} limit",
                               "write the values flatter, and quote text full of [ or { brackets")
    shallow = flow + lines <= _C_NESTING_MAX
    yaml, loader, c_loader = _yaml()
    try:
        meta = yaml.load(block, Loader=c_loader if shallow else loader) or {}
    except FrontMatterError:
        raise
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 2}" if where is not None else ""
        raise FrontMatterError(f"front matter is not valid YAML{line}", fix) from None
    except ValueError as exc:  # a timestamp that is no date: `date: 2025-02-30`, or an offset of a day: `…T10:00+25:00`
        if "offset" in str(exc):
            raise FrontMatterError("front matter has a date with a time-zone offset of 24 hours or more",
                                   "write the offset between -23:59 and +23:59, as in `date: 2025-03-01T14:30:00+03:00`") from None
        raise FrontMatterError(f"front matter has a date that is on no calendar ({exc})",
                               "write the date as it is on a calendar, as `date: 2025-03-01 14:30`") from None
    except RecursionError:
        raise FrontMatterError("front matter is not valid YAML (nested too deeply)", fix) from None
    if not isinstance(meta, dict):
        raise FrontMatterError("front matter is not a set of `key: value` lines", "write one `key: value` per line between the --- lines")
    # YAML escapes ("\u001b", "\u202e") make characters the text clean-up never saw.
    try:
        meta = {str(k).lower(): _clean_value(v) for k, v in meta.items()}
    except RecursionError:  # lists nested by indentation as deep as libyaml takes them: deeper than Python recurses
        raise FrontMatterError("front matter is not valid YAML (nested too deeply)", fix) from None
    return meta, stripped[match.end():]


def _nesting(block: str) -> tuple[int, int]:
    """How deep [ and { nest (counting those inside quotes too), and a bound on how deep lines nest
    (indentation, plus every - and ? on a line: `- - - x` nests once per dash)."""
    depth = deepest = 0
    for c in _NOT_BRACKETS.sub("", block):
        depth = depth + 1 if c in "[{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    lines = max((len(line) - len(line.lstrip(" ")) + line.count("-") + line.count("?") for line in block.split("\n")), default=0)
    return deepest, lines + 1


def ignored_keys(meta: dict) -> list[str]:
    """The keys feedsvc does not read, sorted."""
    return sorted(set(meta) - _KEYS)


# Keys other systems (Hugo, Jekyll, WordPress exports) date an article's release by: ignored, a release later than
# `date:` (or with no `date:`) would be published at once, its embargo lost. Refused then, naming `date:`; a value that
# is no date (`published: true`, Jekyll's flag) or no later than `date:` is left alone, as any key feedsvc does not read.
_RELEASE_KEYS = {"published", "publishdate", "publish_date", "pubdate", "pub_date", "publish_at", "publishat",
                 "publishedat", "published_at", "embargo", "embargoed", "embargo_until", "release_date", "releasedate",
                 "go_live", "golive", "live_at"}
# Flags other systems hold an article back by, read for that alone (never as a date: `status: updated 2026-01-02` is a
# desk's note): `publish: false`, `private: true`, and what Pelican's, WordPress's and Ghost's `status:` say of an
# article not to be published (yet). `status: draft` was published at once; any other status is left alone.
_FLAG_KEYS = {"status", "publish", "private"}
_HELD_STATUSES = {"draft", "drafts", "pending", "private", "hidden", "future", "scheduled", "trash", "auto-draft", "unpublished"}
# Keys that mean one feedsvc reads, for `check` to name (`tag:` for `tags:`).
MEANT = {"tag": "tags", "authors": "author", "by": "author", "byline": "author", "creator": "author",
         "description": "summary", "excerpt": "summary", "abstract": "summary", "lede": "summary", "lastmod": "updated",
         "modified": "updated", "last_modified": "updated", "updated_at": "updated", "language": "lang", "locale": "lang",
         "cover": "image", "thumbnail": "image", "featured_image": "image", "alt": "image_alt", "image_caption": "image_alt", "headline": "title", "section": "category",
         "keywords": "tags", "guid": "id", "uuid": "id", "created": "date", "created_at": "date"}


def check_release_keys(meta: dict, zone: str) -> None:
    """Refuse a key that dates the article's release under another name later than `date:` (an embargo that would be
    lost): a value that reads as a date after `date:`, or any date when there is no `date:`; and a flag of another
    system that holds the article back (`published: false`, `status: draft`)."""
    for key in sorted(meta.keys() & (_FLAG_KEYS | _RELEASE_KEYS)):
        if _held_back(key, meta[key]):  # not to be published yet, and no time said
            raise FrontMatterError(f"front matter `{key}: {meta[key]}` is not read, so the article would be published at once",
                                   "write `draft: true` to hold it back, or the time it may be published as `date:`")
    keys = sorted(meta.keys() & _RELEASE_KEYS)
    if not keys:
        return
    try:
        dated = read_date(meta, "date", zone)
    except FrontMatterError:
        dated = None  # refused for itself, with its own fix
    fix = "write the time it may be published as `date:` (a date in the future holds it back until then)"
    for key in keys:
        value = meta[key]
        try:
            release = read_date(meta, key, zone)
        except FrontMatterError as exc:
            if _looks_dated(value):  # a date that cannot be read (`embargo: 2027-01-01 09:00 CET`): no less an embargo
                raise FrontMatterError(f"front matter key `{key}` is not read ({exc.reason.split(' ', 1)[1]}), so the article "
                                       "would be published at once", fix) from None
            continue  # no date (`published: true`, a version in `release:`): not a release time
        if release is not None and dated is None:
            raise FrontMatterError(f"front matter key `{key}` is not read, so the article would be dated and published when "
                                   "first seen", fix)
        if release is not None and release > dated:
            raise FrontMatterError(f"front matter key `{key}` is later than `date:` and not read, so the article would be "
                                   "published before it", fix)


def _held_back(key: str, value: Any) -> bool:
    """Whether a release key's value says "not yet" without a time: `published: false`, `embargoed: true`, `status:
    draft`, `publish: false`, `private: true`."""
    word = str(value).strip().lower() if isinstance(value, (str, bool)) else ""
    return ((key in ("published", "publish") and word in _FALSE_WORDS | {"0"})
            or ((key.startswith("embargo") or key == "private") and word in _TRUE_WORDS | {"1"})
            or (key == "status" and word in _HELD_STATUSES))


def _looks_dated(value: Any) -> bool:
    """Whether a value no date was read from is meant as one: a year of four digits, day and month as numbers, or a
    Unix time (`publish_at: 1798794000`)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return True
    text = str(value) if isinstance(value, str) else ""
    return bool(_FULL_YEAR.search(text) or _SLASHED.search(text) or re.fullmatch(r"\s*\d{9,11}\s*", text))


def _clean_value(value: Any) -> Any:
    if isinstance(value, str):
        return drop_unsafe_chars(value)
    if isinstance(value, list):
        return [_clean_value(v) for v in value]
    return value


def names_something(name: str) -> bool:
    """Whether a category's name names anything: a letter, a digit or a symbol such as an emoji (⚽ is a sports section's
    name); not punctuation alone (":", a "----------" rule), nor a rule drawn with symbols (below)."""
    # Tatweel (ـ) is a letter to Python (Lm) but writes nothing: a line of it is a rule, drawn as Arabic pages draw
    # them (found in review: published as a category named "category").
    if any(ch.isalnum() and ch != "\u0640" for ch in name):
        return True
    # Of symbols alone, a few different ones name something (⚽, ⚽️ 🏀); more, or one repeated, are a rule drawn with
    # them (★★★★★, ═════★═════, ✦ ✧ ✦ ✧), and so is any line of box drawing or shapes.
    symbols = [ch for ch in name if unicodedata.category(ch) == "So"]
    return (0 < len(symbols) <= 3 and len(set(symbols)) == len(symbols)
            and not any("\u2500" <= ch <= "\u25ff" for ch in symbols))


def read_categories(meta: dict) -> list[str]:
    """The names under `categories:` then `category:`, cleaned; those that name nothing (names_something) left out."""
    names = _str_list(meta, "categories") + _str_list(meta, "category")
    cleaned = [clean_category(n) for n in names]
    named = [c for c in cleaned if names_something(c)]
    if not named and any(n.strip() for n in names):  # refused as a .txt category line is, not the folder's name taken
        # instead; a blank one (`category: ""`, as some tools write an empty field) is no name written: the folder's
        raise FrontMatterError(f"category {quoted(names[0])} has no name", "write a category name such as News")
    if (count := len(set(named))) > CATEGORIES_MAX:
        raise FrontMatterError(f"{count} categories, over the {CATEGORIES_MAX} limit",
                               f"keep the {CATEGORIES_MAX} categories it belongs in most; tags can say the rest")
    for name in named:
        check_name_length("category", name)
    return named


def check_name_length(kind: str, name: str) -> None:
    """FrontMatterError for a category's, tag's or author's name over NAME_MAX characters."""
    if len(name) > NAME_MAX:
        raise FrontMatterError(f"{kind} {quoted(name)} is {len(name):,} characters, over the {NAME_MAX} limit",
                               f"name the {kind} in at most {NAME_MAX} characters")


# Invisible marks a name may carry at its ends from a scrape or an editor (right-to-left and left-to-right marks, the
# Arabic letter mark, zero-width space and joiners, word joiner, BOM): "\u200fسياسة" is the category سياسة, not another.
_EDGE_MARKS = "\u200b\u200c\u200d\u200e\u200f\u061c\u2060\ufeff"


def clean_category(name: str) -> str:
    """A category name as published: safe characters, single spaces, no invisible marks at its ends, no trailing colon,
    Arabic written one way (config.section_name)."""
    # Folder names come straight from the file system: NFD on macOS, so normalised here too.
    name = collapse_space(drop_unsafe_chars(name)).strip(_EDGE_MARKS + " ").rstrip(":：").strip(_EDGE_MARKS + " ")
    return section_name(name)


def read_tags(meta: dict) -> tuple[str, ...]:
    """The `tags:` names with single spaces and no invisible marks at their ends, each once, in the order written."""
    if meta.get("tags") is None:  # most files
        return ()
    tags = tuple(dict.fromkeys(section_name(t) for t in map(_name, _str_list(meta, "tags")) if t))
    if len(tags) > TAGS_MAX:
        raise FrontMatterError(f"{len(tags)} tags, over the {TAGS_MAX} limit", f"keep the {TAGS_MAX} tags that say most about it")
    for tag in tags:
        check_name_length("tag", tag)
    return tags


def read_name(meta: dict, key: str) -> str | None:
    """A name (`author:`) with single spaces and no invisible marks at its ends, as tags and categories: "\u200fسارة علي"
    is سارة علي, not a second author with a feed of its own; None when absent or blank."""
    value = read_text(meta, key)
    name = None if value is None else _name(value) or None
    if name is not None:
        check_name_length(key, name)
    return name


def _name(text: str) -> str:
    """A tag's or an author's name: single spaces, no invisible marks at its ends."""
    return collapse_space(text).strip(_EDGE_MARKS + " ")


def read_text(meta: dict, key: str) -> str | None:
    """A field written as one line of text (a number counts as text); None when it is absent."""
    value = meta.get(key)
    return None if value is None else as_text(value, key)


def as_text(value: Any, key: str) -> str:
    """A field's value as text; a list, a mapping or a true/false is not."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise FrontMatterError(f"{key} is not text", f"write `{key}:` as one line of text")
    return str(value)


def _str_list(meta: dict, key: str) -> list[str]:
    value = meta.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        # `tags: a, b` and `categories: News, World` are lists written on one line; `category:` is one name.
        return [v for v in (part.strip() for part in value.split(",")) if v] if key in ("tags", "categories") else [value]
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        return [str(v) for v in value if str(v).strip()]
    raise FrontMatterError(f"{key} is not text or a list of text", f"write `{key}: [a, b]` or one name")


def read_language(meta: dict) -> str | None:
    """The `lang:` tag in its canonical BCP 47 form (config.canonical_language: ara is ar); None when it is absent or blank."""
    lang = read_text(meta, "lang")
    if lang is None or not lang.strip():
        return None
    tag = canonical_language(lang)
    if tag is None:
        raise FrontMatterError(f"lang {quoted(lang)} is not a language tag", "write a BCP 47 tag such as ar, en or fr-CA")
    return tag


class _ZoneByName(Exception):
    """A date's zone written as a name dateutil does not know (EST, AST, CET: an abbreviation, several zones' at once)."""


def _offset_only(name: str | None, offset: int | None) -> int | None:
    """dateutil's zone for a date written as text: its offset (UTC, Z and GMT are 0), none when it names no zone. A name
    alone is refused (_ZoneByName): dateutil would warn and read the date in TIME_ZONE, hours off (an embargo lifted early)."""
    if offset is None and name is not None:
        raise _ZoneByName(name)
    return offset


# "UTC+3", "GMT-05:00": an offset from UTC as people write it. dateutil reads the sign the POSIX way round (GMT+3 is
# three hours *behind*: https://dateutil.readthedocs.io/en/stable/parser.html, "GMT+3" is "UTC-3"), so a publisher in
# Riyadh who wrote "09:30 GMT+3" was dated 15:30 UTC, six hours late. Written as the offset itself before parsing.
_NAMED_OFFSET = re.compile(r"\b(?:UTC|GMT)\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?(?![\d:])", re.IGNORECASE)


def _offset_as_written(text: str) -> str:
    """The date with "UTC+3" or "GMT-05:30" as the offset it means: "+03:00", "-05:30" (_NAMED_OFFSET)."""
    return _NAMED_OFFSET.sub(lambda m: f" {m[1]}{int(m[2]):02d}:{m[3] or '00'}", text)


def read_date(meta: dict, key: str, zone: str) -> datetime | None:
    """The `date:` or `updated:` field in UTC, read in the zone when it names none; None when absent."""
    parsed = written_date(meta, key)
    if parsed is None:
        return None
    shown = _shown(meta[key])
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    try:
        parsed.utcoffset()  # Python's own limit, and no zone's on Earth: strictly within a day
    except ValueError:
        raise FrontMatterError(f"{key} {shown} has a time-zone offset of 24 hours or more",
                               f"write the offset between -23:59 and +23:59, as in `{key}: 2025-03-01 14:30 +03:00`") from None
    try:
        utc = parsed.astimezone(ZoneInfo("UTC"))
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not 1970 <= utc.year <= 9999:
        raise FrontMatterError(f"{key} {shown} is out of range", f"write `{key}:` as a date between 1970 and 9999")
    return utc


def _shown(value: Any) -> str:
    """A date's value as written, for a message: not datetime.date(1960, 1, 1)."""
    return repr(value.isoformat() if isinstance(value, date) else value)


def written_date(meta: dict, key: str) -> datetime | None:
    """The `date:` or `updated:` field as written: aware when it names its offset, naive when TIME_ZONE is to place it;
    None when absent. FrontMatterError for a value no date can be read from, or read only one way of several."""
    value = meta.get(key)
    if value is None:
        return None
    fix = f"write `{key}: 2025-03-01 14:30` (ISO 8601, optionally with a zone)"
    shown = _shown(value)
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    elif isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
        try:
            # Parts left out are filled from _NO_YEAR, never from today, so the same file gives the same date.
            from dateutil import parser as dateparser  # only for a date written as text (5 ms a process)

            written = _offset_as_written(str(value))
            if (numbers := _SLASHED.search(written)) and len(numbers[3]) < 4 and not _FULL_YEAR.search(written):
                raise FrontMatterError(f"{key} {shown} can be read year, day or month first",
                                       f"write it with the year in four digits first, as in `{key}: 2025-03-01 14:30`")
            if numbers and numbers[1] != numbers[2] and max(int(numbers[1]), int(numbers[2])) <= 12:
                raise FrontMatterError(f"{key} {shown} can be read day first or month first",
                                       f"write it year first, as in `{key}: 2025-03-01 14:30`")
            parsed = dateparser.parse(written, default=_NO_YEAR, tzinfos=_offset_only)
            if parsed.year != _NO_YEAR.year and parsed.date() != dateparser.parse(written, default=_NO_DAY, tzinfos=_offset_only).date():
                raise FrontMatterError(f"{key} {shown} has no day", fix)  # `date: 2026`, `date: Nov 2026`: the 1st, made up
        except _ZoneByName as exc:
            raise FrontMatterError(f"{key} {shown} names its zone {exc.args[0]!r}, which can mean several",
                                   f"write the zone as an offset, as in `{key}: 2025-03-01 14:30 -05:00`, or leave it out "
                                   "for TIME_ZONE") from None
        except FrontMatterError:
            raise
        except (ValueError, OverflowError, TypeError):
            raise FrontMatterError(f"{key} {shown} is not a date", fix) from None
        # Year 1 is dateutil's fill for no year, or year 1 written (`0001-01-01`): out of range, said so below.
        if parsed.year == _NO_YEAR.year and dateparser.parse(written, default=_NO_YEAR.replace(year=2), tzinfos=_offset_only).year == 2:
            raise FrontMatterError(f"{key} {shown} has no year", fix)
    else:
        raise FrontMatterError(f"{key} {shown} is not a date", fix)
    return parsed


def local_time_note(meta: dict, key: str, zone: str) -> str | None:
    """What to say of a `date:` or `updated:` written without a zone at a local time TIME_ZONE skips or passes twice (a
    change of the clocks): how it was read, for `check`; None for any other value (and one that cannot be read)."""
    value = meta.get(key)
    # A time of day: a date alone (midnight) is no local time written. A datetime is YAML's unquoted timestamp.
    if not isinstance(value, datetime) and not (isinstance(value, str) and ":" in value):
        return None
    try:
        written = written_date(meta, key)
    except FrontMatterError:  # no date, said for itself (or the file changed since it was read for check)
        return None
    if written is None or written.tzinfo is not None:
        return None
    local = ZoneInfo(zone)
    first, second = written.replace(tzinfo=local, fold=0), written.replace(tzinfo=local, fold=1)
    if first.utcoffset() == second.utcoffset():
        return None
    read = first.astimezone(ZoneInfo("UTC"))  # as read_date reads it: the first of the two
    if first.astimezone(ZoneInfo("UTC")).astimezone(local).replace(tzinfo=None) != written:  # not on the clocks: skipped
        return (f"`{key}:` {str(value).strip()} is a time {zone}'s clocks skip: read as {read:%Y-%m-%d %H:%M} UTC "
                f"({read.astimezone(local):%H:%M %Z})")
    return (f"`{key}:` {str(value).strip()} happens twice in {zone}: read as the first, {read:%Y-%m-%d %H:%M} UTC "
            f"({read.astimezone(local):%H:%M %Z})")


def read_draft(meta: dict) -> bool:
    """The `draft:` flag; absent is False."""
    draft = meta.get("draft")
    if draft is None or isinstance(draft, bool):
        return bool(draft)
    word = str(draft).strip().lower()
    if word in _TRUE_WORDS | _FALSE_WORDS:
        return word in _TRUE_WORDS
    raise FrontMatterError(f"draft {quoted(draft)} is not true or false", "write `draft: true` or `draft: false`")


def read_image(meta: dict, base_url: str) -> str | None:
    """The `image:` field as an absolute http(s) URL, a relative one resolved against base_url."""
    image = (read_text(meta, "image") or "").strip()
    if not image:
        return None
    try:
        url = urljoin(base_url, image).replace(" ", "%20")  # `images/front page.jpg`, as a browser asks for it
        parts = urlsplit(url)
    except ValueError:  # urlsplit's own: an IPv6 address not closed by "]"
        parts = None
    if parts is not None and parts.scheme not in ("http", "https"):
        raise FrontMatterError(f"image {quoted(image)} is not an http(s) URL", "write `image:` as https://… or a path on the site")
    problem = "a host that is none (an IPv6 address not closed by ])" if parts is None else _url_problem(url, parts)
    if problem is not None:  # feeds carry it as a URL readers fetch: the W3C validator calls such an image invalid
        raise FrontMatterError(f"image {quoted(image)} has {problem}", "write `image:` as a whole URL, https://host/path")
    return url


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _url_problem(url: str, parts) -> str | None:
    """What makes an http(s) URL one no reader can fetch, or publishes what it must not; None when it is whole."""
    if not parts.hostname:
        return "no host"
    if parts.username is not None or parts.password is not None:
        return "a user name or password in it, which every feed would publish"
    try:
        parts.port  # read only when asked: a ValueError for a port out of range or not a number
    except ValueError:
        return "a port that is not a number from 0 to 65535"
    if any(ch <= " " or ch == "\x7f" for ch in url):
        return "a line break, tab or other control character in it"
    if _BAD_ESCAPE.search(url):
        return "a % that is not a %XX escape"
    return None

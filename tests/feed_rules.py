"""What feed readers rely on in a document, as lists of problems: JSON Feed 1.1 and RSS/Atom read back by feedparser.

Our own checks, written for the tests; the JSON Feed schema beside this file is the public one (see its .LICENSE).
Each function returns problems as sentences (empty = none), so an assertion shows every one at once.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import jsonschema

SCHEMA_PATH = Path(__file__).with_name("jsonfeed-schema-v1.1.json")
VERSION = "https://jsonfeed.org/version/1.1"
# RFC 5646 in its common shapes: language, script, region, variants (enough to catch "arabic" or "en_US").
LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?(-([A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
# RSS 2.0 dates are RFC 822 with a four-digit year: https://www.rssboard.org/rss-specification#ltpubdategtSubelementOfLtitemgt
RFC822 = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
                    r"\d{2}:\d{2}:\d{2} ([+-]\d{4}|GMT|UT)$")
HTML_TAG = re.compile(r"<\s*/?\s*(p|br|a|b|i|em|strong|div|span|img|ul|ol|li|h[1-6]|script|iframe)\b[^>]*>", re.I)
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
MOJIBAKE = re.compile("[\u00c0-\u00ff][\u0080-\u00bf\u0152-\u0178\u02c6-\u203a]")  # UTF-8 bytes read as cp1252


@lru_cache(maxsize=1)
def json_feed_validator() -> jsonschema.protocols.Validator:
    """The JSON Feed 1.1 schema as a validator that checks the date-time and uri formats too."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    checker = cls.FORMAT_CHECKER
    # Without rfc3339-validator and rfc3986-validator installed these formats would silently pass.
    assert {"date-time", "uri"} <= set(checker.checkers), "pip install '.[test]' (rfc3339-validator, rfc3986-validator)"
    return cls(schema, format_checker=checker)


def text_problems(where: str, text: object) -> list[str]:
    """Text a reader would show as garbage: control characters, U+FFFD, UTF-8 decoded as cp1252."""
    if not isinstance(text, str):
        return []
    found = []
    if match := CONTROL.search(text):
        found.append(f"{where}: control character U+{ord(match.group()):04X}")
    if "\ufffd" in text:
        found.append(f"{where}: U+FFFD (the text was decoded wrongly before it reached the feed)")
    if MOJIBAKE.search(text):
        try:
            if text.encode("cp1252").decode("utf-8") != text:
                found.append(f"{where}: mojibake (UTF-8 read as cp1252)")
        except UnicodeError:
            pass
    return found


def is_absolute_http(url: object) -> bool:
    parts = urlsplit(url) if isinstance(url, str) else None
    return bool(parts and parts.scheme in ("http", "https") and parts.netloc)


def json_feed_problems(body: bytes, feed_url: str | None = None) -> list[str]:
    """JSON Feed 1.1: the schema, then the rules of https://www.jsonfeed.org/version/1.1/ the schema cannot say."""
    if body.startswith(b"\xef\xbb\xbf"):
        return ["starts with a byte order mark (RFC 8259 §8.1 forbids it)"]
    pairs: list[list[str]] = []

    def keep_pairs(items):
        keys = [k for k, _ in items]
        if len(keys) != len(set(keys)):
            pairs.append(keys)
        return dict(items)

    try:
        doc = json.loads(body.decode("utf-8"), object_pairs_hook=keep_pairs, parse_constant=_reject_constant)
    except ValueError as exc:  # UnicodeDecodeError included
        return [f"not UTF-8 JSON: {exc}"]
    found = [f"duplicate keys in one object: {keys}" for keys in pairs]
    found += [f"schema: {'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}"
              for e in json_feed_validator().iter_errors(doc)]
    if not isinstance(doc, dict):
        return found
    if doc.get("version") != VERSION:
        found.append(f"version is {doc.get('version')!r}, not {VERSION}")
    if next(iter(doc), None) != "version":
        found.append("version is not the first key (the spec: it should appear at the very top)")
    for key in ("home_page_url", "feed_url"):  # "strongly recommended"; required in practice on the web
        if not is_absolute_http(doc.get(key)):
            found.append(f"{key} missing or not an absolute http(s) URL: {doc.get(key)!r}")
    if "next_url" in doc and (not is_absolute_http(doc["next_url"]) or doc["next_url"] == doc.get("feed_url")):
        found.append(f"next_url {doc['next_url']!r} is not another absolute URL")
    if feed_url is not None and doc.get("feed_url") != feed_url:
        found.append(f"feed_url {doc.get('feed_url')!r} is not the URL it was fetched from ({feed_url})")
    if "author" in doc:
        found.append("author is deprecated in 1.1: use authors")
    if "language" in doc and not LANGUAGE_TAG.match(str(doc["language"])):
        found.append(f"language {doc['language']!r} is not an RFC 5646 tag")
    for key in ("title", "description"):
        found += text_problems(key, doc.get(key))
    seen: dict[str, int] = {}
    for i, item in enumerate(doc.get("items") or []):
        found += _item_problems(i, item, seen)
    return found


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def _item_problems(index: int, item: object, seen: dict[str, int]) -> list[str]:
    where = f"items[{index}]"
    if not isinstance(item, dict):
        return []  # the schema said so
    found = []
    item_id = item.get("id")
    if not isinstance(item_id, str) or not item_id.strip():
        found.append(f"{where}: id {item_id!r} is not a non-blank string (readers drop the item)")
    elif item_id in seen:
        found.append(f"{where}: id {item_id!r} repeats items[{seen[item_id]}]")
    else:
        seen[item_id] = index
    if not is_absolute_http(item.get("url")):
        found.append(f"{where}: url missing or not absolute: {item.get('url')!r}")
    for key in ("external_url", "image", "banner_image"):
        if key in item and not is_absolute_http(item[key]):
            found.append(f"{where}: {key} {item[key]!r} is not an absolute http(s) URL")
    if "date_published" not in item and "date_modified" not in item:
        found.append(f"{where}: no date (readers substitute the time they fetched it)")
    dates = {}
    for key in ("date_published", "date_modified"):
        if key in item:
            value = item[key]
            if not isinstance(value, str) or not RFC3339.match(value):
                found.append(f"{where}: {key} {value!r} is not an RFC 3339 date-time with an offset")
            else:
                dates[key] = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    if len(dates) == 2 and dates["date_modified"] < dates["date_published"]:
        found.append(f"{where}: date_modified is before date_published")
    if "author" in item:
        found.append(f"{where}: author is deprecated in 1.1: use authors")
    if "language" in item and not LANGUAGE_TAG.match(str(item["language"])):
        found.append(f"{where}: language {item['language']!r} is not an RFC 5646 tag")
    for key in ("title", "summary", "content_text"):  # HTML belongs in content_html only
        if isinstance(item.get(key), str) and HTML_TAG.search(item[key]):
            found.append(f"{where}: {key} looks like HTML")
    for key in ("title", "summary", "content_text", "content_html"):
        found += text_problems(f"{where}.{key}", item.get(key))
    return found


def reader_problems(body: bytes) -> list[str]:
    """RSS 2.0 or Atom 1.0 as feedparser, a real reader, sees it: well-formed, and every entry usable."""
    parsed = feedparser.parse(body)
    found = []
    if parsed.bozo:
        found.append(f"not well-formed ({type(parsed.bozo_exception).__name__}: {parsed.bozo_exception})")
    is_rss = parsed.version.startswith("rss")
    if parsed.version not in ("rss20", "atom10"):
        found.append(f"feedparser reads it as {parsed.version or 'nothing it knows'}, not RSS 2.0 or Atom 1.0")
    feed = parsed.feed
    if not feed.get("title"):
        found.append("the feed has no title")
    if not is_absolute_http(feed.get("link")):
        found.append(f"the feed's link is not an absolute URL: {feed.get('link')!r}")
    elif feed.get("link") in {link.get("href") for link in feed.get("links", []) if link.get("rel") == "self"}:
        found.append("the feed's link is the feed itself, not its home page")
    if not (feed.get("language") or feed.get("title_detail", {}).get("language")):
        found.append("the feed declares no language")
    for key in ("title", "subtitle"):
        found += text_problems(f"feed {key}", feed.get(key))
    seen: set[str] = set()
    for i, entry in enumerate(parsed.entries):
        where = f"entry {i} ({entry.get('title')!r})"
        if not entry.get("id"):
            found.append(f"{where}: no id, so readers cannot tell it from the others")
        elif entry.id in seen:
            found.append(f"{where}: id {entry.id!r} repeats an earlier entry")
        seen.add(entry.get("id"))
        if not entry.get("title"):
            found.append(f"{where}: no title")
        if not is_absolute_http(entry.get("link")):
            found.append(f"{where}: link is not an absolute URL: {entry.get('link')!r}")
        if parsed.version == "atom10" and not (entry.get("author") or feed.get("author")):
            found.append(f"{where}: no author, nor has the feed (Atom requires one)")
        found += _entry_date_problems(where, entry, is_rss)
        texts = [("title", entry.get("title")), ("summary", entry.get("summary"))]
        texts += [("content", c.get("value")) for c in entry.get("content", [])]
        for key, value in texts:
            found += text_problems(f"{where} {key}", value)
    return found


def _entry_date_problems(where: str, entry, is_rss: bool) -> list[str]:
    keys = ("published",) if is_rss else ("published", "updated")  # feedparser copies an RSS pubDate to updated
    raws = {key: entry.get(key) for key in keys if entry.get(key)}
    if not raws:
        return [f"{where}: no date"]
    found = []
    for key, raw in raws.items():
        if entry.get(f"{key}_parsed") is None:
            found.append(f"{where}: {key} {raw!r} cannot be read")
        elif is_rss and not _is_rfc822(raw):
            found.append(f"{where}: {key} {raw!r} is not an RFC 822 date with a four-digit year")
        elif not is_rss and not RFC3339.match(raw):
            found.append(f"{where}: {key} {raw!r} is not an RFC 3339 date-time")
    return found


def _is_rfc822(raw: str) -> bool:
    """The form RSS 2.0 asks for, with a weekday that matches the date."""
    if not RFC822.match(raw):
        return False
    try:
        return parsedate_to_datetime(raw).strftime("%a") == raw[:3]
    except ValueError:
        return False


def feed_problems(path: str, body: bytes, feed_url: str | None = None) -> list[str]:
    """The checks that fit the document at path (by its extension, as the site names feeds)."""
    return json_feed_problems(body, feed_url) if path.split("?")[0].endswith(".json") else reader_problems(body)

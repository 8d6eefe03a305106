"""Files → Articles: finding article files, the seed's .txt layout, Markdown with front matter
(read by frontmatter.py), site chrome cut off (by chrome.py).

A file that cannot be published raises ArticleError with one line naming the file, the reason
and the fix; load_articles() logs it, lists it as skipped and goes on with the rest. A file skipped for what is wrong
in it is Broken (reading/scan.py keeps a published article's last good version while its file is so); one whose front
matter holds its article back (a draft flag, another system's release flag) is a plain Skipped, and leaves as a draft does.
"""
from __future__ import annotations

import codecs
import hashlib
import importlib.resources
import logging
import os
import re
import unicodedata
import zoneinfo
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import quote

from ..config import DEFAULT_CHROME_MARKERS, Settings
from ..model import Article, guid_key, is_placed, stable_id  # noqa: F401 - is_placed: read with the placements made here
from ..urls import ID_URL_MAX, article_path, url
from . import frontmatter, markup
from .chrome import strip_chrome
from .folder import FileBusyError, Folder, Skipped, Unreadable, quoted, shown
from .frontmatter import FrontMatterError
from .text import (
    DecodeError, clean_text, collapse_space, decode_bytes, detect_language, is_binary, is_visible, looks_binary,
)

log = logging.getLogger(__name__)

_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t]*\n)+")
CATEGORY_LONG = 100  # characters: a longer first line ending like a sentence is a paragraph, not a category
_SENTENCE_ENDS = (".", "!", "?", "؟", "…", "。")
# A front-matter id that already names the item for good: a UUID (bare or urn:uuid:) or a urn:, tag: or
# http(s): URI, kept as the GUID so a site moving from another system keeps its items' identities.
_UUID = re.compile(r"(urn:uuid:)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_URI = re.compile(r"(?:urn:[a-z0-9][a-z0-9-]{0,31}:|tag:|https?://)[^\s<>\"{}|\\^`\x00-\x1f\x7f-\x9f]+", re.IGNORECASE)
_URI_START = re.compile(r"urn:[a-z0-9][a-z0-9-]{0,31}:|tag:|https?://", re.IGNORECASE)  # an id written as a URI
_ID_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")
ID_PART_MAX = 200  # bytes in one part of an id: an article page is exported as a file named after it
# Bytes of a file a placement decodes, tried in turn: the front matter, category and title lines sit at its top.
# A category and a title line fit in the first 512 bytes of nearly every file, and decoding and cleaning 512 bytes
# instead of 2 KiB takes a placement from 47 to 33 µs (10,000 files of the benchmark corpus); longer front matter
# takes the second. A head that does not hold them (blank lines first, no `# Title` in it, not UTF-8) means the
# whole text.
PLACEMENT_HEADS = (512, 4096)
PLACEMENT_HEAD = PLACEMENT_HEADS[-1]  # the most a placement decodes of a file longer than that


class ArticleError(ValueError):
    """A file that cannot be published: str() is one line with the file, the reason and the fix."""

    def __init__(self, source: str, reason: str, fix: str, again: bool = False, leaves: bool = False):
        super().__init__(shown(f"{source}: {reason}; {fix}"))  # one printable line, whatever the file's name
        self.source, self.reason, self.fix = source, reason, fix
        self.again = again  # the file could not be read this time (folder.Unreadable): read it again at the next look
        # Its front matter holds the article back (`draft:` true or not true or false, `published: false`, a release
        # date under another name): it leaves publication as a draft does, whatever else is wrong with it (not Broken).
        self.leaves = leaves


class Broken(Skipped):
    """A file skipped for something wrong in it — empty, its front matter, its encoding, over the size limit, no title, a
    bad id — not for leaving publication: a brief bad save. While its file is so, the article it last read as stays
    published as it was, if it was (reading/scan.py Kept); the skip is reported all the same."""


@dataclass(frozen=True)
class Options:
    """What reading an article needs from the settings."""

    site_url: str
    time_zone: str = "UTC"
    site_language: str = "en"
    summary_length: int = 280
    chrome_markers: tuple[str, ...] = DEFAULT_CHROME_MARKERS
    # A digest of the time zone's rules as this machine has them (its tzdata): part of what a parse result is keyed by
    # (building/parsed.py), so a rule change (Mexico 2022, Greenland 2023) reads the dates written without a zone again.
    zone_rules: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> "Options":
        """Pick the reading options out of the settings."""
        return cls(
            site_url=settings.site_url,
            time_zone=settings.time_zone,
            site_language=settings.site_language,
            summary_length=settings.summary_length,
            chrome_markers=DEFAULT_CHROME_MARKERS + tuple(settings.chrome_markers),
            zone_rules=zone_rules(settings.time_zone),
        )


def zone_rules(zone: str) -> str:
    """A short digest of the TZif file zoneinfo reads for this zone (the system's, else the tzdata package's); "" when
    none is found (UTC without a file)."""
    for folder in zoneinfo.TZPATH:
        path = os.path.join(folder, *zone.split("/"))
        if os.path.isfile(path):
            with open(path, "rb") as file:
                return hashlib.sha256(file.read()).hexdigest()[:16]
    try:
        data = importlib.resources.files("tzdata.zoneinfo").joinpath(*zone.split("/")).read_bytes()
    except (ImportError, OSError, ValueError):
        return ""
    return hashlib.sha256(data).hexdigest()[:16]


def find_files(root: Path) -> tuple[list[Path], list[Skipped]]:
    """Article files under root, sorted, and the files passed over there with why."""
    files, passed = walk_files(root)
    return [root / rel for rel, _, _ in files], passed


def walk_files(root: Path) -> tuple[list[tuple[str, int, int]], list[Skipped]]:
    """(path inside root, size, mtime_ns) of every article file, sorted by path, and what was passed over."""
    found, passed = Folder(root).walk()
    return found, sorted(passed.values(), key=lambda s: s.source)


def read_article(path: Path | None, root: Path, options: Options, folder: Folder | None = None, busy: bool = False,
                 full: bool = True, source: str | None = None, expect: tuple[int, int] | None = None) -> Article:
    """Read one article file through the folder's rule; raise ArticleError when it cannot be published.

    busy: raise FileBusyError when another process still has the file open for writing.
    full=False: only what placement needs (see parse_article).
    source: the file's path inside root, given instead of `path` (a scan's 10,000 files: no pathlib each).
    expect: the (size, mtime_ns) it was listed with: FileChangedError (a FileBusyError) when it is not (Folder.read).
    """
    source = source if source is not None else path.relative_to(root).as_posix()
    data = (folder or Folder(root)).read(source, busy, expect)
    if isinstance(data, Skipped):
        raise ArticleError(data.source, data.reason, data.fix, again=isinstance(data, Unreadable))
    return parse_article(data, source, options) if full else parse_article(data, source, options, full=False)


def placement(article: Article) -> Article:
    """A full Article cut down to its placement (what parse_article(full=False) gives for the same file)."""
    return replace(article, body_html="", body_text="", summary="", lang="")


def content_hash(data: bytes) -> str:
    """What dates an article: its file's bytes, a UTF-8 byte order mark and CRLF line ends set aside (an editor
    that adds or drops them changes nothing). "b:" marks a hash of bytes; a state store from before (a hash of
    the decoded text) takes it over without calling the article updated (state.py)."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    if b"\r" in data:  # one byte is looked for at memchr's speed: a search for b"\r\n" costs more than the hash
        data = data.replace(b"\r\n", b"\n")
    return "b:" + hashlib.sha256(data).hexdigest()


def parse_article(data: bytes, source: str, options: Options, full: bool = True) -> Article:
    """Turn a file's bytes into an Article; source is its path inside the folder.

    full=False: a placement (a cold start's first pass): only what decides where the article goes and how
    it is dated — ID, GUID, categories, title, front matter dates, draft, content hash — with the same
    checks up to there; no body, summary or language (`lang` is "": is_placed), so no Markdown, chrome
    or language model. Its content hash is the full parse's (content_hash(): the bytes), and it decodes
    only the file's first PLACEMENT_HEADS bytes when they hold all it needs (_head), else the whole text.
    """
    if _utf8(source) != source:
        # A name that is not UTF-8 (os.fsdecode gives lone surrogates) cannot become an ID or a URL.
        raise ArticleError(source, "file name is not valid UTF-8", "rename the file")
    if not data or data.isspace():  # not data.strip(), which copies the file to find its first letter
        raise ArticleError(source, "empty or whitespace-only file", "write a category line and a title line, or delete it")
    if is_binary(data):
        raise ArticleError(source, "binary file, not text", "article files must be text saved as UTF-8")
    digest = content_hash(data)
    if not full:
        for size in PLACEMENT_HEADS:
            if (head := _head(data, size)) is None:
                break
            try:
                return _parse(head, source, options, digest, full=False, partial=True)
            except (ArticleError, _Partial):
                continue  # the whole text says what is wrong, or a longer head holds what this one did not
    try:
        text = clean_text(decode_bytes(data))
    except DecodeError as exc:
        raise ArticleError(source, str(exc).split(";")[0], "re-save the file as UTF-8") from None
    return _parse(text, source, options, digest, full)


class _Partial(Exception):
    """A file's head does not hold everything a placement needs: read the whole text."""


def _head(data: bytes, size: int) -> str | None:
    """The file's first `size` bytes as clean text, cut after its last whole line; None for a file no longer
    (the whole text costs no more) or a head that is not plain UTF-8 (the whole file's encoding is detected)."""
    if len(data) <= size:
        return None
    head = data[:size]
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8):]
    cut = head.rfind(b"\n")  # never inside a UTF-8 sequence: every byte of one is 0x80 or above
    if cut < 0 or b"\x00" in head:
        return None
    try:
        return clean_text(head[:cut + 1].decode("utf-8"))
    except UnicodeDecodeError:
        return None


def _parse(text: str, source: str, options: Options, digest: str, full: bool, partial: bool = False) -> Article:
    """parse_article() from the decoded text; partial: the text is the file's head only (raises _Partial when
    the head does not hold all a placement needs)."""
    if looks_binary(text):
        raise ArticleError(source, "binary file, not text (mostly unprintable characters)", "article files must be text saved as UTF-8")
    if not is_visible(text):
        if partial:
            raise _Partial
        raise ArticleError(source, "empty or whitespace-only file", "write a category line and a title line, or delete it")
    meta: dict = {}
    try:
        meta, body = frontmatter.split_front_matter(text)
        if meta:
            try:
                frontmatter.check_release_keys(meta, options.time_zone)
            except FrontMatterError as exc:  # a flag or a release time of another system: held back, not broken
                if partial:
                    raise _Partial from None
                raise ArticleError(source, exc.reason, exc.fix, leaves=True) from None
        ignored = frontmatter.ignored_keys(meta) if meta else []
        if ignored and not partial:
            log.debug("%s", shown(f"{source}: front matter keys ignored: {', '.join(ignored)}"))
        # The article page's URL resolves relative links and a relative `image:`: a placement needs it for the image only.
        # The page is named by `id:` where one is written (a link to `part-1` beside `id: analysis/part-2` is
        # /articles/analysis/part-1, not a path in the folder's layout that no page has).
        base_url = url(options.site_url, article_path(_identity(meta, source)[0] if meta.get("id") is not None
                                                      else _default_id(source))) if full or "image" in meta else ""
        if not full:
            return _place(meta, body, source, options, digest, base_url, partial)
        if source.lower().endswith(".md"):
            title, categories, body_html = _read_markdown(meta, body, source, options, base_url)
            paragraphs = markup.html_to_paragraphs(body_html)
        else:
            title, categories, paragraphs = _read_plain(meta, body, source, options)
            body_html = markup.paragraphs_to_html(paragraphs)
        return _build(meta, source, options, digest, title, categories, body_html, paragraphs, base_url)
    except (FrontMatterError, markup.MarkupError) as exc:
        if partial:
            raise _Partial from None
        raise ArticleError(source, exc.reason, exc.fix, leaves=_holds_back(meta)) from None
    except ArticleError as exc:  # no title, no category, a bad id: a draft so broken still leaves as a draft
        exc.leaves = exc.leaves or _holds_back(meta)
        raise


def _holds_back(meta: dict) -> bool:
    """Whether front matter read so far says `draft:` true, or holds a `draft:` that is not true or false: what the file
    is wrong in otherwise, it was saved to leave publication, never to keep its last good version published."""
    if not meta or meta.get("draft") is None:
        return False
    try:
        return frontmatter.read_draft(meta)
    except FrontMatterError:
        return True


def _read_plain(meta: dict, body: str, source: str, options: Options) -> tuple[str, list[str], str]:
    lines = [line.strip() for line in body.split("\n") if is_visible(line)]
    title, categories = _plain_head(meta, lines, source)
    paragraphs = [collapse_space(line) for line in strip_chrome(lines, options.chrome_markers)]
    return title, categories, paragraphs


def _plain_head(meta: dict, lines: list[str], source: str) -> tuple[str, list[str]]:
    """The title and categories of the .txt layout, taking the category and title lines off `lines`."""
    categories = frontmatter.read_categories(meta) if meta else []
    if not categories:
        if not lines:
            raise ArticleError(source, "no category line", "start the file with a category line, then a title line")
        line = lines.pop(0)
        category = frontmatter.clean_category(line)
        if not frontmatter.names_something(category):  # ":" or a "----------" rule names nothing
            raise ArticleError(source, f"category line {quoted(line)} has no name", "start the file with a category name such as News")
        if len(category) > CATEGORY_LONG and category.endswith(_SENTENCE_ENDS):
            # A long category line is kept (`check` warns of it); a long one that ends like a sentence is
            # the first paragraph of a file that has no category line.
            raise ArticleError(source, f"first line is {len(category)} characters and ends like a sentence: a paragraph, not a category",
                               "start the file with a category line, then a title line")
        try:
            frontmatter.check_name_length("category", category)
        except frontmatter.FrontMatterError as exc:
            raise ArticleError(source, exc.reason, exc.fix) from None
        categories = [category]
    title = meta.get("title")
    if title is None:
        if not lines:
            raise ArticleError(source, f"category {quoted(categories[0])} with no title", "put the title on the line after the category")
        title = lines.pop(0)
    return _clean_title(title, source), categories


def _place(meta: dict, body: str, source: str, options: Options, digest: str, base_url: str, partial: bool = False) -> Article:
    """A placement: _read_plain's or _read_markdown's title and categories, _build's identity and dates.
    partial: body is the head of the file's text only; raise _Partial when what is needed is not in it."""
    if source.lower().endswith(".md"):
        title = meta.get("title")
        if title is None:
            heading = _h1(_LEADING_BLANK_LINES.sub("", body))
            if not heading:
                if partial:
                    raise _Partial
                raise ArticleError(source, "no title", "add `title:` to the front matter or start the text with a `# Title` line")
            title = markup.heading_text(heading[0])
        title, categories = _clean_title(title, source), _markdown_categories(meta, source)
    else:
        head = []  # the first two visible lines are all _read_plain takes before the paragraphs
        for line in body.split("\n"):
            if is_visible(line):
                head.append(line.strip())
                if len(head) == 2:
                    break
        if partial and len(head) < 2:  # perhaps the front matter names both; the whole text says for sure
            raise _Partial
        title, categories = _plain_head(meta, head, source)  # the title cleaned already
    return _build(meta, source, options, digest, title, categories, "", [], base_url, placed=True)


def _h1(text: str) -> tuple[str, int] | None:
    """The title of a `# Title` first line (trailing spaces, tabs and closing #s dropped) and where that line ends.

    What the regular expression \\A#[ \\t]+(.+?)[ \\t#]*$ finds, in one pass: its lazy group before a run of spaces
    backtracked once a character (a 96 KB heading of spaces held a refresh for 30 s, a 1 MiB one 45 min)."""
    end = text.find("\n")
    line = text if end < 0 else text[:end]
    if not line.startswith("#"):
        return None
    after = line[1:].lstrip(" \t")
    spaces = len(line) - 1 - len(after)
    if not spaces or (not after and spaces < 2):  # the group takes one character at least, a space if need be
        return None
    return (after.rstrip(" \t#") or after[:1]) if after else line[-1], len(line)


def _markdown_categories(meta: dict, source: str) -> list[str]:
    """A Markdown file's categories: its front matter's, else its top folder's; one rule for placement and full read."""
    categories = frontmatter.read_categories(meta)
    if not categories:
        folder = source.split("/")[0] if "/" in source else ""
        categories = [c for c in [frontmatter.clean_category(folder)] if frontmatter.names_something(c)]
        if not categories and folder:  # in a folder, whose name names no category (`★★★★★`, a rule of tatweel)
            raise ArticleError(source, f"no category, and its folder's name {quoted(folder)} names none",
                               "add `category: …` to the front matter or rename the folder to the category's name")
        if not categories:
            raise ArticleError(source, "no category", "add `category: …` to the front matter or move the file into a category folder")
    return categories


def _read_markdown(meta: dict, body: str, source: str, options: Options, base_url: str) -> tuple[str, list[str], str]:
    title = meta.get("title")
    heading = _h1(_LEADING_BLANK_LINES.sub("", body))
    plain = markup.heading_text(heading[0]) if heading else None
    if title is None:
        if not heading:
            raise ArticleError(source, "no title", "add `title:` to the front matter or start the text with a `# Title` line")
        title = plain
    if heading and collapse_space(str(title)) in (collapse_space(heading[0]), plain):
        # The title is the item's title in every feed; repeated as the body's first heading it would show twice.
        body = _LEADING_BLANK_LINES.sub("", body)[heading[1]:]
    categories = _markdown_categories(meta, source)
    lines = body.split("\n")
    filled = [i for i, line in enumerate(lines) if line.strip()]
    kept = strip_chrome([lines[i] for i in filled], options.chrome_markers)
    if len(kept) < len(filled):
        # strip_chrome keeps a prefix: cut the source after the last kept line, so Markdown before it is untouched.
        body = "\n".join(lines[: filled[len(kept) - 1] + 1]) if kept else ""
    return _clean_title(title, source), categories, markup.markdown_to_html(body, base_url)


def _build(meta: dict, source: str, options: Options, digest: str, title: str, categories: list[str],
           body_html: str, paragraphs: list[str], base_url: str, placed: bool = False) -> Article:
    body_text = "\n\n".join(paragraphs)
    if placed:  # read_language's check still runs: a bad tag is skipped now, not after the first pages
        frontmatter.read_language(meta)
        summary, lang = "", ""
    else:
        summary = collapse_space(frontmatter.read_text(meta, "summary") or "")
        if not is_visible(summary):
            # A body's first block may be a subheading or a table (Markdown's): its first paragraph is the lead.
            lead = markup.lead_paragraph(body_html) or (paragraphs[0] if paragraphs else None)
            summary = markup.shorten(lead, options.summary_length) if lead else title
        lang = frontmatter.read_language(meta) or detect_language(title + "\n" + body_text, options.site_language)
    article_id, guid = _identity(meta, source)
    return Article(
        id=article_id,
        guid=guid,
        source=source,
        title=title,
        categories=tuple(dict.fromkeys(categories)),
        body_html=body_html,
        body_text=body_text,
        summary=summary,
        lang=lang,
        content_hash=digest,
        **_front_matter_fields(meta, options, base_url),
    )


# What a file without front matter (most .txt files) has of the fields read from it.
_NO_FRONT_MATTER_FIELDS = {"published": None, "updated": None, "tags": (), "author": None, "image": None, "draft": False,
                           "image_alt": None}


def _front_matter_fields(meta: dict, options: Options, base_url: str) -> dict[str, Any]:
    """The Article's fields read from the front matter alone, in the order they are checked."""
    if not meta:  # one test, not six reads of an empty mapping
        return _NO_FRONT_MATTER_FIELDS
    return {
        "published": frontmatter.read_date(meta, "date", options.time_zone),
        "updated": frontmatter.read_date(meta, "updated", options.time_zone),
        "tags": frontmatter.read_tags(meta),
        "author": frontmatter.read_name(meta, "author"),
        "image": frontmatter.read_image(meta, base_url),
        "draft": frontmatter.read_draft(meta),
        "image_alt": frontmatter.read_name(meta, "image_alt"),
    }


def _clean_title(title: Any, source: str) -> str:
    cleaned = collapse_space(frontmatter.as_text(title, "title"))
    if not is_visible(cleaned):
        raise ArticleError(source, "title is empty", "give the article a title")
    return cleaned


def _identity(meta: dict, source: str) -> tuple[str, str]:
    """(id, GUID): the id names the article's page and must be a safe path; the GUID names the item for good."""
    written = (frontmatter.read_text(meta, "id") or "").strip()
    if not written:  # nearly every file: named after its path
        default = _default_id(source)
        return _safe_id(default, source), stable_id(default)
    if _UUID.fullmatch(written) and not written.lower().startswith("urn:"):
        return _safe_id(written, source), "urn:uuid:" + written
    if _UUID.fullmatch(written) or _URI_START.match(written):  # one that is not a valid URI is refused, not a path
        _check_uri(written, source)
        return _safe_id(_default_id(source), source), written  # the page is named after the file
    return _safe_id(written, source, written=True), stable_id(written)


# What the W3C validator, and the readers that check, take for the URI an id is written as (an entry's atom:id):
# RFC 4151's tag: URI (an authority, a date, a specific part), a urn:uuid: with a UUID, and ASCII only.
_TAG = re.compile(r"tag:[^,\s]+,\d{4}(?:-\d{2}(?:-\d{2})?)?:\S*", re.IGNORECASE)


def _check_uri(written: str, source: str) -> None:
    """An id written as a URI is published as the item's GUID as it is: refuse one that is not a valid URI."""
    lower = written.lower()
    reason = ("is not a UUID after urn:uuid:" if lower.startswith("urn:uuid:") and not _UUID.fullmatch(written)
              else "has characters a URI may not hold (an IRI)" if not written.isascii()
              else "has characters a URI may not hold (a space, a quote, <, >, {, }, |, \\, ^ or `)" if not _URI.fullmatch(written)
              else "is not a tag: URI (tag:authority,date:name, RFC 4151)" if lower.startswith("tag:") and not _TAG.fullmatch(written)
              else None)
    if reason is not None:
        raise ArticleError(source, f"id {quoted(written)} {reason}",
                           "write `id:` as a valid URI (percent-encode other characters, e.g. tag:news.example,2026:rates), "
                           "or as names joined by /")


def _safe_id(article_id: str, source: str, written: bool = False) -> str:
    """The id if it is a safe path — parts joined by /, none empty, none starting with a dot — else ArticleError."""
    # The id becomes /articles/<id> and a file of the static export: `../feed.rss` must not reach /feed.rss.
    parts = article_id.split("/")
    reason = ("has control characters" if _ID_CONTROLS.search(article_id)
              else "has a backslash" if "\\" in article_id
              else "has an empty part (a leading, trailing or doubled /)" if not all(parts)
              else "has a part that is . or .. or starts with a dot" if "." in article_id and any(p.startswith(".") for p in parts)
              else f"has a part longer than {ID_PART_MAX} bytes" if any(len(p.encode("utf-8", "surrogateescape")) > ID_PART_MAX for p in parts)
              else None)
    long = reason is None and _too_long_for_a_url(article_id)
    if not reason and not long:
        return article_id
    if long:
        fix = ("shorten `id:`" if written else "give the file a shorter name or fewer folders, or give it a shorter `id:` "
               "in the front matter")
        raise ArticleError(source, f"{'id' if written else 'the id made from the file name'} {quoted(article_id[:60] + '…')} {long}", fix)
    if written:
        raise ArticleError(source, f"id {quoted(article_id)} {reason}", "write `id:` as names joined by /, such as economy/rates-2026, or as a urn:, tag: or https: URI")
    raise ArticleError(source, f"the id {quoted(article_id)} made from the file's path {reason}", "rename the file, or give it an `id:` in the front matter")


def _too_long_for_a_url(article_id: str) -> str | None:
    """Why an id is too long for its page's URL and a delta's next link (urls.ID_URL_MAX), else None."""
    if len(article_id) * 12 <= ID_URL_MAX:  # a character is at most 4 bytes, each %XX: no need to encode it
        return None
    length = len(quote(article_id, safe="/"))  # as its URLs write it (urls.py)
    if length <= ID_URL_MAX:
        return None
    return (f"is {length:,} characters long in a URL (percent-encoded), over {ID_URL_MAX:,}: servers refuse a request "
            "for its page (414), and a reader walking a delta past it stops there")


def _default_id(source: str) -> str:
    # NFC: a name typed on macOS is stored decomposed; the ID must not depend on where the file was made.
    return unicodedata.normalize("NFC", source.rsplit(".", 1)[0])


def _utf8(source: str) -> str:
    """The name with bytes that are not UTF-8 shown as U+FFFD."""
    return source.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def read_or_skip(path: Path | None, root: Path, options: Options, folder: Folder | None = None, busy: bool = False,
                 full: bool = True, source: str | None = None, expect: tuple[int, int] | None = None) -> Article | Skipped:
    """Read one file: an Article, or Skipped with why (Broken for what is wrong in it, Unreadable for a read that failed this
    time); raises only FileBusyError, when busy is set (or expect, read_article)."""
    source = source if source is not None else path.relative_to(root).as_posix()
    try:
        return read_article(None, root, options, folder, busy, full, source, expect)
    except FileBusyError:
        raise
    except ArticleError as exc:
        return (Unreadable if exc.again else Skipped if exc.leaves else Broken)(exc.source, exc.reason, exc.fix)
    except Exception as exc:  # noqa: BLE001 - one bad file must never stop the others being published
        log.debug("reading %s failed", shown(source), exc_info=True)
        return Broken(source, f"could not be read ({type(exc).__name__}: {exc})", "report it as a feedsvc bug, with the file")


def iter_articles(root: Path, options: Options) -> Iterator[Article | Skipped]:
    """Every article file under root read in order: an Article, or Skipped with why."""
    folder = Folder(root)
    files, passed = folder.walk()
    yield from sorted(passed.values(), key=lambda s: s.source)
    for source, _, _ in files:
        yield read_or_skip(root / source, root, options, folder)


def unique_ids(items: Iterable[Article | Skipped], owners: Mapping[str, str] | None = None,
               guid_owners: Mapping[str, str] | None = None) -> tuple[list[Article], list[Skipped]]:
    """Articles with one file per ID, in the given order; skips, and the other files of a repeated ID, as Skipped.

    owners: the file that owns each ID (its first owner, from the state store); without one, the first
    file in the given order keeps the ID. An owner that is present but cannot be read now keeps it too.
    guid_owners: likewise the file that keeps each GUID several IDs share (`id: <uuid>` and `id: urn:uuid:<uuid>`, or
    one URI written as the id of two files), by model.guid_key; without one, the first in the given order.
    """
    items = list(items)
    owners = owners or {}
    groups: dict[str, list[Article]] = {}
    for item in items:
        if isinstance(item, Article):
            groups.setdefault(item.id, []).append(item)
    keepers: dict[str, Article | None] = {}
    for id_, group in groups.items():
        owner = owners.get(id_)
        keepers[id_] = group[0] if owner is None else next((a for a in group if a.source == owner), None)
    articles: list[Article] = []
    skipped: list[Skipped] = []
    guid_owners = guid_owners or {}
    guids: dict[str, Article] = {}  # `id: <uuid>` and `id: urn:uuid:<uuid>` differ as IDs but are one GUID
    for item in items:
        if isinstance(item, Skipped):
            skipped.append(item)
            continue
        keeper = keepers[item.id]
        guid = guid_key(item.guid)
        other = guid_owners.get(guid, item.source)
        if keeper is item and other != item.source:
            skipped.append(Skipped(item.source, f"same GUID {item.guid!r} as {other}, which had it first",
                                   "give this file its own `id:` in the front matter"))
        elif keeper is item and guid in guids:
            skipped.append(Skipped(item.source, f"same GUID {item.guid!r} as {guids[guid].source}",
                                   "give one of them another `id:` in the front matter"))
        elif keeper is item:
            guids[guid] = item
            articles.append(item)
        elif keeper is None:
            skipped.append(Skipped(item.source, f"same id {item.id!r} as {owners[item.id]}, which had it first (and cannot be read now)",
                                   "give this file its own `id:` in the front matter, or fix the other file"))
        elif _twins(item.source, keeper.source):
            skipped.append(Skipped(item.source, f"same id {item.id!r} as {keeper.source}, which had it first: the same name in "
                                   f"another Unicode form ({_form(item.source)}; that one {_form(keeper.source)})",
                                   "delete the copy you do not want (macOS and some tools write names decomposed)"))
        else:
            skipped.append(Skipped(item.source, f"same id {item.id!r} as {keeper.source}, which had it first",
                                   "give this file its own `id:` in the front matter"))
    return articles, skipped


def _twins(one: str, other: str) -> bool:
    """Whether two file names differ only in their Unicode form (café as é, or as e and a combining accent): printed
    alike, so the line says which is which."""
    return one != other and unicodedata.normalize("NFC", one) == unicodedata.normalize("NFC", other)


def _form(name: str) -> str:
    """How a name's accented letters are written: composed (NFC) or decomposed (NFD: a letter, then its marks)."""
    return "composed, NFC" if unicodedata.is_normalized("NFC", name) else "decomposed, NFD"


def load_articles(root: Path, options: Options) -> tuple[list[Article], list[Skipped]]:
    """Read the whole folder: articles with unique IDs, and every skipped file (each logged once)."""
    articles, skipped = unique_ids(iter_articles(root, options))
    for skip in skipped:
        log.warning("skipped %s", skip)
    return articles, skipped

"""Files → Articles: finding article files, the seed's .txt layout, Markdown with front matter.

A file that cannot be published raises ArticleError with one line naming the file, the reason
and the fix; load_articles() logs it, lists it as skipped and goes on with the rest.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote, urljoin, urlsplit
from zoneinfo import ZoneInfo

import yaml
from dateutil import parser as dateparser

from . import markup
from .config import DEFAULT_CHROME_MARKERS
from .model import Article
from .text import (
    DecodeError, clean_text, collapse_space, decode_bytes, detect_language, drop_unsafe_chars, is_binary, is_visible,
    looks_binary,
)

log = logging.getLogger(__name__)

EXTENSIONS = (".txt", ".md")
MAX_FILE_BYTES = 5 * 1024 * 1024
# Editor leftovers: Emacs (foo~, #foo#, .#foo), Vim (.foo.swp … .swa), Kate, Office lock files, and
# the .bak/.orig/.rej/.tmp/.part/.save copies tools leave beside a file.
_BACKUP = re.compile(
    r"(~|\.sw[a-p]|\.kate-swp|\.bak|\.orig|\.rej|\.tmp|\.temp|\.part|\.save)$|^#.*#$|^\.#|^~\$", re.IGNORECASE
)
_FRONT_MATTER_OPEN = re.compile(r"---[ \t]*(?:\n|\Z)")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t]*\n)+")
_H1 = re.compile(r"\A#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_FRONT_MATTER_KEYS = {
    "title", "date", "updated", "category", "categories", "tags", "author", "summary", "image", "id", "lang", "draft",
}
# Arabic marks that scrapes spell either way (tanween, harakat, tatweel) and alef forms.
_ARABIC_MARKS = re.compile("[\u0640\u064b-\u065f\u0670]")
_ALEF = str.maketrans("أإآٱ", "اااا")
# A chrome line is a marker, perhaps followed by a few words ("Follow us on Facebook, X and YouTube";
# "… will not be published. Required fields are marked *"). A longer line that starts with a marker
# is a sentence of the article ("Related articles on this topic were published by Reuters last week").
_CHROME_TAIL_WORDS = 8
_CHROME_TAIL_CHARS = 60
_HEADING_TAIL_WORDS = 2  # "Related Articles", "Follow us on Facebook": may head a list of short lines
_FILLER_WINDOW = 12  # related-article titles listed under such a heading
_FILLER_CHARS = 160
_SENTENCE_ENDS = (".", "!", "?", "؟", "。", "…")
_MD_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_MD_DECORATION = str.maketrans("", "", "*_[]`")
_FOLD_STRIP = " .:،؛…!-#>+•·|="
_CATEGORY_MAX = 100  # a longer first line is a paragraph: the file has no category line
_NO_YEAR = datetime(1, 1, 1)  # dateutil fills missing parts from this; year 1 means none was written
_TRUE_WORDS, _FALSE_WORDS = {"true", "yes", "on"}, {"false", "no", "off"}


class ArticleError(ValueError):
    """A file that cannot be published: str() is one line with the file, the reason and the fix."""

    def __init__(self, source: str, reason: str, fix: str):
        super().__init__(f"{source}: {reason}; {fix}")
        self.source, self.reason, self.fix = source, reason, fix


@dataclass(frozen=True)
class Skipped:
    """A file left out of the feeds, and why."""

    source: str
    reason: str
    fix: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}; {self.fix}"


@dataclass(frozen=True)
class Options:
    """What reading an article needs from the settings."""

    site_url: str
    time_zone: str = "UTC"
    site_language: str = "en"
    summary_length: int = 280
    chrome_markers: tuple[str, ...] = DEFAULT_CHROME_MARKERS

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> "Options":
        """Pick the reading options out of the settings."""
        return cls(
            site_url=settings["SITE_URL"],
            time_zone=settings["TIME_ZONE"],
            site_language=settings["SITE_LANGUAGE"],
            summary_length=settings["SUMMARY_LENGTH"],
            chrome_markers=DEFAULT_CHROME_MARKERS + tuple(settings["CHROME_MARKERS"]),
        )


def find_files(root: Path) -> tuple[list[Path], list[Skipped]]:
    """Article files under root, sorted, and the files passed over there with why."""
    found: list[Path] = []
    passed: list[Skipped] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for name in sorted(dirnames):
            if name.startswith("."):
                passed.append(Skipped(_rel(here / name, root) + "/", "hidden folder", "not read; rename it without the leading dot to publish its files"))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = here / name
            skip = _file_skip_reason(name)
            if skip:
                passed.append(Skipped(_rel(path, root), *skip))
            elif path.is_file():
                found.append(path)
            else:  # a broken symlink, a socket or a pipe (reading a pipe would block the refresh)
                passed.append(Skipped(_rel(path, root), "not a regular file", "replace it with the article file itself"))
    return sorted(found), passed


def _file_skip_reason(name: str) -> tuple[str, str] | None:
    if name.startswith("."):
        return "hidden file", "not read; rename it without the leading dot to publish it"
    if _BACKUP.search(name):
        return "editor backup or swap file", "not read; save the article under a .txt or .md name"
    if not name.lower().endswith(EXTENSIONS):
        return "not an article file", "only .txt and .md files are published; rename it if it is an article"
    return None


def read_article(path: Path, root: Path, options: Options) -> Article:
    """Read one article file; raise ArticleError when it cannot be published."""
    source = path.relative_to(root).as_posix()
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ArticleError(_shown(source), f"file is {size} bytes, over the {MAX_FILE_BYTES} byte limit", "split it or remove embedded data")
        data = path.read_bytes()
    except OSError as exc:
        raise ArticleError(_shown(source), f"cannot be read ({exc.strerror or exc})", "check the file's permissions") from None
    return parse_article(data, source, options)


def parse_article(data: bytes, source: str, options: Options) -> Article:
    """Turn a file's bytes into an Article; source is its path inside the folder."""
    if _shown(source) != source:
        # A name that is not UTF-8 (os.fsdecode gives lone surrogates) cannot become an ID or a URL.
        raise ArticleError(_shown(source), "file name is not valid UTF-8", "rename the file")
    if not data.strip():
        raise ArticleError(source, "empty or whitespace-only file", "write a category line and a title line, or delete it")
    if is_binary(data):
        raise ArticleError(source, "binary file, not text", "article files must be text saved as UTF-8")
    try:
        text = clean_text(decode_bytes(data))
    except DecodeError as exc:
        raise ArticleError(source, str(exc).split(";")[0], "re-save the file as UTF-8") from None
    if looks_binary(text):
        raise ArticleError(source, "binary file, not text (mostly unprintable characters)", "article files must be text saved as UTF-8")
    if not is_visible(text):
        raise ArticleError(source, "empty or whitespace-only file", "write a category line and a title line, or delete it")
    meta, body = _split_front_matter(text, source)
    is_markdown = source.lower().endswith(".md")
    base_url = options.site_url + "/articles/" + quote(_default_id(source), safe="/")
    if is_markdown:
        title, categories, body_html = _read_markdown(meta, body, source, options, base_url)
    else:
        title, categories, body_html = _read_plain(meta, body, source, options)
    paragraphs = markup.html_to_paragraphs(body_html)
    return _build(meta, source, options, text, title, categories, body_html, paragraphs, base_url)


def _read_plain(meta: dict, body: str, source: str, options: Options) -> tuple[str, list[str], str]:
    lines = [line.strip() for line in body.split("\n") if is_visible(line)]
    categories = _categories(meta, source)
    if not categories:
        if not lines:
            raise ArticleError(source, "no category line", "start the file with a category line, then a title line")
        line = lines.pop(0)
        category = _clean_category(line)
        if not any(c.isalnum() for c in category):  # ":" or a "----------" rule names nothing
            raise ArticleError(source, f"category line {line!r} has no name", "start the file with a category name such as News")
        if len(category) > _CATEGORY_MAX:
            raise ArticleError(source, f"first line is {len(category)} characters, too long for a category", "start the file with a short category line, then a title line")
        categories = [category]
    title = meta.get("title")
    if title is None:
        if not lines:
            raise ArticleError(source, f"category {categories[0]!r} with no title", "put the title on the line after the category")
        title = lines.pop(0)
    lines = strip_chrome(lines, options.chrome_markers)
    return _clean_title(title, source), categories, markup.paragraphs_to_html(lines)


def _read_markdown(meta: dict, body: str, source: str, options: Options, base_url: str) -> tuple[str, list[str], str]:
    title = meta.get("title")
    heading = _H1.search(_LEADING_BLANK_LINES.sub("", body))
    if title is None:
        if not heading:
            raise ArticleError(source, "no title", "add `title:` to the front matter or start the text with a `# Title` line")
        title = heading.group(1)
    if heading and collapse_space(heading.group(1)) == collapse_space(str(title)):
        # The title is the item's title in every feed; repeated as the body's first heading it would show twice.
        body = _LEADING_BLANK_LINES.sub("", body)[heading.end():]
    categories = _categories(meta, source)
    if not categories:
        folder = source.split("/")[0] if "/" in source else ""
        categories = [c for c in [_clean_category(folder)] if any(ch.isalnum() for ch in c)]
        if not categories:
            raise ArticleError(source, "no category", "add `category: …` to the front matter or move the file into a category folder")
    lines = body.split("\n")
    filled = [i for i, line in enumerate(lines) if line.strip()]
    kept = strip_chrome([lines[i] for i in filled], options.chrome_markers)
    if len(kept) < len(filled):
        # strip_chrome keeps a prefix: cut the source after the last kept line, so Markdown before it is untouched.
        body = "\n".join(lines[: filled[len(kept) - 1] + 1]) if kept else ""
    return _clean_title(title, source), categories, markup.markdown_to_html(body, base_url)


def _build(meta: dict, source: str, options: Options, text: str, title: str, categories: list[str],
           body_html: str, paragraphs: list[str], base_url: str) -> Article:
    body_text = "\n\n".join(paragraphs)
    summary = collapse_space(_optional_str(meta, "summary", source) or "")
    if not is_visible(summary):
        summary = markup.shorten(paragraphs[0], options.summary_length) if paragraphs else title
    lang = _language_tag(meta, source) or detect_language(title + "\n" + body_text, options.site_language)
    article_id = (_optional_str(meta, "id", source) or "").strip() or _default_id(source)
    if any(ord(c) < 32 for c in article_id):
        raise ArticleError(source, "id has control characters", "give `id:` a printable value")
    return Article(
        id=article_id,
        source=source,
        title=title,
        categories=tuple(dict.fromkeys(categories)),
        body_html=body_html,
        body_text=body_text,
        summary=summary,
        lang=lang,
        content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        published=_date(meta, "date", source, options.time_zone),
        updated=_date(meta, "updated", source, options.time_zone),
        tags=tuple(dict.fromkeys(t for t in map(collapse_space, _str_list(meta, "tags", source)) if t)),
        author=collapse_space(_optional_str(meta, "author", source) or "") or None,
        image=_image_url(meta, source, base_url),
        draft=_draft(meta, source),
    )


def strip_chrome(lines: list[str], markers: tuple[str, ...]) -> list[str]:
    """Drop the run of site-chrome lines at the end, and the short lines listed under a chrome heading."""
    folded = tuple(dict.fromkeys(m for m in map(_fold, markers) if m))

    def tail_words(line: str) -> int | None:
        """Words after the marker the line starts with; None when it starts with none."""
        f = _fold(line)
        best = None
        for m in folded:
            if f == m:
                return 0
            # The marker must end at a word boundary: "Show Moreover, …" is not "Show More".
            if f.startswith(m) and not f[len(m)].isalnum():
                tail = f[len(m):]
                words = sum(1 for w in tail.split() if any(c.isalnum() for c in w))
                if len(tail) <= _CHROME_TAIL_CHARS and words <= _CHROME_TAIL_WORDS:
                    best = words if best is None else min(best, words)
        return best

    tails = [tail_words(line) for line in lines]
    end = len(lines)
    while end > 0:
        if tails[end - 1] is not None:
            end -= 1
            continue
        # Not chrome itself, but maybe an item listed under a chrome heading ("Related Articles" and the
        # related titles below it, "Follow us on" and the network names): the heading must be near, on a
        # line of its own, with only short lines from it down to here.
        heading = next((i for i in range(end - 2, max(end - 2 - _FILLER_WINDOW, -1), -1) if tails[i] is not None), None)
        if (heading is not None and tails[heading] <= _HEADING_TAIL_WORDS
                and all(_is_list_item(lines[i]) for i in range(heading + 1, end))):
            end = heading
            continue
        break
    return lines[:end]


def _is_list_item(line: str) -> bool:
    """Short and not ending like a sentence: a related article's title or a network's name, not a paragraph."""
    folded = _fold(line)
    return len(folded) <= _FILLER_CHARS and not line.rstrip(" *_)]\"'»”").endswith(_SENTENCE_ENDS)


def _fold(line: str) -> str:
    """A line as compared with markers: no harakat or tatweel, one alef, no case, no Markdown decoration."""
    line = _MD_LINK_TARGET.sub("", line)
    line = _ARABIC_MARKS.sub("", line).translate(_ALEF).translate(_MD_DECORATION).casefold()
    return " ".join(line.split()).strip(_FOLD_STRIP)


def _split_front_matter(text: str, source: str) -> tuple[dict, str]:
    stripped = _LEADING_BLANK_LINES.sub("", text)
    if not _FRONT_MATTER_OPEN.match(stripped):  # "----------" as a first line is a rule, not front matter
        return {}, text
    match = _FRONT_MATTER.match(stripped)
    if not match:
        raise ArticleError(source, "front matter opened with --- is never closed", "end the front matter block with a --- line")
    fix = "fix the YAML between the --- lines (quote values that contain ': ')"
    try:
        meta = yaml.safe_load(match.group(1) or "") or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 2}" if where is not None else ""
        raise ArticleError(source, f"front matter is not valid YAML{line}", fix) from None
    except ValueError as exc:  # a timestamp that is no date: `date: 2025-02-30`
        raise ArticleError(source, f"front matter is not valid YAML ({exc})", fix) from None
    except RecursionError:
        raise ArticleError(source, "front matter is not valid YAML (nested too deeply)", fix) from None
    if not isinstance(meta, dict):
        raise ArticleError(source, "front matter is not a set of `key: value` lines", "write one `key: value` per line between the --- lines")
    # YAML escapes ("\u001b", "\u202e") make characters the text clean-up never saw.
    meta = {str(k).lower(): _clean_value(v) for k, v in meta.items()}
    unknown = sorted(set(meta) - _FRONT_MATTER_KEYS)
    if unknown:
        log.debug("%s: front matter keys ignored: %s", source, ", ".join(unknown))
    return meta, stripped[match.end():]


def _clean_value(value: Any) -> Any:
    if isinstance(value, str):
        return drop_unsafe_chars(value)
    if isinstance(value, list):
        return [_clean_value(v) for v in value]
    return value


def _categories(meta: dict, source: str) -> list[str]:
    names = _str_list(meta, "categories", source) + _str_list(meta, "category", source)
    cleaned = [_clean_category(n) for n in names]
    return [c for c in cleaned if any(ch.isalnum() for ch in c)]


def _clean_category(name: str) -> str:
    # Folder names come straight from the file system: NFD on macOS, so normalised here too.
    return collapse_space(drop_unsafe_chars(name)).rstrip(":：").strip()


def _clean_title(title: Any, source: str) -> str:
    if not isinstance(title, (str, int, float)) or isinstance(title, bool):
        raise ArticleError(source, "title is not text", "write `title:` as one line of text")
    cleaned = collapse_space(str(title))
    if not is_visible(cleaned):
        raise ArticleError(source, "title is empty", "give the article a title")
    return cleaned


def _optional_str(meta: dict, key: str, source: str) -> str | None:
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ArticleError(source, f"{key} is not text", f"write `{key}:` as one line of text")
    return str(value)


def _str_list(meta: dict, key: str, source: str) -> list[str]:
    value = meta.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        # `tags: a, b` and `categories: News, World` are lists written on one line; `category:` is one name.
        return [v for v in (part.strip() for part in value.split(",")) if v] if key in ("tags", "categories") else [value]
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        return [str(v) for v in value if str(v).strip()]
    raise ArticleError(source, f"{key} is not text or a list of text", f"write `{key}: [a, b]` or one name")


def _language_tag(meta: dict, source: str) -> str | None:
    lang = _optional_str(meta, "lang", source)
    if lang is None or not lang.strip():
        return None
    tag = lang.strip().replace("_", "-")
    if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*", tag):
        raise ArticleError(source, f"lang {lang!r} is not a language tag", "write a BCP 47 tag such as ar, en or fr-CA")
    # BCP 47 case conventions: language lower, script title, region upper (ar-EG, zh-Hant-TW).
    first, *rest = tag.split("-")
    parts = [first.lower()] + [p.upper() if len(p) == 2 else p.title() if len(p) == 4 else p.lower() for p in rest]
    return "-".join(parts)


def _date(meta: dict, key: str, source: str, zone: str) -> datetime | None:
    value = meta.get(key)
    if value is None:
        return None
    fix = f"write `{key}: 2025-03-01 14:30` (ISO 8601, optionally with a zone)"
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    elif isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
        try:
            # Parts left out are filled from _NO_YEAR, never from today, so the same file gives the same date.
            parsed = dateparser.parse(str(value), default=_NO_YEAR)
        except (ValueError, OverflowError, TypeError):
            raise ArticleError(source, f"{key} {value!r} is not a date", fix) from None
        if parsed.year == _NO_YEAR.year:
            raise ArticleError(source, f"{key} {value!r} has no year", fix)
    else:
        raise ArticleError(source, f"{key} {value!r} is not a date", fix)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    try:
        utc = parsed.astimezone(ZoneInfo("UTC"))
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not 1970 <= utc.year <= 9999:
        raise ArticleError(source, f"{key} {value!r} is out of range", f"write `{key}:` as a date between 1970 and 9999")
    return utc


def _draft(meta: dict, source: str) -> bool:
    draft = meta.get("draft")
    if draft is None or isinstance(draft, bool):
        return bool(draft)
    word = str(draft).strip().lower()
    if word in _TRUE_WORDS | _FALSE_WORDS:
        return word in _TRUE_WORDS
    raise ArticleError(source, f"draft {draft!r} is not true or false", "write `draft: true` or `draft: false`")


def _image_url(meta: dict, source: str, base_url: str) -> str | None:
    image = (_optional_str(meta, "image", source) or "").strip()
    if not image:
        return None
    try:
        url = urljoin(base_url, image)
        usable = urlsplit(url).scheme in ("http", "https")
    except ValueError:
        usable = False
    if not usable:
        raise ArticleError(source, f"image {image!r} is not an http(s) URL", "write `image:` as https://… or a path on the site")
    return url


def _default_id(source: str) -> str:
    # NFC: a name typed on macOS is stored decomposed; the ID must not depend on where the file was made.
    return unicodedata.normalize("NFC", source.rsplit(".", 1)[0])


def _rel(path: Path, root: Path) -> str:
    return _shown(path.relative_to(root).as_posix())


def _shown(source: str) -> str:
    """A path that can be printed and logged: bytes that are not UTF-8 shown as U+FFFD."""
    return source.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def iter_articles(root: Path, options: Options) -> Iterator[Article | Skipped]:
    """Every article file under root read in order: an Article, or Skipped with why."""
    files, passed = find_files(root)
    yield from passed
    for path in files:
        try:
            yield read_article(path, root, options)
        except ArticleError as exc:
            yield Skipped(exc.source, exc.reason, exc.fix)
        except Exception as exc:  # noqa: BLE001 - one bad file must never stop the others being published
            log.debug("reading %s failed", path, exc_info=True)
            yield Skipped(_rel(path, root), f"could not be read ({type(exc).__name__}: {exc})", "report it as a feedsvc bug, with the file")


def load_articles(root: Path, options: Options) -> tuple[list[Article], list[Skipped]]:
    """Read the whole folder: articles with unique IDs, and every skipped file (each logged once)."""
    articles: dict[str, Article] = {}
    skipped: list[Skipped] = []
    for item in iter_articles(root, options):
        if isinstance(item, Skipped):
            skipped.append(item)
        elif item.id in articles:
            skipped.append(Skipped(item.source, f"same id {item.id!r} as {articles[item.id].source}", "give one of them its own `id:` in the front matter"))
        else:
            articles[item.id] = item
    for skip in skipped:
        log.warning("skipped %s", skip)
    return list(articles.values()), skipped

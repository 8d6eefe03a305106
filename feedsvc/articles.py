"""Files → Articles: finding article files, the seed's .txt layout, Markdown with front matter.

A file that cannot be published raises ArticleError with one line naming the file, the reason
and the fix; load_articles() logs it, lists it as skipped and goes on with the rest.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote, urljoin
from zoneinfo import ZoneInfo

import yaml
from dateutil import parser as dateparser

from . import markup
from .config import DEFAULT_CHROME_MARKERS
from .model import Article
from .text import DecodeError, clean_text, collapse_space, decode_bytes, detect_language, is_binary

log = logging.getLogger(__name__)

EXTENSIONS = (".txt", ".md")
MAX_FILE_BYTES = 5 * 1024 * 1024
_BACKUP = re.compile(r"(~|\.swp|\.swo|\.swx|\.bak|\.orig|\.tmp|\.part)$|^#.*#$|^\.#", re.IGNORECASE)
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_H1 = re.compile(r"\A#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_FRONT_MATTER_KEYS = {
    "title", "date", "updated", "category", "categories", "tags", "author", "summary", "image", "id", "lang", "draft",
}
# Arabic marks that scrapes spell either way (tanween, harakat, tatweel) and alef forms.
_ARABIC_MARKS = re.compile("[\u0640\u064b-\u065f\u0670]")
_ALEF = str.maketrans("أإآٱ", "اااا")
_CHROME_TAIL = 80  # a chrome line may carry this much after its marker ("Follow us on Facebook")
_FILLER_WINDOW = 12  # related-article titles standing between two chrome lines


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
    source = _rel(path, root)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ArticleError(source, f"file is {size} bytes, over the {MAX_FILE_BYTES} byte limit", "split it or remove embedded data")
        data = path.read_bytes()
    except OSError as exc:
        raise ArticleError(source, f"cannot be read ({exc.strerror or exc})", "check the file's permissions") from None
    return parse_article(data, source, options)


def parse_article(data: bytes, source: str, options: Options) -> Article:
    """Turn a file's bytes into an Article; source is its path inside the folder."""
    if not data.strip():
        raise ArticleError(source, "empty file", "write a category line and a title line, or delete it")
    if is_binary(data):
        raise ArticleError(source, "binary file, not text", "article files must be text saved as UTF-8")
    try:
        text = clean_text(decode_bytes(data))
    except DecodeError as exc:
        raise ArticleError(source, str(exc).split(";")[0], "re-save the file as UTF-8") from None
    if not text.strip():
        raise ArticleError(source, "no text after removing control characters", "write a category line and a title line, or delete it")
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
    lines = [line.strip() for line in body.split("\n") if line.strip()]
    categories = _categories(meta, source)
    if not categories:
        if not lines:
            raise ArticleError(source, "no category line", "start the file with a category line, then a title line")
        categories = [_clean_category(lines.pop(0))]
    title = meta.get("title")
    if title is None:
        if not lines:
            raise ArticleError(source, f"category {categories[0]!r} with no title", "put the title on the line after the category")
        title = lines.pop(0)
    lines = strip_chrome(lines, options.chrome_markers)
    return _clean_title(title, source), categories, markup.paragraphs_to_html(lines)


def _read_markdown(meta: dict, body: str, source: str, options: Options, base_url: str) -> tuple[str, list[str], str]:
    title = meta.get("title")
    if title is None:
        heading = _H1.search(body.lstrip("\n"))
        if not heading:
            raise ArticleError(source, "no title", "add `title:` to the front matter or start the text with a `# Title` line")
        title = heading.group(1)
        body = body.lstrip("\n")[heading.end():]
    categories = _categories(meta, source)
    if not categories:
        folder = source.split("/")[0] if "/" in source else ""
        if not folder:
            raise ArticleError(source, "no category", "add `category: …` to the front matter or move the file into a category folder")
        categories = [_clean_category(folder)]
    lines = body.split("\n")
    kept = strip_chrome([line for line in lines if line.strip()], options.chrome_markers)
    if kept != [line for line in lines if line.strip()]:
        # Cut the source after the last kept line, so Markdown structure before it is untouched.
        last = kept[-1] if kept else None
        idx = max((i for i, line in enumerate(lines) if line == last), default=-1) if last is not None else -1
        body = "\n".join(lines[: idx + 1])
    return _clean_title(title, source), categories, markup.markdown_to_html(body, base_url)


def _build(meta: dict, source: str, options: Options, text: str, title: str, categories: list[str],
           body_html: str, paragraphs: list[str], base_url: str) -> Article:
    body_text = "\n\n".join(paragraphs)
    summary = _optional_str(meta, "summary", source)
    summary = collapse_space(summary) if summary else markup.shorten(paragraphs[0], options.summary_length) if paragraphs else title
    lang = _optional_str(meta, "lang", source)
    if lang is not None and not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*", lang):
        raise ArticleError(source, f"lang {lang!r} is not a language tag", "write a BCP 47 tag such as ar, en or fr-CA")
    lang = lang or detect_language(title + "\n" + body_text, options.site_language)
    article_id = _optional_str(meta, "id", source) or _default_id(source)
    if not article_id.strip() or any(ord(c) < 32 for c in article_id):
        raise ArticleError(source, "id is empty or has control characters", "give `id:` a printable value")
    image = _optional_str(meta, "image", source)
    draft = meta.get("draft", False)
    if not isinstance(draft, bool):
        raise ArticleError(source, f"draft {draft!r} is not true or false", "write `draft: true` or `draft: false`")
    return Article(
        id=article_id.strip(),
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
        tags=tuple(dict.fromkeys(_str_list(meta, "tags", source))),
        author=collapse_space(_optional_str(meta, "author", source) or "") or None,
        image=urljoin(base_url, image) if image else None,
        draft=draft,
    )


def strip_chrome(lines: list[str], markers: tuple[str, ...]) -> list[str]:
    """Drop the run of site-chrome lines (and related-article titles between them) at the end."""
    folded = tuple(_fold(m) for m in markers)

    def is_chrome(line: str) -> bool:
        f = _fold(line)
        return any(f == m or (f.startswith(m) and len(f) - len(m) <= _CHROME_TAIL) for m in folded)

    end = len(lines)
    while end > 0:
        if is_chrome(lines[end - 1]):
            end -= 1
            continue
        # Short lines directly above trailing chrome and below another chrome line are its list items.
        above = next((i for i in range(end - 1, max(end - 1 - _FILLER_WINDOW, -1), -1) if is_chrome(lines[i])), None)
        if end < len(lines) and above is not None and all(len(lines[i]) <= 160 for i in range(above + 1, end)):
            end = above
            continue
        break
    return lines[:end]


def _fold(line: str) -> str:
    line = _ARABIC_MARKS.sub("", line).translate(_ALEF).casefold()
    return " ".join(line.split()).rstrip(" .:،؛…*!-")


def _split_front_matter(text: str, source: str) -> tuple[dict, str]:
    stripped = text.lstrip("\n")
    if not stripped.startswith("---"):
        return {}, text
    match = _FRONT_MATTER.match(stripped)
    if not match:
        raise ArticleError(source, "front matter opened with --- is never closed", "end the front matter block with a --- line")
    try:
        meta = yaml.safe_load(match.group(1) or "") or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 2}" if where is not None else ""
        raise ArticleError(source, f"front matter is not valid YAML{line}", "fix the YAML between the --- lines (quote values that contain ': ')") from None
    if not isinstance(meta, dict):
        raise ArticleError(source, "front matter is not a set of `key: value` lines", "write one `key: value` per line between the --- lines")
    meta = {str(k).lower(): v for k, v in meta.items()}
    unknown = sorted(set(meta) - _FRONT_MATTER_KEYS)
    if unknown:
        log.debug("%s: front matter keys ignored: %s", source, ", ".join(unknown))
    return meta, stripped[match.end():]


def _categories(meta: dict, source: str) -> list[str]:
    names = _str_list(meta, "categories", source) + _str_list(meta, "category", source)
    cleaned = [_clean_category(n) for n in names]
    return [c for c in cleaned if c]


def _clean_category(name: str) -> str:
    return collapse_space(name).rstrip(":：").strip()


def _clean_title(title: Any, source: str) -> str:
    if not isinstance(title, (str, int, float)) or isinstance(title, bool):
        raise ArticleError(source, "title is not text", "write `title:` as one line of text")
    cleaned = collapse_space(str(title))
    if not cleaned:
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
        return [v for v in (part.strip() for part in value.split(",")) if v] if key == "tags" else [value]
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        return [str(v) for v in value if str(v).strip()]
    raise ArticleError(source, f"{key} is not text or a list of text", f"write `{key}: [a, b]` or one name")


def _date(meta: dict, key: str, source: str, zone: str) -> datetime | None:
    value = meta.get(key)
    if value is None:
        return None
    tz = ZoneInfo(zone)
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    elif isinstance(value, str) and value.strip():
        try:
            parsed = dateparser.parse(value)
        except (ValueError, OverflowError):
            raise ArticleError(source, f"{key} {value!r} is not a date", f"write `{key}: 2025-03-01 14:30` (ISO 8601, optionally with a zone)") from None
    else:
        raise ArticleError(source, f"{key} {value!r} is not a date", f"write `{key}: 2025-03-01 14:30`")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    if not 1970 <= parsed.year <= 9999:
        raise ArticleError(source, f"{key} {value!r} is out of range", "write a date between 1970 and 9999")
    return parsed.astimezone(ZoneInfo("UTC"))


def _default_id(source: str) -> str:
    return source.rsplit(".", 1)[0]


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def iter_articles(root: Path, options: Options) -> Iterator[Article | Skipped]:
    """Every article file under root read in order: an Article, or Skipped with why."""
    files, passed = find_files(root)
    yield from passed
    for path in files:
        try:
            yield read_article(path, root, options)
        except ArticleError as exc:
            yield Skipped(exc.source, exc.reason, exc.fix)


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

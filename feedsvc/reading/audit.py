"""What `feedsvc check` reports: the files that are skipped, and the articles that are published but
look wrong (no date, a short body, site chrome left in the body, a legacy encoding, garbled text).
"""
from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

from ..model import Article
from .articles import CATEGORY_LONG, Options, Skipped, iter_articles, unique_ids
from .chrome import strip_chrome
from .folder import Folder, FolderError, shown
from .frontmatter import MEANT, local_time_note, split_front_matter
from ..slugs import SLUG_MAX, slug_is_cut
from .text import decode_bytes, legacy_match, stray_bytes

SHORT_BODY = 200  # characters: a body shorter than this was often cut off by the scraper
_SENTENCE_END = re.compile(r"(?<=[.!?؟…])\s+")
# UTF-8 read as windows-1252 or Latin-1: a lead byte's letter, then continuation bytes' letters
# ("Ø§Ù„" for "ال", "Ã©" for "é", "â€™" for "’").
_CONTINUATION = "".join(bytes([b]).decode("cp1252", "ignore") or chr(b) for b in range(0x80, 0xC0))
_MOJIBAKE = re.compile(f"[\u00c2-\u00df][{re.escape(_CONTINUATION)}]|[\u00e0-\u00ef][{re.escape(_CONTINUATION)}]{{2}}")
_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@dataclass(frozen=True)
class Finding:
    """An article that is published but looks wrong: the file, what looks wrong, and the fix."""

    source: str
    reason: str
    fix: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", shown(self.source))  # a file name may hold a newline or ESC


@dataclass(frozen=True)
class Report:
    """A folder checked: articles publishable now, drafts, embargoed ones, files skipped and findings, by file."""

    articles: int
    skipped: tuple[Skipped, ...]
    findings: tuple[Finding, ...]
    drafts: int = 0
    embargoed: tuple[datetime, ...] = ()  # when each embargoed article is released, soonest first

    def headline(self) -> str:
        """"9 articles publishable now, 1 draft, 1 embargoed until 2026-12-01 09:00 UTC"."""
        parts = [f"{self.articles} article{'s' * (self.articles != 1)} publishable now"]
        if self.drafts:
            parts.append(f"{self.drafts} draft{'s' * (self.drafts != 1)}")
        if self.embargoed:
            first = self.embargoed[0].strftime("%Y-%m-%d %H:%M UTC")
            parts.append(f"1 embargoed until {first}" if len(self.embargoed) == 1 else f"{len(self.embargoed)} embargoed, the first until {first}")
        return ", ".join(parts)


def check_folder(root: Path, options: Options, now: datetime | None = None, slugs: Mapping[str, str] | None = None) -> Report:
    """Read the whole folder as a refresh would (nothing logged) and look at every article."""
    now = now or datetime.now(timezone.utc)
    try:
        read = list(iter_articles(root, options))
    except FolderError as exc:
        return Report(0, (Skipped(".", exc.strerror, "check the folder and its permissions"),), ())
    # A draft claims no ID (building/owners.py): beside a published file with its `id:`, the published one is kept.
    drafted = [a for a in read if isinstance(a, Article) and a.draft]
    published, skipped = unique_ids(a for a in read if not (isinstance(a, Article) and a.draft))
    articles = published + drafted
    drafts = len(drafted)
    embargoed = tuple(sorted(a.published for a in published if a.published is not None and a.published > now))
    publishable = len(published) - len(embargoed)
    folder = Folder(root)
    read_back = {a.source: folder.read(a.source) for a in articles}  # once a file, for its encoding and its keys
    encodings = {source: enc for source, data in read_back.items() if (enc := _encoding(data))}
    legacy = {source: enc for source, enc in encodings.items() if isinstance(enc, str)}
    # A stray byte's � is said below, with where it is: not also as text decoded with the wrong encoding.
    findings = [f for a in articles for f in check_article(a, options, slugs or {}, now, isinstance(encodings.get(a.source), tuple))]
    findings += [f for source, data in read_back.items() for f in _front_matter_findings(data, source, options.time_zone)]
    mixed = len(legacy) < len(articles)
    for source, encoding in encodings.items():
        if isinstance(encoding, str):
            reason = f"saved as {encoding}, not UTF-8" + (" like the other files" if mixed else "")
            findings.append(Finding(source, reason, "the encoding was guessed; re-save the file as UTF-8"))
        else:
            count, first = encoding
            findings.append(Finding(source, f"{count} byte{'s are' if count > 1 else ' is'} not UTF-8, the first at byte {first}, "
                                    "published as �", "correct the text there and save the file as UTF-8"))
    return Report(publishable, tuple(sorted(skipped, key=lambda s: s.source)),
                  tuple(sorted(findings, key=lambda f: f.source)), drafts, embargoed)


def check_article(article: Article, options: Options, slugs: Mapping[str, str] | None = None,
                  now: datetime | None = None, stray: bool = False) -> list[Finding]:
    """What looks wrong in one article that will be published; slugs: CATEGORY_SLUGS (a category there has its own);
    stray: its file is UTF-8 but for a few stray bytes, each published as �, which is no sign of a wrong encoding."""
    found = []
    if article.published is None and not article.draft:  # a draft is never published: its date is set when it is
        found.append(Finding(article.source, "no date", "the time it is first seen becomes its date; add `date:` to the front matter to set it"))
    if article.updated is not None and not article.draft:  # the state store's rule (state._stamped), said where it bites
        if article.published is None:
            found.append(Finding(article.source, "`updated:` without `date:` is not used: both are the time it is first seen",
                                 "add `date:` to the front matter"))
        elif article.updated < article.published:
            found.append(Finding(article.source, f"`updated:` {article.updated:%Y-%m-%d %H:%M} UTC is before `date:` "
                                 f"{article.published:%Y-%m-%d %H:%M} UTC: published as updated at its date",
                                 "correct `updated:` or `date:`"))
        elif now is not None and article.updated > now:  # no date is later than the content was recorded (state.py)
            found.append(Finding(article.source, f"`updated:` {article.updated:%Y-%m-%d %H:%M} UTC is in the future: "
                                 "published as updated when its content is first seen", "correct `updated:`"))
    if len(article.body_text) < SHORT_BODY:
        length = len(article.body_text)
        found.append(Finding(article.source, f"short body ({length} character{'s' * (length != 1)})", "check that the text was not cut off"))
    for paragraph in article.body_text.split("\n\n"):
        sentences = _SENTENCE_END.split(paragraph)
        kept = strip_chrome(sentences, options.chrome_markers)
        if len(kept) < len(sentences):
            chrome = " ".join(sentences[len(kept):])
            found.append(Finding(article.source, f"site chrome left in the body: {_quote(chrome)}",
                                 "delete the line, or end the article there so it is cut off"))
    for category in article.categories:
        if category not in (slugs or {}) and (len(category) > CATEGORY_LONG or slug_is_cut(category)):  # a breadcrumb
            found.append(Finding(article.source, f"category is {len(category)} characters long: {_quote(category)}",
                                 f"published under it, its URL cut to {SLUG_MAX} characters with a hash; shorten the category line if it is not meant as one"))
    text = article.title + "\n" + article.body_text
    garbled = _MOJIBAKE.findall(text)
    if len(garbled) >= 2 or ("\ufffd" in text and not stray):
        sample = "".join(garbled[:3]) or "\ufffd"
        found.append(Finding(article.source, f"garbled text ({_quote(sample)}): decoded with the wrong encoding",
                             "re-save the file as UTF-8 from the original"))
    return found


def _front_matter_findings(data: bytes | Skipped, source: str, zone: str = "UTC") -> list[Finding]:
    """What the front matter as written says that the article read does not: a key feedsvc does not read that means one
    it does (`tag:` for `tags:`: its value is not published), and a date written at a local time the clocks skip or pass
    twice (frontmatter.local_time_note)."""
    if isinstance(data, Skipped) or b"---" not in data[:64]:  # most .txt files have none
        return []
    try:
        meta, _ = split_front_matter(decode_bytes(data))
    except ValueError:  # undecodable or not front matter after all: the article was read, so neither was fatal
        return []
    found = [Finding(source, f"front matter key `{key}` is not read, so its value is not published",
                     f"write it as `{MEANT[key]}:`") for key in sorted(meta.keys() & MEANT.keys())]
    for key in ("date", "updated"):
        if (note := local_time_note(meta, key, zone)) is not None:
            found.append(Finding(source, note, f"write `{key}:` with its offset (as in 2026-03-29 03:30 +02:00) to say which time"))
    return found


def _encoding(data: bytes | Skipped) -> str | tuple[int, int] | None:
    """The legacy encoding a file (its bytes, read through the folder's rule) was guessed to be in; (count, first offset)
    of the stray bytes of a UTF-8 file that has some (text.stray_bytes); None for Unicode (or an unreadable file)."""
    if isinstance(data, Skipped):
        return None
    if data.startswith(_BOMS):
        return None
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError:
        stray = stray_bytes(data)
        if stray is not None:
            return stray
        best = legacy_match(data)  # the reading the file is published with, not another guess
        return best.encoding if best is not None else "an unknown encoding"


def _quote(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")

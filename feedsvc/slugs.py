"""URL slugs of categories, tags and authors: a Unicode slug of the name, cut with a hash past SLUG_MAX.

Read by the building side (feeds.py assigns them), by `check` (reading/audit.py warns of a cut one), and by a serving
process on a miss (serving/web.py: a path typed with harakat or capitals is sent to the one its slug makes).
"""
from __future__ import annotations

import hashlib
import html
import re
import unicodedata

from slugify import slugify

from .urls import SLUG_BYTES

SLUG_MAX = 80  # characters


# Arabic's optional marks and its stretching letter: harakat and the superscript alef (U+064B-U+065F, U+0670), the
# Quranic annotation signs (U+0610-U+061A, U+06D6-U+06ED) and tatweel (U+0640). A word is the same word with or without
# them, so a slug leaves them out (https://www.unicode.org/versions/latest/ch09.pdf, 9.2 Arabic).
_ARABIC_OPTIONAL = re.compile("[\u0610-\u061a\u0640\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed]")


def make_slug(name: str, mapping: dict[str, str]) -> str:
    """URL slug of a category: the configured one, else a Unicode slug of at most SLUG_MAX characters."""
    if name in mapping:
        return mapping[name]
    slug = own_slug(name)
    if _too_long(slug):
        # Cut long names and keep them apart with a hash of the whole name.
        slug = hashed_slug(slug, hashlib.sha256(name.encode("utf-8")).hexdigest()[:8])
    return slug


def hashed_slug(slug: str, digest: str) -> str:
    """The slug cut short enough for "-<digest>" after it (SLUG_MAX characters, SLUG_BYTES bytes), then that."""
    kept = SLUG_MAX - 1 - len(digest)
    while len(slug[:kept].encode("utf-8", "surrogatepass")) > SLUG_BYTES - 1 - len(digest):  # characters of 3 or 4 bytes
        kept -= 1
    return slug[:kept].rstrip("-") + "-" + digest


def _too_long(slug: str) -> bool:
    """Whether a slug is longer than SLUG_MAX characters, or than SLUG_BYTES in UTF-8 (the export's folder names)."""
    return len(slug) > SLUG_MAX or len(slug.encode("utf-8", "surrogatepass")) > SLUG_BYTES


def slug_is_cut(name: str) -> bool:
    """Whether a category's own slug (none configured) is cut to SLUG_MAX with a hash (make_slug)."""
    return _too_long(own_slug(name))


def own_slug(name: str) -> str:
    """A category's slug before any cut: its name's Unicode slug, its optional Arabic marks left out."""
    # Turkish İ lowers to i and a combining dot above, which the slug would make a hyphen (İstanbul → i-stanbul).
    return _slug(_ARABIC_OPTIONAL.sub("", name).replace("İ", "i")) or "category"


def _slug(text: str) -> str:
    """python-slugify's Unicode slug, except that a combining mark NFKC leaves as it is (a Devanagari vowel sign, a Hebrew
    point) stays on its letter: slugify's rule (no \\W) made each one a hyphen inside the word (हिन्दी → ह-न-द)."""
    marks = {c for c in unicodedata.normalize("NFKC", html.unescape(text)) if unicodedata.category(c)[0] == "M"}
    if not marks:
        return slugify(text, allow_unicode=True)
    kept = "".join(sorted(marks))
    return slugify(text, allow_unicode=True, regex_pattern=re.compile(f"(?:[^\\w{re.escape(kept)}]|_)+"))

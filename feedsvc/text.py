"""Bytes → clean Unicode text: decoding, normalisation, language and slugs."""
from __future__ import annotations

import codecs
import hashlib
import re
import unicodedata

import py3langid
from charset_normalizer import from_bytes
from slugify import slugify

# XML 1.0 §2.2 Char: everything else (C0 controls but tab/LF/CR, surrogates, U+FFFE/U+FFFF) is forbidden.
# https://www.w3.org/TR/xml/#charsets
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) can reorder a reader's whole
# page; RLM/LRM (U+200F/U+200E) only mark direction and stay, as does ZWJ (U+200D) in emoji.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
_ARABIC_SCRIPT = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")
_HEBREW_SCRIPT = re.compile("[\u0590-\u05ff\ufb1d-\ufb4f]")
_LETTER = re.compile(r"[^\W\d_]")
# Legacy single-byte Arabic encodings are told apart by a detector, never assumed.
_LEGACY_CANDIDATES = ("cp1256", "iso8859_6", "cp1252", "iso8859_1", "cp1255", "iso8859_8", "utf_8")
SLUG_MAX = 80


class DecodeError(ValueError):
    """The bytes are not text in any encoding feedsvc can tell."""


def decode_bytes(data: bytes) -> str:
    """Decode UTF-8 (BOM optional), UTF-16 with BOM, or a detected legacy encoding."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise DecodeError("UTF-16 byte order mark but broken UTF-16 text; re-save the file as UTF-8") from None
    if b"\x00" in data:
        raise DecodeError("binary file (NUL bytes); article files must be text, saved as UTF-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data, cp_isolation=list(_LEGACY_CANDIDATES)).best()
    if best is None:
        best = from_bytes(data).best()
    if best is None:
        raise DecodeError("not text in UTF-8 or any detectable encoding; re-save the file as UTF-8")
    return str(best)


def clean_text(text: str) -> str:
    """NFC, LF line endings, no XML-forbidden characters and no bidi overrides."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    text = _XML_FORBIDDEN.sub("", text)
    text = _BIDI_CONTROLS.sub("", text)
    return unicodedata.normalize("NFC", text)


def collapse_space(text: str) -> str:
    """Collapse runs of whitespace (any Unicode space) into one space and trim."""
    return " ".join(text.split())


def is_binary(data: bytes) -> bool:
    """True when the bytes look like a binary file rather than text (UTF-16 counts as text)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    sample = data[:8192]
    if b"\x00" in sample:
        return True
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13, 27))
    return bool(sample) and controls / len(sample) > 0.1


def detect_language(text: str, default: str) -> str:
    """Tell the language of a text: Arabic or Hebrew script by its letters, else a language identifier."""
    letters = _LETTER.findall(text[:4000])
    if not letters:
        return default
    sample = "".join(letters)
    if len(_ARABIC_SCRIPT.findall(sample)) * 2 > len(sample):
        return "ar"
    if len(_HEBREW_SCRIPT.findall(sample)) * 2 > len(sample):
        return "he"
    if len(letters) < 12:  # too little text for a statistical guess to beat the site default
        return default
    return py3langid.classify(text[:4000])[0]


def make_slug(name: str, mapping: dict[str, str]) -> str:
    """URL slug of a category: the configured one, else a Unicode slug of at most SLUG_MAX characters."""
    if name in mapping:
        return mapping[name]
    slug = slugify(name, allow_unicode=True) or "category"
    if len(slug) > SLUG_MAX:
        # Cut long names and keep them apart with a hash of the whole name.
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
        slug = slug[: SLUG_MAX - 9].rstrip("-") + "-" + digest
    return slug

"""Bytes → clean Unicode text: decoding, normalisation, language and slugs."""
from __future__ import annotations

import codecs
import logging
import os
import re
import threading
import unicodedata
from pathlib import Path



# XML 1.0 §2.2 Char: everything else (C0 controls but tab/LF/CR, surrogates, U+FFFE/U+FFFF) is forbidden.
# https://www.w3.org/TR/xml/#charsets
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# The same section discourages DEL, C1 controls and noncharacters ([#x7F-#x84], [#x86-#x9F]); in articles they only
# come from mojibake or a stray keystroke, and feed validators warn about them. U+FEFF is a byte order mark left
# inside the text (a file saved twice, or files joined): kept, it would make "\ufeffNews" a category of its own.
_NONCHARACTERS = "".join(chr(plane + 0xFFFE) + chr(plane + 0xFFFF) for plane in range(0x10000, 0x110000, 0x10000))
_DISCOURAGED = re.compile(f"[\x7f-\x84\x86-\x9f\ufdd0-\ufdef\ufeff{_NONCHARACTERS}]")
# Bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) can reorder a reader's whole
# page; RLM/LRM (U+200F/U+200E) only mark direction and stay, as does ZWJ (U+200D) in emoji.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
# All three as one character class of BMP ranges, one pass; the astral noncharacters (a class of 32 odd
# ranges makes every search ten times slower) only when the text has astral characters at all.
_UNSAFE = re.compile("[" + "".join(p.pattern[1:-1] for p in (_XML_FORBIDDEN, _DISCOURAGED, _BIDI_CONTROLS)).replace(_NONCHARACTERS, "") + "]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_ASTRAL_NONCHARACTERS = re.compile(f"[{_NONCHARACTERS}]")
_LINE_BREAKS = re.compile("\r\n?|[\x85\u2028\u2029]")
_ARABIC_SCRIPT = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufefe]+")
_HEBREW_SCRIPT = re.compile("[\u0590-\u05ff\ufb1d-\ufb4f]+")
_LETTERS = re.compile(r"[^\W\d_]+")
# Legacy single-byte Arabic encodings are told apart by a detector, never assumed.
_LEGACY_CANDIDATES = ("cp1256", "iso8859_6", "cp1252", "iso8859_1", "cp1255", "iso8859_8", "utf_8")
# Share of unprintable characters (controls, private use, unassigned) above which decoded "text" is
# really a binary file that happened to decode.
_BINARY_SHARE = 0.1
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))
_PLAIN_TEXT = re.compile("[\x20-\x7e\t\n\r\f\u0600-\u06ff]+")
_LANGUAGE_SAMPLE = 1500  # characters enough to tell a script; more only costs time
_LANGUAGE_ID_SAMPLE = 600  # py3langid's cost grows with the text; 600 characters tell a language well
_NOT_LETTERS = re.compile(r"[\W\d_]+")
_NOT_ARABIC = re.compile(f"[^{_ARABIC_SCRIPT.pattern[1:-2]}]+")
_NOT_HEBREW = re.compile(f"[^{_HEBREW_SCRIPT.pattern[1:-2]}]+")
_WORDS = re.compile(r"[a-z]+")
# The blocks (UTF-16 high bytes) of the Arabic script: U+0600–U+06FF is all Arabic; the script's other ranges
# share their blocks (U+07xx, U+08xx, U+FBxx–U+FExx) with other scripts, as the Hebrew script does all of its.
_ARABIC_BLOCK = 0x06
_ARABIC_SHARED = bytes((0x07, 0x08, 0xFB, 0xFC, 0xFD, 0xFE))
_HEBREW_SHARED = bytes((0x05, 0xFB))
_ASCII_LETTERS = bytes(range(ord("A"), ord("Z") + 1)) + bytes(range(ord("a"), ord("z") + 1))
# English function words that are not also words of another Latin-script language (not "to": Polish; "was",
# "will": German; "of", "had": Dutch; "for": Danish; "but": French): a tenth of the words of any English prose.
_ENGLISH_WORDS = frozenset("the and that with which this from have has were are their they would said about who its".split())
_ENGLISH_SHARE = 10  # one word in this many
_ENGLISH_MIN_WORDS = 12
_IDENTIFIER_LOCK = threading.Lock()
_classify = None  # py3langid.classify once loaded (_identifier)
_MODEL_DONE = ".complete"  # written last into the model's unpacked copy (_load_unpacked_model)
log = logging.getLogger(__name__)


class DecodeError(ValueError):
    """The bytes are not text in any encoding feedsvc can tell."""


def decode_bytes(data: bytes) -> str:
    """Decode UTF-8 (BOM optional), UTF-16/32 with BOM, or a detected legacy encoding."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace")
    # UTF-32 LE's BOM begins with UTF-16 LE's, so it is tried first.
    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                       (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                if codec == "utf-16":
                    raise DecodeError("UTF-16 byte order mark but broken UTF-16 text; re-save the file as UTF-8") from None
    utf16 = _bomless_utf16(data)
    if utf16:
        return data.decode(utf16)
    if b"\x00" in data and not stray_nuls(data):
        raise DecodeError("binary file (NUL bytes); article files must be text, saved as UTF-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        stray, wide = _counts(data)
        if _strays(stray, wide):  # UTF-8 but for a stray byte or two: published, each shown as U+FFFD
            return data.decode("utf-8", "replace")
        if wide >= stray:  # no legacy text reads so (its own UTF-8 by chance: 0-6%): a guess would be mojibake for good
            raise DecodeError(f"UTF-8 but for {stray} bytes that are not (the first at byte {exc.start}); re-save "
                              f"the file as UTF-8")
        best = legacy_match(data)
    if best is None:
        raise DecodeError("not text in UTF-8 or any detectable encoding; re-save the file as UTF-8")
    return str(best)


STRAY_MAX = 8  # bytes that are not UTF-8 in a file that otherwise is, at most
# And for each, at least one character that is UTF-8's own (non-ASCII, decoded): a legacy file's accented letters are
# each an invalid byte, and two of its bytes that make a valid UTF-8 sequence by chance are rare (Ã© is mojibake itself).
STRAY_SHARE = 1
# Any number of them where UTF-8's own characters are this many times as many: in legacy Arabic, Persian and Urdu text
# (windows-1256) they are 0.3-6% of its invalid bytes, in ISO-8859-6 none. Nine stray bytes in a UTF-8 Arabic article
# had it read as gb18030, its category a new one in CJK mojibake, for good.
STRAY_RATIO = 4


def stray_nuls(data: bytes) -> bool:
    """Whether the NUL bytes in data are a few strays (at most STRAY_MAX) in text that is otherwise UTF-8: published
    without them (XML forbids the character: clean_text), not the whole article skipped as a binary file for one NUL a
    scraper let through. A binary file has many, or bytes that are not UTF-8 beside them (PNG, JPEG, PDF, ZIP)."""
    if not 0 < data.count(b"\x00") <= STRAY_MAX:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def stray_bytes(data: bytes) -> tuple[int, int] | None:
    """(how many, the first one's offset) for bytes that are UTF-8 but for a few stray bytes (a lone 0xA0 pasted into
    an Arabic article); None for any other bytes. A legacy file's non-ASCII bytes are nearly all invalid UTF-8, and
    valid multi-byte sequences by chance are rare: a whole Arabic article was skipped for one such byte."""
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError as exc:
        first = exc.start
    stray, wide = _counts(data)
    return (stray, first) if _strays(stray, wide) else None


def _strays(stray: int, wide: int) -> bool:
    """Whether `stray` bytes that are not UTF-8 beside `wide` characters of the file's own UTF-8 are strays to publish."""
    return 0 < stray and (stray <= STRAY_MAX and wide >= STRAY_SHARE * stray or wide >= STRAY_RATIO * stray)


_ESCAPED = re.compile("[\udc80-\udcff]")  # a byte that is not UTF-8, as surrogateescape decodes it


def _counts(data: bytes) -> tuple[int, int]:
    """(bytes that are not UTF-8, characters that are UTF-8's own and not ASCII) of bytes that are not all UTF-8: each
    such byte one (a "replace" decoding makes one U+FFFD of a cut sequence of two or three)."""
    text = data.decode("utf-8", "surrogateescape")
    stray = len(_ESCAPED.findall(text))
    return stray, len(text) - len(text.encode("ascii", "ignore")) - stray


def legacy_match(data: bytes):
    """charset_normalizer's best reading of bytes that are not UTF-8 (the legacy encodings news sites used first, then
    any), or None: what decode_bytes reads such a file as, and what `check` names."""
    from charset_normalizer import from_bytes  # here: only a file not in UTF-8 needs it (3.6 MiB in each reader)

    return from_bytes(data, cp_isolation=list(_LEGACY_CANDIDATES)).best() or from_bytes(data).best()


def _bomless_utf16(data: bytes) -> str | None:
    """utf-16-le/-be when the NUL bytes all sit on one side of each pair and the text decodes cleanly."""
    if len(data) < 4 or len(data) % 2 or b"\x00" not in data:
        return None
    even, odd = data[0::2], data[1::2]
    for codec, zeros, other in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
        # Latin line breaks and spaces give a NUL in every text; the other half never has one.
        if b"\x00" not in other and zeros.count(0) * 10 >= len(zeros):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError:
                return None
            return None if looks_binary(text) else codec
    return None


def clean_text(text: str) -> str:
    """NFC, LF line endings, no XML-forbidden or discouraged characters and no bidi overrides."""
    # Most files have none of these: four scans for one character each cost a tenth of the regex's one.
    if "\r" in text or "\x85" in text or "\u2028" in text or "\u2029" in text:
        text = _LINE_BREAKS.sub("\n", text)
    return drop_unsafe_chars(text)


def drop_unsafe_chars(text: str) -> str:
    """Remove what XML 1.0 forbids or discourages and bidi overrides; normalise to NFC.

    Safe on HTML as well as text: markup is ASCII, and an entity such as &#x202E; in Markdown
    becomes the character itself only after rendering, so rendered HTML passes through here too.
    """
    if not _printable_lines(text):
        if "\x85" in text:  # NEL, a line break to XML 1.1 only (§2.11): left by clean_text, or an entity (&#x85;) rendered
            text = text.replace("\x85", " ")
        text = _UNSAFE.sub("", text)
        if _ASTRAL.search(text):
            text = _ASTRAL_NONCHARACTERS.sub("", text)
    return unicodedata.normalize("NFC", text)


def _printable_lines(text: str) -> bool:
    """True when every line of text prints: letters, marks, numbers, punctuation, symbols and " " only.

    Every character drop_unsafe_chars removes is a control, format, surrogate or unassigned one, none of which
    prints: text of such lines has none to remove. str.isprintable runs at twice the regular expressions' speed,
    and they are two (the astral noncharacters apart).
    """
    return all(map(str.isprintable, text.split("\n")))


def is_visible(text: str) -> bool:
    """True when text has a letter, digit, mark, punctuation or symbol, not only spaces and format controls."""
    # A line's first character nearly always tells: printable and not " " is one of L, M, N, P or S.
    first = text[:1]
    if first and first != " " and first.isprintable():
        return True
    if not first:  # a blank line, as every other line of most articles is
        return False
    return any(unicodedata.category(c)[0] in "LMNPS" for c in text)


def collapse_space(text: str) -> str:
    """Collapse runs of whitespace (any Unicode space) into one space and trim."""
    # Every whitespace character but " " is unprintable: printable text with no "  " has nothing to collapse
    # (two C scans; a paragraph split into its words and joined again costs three times more).
    if "  " not in text and text.isprintable():
        return text.strip(" ")
    return " ".join(text.split())


def is_binary(data: bytes) -> bool:
    """True when the bytes look like a binary file rather than text (UTF-16 counts as text)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)) or _bomless_utf16(data):
        return False
    sample = data[:8192]
    if b"\x00" in sample and not stray_nuls(data):
        return True
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return bool(sample) and controls / len(sample) > _BINARY_SHARE


def looks_binary(text: str) -> bool:
    """True when decoded text is mostly unprintable: a binary file that happened to decode."""
    sample = text[:8192]
    # Printable ASCII, whitespace and the Arabic block are text; only the rest needs a category look-up.
    rest = _PLAIN_TEXT.sub("", sample)
    odd = sum(1 for c in rest if unicodedata.category(c) in ("Cc", "Co", "Cn", "Cs"))
    return bool(sample) and odd / len(sample) > _BINARY_SHARE


def detect_language(text: str, default: str) -> str:
    """Tell the language of a text from its first characters: Arabic or Hebrew script by its letters, plain
    English prose by its function words, else the language identifier (py3langid, loaded on first need)."""
    text = text[:_LANGUAGE_SAMPLE]
    blocks = _blocks(text)
    arabic = _in_script(text, blocks, _ARABIC_BLOCK, _ARABIC_SHARED, _NOT_ARABIC)
    hebrew = _in_script(text, blocks, None, _HEBREW_SHARED, _NOT_HEBREW) if arabic * 2 <= len(text) else 0
    if arabic or hebrew:
        # A report is in the language of its headline and lead, whatever it quotes after them, both ways: an Arabic
        # headline and lead over an English statement, an English one over an Arabic quote (it was published as ar).
        if (latin := _latin_head(text)) is not None:
            return detect_language(latin, default)
        if arabic * 2 > len(text):  # more than half of the characters, so of the letters: no need to count those
            return _arabic_script(text, arabic)
        if (told := _by_head(text)) is not None:
            return _arabic_script(text, arabic) if told == "ar" else told
    # The ASCII letters are some of the letters: when they alone decide the three tests below, the letters
    # need no counting (a regular expression's match for every word: 70 µs in 1,500 characters).
    if _ascii_letters(text) < max(2 * arabic, 2 * hebrew, 12):
        letters = len(_NOT_LETTERS.sub("", text))
        if not letters:
            return default
        if arabic * 2 > letters:
            return _arabic_script(text, arabic)
        if hebrew * 2 > letters:
            return "he"
        if letters < 12:  # too little text for a statistical guess to beat the site default
            return default
    sample = text[:_LANGUAGE_ID_SAMPLE]
    if _plainly_english(sample):
        return "en"
    found = _identifier()(sample)[0]
    found = _AS_ISO_639.get(found, found) or default
    return _chinese_script(sample) if found == "zh" else found


def _chinese_script(text: str) -> str:
    """Chinese written in Traditional characters is zh-Hant (Taiwan, Hong Kong: a News sitemap says zh-tw, a reader
    picks its fonts), else zh: by hanzidentifier's tables, more characters only Traditional than only Simplified (one
    character of the other, 着 in a Taiwanese report, does not turn the text)."""
    import hanzidentifier  # here: only Chinese text needs it (16 ms, and its character tables)

    traditional = simplified = 0
    for char in set(text):
        if "\u3400" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff" or char >= "\U00020000":
            told = hanzidentifier.identify(char)
            traditional += told == hanzidentifier.TRADITIONAL
            simplified += told == hanzidentifier.SIMPLIFIED
    return "zh-Hant" if traditional > simplified else "zh"


def _arabic_script(text: str, arabic: int) -> str:
    """The language of a text in Arabic script: Persian by its yeh (ی, U+06CC, where Arabic writes ي), or by گ پ چ ژ where
    its function words outnumber Arabic's, Urdu by its
    yeh barree (ے) too, else Arabic. Each is several in a hundred of their letters. Arabic typed on a Persian keyboard
    has that yeh too, and is told by its teh marbuta (ة): a quarter of its yeh or more (about half, in Arabic), where Persian keeps ة in a handful
    of borrowed words. Pashto and Sorani, by letters of their own (one in a hundred), stay as they were read (ar)."""
    yeh = text.count("\u06cc")
    if yeh * 50 <= arabic or text.count("\u0629") * 4 >= yeh:  # Persian writes ة in a few borrowed words at most
        # Persian typed with Arabic ي and ك (older Iranian sites: found in review) is told by the letters Arabic never
        # writes, گ پ چ ژ: about three in a hundred of its letters; a foreign name in an Arabic report is fewer.
        persian = sum(map(text.count, _PERSIAN_ONLY))
        if persian * 100 <= arabic or text.count("\u0629") * 2 >= persian:
            return "ar"
        # Iraqi and Gulf Arabic write چ and گ for their k and q sounds (الچهرباء, گال), and Arabic reports name Kurdish and
        # Iranian places and people (چمچمال, پزشكيان): their function words tell the two apart (found in review).
        words = text.split()
        if sum(w in _PERSIAN_WORDS for w in words) <= sum(w in _ARABIC_WORDS for w in words):
            return "ar"
    if sum(map(text.count, _PASHTO_SORANI)) * 100 > arabic:  # a name in them is no Pashto or Sorani text
        return "ar"
    return "ur" if text.count("\u06d2") * 100 > arabic else "fa"


_PERSIAN_ONLY = "\u06af\u067e\u0686\u0698"  # گ پ چ ژ
# Words each language writes often and the other never as a word (Persian in either keyboard's letters).
_PERSIAN_WORDS = frozenset("در از كه که را است اين این مي می با براي برای هاي های شد شود كرد کرد نيز نیز".split())
_ARABIC_WORDS = frozenset("في من على إلى الى عن أن إن التي الذي هذا هذه مع بين قال كان".split())
_PASHTO_SORANI = "\u067c\u0689\u0693\u0696\u069a\u06ab\u06bc\u0695\u06b5\u06c6\u06ce"  # ټ ډ ړ ږ ښ ګ ڼ ڕ ڵ ۆ ێ


def _head(text: str) -> tuple[str, str]:
    """(title, title and first paragraph) of a text as detect_language gets it: its first line, then up to a blank line."""
    title_end = text.find("\n")
    lead_end = text.find("\n\n", title_end + 2) if title_end >= 0 else -1
    head = text if lead_end < 0 else text[:lead_end]
    return (head if title_end < 0 else head[:title_end]), head


def _latin_head(text: str) -> str | None:
    """The title and first paragraph when both are mostly ASCII letters (an English headline and lead) and there is more
    text after them; else None."""
    title, head = _head(text)
    if head is text or not _ascii_letters(title) * 2 > len(_NOT_LETTERS.sub("", title)):
        return None  # nearly every Arabic article: its title tells at once
    return head if _ascii_letters(head) * 2 > len(_NOT_LETTERS.sub("", head)) else None


def _by_head(text: str) -> str | None:
    """"ar" or "he" when the title and first paragraph (text's first line and the paragraph after it) are mostly in that
    script: a news article is in the language of its headline and lead, whatever it quotes after them (an Arabic report
    quoting a statement in English, a third of its letters Arabic, was published as English, left to right)."""
    title, head = _head(text)
    for script, block, shared, outside in (("ar", _ARABIC_BLOCK, _ARABIC_SHARED, _NOT_ARABIC), ("he", None, _HEBREW_SHARED, _NOT_HEBREW)):
        # The headline must be in that script too: an English piece whose lead is an Arabic verse stays English.
        if all(_in_script(part, _blocks(part), block, shared, outside) * 2 > len(_NOT_LETTERS.sub("", part)) > 0
               for part in (title, head)):
            return script
    return None


# What py3langid may answer outside ISO 639-1/639-2, which feed readers and the W3C validator know (xml:lang="arz" is
# an InvalidLanguage error there): the macrolanguage or the language it is a variety of, or None for the site's language
# (no such language, or no linguistic content: zxx). Checked against the validator's list and py3langid's 142 classes.
_AS_ISO_639 = {"ary": "ar", "arz": "ar", "hbo": "he", "uzs": "uz", "yue": "zh", "wuu": "zh", "gug": "gn", "sdh": "ku",
               "gom": "kok", "fuv": "ff", "ltg": "lv", "bcl": None, "ext": None, "gcf": None, "gcr": None, "guw": None,
               "lij": None, "pcm": None, "vec": None, "zxx": None}


def _blocks(text: str) -> bytes:
    """The block of 256 code points each UTF-16 unit of text lies in (the high byte of each unit)."""
    return text.encode("utf-16-le", "surrogatepass")[1::2]


def _in_script(text: str, blocks: bytes, block: int | None, shared: bytes, outside: re.Pattern) -> int:
    """How many characters of text a script has: the units in its own block (none for None), counted at C speed,
    when text has none in the blocks it shares with other scripts; else the characters the regex does not remove."""
    if any(b in blocks for b in shared):
        return len(outside.sub("", text))
    return 0 if block is None else blocks.count(block)


def _ascii_letters(text: str) -> int:
    """How many characters of text are ASCII letters."""
    ascii_only = text.encode("ascii", "ignore")
    return len(ascii_only) - len(ascii_only.translate(None, _ASCII_LETTERS))


def _plainly_english(sample: str) -> bool:
    """True when a tenth of the words are English function words no other language shares: prose the
    identifier would call "en" anyway (tests/test_text.py holds them to agree), told without its model."""
    words = _WORDS.findall(sample.lower())
    return len(words) >= _ENGLISH_MIN_WORDS and sum(map(_ENGLISH_WORDS.__contains__, words)) * _ENGLISH_SHARE >= len(words)


def _identifier():
    """py3langid's classify, its module (numpy) and model (68 MB of tables, mapped) loaded on first use, once."""
    global _classify
    if _classify is None:
        with _IDENTIFIER_LOCK:
            if _classify is None:
                import py3langid

                _load_unpacked_model()
                py3langid.classify("load the model")  # the model is read on the first call (unless loaded above)
                _classify = py3langid.classify
    return _classify


def _load_unpacked_model() -> None:
    """Give py3langid its model mapped from an unpacked copy of its own file, made on first use in the user's cache
    folder ($XDG_CACHE_HOME or ~/.cache, feedsvc/): the file py3langid ships is an npz packed with LZMA, which
    takes every reading worker of a cold start a third of a second to unpack before it can tell a language, and
    read whole (68 MB: its two big tables) 0.1 s and that much of each worker's memory.

    The copy is a folder of the npz's arrays as .npy files (read with allow_pickle=False, as py3langid reads them),
    named after the packed file's size and time and put in place whole (a rename). The two big tables are mapped,
    not read (numpy.load's mmap_mode, https://numpy.org/doc/stable/reference/generated/numpy.load.html): a process
    loads the model in about 10 ms and holds only the pages its texts touch, shared with every other process through
    the page cache. The state machine's table goes to py3langid as a memoryview of its mapping, indexed as the
    array py3langid makes of it is (same integers, same speed). The files are never written again once in place, so
    a mapping never sees them change. Anything unexpected (another py3langid, a cache folder that cannot be
    written) leaves py3langid to load its own file, as before.
    """
    try:
        import lzma
        import shutil

        import numpy as np
        from py3langid import langid, modelio

        packed = Path(langid.MODEL_DIR) / langid.MODEL_FILE
        st = packed.stat()
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "feedsvc"
        unpacked = cache / f"py3langid-{st.st_size}-{st.st_mtime_ns}"
        if not (unpacked / _MODEL_DONE).exists():
            partial = cache / f"{unpacked.name}.{os.getpid()}.partial"
            partial.mkdir(parents=True)
            npz = partial / "model.npz"  # a file to read the arrays from: the zip's index is at its end
            with lzma.open(packed) as source, open(npz, "wb") as out:
                shutil.copyfileobj(source, out, length=1 << 20)
            with np.load(npz, allow_pickle=False) as data:
                for name in data.files:
                    np.save(partial / f"{name}.npy", data[name], allow_pickle=False)
            npz.unlink()
            (partial / _MODEL_DONE).write_bytes(b"")
            try:
                os.rename(partial, unpacked)
            except OSError:  # another process put its copy in place first: the same arrays
                shutil.rmtree(partial, ignore_errors=True)
            for older in cache.glob("py3langid-*.npz"):  # the copy as an earlier feedsvc kept it (read, not mapped)
                older.unlink(missing_ok=True)

        def load(name: str, mapped: bool = False):
            return np.load(unpacked / f"{name}.npy", mmap_mode="r" if mapped else None, allow_pickle=False)

        langid.IDENTIFIER = langid.LanguageIdentifier(
            load("ptc", mapped=True), load("pc"), load("classes").tolist(), memoryview(load("nextmove", mapped=True)),
            load("out_feat").tolist(), tk_row=modelio._to_array(load("nextmove_row")))
    except Exception as exc:  # noqa: BLE001 - py3langid then loads its own file, as it always could
        log.debug("py3langid's model loaded from its own file (%s: %s)", type(exc).__name__, exc)

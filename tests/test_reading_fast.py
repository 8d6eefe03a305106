"""The reading's fast paths give what the general routines they stand in for give: each general routine is kept
here as it was written, and held equal to the fast one on random text rich in what the fast paths set aside
(Arabic, Hebrew, bidi controls, CR and LF, byte order marks, C1 controls, astral characters, chrome markers)."""
from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from feedsvc.config import DEFAULT_CHROME_MARKERS
from feedsvc.reading import articles, chrome, frontmatter, text
from feedsvc.reading.chrome import strip_chrome
from feedsvc.reading.text import (
    _ARABIC_SCRIPT, _ASTRAL, _ASTRAL_NONCHARACTERS, _HEBREW_SCRIPT, _LETTERS, _NOT_ARABIC, _NOT_HEBREW, _NOT_LETTERS,
    _UNSAFE, collapse_space, detect_language, drop_unsafe_chars, is_visible,
)

SPECIAL = (
    "\r\n\t \u00a0\u0085\u2028\u2029\ufeff\u200f\u200e\u200d\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    "\x00\x01\x0b\x0c\x1b\x7f\x80\x84\x86\x9f\ufffe\uffff\ufdd0\ufdef\ud800\udfff"
    "\U0001f600\U0001fffe\U0010ffff\U0002070e"
    "سياسةالخبر،؛؟٠١٢٣ـًٌٍَُِّْٰٱأإآ\u0750\u08a0\ufb50\ufdf2\ufe70\ufefc\u0700\u07c0\u08ff\ufb1d\ufe00\uff10"
    "המועצה\u05b0\u0591"
    "AZaz09_.,!?:-#*[]()`>+•|=…«»“”²½Ⅻéßİ"
)
MARKERS = [m for m in DEFAULT_CHROME_MARKERS if m] + ["تابعونا على", "Follow us", "Related Articles", "اقرأ أيضاً"]
CHARACTERS = st.one_of(st.sampled_from(SPECIAL), st.characters())
TEXTS = st.one_of(
    st.text(CHARACTERS, max_size=200),
    st.lists(st.one_of(st.text(CHARACTERS, max_size=40), st.sampled_from(MARKERS)), max_size=12).map(" ".join),
)


def general_drop_unsafe_chars(value: str) -> str:
    value = _UNSAFE.sub("", value.replace("\x85", " "))  # NEL, a line break to XML 1.1 alone: a space
    if _ASTRAL.search(value):
        value = _ASTRAL_NONCHARACTERS.sub("", value)
    return unicodedata.normalize("NFC", value)


def general_is_visible(value: str) -> bool:
    return any(unicodedata.category(c)[0] in "LMNPS" for c in value)


def general_script_counts(value: str) -> tuple[int, int, int]:
    """(Arabic, Hebrew, letters) as detect_language counted them, one regular expression each."""
    return len(_NOT_ARABIC.sub("", value)), len(_NOT_HEBREW.sub("", value)), len(_NOT_LETTERS.sub("", value))


def general_detect_language(value: str, default: str) -> str:
    value = value[:text._LANGUAGE_SAMPLE]
    arabic, hebrew, letters = general_script_counts(value)
    if arabic or hebrew:  # the headline and lead first (text.py's rules for them, tested in test_text.py)
        if (latin := text._latin_head(value)) is not None:
            return general_detect_language(latin, default)
        if arabic * 2 > len(value):
            return text._arabic_script(value, arabic)
        if (told := text._by_head(value)) is not None:
            return text._arabic_script(value, arabic) if told == "ar" else told
    if not letters:
        return default
    if arabic * 2 > letters:
        return text._arabic_script(value, arabic)
    if hebrew * 2 > letters:
        return "he"
    if letters < 12:
        return default
    sample = value[:text._LANGUAGE_ID_SAMPLE]
    if text._plainly_english(sample):
        return "en"
    found = text._identifier()(sample)[0]
    return text._AS_ISO_639.get(found, found) or default  # one feed readers know (test_text.py)


@settings(max_examples=200, deadline=None)
@given(TEXTS)
@example("a\u202eb\nc\td\U0001fffe")
@example("")
def test_drop_unsafe_chars_is_the_general_clean_up(value):
    assert drop_unsafe_chars(value) == general_drop_unsafe_chars(value)


def test_every_character_the_clean_up_removes_is_unprintable():
    # What lets drop_unsafe_chars pass printable lines by: a character it removes that printed would stay.
    removed = [chr(c) for c in range(0x110000) if _UNSAFE.match(chr(c)) or _ASTRAL_NONCHARACTERS.match(chr(c))]
    assert removed and not any(c.isprintable() for c in removed)


@settings(max_examples=200, deadline=None)
@given(TEXTS)
@example(" ")
@example("\u200f.")
@example("\u00a0x")
def test_is_visible_is_the_general_test(value):
    assert is_visible(value) == general_is_visible(value)


def test_printable_characters_are_the_visible_ones_and_the_space():
    assert all(unicodedata.category(chr(c))[0] in "LMNPS" for c in range(0x110000) if chr(c).isprintable() and c != 0x20)


def test_each_script_lies_in_the_blocks_its_count_looks_at():
    for c in range(0x110000):
        if _ARABIC_SCRIPT.match(chr(c)):
            assert c >> 8 == text._ARABIC_BLOCK or c >> 8 in text._ARABIC_SHARED, hex(c)
        if _HEBREW_SCRIPT.match(chr(c)):
            assert c >> 8 in text._HEBREW_SHARED, hex(c)
    assert all(_ARABIC_SCRIPT.match(chr(c)) for c in range(0x600, 0x700))
    assert {c for c in range(128) if _LETTERS.match(chr(c))} == set(text._ASCII_LETTERS)


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_script_counts_are_the_regular_expressions(value):
    arabic, hebrew, letters = general_script_counts(value)
    blocks = text._blocks(value)
    assert text._in_script(value, blocks, text._ARABIC_BLOCK, text._ARABIC_SHARED, _NOT_ARABIC) == arabic
    assert text._in_script(value, blocks, None, text._HEBREW_SHARED, _NOT_HEBREW) == hebrew
    assert text._ascii_letters(value) <= letters
    assert text._ascii_letters(value) == len(re.findall("[A-Za-z]", value))


@settings(max_examples=150, deadline=None)
@given(st.one_of(TEXTS, st.text(st.sampled_from("abc the and of سلامשלום١ 2.\n"), max_size=80)))
@example("The city council approved the new budget on Tuesday")
@example("أخبار " * 20 + "a" * 300)
def test_detect_language_is_the_general_one(value):
    assert detect_language(value, "de") == general_detect_language(value, "de")


def general_collapse_space(value: str) -> str:
    return " ".join(value.split())


@settings(max_examples=200, deadline=None)
@given(TEXTS)
@example(" a  b ")
@example("a\u00a0b")
@example(" ")
def test_collapse_space_is_the_general_one(value):
    assert collapse_space(value) == general_collapse_space(value)


def test_every_whitespace_character_but_the_space_is_unprintable():
    assert not any(chr(c).isprintable() for c in range(0x110000) if chr(c).isspace() and c != 0x20)


_FOLDED_LETTERS = str.maketrans("أإآٱيیةک", "ااااىىهك")
_MD_DECORATION = str.maketrans("", "", "*_[]`")


def general_fold(line: str) -> str:
    line = unicodedata.normalize("NFKC", chrome._MD_LINK_TARGET.sub("", line))
    line = chrome._ARABIC_MARKS.sub("", line).translate(_FOLDED_LETTERS).translate(_MD_DECORATION).casefold()
    return " ".join(line.split()).strip(chrome._FOLD_STRIP)


def general_strip_chrome(lines: list[str], markers: tuple[str, ...]) -> list[str]:
    """strip_chrome as written before its fast paths: every marker tried on every folded line."""
    folded = tuple(dict.fromkeys(m for m in map(general_fold, markers) if m))
    longest = max(map(len, folded), default=0) + chrome._CHROME_TAIL_CHARS + 16

    def tail(i: int) -> int | None:
        line = lines[i]
        if len(line) > longest and "](" not in line:
            return None
        f = general_fold(line)
        best = None
        for m in folded:
            if f == m:
                return 0
            if f.startswith(m) and not f[len(m)].isalnum():
                rest = f[len(m):]
                words = sum(1 for w in rest.split() if any(c.isalnum() for c in w))
                sentence = (words >= chrome._SENTENCE_WORDS and line.rstrip(" *_)]\"'»”").endswith(chrome._SENTENCE_ENDS)
                            and ("," in line or "،" in line or (m in chrome._SENTENCE_OPENERS and words >= chrome._OPENER_WORDS)))
                if len(rest) <= chrome._CHROME_TAIL_CHARS and words <= chrome._CHROME_TAIL_WORDS and not sentence:
                    best = words if best is None else min(best, words)
        return best

    def listed(line: str) -> bool:
        return len(general_fold(line)) <= chrome._FILLER_CHARS and not line.rstrip(" *_)]\"'»”").endswith(chrome._STATEMENT_ENDS)

    end = len(lines)
    while end > 0:
        if tail(end - 1) is not None:
            end -= 1
            continue
        heading = next((i for i in range(end - 2, max(end - 2 - chrome._FILLER_WINDOW, -1), -1) if tail(i) is not None), None)
        if heading is not None and tail(heading) <= chrome._HEADING_TAIL_WORDS and all(listed(lines[i]) for i in range(heading + 1, end)):
            end = heading
            continue
        break
    return lines[:end]


FOLDABLE = st.one_of(TEXTS, st.sampled_from(MARKERS).map(lambda m: f"**[{m.upper()}](http://x/)** ـ إ،"),
                     st.lists(st.sampled_from(SPECIAL + "](ـًأيیةکﺗＦ."), max_size=30).map("".join))


@settings(max_examples=200, deadline=None)
@given(FOLDABLE)
@example("[Follow us](https://x/) on *X*")
@example("تابعونا على")
@example("a](b) c](d](e")
@example("](](x)](y")
def test_fold_is_the_general_one(value):
    assert chrome._fold(value) == general_fold(value)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(FOLDABLE, st.sampled_from(MARKERS), st.sampled_from(MARKERS).map(lambda m: m + " X, YouTube"),
                          st.sampled_from(MARKERS).map(lambda m: m + " من المستثمرين الأجانب بالسوق."),
                          st.tuples(st.sampled_from(MARKERS), st.sampled_from(MARKERS)).map(lambda p: f"{p[0]}. {p[1]} a b c.")),
                max_size=16))
def test_strip_chrome_is_the_general_one(lines):
    markers = DEFAULT_CHROME_MARKERS + ("Show Moreover", "أ")
    assert strip_chrome(lines, markers) == general_strip_chrome(lines, markers)


@settings(max_examples=200, deadline=None)
@given(TEXTS)
@example("000000_635087700338bc3d")
@example("a\ud800b")
def test_stable_id_is_uuid5(name):
    import uuid

    from feedsvc.model import _ID_NAMESPACE, stable_id

    try:
        expected = "urn:uuid:" + str(uuid.uuid5(_ID_NAMESPACE, name))
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            stable_id.__wrapped__(name)
    else:
        assert stable_id.__wrapped__(name) == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40), st.sampled_from([b"", b" \t\r\n\x0b\x0c", b"\x1c\x85", b"\xc2\xa0"]))
def test_a_blank_file_is_told_as_before(data, blank):
    # parse_article's first test: `not data or data.isspace()` stands in for `not data.strip()`
    for value in (data, blank, blank + data + blank):
        assert (not value or value.isspace()) == (not value.strip())


def general_paragraphs_to_html(paragraphs: list[str]) -> str:
    import html

    return "".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(TEXTS, st.sampled_from(["", "\0", "a\0b", "<p>&amp;</p>", "&<>\"'"])), max_size=8))
@example([])
@example([""])
def test_paragraphs_to_html_is_the_general_one(paragraphs):
    from feedsvc.reading.markup import paragraphs_to_html

    assert paragraphs_to_html(paragraphs) == general_paragraphs_to_html(paragraphs)


def test_a_file_without_front_matter_has_the_fields_an_empty_one_reads():
    from feedsvc.reading import articles

    read = {"published": frontmatter.read_date({}, "date", "UTC"), "updated": frontmatter.read_date({}, "updated", "UTC"),
            "tags": frontmatter.read_tags({}), "author": collapse_space(frontmatter.read_text({}, "author") or "") or None,
            "image": frontmatter.read_image({}, ""), "draft": frontmatter.read_draft({}),
            "image_alt": frontmatter.read_name({}, "image_alt")}
    assert articles._front_matter_fields({}, articles.Options(site_url="http://x"), "") == read
    assert articles._front_matter_fields({"draft": "yes"}, articles.Options(site_url="http://x"), "")["draft"] is True


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["/srv/articles", "/srv/articles/", "articles", "", "/", "./a//b"]),
       st.text(st.sampled_from("ab/.\\ ~\u0627:"), max_size=12))
def test_a_folder_path_is_os_path_join(root, source):
    import os

    from feedsvc.reading.folder import Folder

    assert Folder(root)._path(source) == os.path.join(root, *source.split("/"))


_GENERAL_H1 = re.compile(r"\A#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)  # the first heading, as it was found before _h1


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(st.sampled_from("# \t\nxé#"), max_size=16), TEXTS.map(lambda t: "# " + t)))
@example("#  ")
@example("# ##")
@example("#\t x #  \nnext")
def test_the_first_heading_is_the_regular_expressions(value):
    found = _GENERAL_H1.search(value)
    assert articles._h1(value) == ((found.group(1), found.end()) if found else None)

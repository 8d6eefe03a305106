"""How search sees text: the Arabic-aware normalisation every indexed text and every query goes through, and
a reader's query made into an FTS5 MATCH expression that holds no query syntax (search.py keeps the index).

Text and queries go through the same normalise(), so a word matches whatever its hamza seat, alef form,
diacritics (Hebrew points too), tatweel, Persian or Urdu letter forms, digit shapes or letter case. SQLite's own
unicode61 tokenizer cannot do this for Arabic (tested: it splits أَمِين at every haraka into أ|م|ين, keeps tatweel and
hamza forms apart, and remove_diacritics only folds Latin letters), so it only splits normalised text into words (TOKENIZER).
https://www.sqlite.org/fts5.html#unicode61_tokenizer
Scripts written without spaces (Chinese, Japanese, Thai, Lao, Khmer, Myanmar) are indexed a letter to a token, and a
query's run of them searched as a phrase of those letters, so a word is found wherever it stands in a sentence.
"""
from __future__ import annotations

import itertools
import re
import unicodedata

MAX_CHARS = 200  # a query longer than this is refused: a topic is a few words
MAX_TERMS = 10

# The letters folded together. Code points from the Unicode Arabic chart, https://www.unicode.org/charts/PDF/U0600.pdf;
# the same choices as CAMeL Tools' normalize_alef_ar / normalize_alef_maksura_ar / normalize_teh_marbuta_ar
# (https://camel-tools.readthedocs.io/en/latest/api/utils/normalize.html) and Lucene's ArabicNormalizer.
FOLD = {
    # Alef with hamza above, hamza below, madda, wasla, wavy hamza above/below → bare alef: writers drop
    # the hamza on alef (اسلام for إسلام), so a search for either finds both.
    0x0623: "\u0627", 0x0625: "\u0627", 0x0622: "\u0627", 0x0671: "\u0627", 0x0672: "\u0627", 0x0673: "\u0627",
    # Hamza on waw and on ya (its seat) → the hamza letter: مسؤول and مسئول, شؤون and شئون are one word
    # spelt two ways; dropping the hamza instead (مسوول, مسيول) would keep them apart.
    0x0624: "\u0621", 0x0626: "\u0621",
    0x0649: "\u064a",  # alef maqsura ى → ya ي (على is often typed علي)
    0x06cc: "\u064a",  # Farsi yeh ی (Persian keyboards) → ya ي
    0x0629: "\u0647",  # ta marbuta ة → ha ه (مدرسة / مدرسه)
    0x06a9: "\u0643",  # keheh ک (Persian keyboards) → kaf ك
    # Heh as Persian and Urdu write it → Arabic heh ه, the way ی and ک fold to the Arabic letter above (Lucene's
    # PersianNormalizer folds HEH_GOAL and HEH_YEH alike): Urdu keyboards type heh goal ہ and, in بھ پھ and a word's
    # first heh, heh doachashmee ھ, so لاہور is لاهور; ۂ is ہ with its izafa hamza, and Persian writes نامۀ for نامه + izafa.
    # (ۂ and ۀ are what NFKC composes ہ or ە with the hamza mark into; a hamza mark on a plain ه goes with DROP.)
    0x06c1: "\u0647", 0x06be: "\u0647", 0x06c2: "\u0647", 0x06c0: "\u0647",
    **{0x0660 + d: str(d) for d in range(10)},  # Arabic-Indic digits ٠-٩ → 0-9
    **{0x06f0 + d: str(d) for d in range(10)},  # Extended (Persian, Urdu) digits ۰-۹ → 0-9
}
# Marks dropped: harakat and tanwin (U+064B-U+0652: fathatan, dammatan, kasratan, fatha, damma, kasra, shadda,
# sukun), madda and hamza above/below and the other marks to U+065F, superscript alef U+0670, tatweel U+0640,
# Quranic signs U+0610-U+061A and U+06D6-U+06ED, and the extended marks U+08D3-U+08FF (but U+08E2, a sign).
DROP = [0x0640, 0x0670, *range(0x064b, 0x0660), *range(0x0610, 0x061b), *range(0x06d6, 0x06ee),
        *range(0x08d3, 0x08e2), *range(0x08e3, 0x0900),
        # Hebrew points, as harakat: cantillation, vowel points, dagesh, shin and sin dots (the marks of U+0591-U+05C7;
        # NFKC leaves שׁ and the other pointed letters decomposed, so the letter stays) and the varika U+FB1E. Not maqaf ־,
        # paseq ׀, sof pasuq ׃ or nun hafukha ׆ among them: punctuation, which parts two words (כל־העם is כל and העם).
        *range(0x0591, 0x05be), 0x05bf, 0x05c1, 0x05c2, 0x05c4, 0x05c5, 0x05c7, 0xfb1e,
        # Invisible format characters inside a word (a soft hyphen, ZWNJ, ZWJ, a zero-width space, direction marks, a BOM),
        # which scraped text carries and Persian writes: the tokenizer split the word at them (الحكو|مة), so neither part
        # matched the word.
        0x00ad, 0x061c, *range(0x200b, 0x2010), *range(0x202a, 0x202f), *range(0x2060, 0x2065), *range(0x2066, 0x206a), 0xfeff,
        # Variation selectors: they choose a glyph, not a letter (https://www.unicode.org/faq/vs.html); Japanese names carry
        # ideographic ones (葛 + U+E0100), which made the letter another token than the plain 葛 of a query.
        *range(0xfe00, 0xfe10), *range(0xe0100, 0xe01f0)]
# But a zero-width space after a Thai, Lao, Myanmar or Khmer letter is how those scripts mark where a word ends: a space.
_WORD_END = re.compile("(?<=[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff])\u200b")
TABLE = {**{cp: None for cp in DROP}, **{cp: ord(to) for cp, to in FOLD.items()}}  # str.translate's form: the definition
# The same, five times faster than str.translate (whose per-character lookups cost 1.6 s for 10,000 articles):
# one regex pass drops the marks, then each folded letter present is replaced in one C-speed pass.


def _char_class(code_points) -> str:
    """The inside of a regex character class of these code points, consecutive ones as a range."""
    # Ranges, not each code point: one astral code point written alone (the variation selectors) made re test the class
    # item by item, 0.8 s a megabyte where a range takes 0.01 s.
    ranges: list[list[int]] = []
    for cp in sorted(code_points):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return "".join(re.escape(chr(lo)) + ("" if lo == hi else "-" + re.escape(chr(hi))) for lo, hi in ranges)


_DROP = re.compile(f"[{_char_class(DROP)}]")
_FOLD = tuple((chr(cp), to) for cp, to in FOLD.items())

# Words are runs of letters, digits, marks and private-use characters (marks too: unicode61's default
# splits Hindi and other scripts at their vowel signs); remove_diacritics 2 also folds é → e for Latin.
TOKENIZER = "unicode61 remove_diacritics 2 categories 'L* N* Co M*'"

# Scripts written without spaces between words: unicode61 made each run between punctuation one token, so 东京 in
# 东京奥运会开幕式今晚举行 was found by no search. Where such a word ends takes a dictionary to tell (UAX #29 leaves it to one:
# https://www.unicode.org/reports/tr29/#Word_Boundaries), so each letter is a token of its own and a query's run of them a
# phrase (match_expression): 东京 finds 东 and 京 side by side, never apart. Lucene's StandardTokenizer makes each ideograph
# and hiragana a token too, but keeps a katakana run whole, so ウイルス is not found in コンピュータウイルス: here it is.
# https://lucene.apache.org/core/9_9_0/core/org/apache/lucene/analysis/standard/StandardTokenizerImpl.html
# SQLite's trigram tokenizer cannot: it finds no word under three letters (东京, 東大).
# https://www.sqlite.org/fts5.html#the_trigram_tokenizer
# Their blocks, after NFKC (half-width kana and Kangxi radicals are plain ones by then). Han and kana, a token a code point:
# every code point of the CJK Unified Ideographs (extensions A-I) and of the compatibility ideographs NFKC keeps; the
# letters, numbers and marks of the rest: 々 〆 〇 and the other ideographic letters and numbers, Hiragana, Katakana (ー among
# them) and their extensions (a voicing mark NFKC cannot compose, as in ㇷ゚, is a token of its own: a phrase still needs it
# where the query has it).
_IDEOGRAPHS = ((0x3400, 0x4dbf), (0x4e00, 0x9fff), (0xf900, 0xfaff), (0x20000, 0x3ffff))
_KANA = ((0x3005, 0x303c), (0x3041, 0x30ff), (0x31f0, 0x31ff), (0x1aff0, 0x1b16f))
# Thai, Lao, Myanmar and Khmer (and Myanmar's extensions): a letter with the vowel signs, tone marks, coeng or asat written
# on it is one token (กิ|น, ខ្|មែ|រ), so กิน is not found in กินี (กิ|นี); their digits stay numbers, a run a word.
_SOUTHEAST = ((0x0e00, 0x0eff), (0x1000, 0x109f), (0x1780, 0x17ff), (0xa9e0, 0xa9ff), (0xaa60, 0xaa7f))


def _code_points(blocks: tuple, categories: tuple) -> list[int]:
    """The code points of these blocks whose general category is one of these (or starts with one)."""
    return [cp for lo, hi in blocks for cp in range(lo, hi + 1) if unicodedata.category(chr(cp)).startswith(categories)]


_LETTERS, _MARKS = _code_points(_SOUTHEAST, ("L",)), _code_points(_SOUTHEAST, ("M",))
_BLOCKS = {blocks: "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in blocks) for blocks in (_IDEOGRAPHS, _KANA, _SOUTHEAST)}
_UNSPACED = re.compile(f"([{_BLOCKS[_IDEOGRAPHS]}{_char_class(_code_points(_KANA, ('L', 'Nl', 'Mn')))}]+)"
                       f"|((?:[{_char_class(_LETTERS)}][{_char_class(_MARKS)}]*)+)")
_LETTER_APART = {letter: " " + chr(letter) for letter in _LETTERS}  # str.translate's: a space before each letter, not its marks


class QueryError(ValueError):
    """A search query that cannot be run; the message is one line saying how to fix ?q=."""


# Where digits meet letters one word is two: 2024م (the Gregorian year's م), ١٤٤٥هـ and لـ5 were single words that no search
# for 2024, 1445 or 5 found; and a tatweel before a Latin word sets a prefix apart (الـNATO): a word break, not a join. A
# query's word so split is searched as a phrase (match_expression), its parts next to each other: covid19 finds covid19,
# never "19 … covid". Digits are found by a scan for them alone (a pattern for each place a digit meets a letter cost
# three times the rest of normalise), and in the same scan the blocks of the unspaced scripts, whole: _UNSPACED picks their
# letters out of a run. Over articles that hold none, a scan for them of its own cost half as much again as the digits' scan
# did; this one costs a fifth more than it (instructions counted by callgrind).
_RUNS = re.compile(f"[0-9{''.join(_BLOCKS.values())}]+")
# After NFKC and casefold (presentation forms are plain Arabic by then); one tatweel, the one before the letter (a run's
# others go with DROP): "\u0640+" was tried at each place in a long run, scanning it to its end (a 60,000-tatweel
# article took search down for 20 s, a 1 MiB one would for 20 minutes).
_TATWEEL_BREAK = re.compile("\u0640(?=[a-z])")
SPLITS = ("digits|letters, tatweel before latin, zwsp after thai, lao, myanmar, khmer, "  # what normalise splits, for search.VERSION
          "a token per han and kana code point and per thai, lao, myanmar and khmer letter with its marks")


def normalise(text: str, apart: bool = True) -> str:
    """Text as the index holds it: NFKC, case-folded, Arabic letter forms folded, marks, tatweel and invisible format
    characters dropped, digits apart from the letters they touch and unspaced scripts a letter to a token (apart=False:
    not yet, match_expression)."""
    # NFKC first: it composes alef + hamza mark (U+0627 U+0654) into أ before folding, and turns presentation
    # forms (ﻷ) and full-width letters into plain ones; casefold, then NFKC again (casefold can undo it).
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    if "\u0640" in text:
        text = _TATWEEL_BREAK.sub(" ", text)
    if "\u200b" in text:
        text = _WORD_END.sub(" ", text)
    text = _DROP.sub("", text)
    for letter, to in _FOLD:
        if letter in text:
            text = text.replace(letter, to)
    return _apart(text) if apart else text


def _apart(text: str) -> str:
    """The text with a space between a run of digits and a letter it touches, and around each letter of an unspaced script."""
    parts, last = [], 0
    for run in _RUNS.finditer(text):
        start, end = run.span()
        before, after = start > 0 and text[start - 1].isalpha(), end < len(text) and text[end].isalpha()
        digits = run[0].isdigit()  # else unspaced letters, and maybe digits among them
        if before or after or not digits:
            parts += [text[last:start], " " if before else "", run[0] if digits else _UNSPACED.sub(_letters_apart, run[0]),
                      " " if after else ""]
            last = end
    return "".join(parts) + text[last:] if parts else text


def _letters_apart(run: re.Match) -> str:
    """A run of Han and kana with a space around each code point, or of Thai, Lao, Myanmar or Khmer around each letter."""
    # str.replace of "" puts the space between every two code points, at C speed (a regex substitution's template per
    # letter took 2 s a megabyte, four times the rest of normalise).
    return run[1].replace("", " ") if run[1] else run[2].translate(_LETTER_APART) + " "


def _is_word_char(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category[0] in "LNM" or category == "Co"


def match_expression(query: str) -> str:
    """An FTS5 MATCH expression for a reader's query: each word quoted (so `"`, `*`, NEAR, OR, AND, NOT and
    column filters are only words), all of them required. Raises QueryError for a query that cannot be run."""
    if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\t\n\r" for ch in query) or "\ufffe" in query or "\uffff" in query:
        raise QueryError("Bad search: ?q= holds control characters; send only the words to find.")
    if not query.strip():
        raise QueryError("Empty search: give the words to find as ?q=, for example /search/feed.rss?q=election.")
    if len(query) > MAX_CHARS:
        raise QueryError(f"Search too long ({len(query)} characters): at most {MAX_CHARS}; shorten ?q= to a few words.")
    # The words are the index's own (TOKENIZER's runs of letters, digits and marks): `NASA,Mars` and `القاهرة،NASA` are two
    # words each, as `NASA Mars` is, not one quoted string FTS5 would take for a phrase, its words next to each other.
    words = ["".join(run) for word, run in itertools.groupby(normalise(query, apart=False), _is_word_char) if word]
    if len(words) > MAX_TERMS:
        raise QueryError(f"Search has {len(words)} words: at most {MAX_TERMS}; keep the words that name the topic in ?q=.")
    if not words:
        raise QueryError("Search has no letters or digits: give the words to find as ?q=, for example ?q=election.")
    # An FTS5 string is "…" with "" for a quote inside: nothing in it is syntax; a word the index holds as several (2024م,
    # covid19, 东京: _apart) is one string of them, a phrase. https://www.sqlite.org/fts5.html#fts5_strings
    return " ".join('"' + " ".join(_apart(word).split()).replace('"', '""') + '"' for word in words)

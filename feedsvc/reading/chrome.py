"""Site chrome: the trailer of "Follow us", "Related Articles" and comment-form lines scrapes leave
at the end of an article, found by marker and cut off. Pure functions on lists of lines."""
from __future__ import annotations

import functools
import re
import unicodedata

# Arabic marks that scrapes spell either way (tanween, harakat, tatweel), alef, yeh, teh marbuta and kaf forms; and the invisible marks a scrape
# leaves at a line's start (right-to-left and left-to-right marks, the Arabic letter mark, zero-width spaces and joiners,
# a byte order mark), which the text keeps (README) and no marker has.
_ARABIC_MARKS = re.compile("[\u0640\u064b-\u065f\u0670\u200b-\u200f\u061c\u2060\ufeff]")
# (character, replacement) pairs: see _replace_each. Alef with hamza or madda as bare alef; final yeh as alef maksura
# (علي, and Persian ی, for على: Egyptian and Persian keyboards); teh marbuta as heh (صله for صلة); Persian kaf as Arabic.
_LETTERS = (*((form, "ا") for form in "أإآٱ"), ("ي", "ى"), ("ی", "ى"), ("ة", "ه"), ("ک", "ك"))
# A chrome line is a marker, perhaps followed by a few words ("Follow us on Facebook, X and YouTube";
# "… will not be published. Required fields are marked *"). A longer line that starts with a marker
# is a sentence of the article ("Related articles on this topic were published by Reuters last week").
_CHROME_TAIL_WORDS = 8
_CHROME_TAIL_CHARS = 60
_HEADING_TAIL_WORDS = 2  # "Related Articles", "Follow us on Facebook": may head a list of short lines
_FILLER_WINDOW = 12  # related-article titles listed under such a heading
_FILLER_CHARS = 160
_SENTENCE_ENDS = (".", "!", "?", "؟", "。", "…")
_STATEMENT_ENDS = (".", "!", "。", "…")  # a related article's title listed under a heading is often a question
_SENTENCE_WORDS = 4  # words after a marker, in a line with a comma and a sentence's end: the article's own sentence
_OPENER_WORDS = 5  # words after a marker that opens a sentence of news, in a line with a sentence's end and no comma
_MD_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_MD_DECORATION = tuple((mark, "") for mark in "*_[]`")
_FOLD_STRIP = " .:،؛…!-#>+•·|="


def strip_chrome(lines: list[str], markers: tuple[str, ...]) -> list[str]:
    """Drop the run of site-chrome lines at the end, and the short lines listed under a chrome heading."""
    folded = _fold_markers(tuple(markers))
    starting = _by_first_character(folded)
    # Longer than any marker with its tail and some Markdown decoration: a paragraph, no need to fold it.
    longest = max(map(len, folded), default=0) + _CHROME_TAIL_CHARS + 16

    # A line looked up as chrome is often looked at again as an item listed under a heading: folded once.
    folds: dict[int, str] = {}

    def fold(i: int) -> str:
        if i not in folds:
            folds[i] = _fold(lines[i])
        return folds[i]

    def tail_words(i: int) -> int | None:
        """Words after the marker line i starts with; None when it starts with none."""
        line = lines[i]
        if len(line) > longest and "](" not in line:
            return None
        f = fold(i)
        if not f.startswith(folded):  # one C call for the lines that begin with no marker: nearly all
            return None
        best = None
        for m in starting[f[0]]:  # the markers f can start with, in their order
            if f == m:
                return 0
            # The marker must end at a word boundary: "Show Moreover, …" is not "Show More".
            if f.startswith(m) and not f[len(m)].isalnum():
                tail = f[len(m):]
                words = sum(1 for w in tail.split() if any(map(str.isalnum, w)))
                if len(tail) <= _CHROME_TAIL_CHARS and words <= _CHROME_TAIL_WORDS and not _sentence(line, words, m):
                    best = words if best is None else min(best, words)
        return best

    # Only the end of an article can be chrome: look lines up from the end, each at most once.
    looked: dict[int, int | None] = {}

    def tail(i: int) -> int | None:
        if i not in looked:
            looked[i] = tail_words(i)
        return looked[i]

    end = len(lines)
    while end > 0:
        if tail(end - 1) is not None:
            end -= 1
            continue
        # Not chrome itself, but maybe an item listed under a chrome heading ("Related Articles" and the
        # related titles below it, "Follow us on" and the network names): the heading must be near, on a
        # line of its own, with only short lines from it down to here.
        heading = next((i for i in range(end - 2, max(end - 2 - _FILLER_WINDOW, -1), -1) if tail(i) is not None), None)
        if (heading is not None and tail(heading) <= _HEADING_TAIL_WORDS
                and all(_is_list_item(lines[i], fold(i)) for i in range(heading + 1, end))):
            end = heading
            continue
        break
    return lines[:end]


@functools.lru_cache(maxsize=16)
def _fold_markers(markers: tuple[str, ...]) -> tuple[str, ...]:
    """The markers as lines are compared with them, without repeats (the same few tuples every call)."""
    return tuple(dict.fromkeys(m for m in map(_fold, markers) if m))


@functools.lru_cache(maxsize=16)
def _by_first_character(folded: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """The folded markers by their first character, each group in the markers' order."""
    groups: dict[str, list[str]] = {}
    for m in folded:
        groups.setdefault(m[0], []).append(m)
    return {first: tuple(group) for first, group in groups.items()}


def _sentence(line: str, tail_words: int, marker: str) -> bool:
    """Whether a line that starts with a marker reads as a sentence of the article: words enough after it and a
    sentence's end, with a clause after a comma ("Show more restraint, the UN urged both sides."; "أظهر المزيد من المرونة،
    دعا الوزير الطرفين."), which chrome lines ("Follow us on Facebook, X and YouTube", the e-mail notice ending in "*")
    are not; or, after a marker that also opens a sentence of news (_SENTENCE_OPENERS), more words without a comma."""
    end = line.rstrip(" *_)]\"'»”")
    if tail_words < _SENTENCE_WORDS or not end.endswith(_SENTENCE_ENDS):
        return False
    # "أظهر المزيد من …" (more … showed) and "مقالات ذات صلة بـ…" (articles on …) open Arabic sentences that often have no
    # comma: an article's last paragraph so written was cut off as chrome, without a word (found in review). A marker
    # that speaks to the reader ("Follow us on our page for more news.") is chrome however it ends.
    return "," in line or "،" in line or (marker in _SENTENCE_OPENERS and tail_words >= _OPENER_WORDS)


def _is_list_item(line: str, folded: str) -> bool:
    """Short and not ending like a statement: a related article's title (a question too: "Will prices rise?") or a
    network's name, not a paragraph. folded: _fold(line)."""
    return len(folded) <= _FILLER_CHARS and not line.rstrip(" *_)]\"'»”").endswith(_STATEMENT_ENDS)


# A site's chrome is the same few lines under every article ("Back to top", "Related Articles", the e-mail notice): each
# folded once per reading process, not once per article (92% of the folds of the benchmark corpus; a full read 7% faster).
@functools.lru_cache(maxsize=4096)
def _fold(line: str) -> str:
    """A line as compared with markers: no harakat or tatweel, one alef, no case, no Markdown decoration."""
    if "](" in line and (last := line.rfind(")")) >= 0:  # a link's target has both
        # Searched up to the last ")" alone: from each "](" after it the search would run to the line's end and fail,
        # once for each (a last line of "](" repeated took 11 s at 256 KB).
        line = _MD_LINK_TARGET.sub("", line[:last + 1]) + line[last + 1:]
    if not line.isascii():  # the marks and letter forms are Arabic
        # NFKC first: Arabic presentation forms (ﺗﺎﺑﻌﻮﻧﺎ, from a PDF or an old page) and full-width Latin (Ｆｏｌｌｏｗ) as the
        # letters they show.
        line = _replace_each(_ARABIC_MARKS.sub("", unicodedata.normalize("NFKC", line)), _LETTERS)
    return " ".join(_replace_each(line, _MD_DECORATION).casefold().split()).strip(_FOLD_STRIP)


def _replace_each(line: str, pairs: tuple[tuple[str, str], ...]) -> str:
    """Each character of the pairs replaced by its partner, as str.translate would, at C speed: a replace for each
    one the line has (translate looks every character of a line that is not ASCII up: 4 µs for 100 characters)."""
    for char, by in pairs:
        if char in line:
            line = line.replace(char, by)
    return line


# The built-in markers that also open a sentence of news, folded: "أظهر المزيد" (showed more), "مقالات ذات صلة" (articles
# related to), "Show more", "Related articles". The others speak to the reader or name a button.
_SENTENCE_OPENERS = frozenset(map(_fold, ("أظهر المزيد", "اظهر المزيد", "مقالات ذات صلة", "Show More", "Related Articles")))

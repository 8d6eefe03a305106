"""Article bodies as HTML and text: plain paragraphs, CommonMark, sanitising, summaries."""
from __future__ import annotations

import html
import re
import unicodedata
from typing import Callable
from urllib.parse import urljoin, urlsplit

import nh3
import cmarkgfm.cmark as cmark

from .text import collapse_space, drop_unsafe_chars

# CommonMark (cmark-gfm, the C reference implementation) with tables and strikethrough. Raw HTML is
# let through the parser and then cleaned by ammonia (nh3), which removes scripts, event handlers and
# javascript: URLs. https://spec.commonmark.org/
# GitHub's extensions: tables, strikethrough, footnotes and bare URLs as links (autolink).
_CMARK_OPTIONS = cmark.Options.CMARK_OPT_UNSAFE | cmark.Options.CMARK_OPT_FOOTNOTES
_CMARK_EXTENSIONS = ["table", "strikethrough", "autolink"]
# cmark writes noncharacters (U+FFFE, U+FDD0, …) named by a character reference as bytes that are not
# UTF-8; they would be dropped as XML-discouraged anyway, so they are dropped before parsing.
_CHAR_REF = re.compile(r"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));")


def _drop_nonchar_ref(match: re.Match) -> str:
    point = int(match.group(1), 16) if match.group(1) else int(match.group(2))
    return "" if 0xFDD0 <= point <= 0xFDEF or point & 0xFFFE == 0xFFFE else match.group(0)
_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "dfn", "div", "dl", "dt",
    "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li",
    "mark", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup", "table", "tbody", "td",
    "tfoot", "th", "thead", "time", "tr", "u", "ul", "section",
}
_ALLOWED_ATTRIBUTES = {
    "*": {"dir", "lang", "title", "id"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "ol": {"start"},
    "time": {"datetime"},
}
_URL_SCHEMES = {"http", "https", "mailto"}
_BLOCKS = {"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "tr", "figcaption", "dt", "dd"}


# ammonia's HTML parser takes time growing with the square of how deep elements nest: 40,000 nested
# blockquotes (40 KB of ">") take seconds, a 5 MB file of them hours. Real articles nest a few levels.
NESTING_MAX = 100
_VOID = frozenset("area base br col embed hr img input keygen link meta param source track wbr".split())  # never nest
# The formatting elements an HTML parser opens again after an end tag closed them out of order (`<b><i></b>x` is
# `<b><i></i></b><i>x</i>`: "reconstruct the active formatting elements").
# https://html.spec.whatwg.org/multipage/parsing.html#reconstruct-the-active-formatting-elements
_FORMATTING = frozenset("a b big code em font i nobr s small strike strong tt u".split())
# An end tag of a formatting element with one of these inside it moves what is inside to a copy of it ("the adoption
# agency algorithm"), and one of another element past one of _SCOPE closes nothing: counted as closing nothing, which
# never counts less deep than a parser builds. https://html.spec.whatwg.org/multipage/parsing.html#special
_SPECIAL = frozenset(
    "address applet area article aside base basefont bgsound blockquote body br button caption center col colgroup dd "
    "details dir div dl dt embed fieldset figcaption figure footer form frame frameset head header "
    "hgroup hr html iframe img input keygen li link listing main marquee menu meta nav noembed noframes noscript object "
    "ol p param plaintext pre script search section select source style summary table tbody td template textarea tfoot h "  # h: h1-h6
    "th thead title tr track ul wbr xmp math svg".split())
_SCOPE = frozenset("applet caption html table td th marquee object template button ol ul select math svg".split())
_HEADINGS = frozenset("h1 h2 h3 h4 h5 h6".split())
_IGNORED = frozenset("html head body frameset frame".split())  # a fragment's parser opens none of these
# Closed by their end tag only where innermost: a start tag closes them before it (`<p><div>` is `<p></p><div>`; `<li>`,
# `<dd>`, `<a>`, a heading, `<div>` in <svg>), or theirs opens nothing (a cell outside a table, a second `<form>`), and
# their end tag would then close what is open after them.
_INNERMOST = frozenset("caption col colgroup tbody td tfoot th thead tr p li dd dt option optgroup h a nobr button rb rt "
                       "rp rtc form svg math select".split())
# ammonia also takes time growing with the square of a text's length times its count of "&" and no-break spaces, each of
# which it appends to the text alone (1 MiB of "&" in a raw HTML block: 16 s; "&" and four letters, 100,000 times: 1 s).
# The references that stand for "<", ">" and '"' cost nothing (CommonMark writes every one of them so) and are not
# counted. A news article has hundreds; at this many, one text costs ammonia about 1 s.
AMPERSANDS_MAX = 50_000
_CHEAP_REFERENCES = ("&lt;", "&gt;", "&quot;")
# Containers that open on one line ("> > > …", "- - - …") are caught in the source, before CommonMark
# writes megabytes of nested HTML for them.
_DEEP_LINE = re.compile(rf"^(?:[ \t]*(?:>|[-+*](?=[ \t])|\d{{1,9}}[.)](?=[ \t]))){{{NESTING_MAX + 1}}}", re.MULTILINE)


class MarkupError(ValueError):
    """Markdown that cannot be published safely: the reason and the fix."""

    def __init__(self, reason: str, fix: str):
        super().__init__(f"{reason}; {fix}")
        self.reason, self.fix = reason, fix


def nesting_depth(fragment: str) -> int:
    """How deep elements nest in an HTML fragment as a parser builds it, at least: an element left open stays open, an
    end tag closes the innermost open element of its name and every one inside it, one of no open element's name closes
    nothing (`x<b>y</i>` a thousand times nests a thousand deep), and a formatting element closed out of order stays
    counted, as a parser opens it again. Where a parser's rules may close less (the adoption agency, scopes, elements
    a start tag closes), it counts nothing closed. Counted up to NESTING_MAX + 1, where the fragment is refused anyway.
    A property test holds it to ammonia's own parse (tests/test_markup.py)."""
    open_: list[str] = []
    named: dict[str, int] = {}  # how many of each name are open: whether an end tag closes anything, without a search
    deepest = 0
    for token in _TOKEN.finditer(fragment):
        name = token["name"]
        if name is None:  # a comment, or a raw text element: its text holds no tag
            if token["raw"] is not None:
                deepest = max(deepest, len(open_) + 1 + 2 * named.get("table", 0))
            continue
        name, end = name.lower(), token["end"]
        if name in _VOID:
            continue
        if name in _HEADINGS:  # </h2> closes an open <h1> as well
            name = "h"
        elif name in _IGNORED:
            continue
        if not end:
            open_.append(name)
            named[name] = named.get(name, 0) + 1
        elif open_ and open_[-1] == name:  # the usual case: the innermost element ends
            open_.pop()
            named[name] -= 1
            continue
        else:
            inside = open_[len(open_) - 1 - open_[::-1].index(name) + 1:] if named.get(name) else None
            if inside is not None and name not in _INNERMOST and not any(
                    map((_SCOPE if name in _SPECIAL else _SPECIAL).__contains__, inside)):
                del open_[len(open_) - len(inside) - 1:]
                named[name] -= 1
                for inner in inside:
                    if inner in _FORMATTING:
                        open_.append(inner)  # opened again
                    else:
                        named[inner] -= 1
            elif name == "p":  # a </p> that closes no <p> is an empty <p></p> (https://html.spec.whatwg.org/#parsing-main-inbody)
                deepest = max(deepest, len(open_) + 1 + 2 * named.get("table", 0))
        # A table holds its rows in a <tbody> and its cells in a <tr> whether written or not: two levels more at most.
        if (depth := len(open_) + 2 * named.get("table", 0)) > deepest:
            deepest = depth
            if deepest > NESTING_MAX:
                break
    return deepest


def paragraphs_to_html(paragraphs: list[str]) -> str:
    """Plain-text paragraphs as <p> elements, every character escaped."""
    text = "".join(paragraphs)
    if "&" not in text and "<" not in text and ">" not in text and paragraphs:
        # Nothing to escape, as in most articles: three finds, not three str.replace passes over each paragraph
        # (which count what they would replace even when it is absent).
        return "<p>" + "</p><p>".join(paragraphs) + "</p>"
    return "".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs)


# Elements whose start tag has the HTML tokenizer read all after it as their text, up to an end tag of their name
# (`</script` and a space, "/" or ">", in any case): raw text, escapable raw text and script data. Left open, one runs
# to the end of the fragment: ammonia then dropped all after "the <script> element" in an article, or published it as
# escaped markup (`&lt;/p&gt;`). noscript is raw text where scripting is on, as ammonia parses. plaintext is never
# ended, and template, no raw text, holds what follows it until its end tag, which ammonia drops with it.
# https://html.spec.whatwg.org/multipage/parsing.html#parsing-html-fragments
# https://html.spec.whatwg.org/multipage/parsing.html#parsing-main-inbody
_RAW_TEXT = "script|style|xmp|iframe|noembed|noframes|noscript|textarea|title"
# What the HTML tokenizer reads as tags, and what it reads as no tag whatever it holds: a comment (`<!-->` too; one not
# ended runs to the end), a bogus comment (`<!DOCTYPE …>`, `<?…>`, `</ …>`), a raw text element's text, an attribute's
# value (`<div title="</div>">` opens a div and closes none). A tag never ended runs to the end, as the tokenizer reads
# it (and counted, one more than a parser builds): each `<` of `<a b=<a b=…` was a scan to the end.
# https://html.spec.whatwg.org/multipage/parsing.html#tokenization
_ATTRIBUTES = (r"(?:[\t\n\f\r /]++|[^\t\n\f\r />][^\t\n\f\r /=>]*+"
               r"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+(?:\"[^\"]*+\"|'[^']*+'|[^\t\n\f\r >]*+))?+)*+")
_TOKEN = re.compile(  # the usual tag first; a raw text element's name only after its first letter
    rf"<(?P<end>/?)(?!(?=[sStTxXiInN])(?:{_RAW_TEXT})(?:[\t\n\f\r />]|\Z))(?P<name>[a-zA-Z][^\t\n\f\r />]*+){_ATTRIBUTES}(?:>|\Z)"
    r"|<!--(?:-?>|[\s\S]*?(?:--!?>|\Z))|<[!?][^>]*+>?|</(?![a-zA-Z])[^>]*+>?"
    rf"|<(?P<raw>{_RAW_TEXT})(?=[\t\n\f\r />]){_ATTRIBUTES}(?:>[\s\S]*?(?:</(?P=raw)(?=[\t\n\f\r />]){_ATTRIBUTES}>|\Z)|\Z)",
    re.IGNORECASE)
# The first letter looked at before the names (in any case): five times faster over a fragment dense with other tags.
_SWALLOWING = re.compile(rf"<(/?)(?=[sStTxXiInNpP])((?i:{_RAW_TEXT}|plaintext|template))(?=[\t\n\f\r />])", re.ASCII)


def _unclosed_as_text(fragment: str) -> str:
    """The fragment with each start tag that nothing closes (`the <script> element`) as the text its author wrote.

    Read as the tokenizer reads it: a raw text element's text is skipped up to its end tag; templates nest. A start tag
    is escaped, so only text ever comes of it: ammonia sanitises what follows it as it does the rest of the fragment.
    """
    tags = list(_SWALLOWING.finditer(fragment))
    last_end = {tag[2].lower(): tag.start() for tag in tags if tag[1]}
    as_text: list[int] = []
    templates: list[int] = []
    inside = None  # the raw text element being read: only its own end tag ends it
    for tag in tags:
        name, start = tag[2].lower(), tag.start()
        if inside is not None:
            inside = None if tag[1] and name == inside else inside
        elif tag[1]:
            if name == "template" and templates:
                templates.pop()  # a stray end tag closes nothing
        elif name == "template":
            templates.append(start)
        elif name == "plaintext" or last_end.get(name, -1) < start:
            as_text.append(start)
        else:
            inside = name
    as_text = sorted(as_text + templates)
    if not as_text:
        return fragment
    pieces = [fragment[: as_text[0]]]
    for at, upto in zip(as_text, as_text[1:] + [len(fragment)]):
        pieces += ["&lt;", fragment[at + 1: upto]]
    return "".join(pieces)


def markdown_to_html(source: str, base_url: str) -> str:
    """Render CommonMark and sanitise it; relative links resolve against base_url; MarkupError when too deep."""
    if _DEEP_LINE.search(source):
        raise MarkupError(f"Markdown nests quotes or lists more than {NESTING_MAX} deep on one line",
                          "flatten the nested quotes, lists or HTML elements")
    rendered = _unclosed_as_text(cmark.markdown_to_html_with_extensions(
        _CHAR_REF.sub(_drop_nonchar_ref, source), options=_CMARK_OPTIONS, extensions=_CMARK_EXTENSIONS))
    depth = nesting_depth(rendered)
    if depth > NESTING_MAX:
        raise MarkupError(f"Markdown nests more than {NESTING_MAX} levels deep (quotes, lists or HTML elements left open)",
                          "flatten the nested quotes, lists or HTML elements")
    ampersands = rendered.count("&") + rendered.count("\xa0") - sum(map(rendered.count, _CHEAP_REFERENCES))
    if ampersands > AMPERSANDS_MAX:
        raise MarkupError(f"Markdown holds {ampersands:,} “&” and no-break spaces, over the {AMPERSANDS_MAX:,} limit",
                          "write fewer of them (a plain space for a no-break one), or split the article")
    return sanitize_html(rendered, base_url)


# A character that may make a heading's text differ from its Markdown source: emphasis, code, links, escapes, references
# and raw HTML. A heading without any (most) is its own text, with no parse.
_INLINE_SYNTAX = re.compile(r"[*_`\[\]<>&\\!~]")


def heading_text(source: str) -> str:
    """The text a reader sees of a `# Title` line's Markdown (`The *new* budget` is `The new budget`): a title in a feed
    is plain text, where `*` and backticks would show as they are. Parsed as a heading, so `1. Intro` is no list."""
    if not _INLINE_SYNTAX.search(source):
        return source
    rendered = cmark.markdown_to_html_with_extensions("# " + _CHAR_REF.sub(_drop_nonchar_ref, source),
                                                      options=_CMARK_OPTIONS, extensions=_CMARK_EXTENSIONS)
    # Every tag goes, script and style with their content (ammonia's clean_content_tags), then the references.
    # References become characters only here: the clean-up the source text had is applied again (`&#x8;` is a control
    # character no XML may hold, which stopped every refresh; `&#x202E;` a bidi override that reversed a title's text).
    text = nh3.clean(_unclosed_as_text(rendered), tags=set(), strip_comments=True)  # "The <title> element" keeps its text
    return collapse_space(drop_unsafe_chars(html.unescape(text)))


ID_PREFIX = "user-content-"  # what an article's own ids are published with (in-article links follow them)


def sanitize_html(fragment: str, base_url: str) -> str:
    """Keep safe markup only; make link and image URLs absolute."""
    resolve = _url_resolver(base_url)

    def absolutize(tag: str, attr: str, value: str) -> str | None:
        if attr == "id":  # prefixed, as GitHub does: an article's ids never clash with a reader's page or each other's
            return ID_PREFIX + value if value.split() == [value] else None  # HTML: no space in an id, and not empty
        if attr in ("href", "src"):
            value = value.strip()
            # A footnote, an anchor: the id as prefixed. One written prefixed already (#user-content-fn-1, what the page's
            # address bar shows once a note is followed, and GitHub's own form) is that id.
            if attr == "href" and value.startswith("#") and len(value) > 1 and not value.startswith("#" + ID_PREFIX):
                value = "#" + ID_PREFIX + value[1:]
            return resolve(value)
        return value

    # Character references (&#1;, &#x202E;) only become characters while the HTML is parsed, so the
    # clean-up applied to the source text is applied again to what comes out.
    cleaned = nh3.clean(
        fragment,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        attribute_filter=absolutize,
        link_rel="noopener",
        strip_comments=True,
        # Code is written left to right whatever the article's language: in an Arabic article, `print(x);` showed as
        # `;print(x)` and `f()` as `()f` (the dir attribute also isolates inline code from the text around it).
        set_tag_attribute_values={"pre": {"dir": "ltr"}, "code": {"dir": "ltr"}},
    )
    cleaned = _ids_once(drop_unsafe_chars(cleaned).strip())
    if f"#{ID_PREFIX}fnref-" not in cleaned:
        return cleaned
    return _named_ways_back(cleaned, base_url)


# The schemes of a page whose own address and folder urljoin puts before what it resolves (any site's pages): allowed
# schemes, which a URL joined to the page keeps.
_RELATIVE_BASES = {"http", "https"}
# A relative path urljoin appends to the page's folder as it is: segments of characters that urlsplit neither strips
# nor drops (controls, space) nor reads as a scheme, parameters, query or fragment, none empty (urljoin drops it), "."
# or "..". https://docs.python.org/3/library/urllib.parse.html#urllib.parse.urljoin
_PLAIN_PATH = re.compile(r"(?:(?!\.\.?/)[^\x00-\x20/:;?#]+/)*(?!\.\.?\Z)[^\x00-\x20/:;?#]+\Z")


def _url_resolver(base_url: str) -> Callable[[str], str | None]:
    """urljoin(base_url, value) when its scheme is allowed (else None), with what it needs of base_url found once.

    Byte for byte urljoin's, and the cost of a concatenation or a look-up for what articles are dense with: links
    within the page (footnotes), relative paths and repeats. 1 MiB of footnotes took 7 s, urljoin and urlsplit on each
    of 282,000 attributes.
    """
    resolved: dict[str, str | None] = {}
    try:
        # urljoin(base, "#f") is the page's address and "#f", urljoin(base, "a/b") its folder's and "a/b".
        page, folder = urljoin(base_url, "#"), urljoin(base_url, "x")[:-1]
        plain = urlsplit(base_url).scheme in _RELATIVE_BASES
    except ValueError:  # e.g. an unclosed IPv6 host "http://[::1"
        plain = False

    def resolve(value: str) -> str | None:
        if plain and "\t" not in value and "\n" not in value and "\r" not in value:  # urlsplit drops these anywhere
            if value[:1] == "#" and len(value) > 1:
                return page + value
            if _PLAIN_PATH.match(value):
                return folder + value
        if value not in resolved:
            try:
                url = urljoin(base_url, value)
                resolved[value] = url if urlsplit(url).scheme in _URL_SCHEMES else None
            except ValueError:  # e.g. an unclosed IPv6 host "http://[::1"
                resolved[value] = None
        return resolved[value]
    return resolve


# A footnote's mark (<sup><a … id="user-content-fnref-X" …>N</a></sup>: its number N) and a way back to one, as the
# sanitiser writes them: a link showing only "↩", or "↩<sup>k</sup>" for a note's k-th mark.
_MARK = re.compile(rf'<a href="[^"]*" id="{ID_PREFIX}fnref-([^"]+)" rel="noopener">([^<]+)</a>')
_WAY_BACK = re.compile(r'<a href="([^"]*)"( rel="noopener")?>↩(?:<sup>(\d+)</sup>)?</a>')


def _named_ways_back(fragment: str, base_url: str) -> str:
    """A footnote's way back is "↩", which a screen reader says as an arrow or not at all: named as cmark-gfm names it
    ("Back to reference 1", its second mark's "Back to reference 1-2", by the note's number), on a link to one of this
    page's marks that shows only the arrow. No author's aria-label passes the sanitiser (a link could be named other
    than it shows: a phishing page called "Back to reference 1")."""
    marks = {target: number for target, number in _MARK.findall(fragment)}
    page = urljoin(base_url, "#x")[:-2]  # this page's address, as the sanitiser writes a link to an id on it

    def named(link: re.Match) -> str:
        href, rel, second = link[1], link[2] or "", link[3]
        where, _, target = html.unescape(href).partition("#")
        number = marks.get(target.removeprefix(f"{ID_PREFIX}fnref-")) if target.startswith(f"{ID_PREFIX}fnref-") else None
        if where != page or number is None:
            return link[0]
        label = html.escape(f"Back to reference {number}" + (f"-{second}" if second else ""), quote=True)
        return f'<a href="{href}" aria-label="{label}"{rel}>{link[0][link[0].index(">") + 1:]}'
    return _WAY_BACK.sub(named, fragment)


# A start tag's id attribute, read attribute by attribute from the tag's name (a value may hold ` id="`: a `"` never),
# as ammonia writes tags: name="value" pairs after the element's name. Every "<" it writes starts a tag (_ANY_TAG), so
# the pattern finds each tag with an id once, over the whole fragment, without a call for every other tag.
# No value runs past "<" or ">": with an nh3 that leaves them raw in attribute values (before 0.3), a value holding
# `<b id=">` let a match run from one tag into the text after it, and an id taken out there reopened a quote.
_ID = re.compile(r'<[a-zA-Z0-9]+(?: [^\s="<>]+="[^"<>]*")*? id="([^"<>]*)"')


def _ids_once(fragment: str) -> str:
    """Each id once (HTML wants them unique), on its first element, as a browser takes it: looked for in start tags alone
    (the text may say `id="x"`), each tag once, so linear in the fragment. A footnote's id written earlier in the text
    takes it from the footnote, as it would in a browser: the author's own doing."""
    if ' id="' not in fragment:
        return fragment
    seen: set[str] = set()

    def once(found: re.Match) -> str:
        if found[1] not in seen:
            seen.add(found[1])
            return found[0]
        return found[0][: found.start(1) - found.start() - len(' id="')]  # the tag up to its id, the rest left as it is
    return _ID.sub(once, fragment)


# Sanitised HTML (ammonia's output) escapes every < and > that is not markup, also inside attribute
# values, so a tag is exactly "<" up to the next ">": its text is found by regular expressions at C speed.
_BLOCK_TAG = re.compile(rf"</?(?:{'|'.join(sorted(_BLOCKS, key=len, reverse=True))})(?=[\s/>])[^>]*>", re.IGNORECASE)
_ANY_TAG = re.compile(r"<[^>]*>")
# A line break inside a paragraph (Markdown's hard break), and the end of a table's cell: a space between the words on
# either side ("Delegation Seats", not "DelegationSeats"; a row is a block of its own).
_BREAK = re.compile(r"<br(?=[\s/>])[^>]*>|</t[dh]\s*>", re.IGNORECASE)


# A footnote's mark in the text and its way back from the note (cmark-gfm's, as sanitised): no words of the text, so
# none of its plain text ("A claim1" for "A claim[^1]", a "↩" after each note). Every link is matched (a pattern without
# nested choices: linear) and told apart by its start tag (a pattern looking for the mark inside a tag backtracked over
# each repeat of it: 25 s for a 1 MiB attribute). A way back to a note's second mark reads "↩<sup>2</sup>".
_LINKS = re.compile(r"(<sup>)?<a [^>]*>[^<]*(?:<sup>[^<]*</sup>)?</a>(</sup>)?")


def _no_footnote_mark(match: re.Match) -> str:
    whole, sup_open, sup_close = match[0], match[1], match[2]
    start = len(sup_open or "")
    tag = whole[start:whole.index(">", start) + 1]
    if sup_open and sup_close and f' id="{ID_PREFIX}fnref-' in tag:
        return ""  # the mark
    if not sup_open and f'#{ID_PREFIX}fnref-' in tag:
        return sup_close or ""  # the way back
    return whole


def _text_only(fragment: str) -> str:
    """The fragment without footnote marks, when it has any."""
    return _LINKS.sub(_no_footnote_mark, fragment) if f"{ID_PREFIX}fnref-" in fragment else fragment


def html_to_paragraphs(fragment: str) -> list[str]:
    """The text of a sanitised HTML fragment, one string per block element."""
    fragment = _text_only(fragment)
    # "\0" marks where blocks meet: the clean-up has removed every NUL, and &#0; unescapes to U+FFFD.
    # A <br> breaks a line, not the paragraph: a dateline ended by a hard break is the start of the first paragraph, which
    # the summary is made of, not all of it.
    text = html.unescape(_ANY_TAG.sub("", _BLOCK_TAG.sub("\0", _BREAK.sub(" ", fragment))))
    return [joined for block in text.split("\0") if (joined := " ".join(block.split()))]


# Headings and tables: the blocks a body may begin with that are no lead (a subheading, a table's header row).
_NOT_LEAD = re.compile(r"<(h[1-6]|table)(?=[\s>])[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_STARTS_NOT_LEAD = re.compile(r"\s*<(?:h[1-6]|table)(?=[\s>])", re.IGNORECASE)


def lead_paragraph(fragment: str) -> str | None:
    """The text of the first block of a sanitised fragment that is no heading or table (a paragraph, a list's first item,
    a quote): what a summary is made of, not a subheading or a table's header row before it; None when it has none."""
    if not _STARTS_NOT_LEAD.match(fragment):
        return None  # begins with its lead: the caller's first paragraph is it
    blocks = html_to_paragraphs(_NOT_LEAD.sub("", fragment))
    return blocks[0] if blocks else None


def shorten(text: str, limit: int) -> str:
    """Cut text at a word boundary to at most limit characters, marking the cut with an ellipsis."""
    text = collapse_space(text)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if text[limit - 1] != " ":  # the cut falls inside a word
        # Text that does not space its words (Chinese, Japanese, Thai: "新华社北京 11月20日电 这是…" was cut at its last
        # space, to its 14-character dateline) and one word longer than the limit are cut between characters as a
        # reader sees them; any other word is dropped.
        space = cut.rfind(" ")
        if space >= 0 and any(map(_unspaced, cut[space + 1:])):  # the "word" holds unspaced text (11月20日电 这是…)
            space = -1
        cut = cut[:space] if space >= 0 else cut[:_whole_characters(text, len(cut))]
    return cut.rstrip(" ,.;:،؛۔-–—、，。；：") + "…"  # no dangling punctuation (Urdu's full stop ۔ too) or dash before it


# Scripts written without spaces between words: CJK ideographs and their punctuation, kana, Thai, Lao, Khmer, Myanmar.
_UNSPACED = re.compile("[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3000-\u30ff\u31f0-\u31ff\u3400-\u4dbf"
                       "\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\U00020000-\U0003134f]")


def _unspaced(char: str) -> bool:
    """Whether a character is of a script that does not space its words (_UNSPACED)."""
    return _UNSPACED.match(char) is not None


def _whole_characters(text: str, kept: int) -> int:
    """How much of text to keep, at most `kept` characters, without cutting inside a character as a reader sees it."""
    while kept > 1 and (_joins(text[kept]) or text[kept - 1] == _ZWJ or unicodedata.combining(text[kept - 1]) == _VIRAMA):
        kept -= 1
    indicators = len(text[:kept]) - len(text[:kept].rstrip(_REGIONAL_INDICATORS))
    if indicators % 2 and kept > 1:  # a flag is two regional indicators: never its first alone
        kept -= 1
    return kept


_ZWJ = "\u200d"
_VIRAMA = 9  # the canonical combining class of a virama: the letter after it joins it (an Indic conjunct)
_REGIONAL_INDICATORS = "".join(map(chr, range(0x1F1E6, 0x1F200)))


def _joins(char: str) -> bool:
    """Whether a character belongs to the one before it on screen: a mark (an Arabic vowel sign, an accent), a joiner,
    a variation selector, a skin tone or an emoji tag (Unicode's grapheme clusters, UAX #29, as far as a cut needs)."""
    point = ord(char)
    # Variation selectors are marks (Mn); a joiner and emoji tags are format characters (Cf), skin tones symbols (Sk).
    return (unicodedata.category(char) in ("Mn", "Mc", "Me") or point == 0x200D or 0x1F3FB <= point <= 0x1F3FF
            or 0xE0020 <= point <= 0xE007F)

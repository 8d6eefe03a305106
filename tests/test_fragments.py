"""Feeds assembled from per-item fragments (feedsvc/formats/fragments.py) are byte for byte the whole-feed
renderings, and a refresh renders only the items of the articles that changed."""
from __future__ import annotations

import html
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc.paging import Listing, page_feed, since_feed
from feedsvc.building.feeds import newest_first
from feedsvc.formats import FORMATS
from feedsvc.formats import atom, rss
from feedsvc.formats.fragments import PIECES, Fragments
from feedsvc.model import UNDATED, Article, Category, Deleted, Site, stable_id
from tests.conftest import FIXED_NOW, variant, write

FMTS = ("rss", "atom", "json")
SITE = Site(title="أخبار Example", url="https://news.example", description="News & more", author="غرفة الأخبار",
            language="ar", max_age=300)

# Text as articles carry it: Arabic and English words, RTL and LTR marks, markup characters, CDATA and
# element terminators, emoji, and any other character XML 1.0 allows (the loader drops the rest).
XML_CHAR = st.characters(codec="utf-8").filter(
    lambda c: c in "\t\n\r" or (" " <= c and c not in "\ufffe\uffff" and not "\ud800" <= c <= "\udfff"))
TEXT = st.lists(
    st.one_of(
        XML_CHAR,
        st.characters(min_codepoint=0x600, max_codepoint=0x6FF),
        st.sampled_from(["سياسة", "اقتصاد", " news ", "Port deal", "\u200f", "\u200e", "\u202b", "<", ">", "&", "\"",
                         "'", "]]>", "</item>\n    <item>", "</entry>\n  <entry>", '"items":[]', "\\", "🇸🇦", "\n",
                         "<blink>", "&amp;", "&#x26;"]),
    ),
    max_size=30,
).map("".join)
MARKUP = st.lists(
    st.one_of(
        TEXT.map(lambda t: f"<p>{html.escape(t, quote=False)}</p>"),
        st.sampled_from(["<p><strong>bold</strong> and <em>مائل</em></p>", "<ul><li>واحد</li><li>two</li></ul>",
                         '<p><a href="https://gov.example/news" rel="noopener">link</a></p>', "<h2>التوقعات</h2>",
                         "<p>a ]]> b</p>", "<pre>x</item>\n    <item>y</pre>"]),
    ),
    max_size=4,
).map("".join)
CATEGORIES = ["سياسة", "اقتصاد", "Sport", "sport", "Tech & Science"]
MOMENTS = st.integers(min_value=0, max_value=400).map(lambda hours: FIXED_NOW - timedelta(hours=hours))


@st.composite
def articles(draw, count: int) -> list[Article]:
    """Distinct articles with random text, languages, categories, dates, authors and images."""
    out = []
    for number in range(count):
        published = draw(MOMENTS)
        body = draw(MARKUP)
        out.append(Article(
            id=f"a/{number}", source=f"a/{number}.txt", title=draw(TEXT) or "-",
            categories=tuple(draw(st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=2, unique=True))),
            body_html=body, body_text=draw(TEXT), summary=draw(TEXT),
            # arb, pnb, mzn: written otherwise in RSS and Atom (ar-arb, lah-Arab, mis-Arab: content.listed_language)
            lang=draw(st.sampled_from(["ar", "en", "fa", "en-GB", "arb", "pnb", "mzn"])), content_hash=str(number),
            published=published, updated=published + timedelta(hours=draw(st.integers(0, 30))),
            tags=tuple(draw(st.lists(st.sampled_from(["بنوك", "trade", "Sport"]), max_size=2, unique=True))),
            author=draw(st.none() | TEXT.filter(bool)), image=draw(st.sampled_from([None, "https://img.example/a b.jpg", "javascript:x"])),
            guid=stable_id(f"a/{number}"),
        ))
    return out


def listing_of(items: list[Article], category: str | None) -> Listing:
    if category is None:
        return Listing("", SITE.title, SITE.description, None, tuple(newest_first(items)), SITE.url + "/")
    chosen = tuple(newest_first(a for a in items if category in a.categories))
    return Listing("cat", f"{SITE.title} — {category}", f"{category}: x", Category(category, "cat"), chosen, SITE.url + "/category/cat/")


# Tombstones (RFC 6721) a listing may carry: refs as articles' guids are written (UUIDs, URIs with markup characters).
TOMBSTONES = st.lists(
    st.builds(Deleted, ref=st.one_of(st.integers(0, 20).map(lambda n: stable_id(f"gone/{n}")), TEXT.filter(bool),
                                     st.sampled_from(["https://news.example/a?x=1&y=<2>", 'tag:x,2026:"q"'])),
              when=MOMENTS, categories=st.lists(st.sampled_from(CATEGORIES), max_size=2, unique=True).map(tuple)),
    max_size=4,
).map(lambda gone: tuple(sorted(gone, key=lambda d: (d.when, d.ref), reverse=True)))

VIEWS = st.fixed_dictionaries({
    "category": st.sampled_from([None, *CATEGORIES]),
    "size": st.integers(1, 5),
    "page": st.integers(1, 4),
    "since": st.none() | MOMENTS,
    "options": st.sampled_from([
        {"full_text": True, "hub": ""}, {"full_text": False, "hub": "https://hub.example/"},
        {"full_text": True, "prefix": "partners/"}, {"full_text": False, "prefix": "partners/"},
    ]),
    "updated": st.sampled_from([UNDATED, FIXED_NOW]),
    "deleted": TOMBSTONES,
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), count=st.integers(0, 12), views=st.lists(VIEWS, min_size=1, max_size=5))
def test_assembled_feeds_are_byte_identical_to_whole_feed_renderings(data, count, views):
    items = data.draw(articles(count))
    fragments = Fragments(SITE)  # one for every view: fragments made for one feed are reused by the next
    small = Fragments(SITE, budget=3000)  # one that must keep forgetting the least recently used
    for view in views:
        listing = replace(listing_of(items, view["category"]), deleted=view["deleted"])
        options = dict(view["options"], updated=view["updated"])
        if view["since"] is not None:
            feed = since_feed(listing, SITE, view["size"], view["since"], view["page"], **options)
        else:
            feed = page_feed(listing, SITE, view["size"], view["page"], **options)
        if feed is None:
            continue
        for fmt in FMTS:
            assert fragments.assemble(fmt, feed) == FORMATS[fmt].render(feed, SITE), (fmt, view)
            assert small.assemble(fmt, feed) == FORMATS[fmt].render(feed, SITE), (fmt, view)
            assert small.held <= 3000 or len(small._kept) == 1
            assert small.held == sum(len(piece) for entry in small._kept.values() for piece in entry[1].values())
            cut = PIECES[fmt].whole(feed, SITE) if PIECES[fmt].whole else None
            if cut is not None:  # a head cut from a whole feed is the head of the feed without items
                assert (cut[0], cut[2]) == PIECES[fmt].head_foot(feed, SITE), (fmt, view)
    if items:  # an edited article: its items are made again, the feed still matches
        edited = [replace(items[0], title=items[0].title + " (corrected)", lang="ar" if items[0].lang != "ar" else "en")] + items[1:]
        feed = page_feed(listing_of(edited, None), SITE, 50, 1, full_text=True)
        for fmt in FMTS:
            assert fragments.assemble(fmt, feed) == FORMATS[fmt].render(feed, SITE), fmt


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), count=st.integers(1, 10), before=VIEWS, after=VIEWS, edit=st.booleans())
def test_a_feed_assembled_from_an_earlier_versions_stored_bytes_is_its_whole_rendering(data, count, before, after, edit):
    items = data.draw(articles(count))
    if edit:  # an edited article's old bytes are not its item any more
        later = [replace(items[0], title=items[0].title + " (corrected)")] + items[1:]
    else:
        later = items

    def feed_of(view, articles_):
        listing = replace(listing_of(articles_, view["category"]), deleted=view["deleted"])
        return page_feed(listing, SITE, view["size"], view["page"], **dict(view["options"], updated=view["updated"]))

    old, new = feed_of(before, items), feed_of(after, later)
    if old is None or new is None:
        return
    for fmt in FMTS:
        spec, fragments = FORMATS[fmt], Fragments(SITE)  # a builder that kept none of the items (Renderer.let_go)
        stored = spec.date(spec.render(replace(old, updated=UNDATED), SITE), FIXED_NOW)  # as the build store holds it
        taken = fragments.refill(fmt, new, old, lambda: stored)
        # The same article, in the same content mode, naming its own language in both feeds or in neither.
        same = {a.id for a in old.items if not (edit and a.id == later[0].id) and old.full_text == new.full_text
                and (fmt == "rss" or (a.lang != old.language) == (a.lang != new.language))}
        # None taken when the old bytes do not cut into their items (a body holding an item's tags: split() refuses).
        cuts = PIECES[fmt].cut(stored, old, SITE) is not None
        assert taken == (len(same & {a.id for a in new.items}) if cuts else 0), fmt
        assert fragments.assemble(fmt, new) == spec.render(new, SITE), fmt
        if taken == len(new.items):
            assert fragments.made == 0, fmt  # nothing rendered: every item cut from the old bytes


XML = {"rss": rss, "atom": atom}
# Values the cuts of formats/templates.py write themselves: anything but what libxml2 writes as a character reference
# or lxml refuses (control characters but tab and line feed, lone surrogates, U+FFFE, U+FFFF).
PLAIN_CHAR = st.characters(codec="utf-8").filter(lambda c: c in "\t\n" or (" " <= c and c not in "\ufffe\uffff"))
PLAIN = st.lists(st.one_of(PLAIN_CHAR, st.sampled_from(["سياسة", "<", ">", "&", "\"", "'", "&amp;", "\u200f", "🇸🇦",
                                                      "<b>", "&#1;"])),
                 min_size=1, max_size=20).map("".join)
PLAIN_ATTRIBUTE = PLAIN.filter(lambda t: "\t" not in t and "\n" not in t)  # an Atom category's term


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), count=st.integers(1, 8), full_text=st.booleans(), language=st.sampled_from(["ar", "en"]))
def test_items_filled_into_feedgens_cuts_are_feedgens_items(data, count, full_text, language):
    """An RSS item or Atom entry made from the cut of its shape (formats/templates.py) is feedgen's own rendering of it,
    byte for byte, whatever its text holds; every item of ordinary text is made so (feedgen renders none of them)."""
    items = data.draw(articles(count))
    plain = [replace(a, title=data.draw(PLAIN), summary=data.draw(PLAIN), author=data.draw(st.none() | PLAIN),
                     body_html=html.escape(data.draw(PLAIN), quote=False),
                     tags=tuple(data.draw(st.lists(PLAIN_ATTRIBUTE, max_size=3, unique=True)))) for a in items]
    for fmt, module in XML.items():
        for chosen in (items, plain):
            feed = replace(page_feed(listing_of(chosen, None), SITE, 50, 1, full_text=full_text), language=language)
            whole = FORMATS[fmt].render(feed, SITE)
            made = PIECES[fmt].items(feed.items, SITE, language, full_text)
            assert PIECES[fmt].head_foot(feed, SITE)[0] + b"".join(made) + module.FOOT == whole, fmt
        for article in plain:
            values = module.item_values(article, SITE, language, full_text)
            assert PIECES[fmt].cuts.item(values) is not None, (fmt, values)


def test_past_so_many_shapes_items_are_feedgens_and_the_same_bytes(monkeypatch):
    """A folder whose articles have ever more tags makes a cut per count only up to templates.SHAPES; feedgen renders
    the items of shapes past it, the same bytes."""
    from feedsvc.formats import templates
    from feedsvc.formats.fragments import _xml_pieces

    monkeypatch.setattr(templates, "SHAPES", 2)
    plain = Article(id="x", source="x.txt", title="t", categories=("News",), body_html="<p>x</p>", body_text="x", summary="s",
                    lang="en", content_hash="1", published=FIXED_NOW, updated=FIXED_NOW, guid=stable_id("x"))
    many = [replace(plain, id=f"x{i}", guid=stable_id(f"x{i}"), tags=tuple(f"t{j}" for j in range(i))) for i in range(6)]
    feed = page_feed(listing_of(many, None), SITE, 10, 1, full_text=True)
    for fmt, tags in (("rss", (b"    <item", b"</item>\n")), ("atom", (b"  <entry", b"</entry>\n"))):
        pieces = _xml_pieces(XML[fmt], *tags)  # its own cuts, none made yet
        assert pieces.items(feed.items, SITE, feed.language, True) == PIECES[fmt].cut(FORMATS[fmt].render(feed, SITE), feed, SITE)
        assert len(pieces.cuts._cuts) == 2, fmt


def test_a_value_feedgen_writes_otherwise_than_the_cut_would_leaves_the_item_to_feedgen(monkeypatch):
    """A title that is a str subclass (its own encode()), and an Atom entry given no `updated` (feedgen writes the
    moment the entry is made, which a cut would keep for good), are rendered by feedgen; and a writer that escapes
    otherwise than this libxml2 fails the check each cut gets as it is made: feedgen renders every item of its shape."""
    from feedsvc.formats import templates
    from feedsvc.formats.fragments import _xml_pieces

    class Title(str):
        def encode(self, *args, **kwargs):
            return b"not the title"

    plain = Article(id="x", source="x.txt", title="t", categories=("News",), body_html="<p>x</p>", body_text="x", summary="s",
                    lang="en", content_hash="1", published=FIXED_NOW, updated=FIXED_NOW, guid=stable_id("x"))
    for fmt, module in XML.items():
        values = module.item_values(replace(plain, title=Title("the title")), SITE, "en", True)
        assert PIECES[fmt].cuts.item(values) is None, fmt
    assert PIECES["atom"].cuts.item(atom.item_values(replace(plain, updated=None), SITE, "en", True)) is None

    monkeypatch.setitem(templates.WRITERS, templates.TEXT, lambda value: value.encode() if type(value) is str and value else None)
    tags = {"rss": (b"    <item", b"</item>\n"), "atom": (b"  <entry", b"</entry>\n")}
    feed = page_feed(listing_of([replace(plain, title="a < b")], None), SITE, 10, 1, full_text=True)
    for fmt, module in XML.items():
        pieces = _xml_pieces(module, *tags[fmt])  # cuts made now, with the writer that does not escape
        assert pieces.items(feed.items, SITE, feed.language, True) == PIECES[fmt].cut(FORMATS[fmt].render(feed, SITE), feed, SITE)
        assert set(pieces.cuts._cuts.values()) == {None}, fmt  # the check refused the cut


@pytest.mark.parametrize("fmt", ["rss", "atom"])
@pytest.mark.parametrize("change", [
    {"title": "a\rcarriage return"},  # written as &#13;
    {"summary": ""},  # an empty element
    {"body_html": "<p>x]]>y</p>"},  # "]]>" in RSS CDATA
    {"tags": ("a\ttab",)},  # a tab in an Atom attribute, written as &#9;
    {"author": "\x85next line\x7f"},  # C1 controls: written as they are, both ways
])
def test_values_the_cuts_do_not_write_are_left_to_feedgen(fmt, change):
    """A value the cuts' writing does not cover makes that item feedgen's to render: the bytes are feedgen's."""
    article = replace(Article(id="x", source="x.txt", title="t", categories=("News",), body_html="<p>x</p>", body_text="x",
                              summary="s", lang="en", content_hash="1", published=FIXED_NOW, updated=FIXED_NOW,
                              guid=stable_id("x")), **change)
    feed = page_feed(listing_of([article], None), SITE, 10, 1, full_text=True)
    assert PIECES[fmt].head_foot(feed, SITE)[0] + PIECES[fmt].items(feed.items, SITE, feed.language, True)[0] + XML[fmt].FOOT \
        == FORMATS[fmt].render(feed, SITE)


@pytest.mark.parametrize("fmt", FMTS)
def test_an_item_whose_body_holds_the_item_separator_still_gives_the_whole_feeds_bytes(fmt):
    plain = Article(id="x", source="x.txt", title="t", categories=("News",), body_html="<p>x</p>", body_text="x", summary="s",
                    lang="en", content_hash="1", published=FIXED_NOW, updated=FIXED_NOW, guid=stable_id("x"))
    tricky = [replace(plain, id=f"x{i}", guid=stable_id(f"x{i}"), body_html=f"<pre>{i}]]></item>\n    <item></entry>\n  <entry></pre>")
              for i in range(3)]
    feed = page_feed(listing_of([plain, *tricky], None), SITE, 10, 1, full_text=True)
    assert Fragments(SITE).assemble(fmt, feed) == FORMATS[fmt].render(feed, SITE)


@pytest.mark.parametrize("fmt", FMTS)
def test_a_feed_with_items_in_other_languages_is_made_of_its_items_without_feedgen_rendering_any(fmt, monkeypatch):
    plain = Article(id="x", source="x.txt", title="t", categories=("News",), body_html="<p>x</p>", body_text="x", summary="s",
                    lang="ar", content_hash="1", published=FIXED_NOW, updated=FIXED_NOW, guid=stable_id("x"))
    mixed = [replace(plain, id=f"x{i}", guid=stable_id(f"x{i}"), lang=["ar", "en", "ar", "fa"][i % 4]) for i in range(8)]
    feed = page_feed(listing_of(mixed, None), SITE, 10, 1, full_text=True)
    whole = FORMATS[fmt].render(feed, SITE)
    PIECES[fmt].items(mixed, SITE, "ar", True)  # the cuts of items of these shapes are made once, by feedgen
    if fmt in XML:  # no item from feedgen: every one is filled into a cut
        monkeypatch.setattr(XML[fmt], "put_item", lambda *args: pytest.fail("feedgen rendered an item"))
        items = PIECES[fmt].items(mixed, SITE, "ar", True)
    else:  # JSON Feed: one encoder call for the feed, cut between its items
        head, items, foot = PIECES[fmt].whole(feed, SITE)
        assert head + PIECES[fmt].join.join(items) + foot == whole
    assert len(items) == 8 and PIECES[fmt].cut(whole, feed, SITE) == items


@pytest.mark.parametrize("own", ["en", "pnb"])  # pnb: written lah-Arab in Atom (content.listed_language)
@pytest.mark.parametrize("fmt", FMTS)
def test_a_feed_in_another_language_takes_the_items_made_for_the_site_wide_feed(fmt, own):
    """A category's feed in English after the site-wide feed in Arabic (export.py's order): its items name no language
    of their own there, and are made from the site-wide feed's, which did, instead of being rendered again
    (Pieces.relang); and the other way round. The bytes are the whole renderings'."""
    plain = Article(id="x", source="x.txt", title="t & <b>", categories=("Sport",), body_html="<p>x</p>", body_text="x",
                    summary="s", lang=own, content_hash="1", published=FIXED_NOW, updated=FIXED_NOW, guid=stable_id("x"))
    english = [replace(plain, id=f"e{i}", guid=stable_id(f"e{i}"), published=FIXED_NOW - timedelta(hours=i)) for i in range(6)]
    arabic = [replace(plain, id=f"a{i}", guid=stable_id(f"a{i}"), published=FIXED_NOW - timedelta(hours=i, minutes=30),
                      lang="ar", categories=("سياسة",)) for i in range(8)]
    site_wide = page_feed(listing_of(english + arabic, None), SITE, 20, 1, full_text=True)
    sport = page_feed(listing_of(english + arabic, "Sport"), SITE, 20, 1, full_text=True)
    assert (site_wide.language, sport.language, len(sport.items)) == ("ar", own, 6)
    fragments = Fragments(SITE)
    assert fragments.assemble(fmt, site_wide) == FORMATS[fmt].render(site_wide, SITE)
    made = fragments.made
    assert fragments.assemble(fmt, sport) == FORMATS[fmt].render(sport, SITE)
    # RSS items never name a language: the same bytes serve both feeds; Atom's and JSON's are made from the others'.
    assert (fragments.made - made, fragments.relanged) == (0, 0 if fmt == "rss" else 6)
    tight = Fragments(SITE, budget=fragments.held - 1)  # the items made so are held within the budget too
    tight.assemble(fmt, site_wide)
    tight.assemble(fmt, sport)
    assert tight.held <= tight.budget and tight.held == sum(len(p) for e in tight._kept.values() for p in e[1].values())
    back = Fragments(SITE)  # and from items that name no language to items that do
    back.assemble(fmt, sport)
    ar_site = replace(sport, language="ar")  # the same items in a feed of another language
    assert back.assemble(fmt, ar_site) == FORMATS[fmt].render(ar_site, SITE)
    assert back.relanged == (0 if fmt == "rss" else 6)


@pytest.mark.parametrize("fmt", FMTS)
def test_every_served_feed_is_its_whole_rendering_dated(make_publisher, sample_dir, fmt):
    pub = make_publisher(sample_dir, WEBSUB_HUB="https://hub.example/")
    snapshot = pub.build(FIXED_NOW)
    spec = FORMATS[fmt]
    for feed in snapshot.feeds:
        served = snapshot.resources[feed.path(fmt)]
        assert served.body == spec.date(spec.render(replace(feed, updated=UNDATED), pub.site), served.last_modified), feed.path(fmt)


def story(number: int, category: str, title: str | None = None) -> str:
    return f"---\ndate: 2026-11-{1 + number % 27:02d} 08:{number % 60:02d}\n---\n{category}\n{title or f'Story {number}'}\nBody of story {number}.\n"


def test_a_refresh_renders_only_the_edited_articles_items(make_publisher, articles_dir):
    for number in range(40):
        write(articles_dir, f"s{number:02d}.txt", story(number, ["News", "Sport"][number % 2]))
    pub = make_publisher(articles_dir, FEED_MAX_ITEMS=10)
    assert pub.refresh()
    fragments = pub.renderer.fragments
    before = fragments.made
    write(articles_dir, "s26.txt", story(26, "News", "Story 26, corrected"))  # the newest: first in two feeds
    assert pub.refresh([str(articles_dir / "s26.txt")])
    assert fragments.made - before == 3  # one item per format, shared by the site-wide and the News feed
    for path in ("feed.rss", "feed.atom", "feed.json", "category/news/feed.rss"):
        assert b"Story 26, corrected" in pub.snapshot.resources[path].body


def test_items_are_not_taken_from_bytes_the_store_no_longer_holds(make_publisher, articles_dir):
    for number in range(4):
        write(articles_dir, f"s{number}.txt", story(number, "News"))
    pub = make_publisher(articles_dir)
    assert pub.refresh()
    feed = pub.snapshot.feeds[0]

    def replaced() -> bytes:
        raise LookupError("the build store holds other bytes")

    fragments = Fragments(pub.site)
    assert fragments.refill("rss", feed, feed, replaced) == 0 and len(fragments) == 0
    assert fragments.refill("rss", feed, feed, lambda: b"<rss>not this feed</rss>") == 0 and len(fragments) == 0
    assert fragments.assemble("rss", feed) == FORMATS["rss"].render(feed, pub.site)


def test_items_past_the_budget_are_forgotten_least_recently_used_first(make_publisher, articles_dir):
    for number in range(12):
        write(articles_dir, f"s{number:02d}.txt", story(number, "News"))
    pub = make_publisher(articles_dir, FEED_MAX_ITEMS=4)
    assert pub.refresh()
    fragments = pub.renderer.fragments
    fragments.budget = fragments.held  # room for the first pages' items only
    first_pages = {id_ for id_ in fragments._kept}
    assert variant(pub, "news", "json", page=2) is not None  # four more items: the oldest used go
    assert fragments.held <= fragments.budget
    assert first_pages - fragments._kept.keys()  # some of those used longest ago went
    assert {"s00", "s01", "s02", "s03"} <= fragments._kept.keys()  # the page just made stays


def test_a_deleted_article_takes_its_fragments_with_it(make_publisher, articles_dir, deletions_at_once):
    for number in range(5):
        write(articles_dir, f"s{number}.txt", story(number, "News"))
    pub = make_publisher(articles_dir)
    assert pub.refresh()
    kept = len(pub.renderer.fragments)
    assert kept == 5 * 3  # five articles, three formats, one content mode, all in the feeds' language
    (articles_dir / "s3.txt").unlink()
    assert pub.refresh([str(articles_dir / "s3.txt")])
    assert len(pub.renderer.fragments) == 4 * 3


def test_archive_pages_deltas_and_partner_views_reuse_the_first_pages_items(make_publisher, articles_dir):
    for number in range(12):
        write(articles_dir, f"s{number:02d}.txt", story(number, "News"))
    pub = make_publisher(articles_dir, FEED_MAX_ITEMS=4)
    assert pub.refresh()
    fragments = pub.renderer.fragments
    before = fragments.made
    for fmt in FMTS:
        assert variant(pub, "", fmt, since=datetime(2026, 11, 10, tzinfo=timezone.utc)) is not None  # first-page items
    assert fragments.made == before
    for fmt in FMTS:
        assert variant(pub, "news", fmt, page=2) is not None  # the four oldest: made once per format
    assert fragments.made == before + 4 * 3

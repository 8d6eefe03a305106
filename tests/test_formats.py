"""How feeds are written: RSS 2.0, Atom 1.0 and JSON Feed 1.1, read back with software we did not write."""
from __future__ import annotations

import difflib
import html
import json
import os
import shutil
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import feedparser
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from lxml import html as lxml_html

from feedsvc.reading.articles import load_articles
from feedsvc.config import DEFAULT_CHROME_MARKERS
from feedsvc.building.feeds import build_feeds
from feedsvc.formats import FORMATS
from feedsvc.formats.content import listed_language
from feedsvc.model import RTL_LANGUAGES, text_direction
from tests.conftest import FIXED_NOW, write
from tests.feed_rules import feed_problems
from tests.feed_rules import json_feed_validator as load_json_feed_validator

FMTS = ("rss", "atom", "json")
XML_FMTS = ("rss", "atom")
GOLDEN = Path(__file__).parent / "golden"
NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "media": "http://search.yahoo.com/mrss/",
}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"



def markdown(title: str, body: str = "A paragraph of text.", **meta) -> str:
    """A Markdown article with front matter."""
    front = yaml.safe_dump({"title": title, **meta}, allow_unicode=True, sort_keys=False)
    return f"---\n{front}---\n{body}\n"


def feed_paths(snapshot) -> list[str]:
    """Paths of every feed in every format (not pages, OPML or stylesheets)."""
    return sorted(p for p in snapshot.resources if p.rsplit(".", 1)[-1] in FORMATS)


def read_items(fmt: str, body: bytes) -> list[dict]:
    """Each item of a rendered feed as a dict of the same keys, whatever the format."""
    if fmt == "json":
        return [
            {"id": i["id"], "title": i["title"], "link": i["url"], "date": i["date_published"], "html": i["content_html"],
             "summary": i["summary"], "text": i["content_text"], "lang": i.get("language"), "image": i.get("image")}
            for i in json.loads(body)["items"]
        ]
    root = etree.fromstring(body)
    if fmt == "rss":
        return [
            {"id": i.findtext("guid"), "title": i.findtext("title"), "link": i.findtext("link"), "date": i.findtext("pubDate"),
             "html": i.findtext("content:encoded", namespaces=NS), "summary": i.findtext("description"),
             "author": i.findtext("dc:creator", namespaces=NS), "lang": i.findtext("dc:language", namespaces=NS),
             "image": i.find("media:content", NS).get("url") if i.find("media:content", NS) is not None else None}
            for i in root.iter("item")
        ]
    return [
        {"id": e.findtext("atom:id", namespaces=NS), "title": e.findtext("atom:title", namespaces=NS),
         "link": e.xpath("atom:link[not(@rel) or @rel='alternate']/@href", namespaces=NS)[0], "date": e.findtext("atom:published", namespaces=NS),
         "html": e.findtext("atom:content", namespaces=NS), "summary": e.findtext("atom:summary", namespaces=NS),
         "lang": e.get(XML_LANG),
         "image": e.find("media:content", NS).get("url") if e.find("media:content", NS) is not None else None}
        for e in root.iter(f"{{{NS['atom']}}}entry")
    ]


def feed_language(fmt: str, body: bytes) -> str:
    if fmt == "json":
        return json.loads(body)["language"]
    root = etree.fromstring(body)
    return root.findtext("channel/language") if fmt == "rss" else root.get(XML_LANG)


def html_root(fragment: str):
    """The outermost element of an HTML fragment."""
    return lxml_html.fragment_fromstring(fragment)


@pytest.fixture
def sample_snapshot(make_publisher, sample_dir):
    return make_publisher(sample_dir).build(FIXED_NOW)


@pytest.fixture(scope="module")
def json_feed_validator():
    """The JSON Feed 1.1 schema kept in tests/, checking formats (date-time, uri) too."""
    return load_json_feed_validator()


# Read back by software we did not write


@pytest.mark.parametrize("fmt", XML_FMTS)
def test_rss_and_atom_read_back_with_feedparser_without_errors(sample_snapshot, fmt):
    paths = [p for p in feed_paths(sample_snapshot) if p.endswith("." + fmt)]
    assert len(paths) >= 4  # the site-wide feed and at least three categories
    for path in paths:
        parsed = feedparser.parse(sample_snapshot.resources[path].body)
        assert parsed.bozo == 0, (path, parsed.get("bozo_exception"))
        assert parsed.version == {"rss": "rss20", "atom": "atom10"}[fmt]
        assert parsed.entries, path
        for entry in parsed.entries:
            assert entry.get("id") and entry.get("title") and entry.get("link"), (path, entry.get("title"))
            assert entry.get("published_parsed") or entry.get("updated_parsed"), (path, entry.title)


def test_json_feeds_are_valid_against_the_json_feed_1_1_schema(sample_snapshot, json_feed_validator):
    paths = [p for p in feed_paths(sample_snapshot) if p.endswith(".json")]
    assert len(paths) >= 4
    for path in paths:
        document = json.loads(sample_snapshot.resources[path].body)
        errors = [f"{list(e.path)}: {e.message}" for e in json_feed_validator.iter_errors(document)]
        assert errors == [], path
        assert document["version"] == "https://jsonfeed.org/version/1.1"
        for item in document["items"]:
            assert item["id"] and item["title"] and item["url"] and item["date_published"], (path, item.get("title"))


def test_no_chrome_line_of_the_seed_reaches_any_feed(sample_snapshot):
    for path in feed_paths(sample_snapshot):
        # Unescape twice: HTML inside XML text is escaped twice over.
        text = html.unescape(html.unescape(sample_snapshot.resources[path].body.decode("utf-8")))
        if path.endswith(".json"):
            text = html.unescape(json.dumps(json.loads(text), ensure_ascii=False))
        for marker in DEFAULT_CHROME_MARKERS:
            assert marker not in text, (path, marker)
    site_feed = sample_snapshot.resources["feed.json"].body.decode("utf-8")
    assert "نيكولاي باتروشيف في أواخر 2022" in site_feed  # the seed's last real paragraph is kept


def test_the_sample_feeds_break_no_rule_a_feed_reader_relies_on(sample_snapshot):
    paths = ["feed.rss", "feed.atom", "feed.json"] + [p for p in feed_paths(sample_snapshot) if p.startswith("category/")]
    assert len(paths) >= 12
    problems = {path: feed_problems(path, sample_snapshot.resources[path].body) for path in paths}
    assert {path: found for path, found in problems.items() if found} == {}


# Identity


def item_ids(fmt: str, snapshot, path: str | None = None) -> list[str]:
    return [i["id"] for i in read_items(fmt, snapshot.resources[path or f"feed.{fmt}"].body)]


@pytest.mark.parametrize("fmt", FMTS)
def test_an_items_id_stays_when_its_title_category_and_body_change(make_publisher, articles_dir, fmt):
    write(articles_dir, "story.txt", "News\nFirst headline\nFirst body.\n")
    pub = make_publisher(articles_dir)
    before = item_ids(fmt, pub.build(FIXED_NOW))
    write(articles_dir, "story.txt", "World\nA corrected headline\nA rewritten body.\n")
    after = pub.build(FIXED_NOW)
    assert item_ids(fmt, after) == before
    assert read_items(fmt, after.resources[f"feed.{fmt}"].body)[0]["title"] == "A corrected headline"


@pytest.mark.parametrize("fmt", FMTS)
def test_an_items_id_does_not_depend_on_the_site_url(make_publisher, articles_dir, fmt):
    write(articles_dir, "story.txt", "News\nA headline\nA body.\n")
    one = make_publisher(articles_dir, SITE_URL="https://one.example").build(FIXED_NOW)
    two = make_publisher(articles_dir, SITE_URL="http://127.0.0.1:9999").build(FIXED_NOW)
    assert item_ids(fmt, one) == item_ids(fmt, two)
    assert read_items(fmt, one.resources[f"feed.{fmt}"].body)[0]["link"] == "https://one.example/articles/story"


@pytest.mark.parametrize("fmt", FMTS)
def test_an_article_with_a_front_matter_id_keeps_its_item_id_when_the_file_moves(make_publisher, articles_dir, fmt):
    write(articles_dir, "drafts/story.md", markdown("A headline", date="2026-05-01", category="News", id="port-deal"))
    before = item_ids(fmt, make_publisher(articles_dir).build(FIXED_NOW))
    (articles_dir / "drafts/story.md").rename(articles_dir / "2026-05-01-story.md")
    after = make_publisher(articles_dir).build(FIXED_NOW)
    assert item_ids(fmt, after) == before
    assert read_items(fmt, after.resources[f"feed.{fmt}"].body)[0]["link"].endswith("/articles/port-deal")


def test_an_rss_guid_is_not_a_permalink(sample_snapshot):
    guids = etree.fromstring(sample_snapshot.resources["feed.rss"].body).findall("channel/item/guid")
    assert guids and all(g.get("isPermaLink") == "false" and g.text.startswith("urn:uuid:") for g in guids)


# What each item carries

PORT_DEAL = markdown(
    "Port deal signed",
    "The port authority signed the deal on Monday.\n\nWork starts in **spring**.",
    date="2026-11-02 07:00", category="Economy", author="Jane Doe", summary="A short summary & more.", lang="en",
)


def test_an_rss_item_has_its_author_full_body_and_summary(make_publisher, articles_dir):
    write(articles_dir, "port.md", PORT_DEAL)
    body = make_publisher(articles_dir, SITE_AUTHOR="Example Newsroom").build(FIXED_NOW).resources["feed.rss"].body
    (item,) = read_items("rss", body)
    assert etree.fromstring(body).findtext("channel/dc:creator", namespaces=NS) == "Example Newsroom"
    assert item["author"] == "Jane Doe"
    assert "The port authority signed the deal on Monday." in item["html"]
    assert "<strong>spring</strong>" in item["html"]
    assert html.unescape(item["summary"]) == "A short summary & more."


def test_an_atom_entry_has_html_content_and_a_text_summary(make_publisher, articles_dir):
    write(articles_dir, "port.md", PORT_DEAL)
    root = etree.fromstring(make_publisher(articles_dir).build(FIXED_NOW).resources["feed.atom"].body)
    entry = root.find("atom:entry", NS)
    content = entry.find("atom:content", NS)
    assert content.get("type") == "html"
    assert "<strong>spring</strong>" in content.text
    assert entry.find("atom:summary", NS).get("type") in (None, "text")
    assert entry.findtext("atom:summary", namespaces=NS) == "A short summary & more."
    assert entry.findtext("atom:author/atom:name", namespaces=NS) == "Jane Doe"
    assert entry.findtext("atom:published", namespaces=NS) == "2026-11-02T07:00:00+00:00"


def test_a_json_item_has_html_and_text_content_and_a_summary(make_publisher, articles_dir):
    write(articles_dir, "port.md", PORT_DEAL)
    (item,) = json.loads(make_publisher(articles_dir).build(FIXED_NOW).resources["feed.json"].body)["items"]
    assert "<strong>spring</strong>" in item["content_html"]
    assert item["content_text"] == "The port authority signed the deal on Monday.\n\nWork starts in spring."
    assert item["summary"] == "A short summary & more."
    assert item["authors"] == [{"name": "Jane Doe"}]
    assert item["date_published"] == "2026-11-02T07:00:00Z"


MIXED = {
    "wheat.txt": "اقتصاد\nارتفاع محصول القمح يخفف الضغط على أسعار الطحين\n"
                 "أظهرت بيانات أولية ارتفاع محصول القمح لهذا الموسم بنسبة اثني عشر في المئة.\n",
    "rates.md": markdown("البنك المركزي يبقي أسعار الفائدة دون تغيير", "قرر البنك المركزي إبقاء أسعار الفائدة دون تغيير.",
                         date="2026-11-20 10:30", category="اقتصاد"),
    "port.md": markdown("Port deal signed", "The port authority signed the deal on Monday.", date="2026-11-02 07:00",
                        category="اقتصاد", lang="en"),
}


@pytest.fixture
def mixed_snapshot(make_publisher, articles_dir):
    for name, text in MIXED.items():
        write(articles_dir, name, text)
    return make_publisher(articles_dir).build(FIXED_NOW)


@pytest.mark.parametrize("fmt", FMTS)
def test_an_arabic_articles_content_is_wrapped_right_to_left_with_its_language(mixed_snapshot, fmt):
    items = {i["title"]: i for i in read_items(fmt, mixed_snapshot.resources[f"feed.{fmt}"].body)}
    for title in ("ارتفاع محصول القمح يخفف الضغط على أسعار الطحين", "البنك المركزي يبقي أسعار الفائدة دون تغيير"):
        wrapper = html_root(items[title]["html"])
        assert (wrapper.get("dir"), wrapper.get("lang")) == ("rtl", "ar"), title
    english = html_root(items["Port deal signed"]["html"])
    assert (english.get("dir"), english.get("lang")) == ("ltr", "en")


@pytest.mark.parametrize("fmt", FMTS)
def test_a_feed_carries_its_dominant_language(mixed_snapshot, fmt):
    assert feed_language(fmt, mixed_snapshot.resources[f"feed.{fmt}"].body) == "ar"
    assert feed_language(fmt, mixed_snapshot.resources[f"category/اقتصاد/feed.{fmt}"].body) == "ar"


@pytest.mark.parametrize("fmt", ["atom", "json"])
def test_an_english_entry_in_an_arabic_feed_carries_its_own_language(mixed_snapshot, fmt):
    items = read_items(fmt, mixed_snapshot.resources[f"feed.{fmt}"].body)
    assert {i["title"]: i["lang"] for i in items} == {
        "البنك المركزي يبقي أسعار الفائدة دون تغيير": None,
        "ارتفاع محصول القمح يخفف الضغط على أسعار الطحين": None,
        "Port deal signed": "en",
    }
    if fmt == "atom":  # and feedparser sees it
        entries = feedparser.parse(mixed_snapshot.resources["feed.atom"].body).entries
        assert {e.title: e.title_detail.language for e in entries}["Port deal signed"] == "en"


def test_every_rss_item_names_its_own_language(mixed_snapshot):
    """RSS 2.0 has no element for an item's language: without content:encoded (PUBLIC_CONTENT=summary) only its
    dc:language names it (feed.xsl lays the item out by it). Every item names it, the channel's too."""
    items = read_items("rss", mixed_snapshot.resources["feed.rss"].body)
    assert {i["title"]: i["lang"] for i in items} == {
        "البنك المركزي يبقي أسعار الفائدة دون تغيير": "ar",
        "ارتفاع محصول القمح يخفف الضغط على أسعار الطحين": "ar",
        "Port deal signed": "en",
    }


@pytest.mark.parametrize("fmt", FMTS)
def test_script_typed_in_a_txt_file_is_only_ever_escaped(make_publisher, articles_dir, fmt):
    write(articles_dir, "xss.txt", "News\nHeadline <b>bold</b>\n<script>alert(1)</script> & <img src=x onerror=alert(2)>\n")
    body = make_publisher(articles_dir).build(FIXED_NOW).resources[f"feed.{fmt}"].body
    (item,) = read_items(fmt, body)
    # Every field a reader takes as HTML: no element but our own wrapper and paragraph.
    html_fields = [item["html"]] + ([item["summary"]] if fmt == "rss" else [])
    for fragment in html_fields:
        tags = {el.tag for el in lxml_html.fragment_fromstring(fragment, create_parent="body").iter()}
        assert tags <= {"body", "div", "p"}, fragment
        assert "<script>alert(1)</script>" in lxml_html.fragment_fromstring(fragment, create_parent="body").text_content()
    if fmt == "json":
        assert item["text"].startswith("<script>alert(1)</script>")  # content_text is plain text by definition
    else:
        assert b"<script" not in body and b"<img" not in body
    parsed = feedparser.parse(body) if fmt != "json" else None
    if parsed:  # a reader shows the tag as text
        assert "<script>" in html.unescape(parsed.entries[0].content[0].value)


@pytest.mark.parametrize("fmt", FMTS)
def test_a_lead_image_is_published_as_an_absolute_percent_encoded_uri(make_publisher, articles_dir, fmt):
    write(articles_dir, "a.md", markdown("Photo", date="2026-05-02", category="News", image="photos/my pic صورة.jpg"))
    body = make_publisher(articles_dir, SITE_URL="https://news.example").build(FIXED_NOW).resources[f"feed.{fmt}"].body
    (item,) = read_items(fmt, body)
    assert item["image"] == "https://news.example/articles/photos/my%20pic%20%D8%B5%D9%88%D8%B1%D8%A9.jpg"


@pytest.mark.parametrize("fmt", FMTS)
def test_an_image_that_is_not_an_http_url_is_never_published(make_publisher, articles_dir, fmt):
    # The loader already refuses such files; the writers do not rely on it.
    write(articles_dir, "a.txt", "News\nA headline\nA body.\n")
    pub = make_publisher(articles_dir)
    site_feed = pub.build(FIXED_NOW).feeds[0]
    article = replace(site_feed.items[0], image="javascript:alert(1)")
    body = FORMATS[fmt].render(replace(site_feed, items=(article,)), pub.site)
    assert read_items(fmt, body)[0]["image"] is None
    assert b"javascript:" not in body


def test_a_body_containing_a_cdata_terminator_still_gives_well_formed_rss(make_publisher, articles_dir):
    write(articles_dir, "a.txt", "News\nA headline\nA body.\n")
    pub = make_publisher(articles_dir)
    site_feed = pub.build(FIXED_NOW).feeds[0]
    article = replace(site_feed.items[0], body_html="<p>a ]]> b</p>")
    body = FORMATS["rss"].render(replace(site_feed, items=(article,)), pub.site)
    assert read_items("rss", body)[0]["html"].endswith("<p>a ]]> b</p></div>")


def test_an_empty_site_description_still_gives_valid_rss(make_publisher, articles_dir):
    write(articles_dir, "a.txt", "News\nA headline\nA body.\n")
    snap = make_publisher(articles_dir, SITE_DESCRIPTION="", SITE_TITLE="Example News").build(FIXED_NOW)
    channel = etree.fromstring(snap.resources["feed.rss"].body).find("channel")
    assert channel.findtext("description") == "Example News"
    assert feedparser.parse(snap.resources["category/news/feed.rss"].body).bozo == 0


# Language tags as RSS, Atom and OPML take them. The W3C Feed Validator holds RSS <language>, dc:language, Atom's
# xml:lang and OPML's language to ISO 639-1 and 639-2 (2006); an ISO 639-3 individual language, which an article's
# `lang:` keeps (README), made every feed holding one invalid ("language must be an ISO-639 language code").
INDIVIDUAL = {"arb": "ar-arb", "pes": "fa", "pnb": "lah-Arab", "ckb": "ku-Arab", "mzn": "mis-Arab"}
ARABIC_SCRIPT_BODY = "هذا نص عربي طويل نسبياً كتب لغرض الاختبار وفيه كلمات كثيرة عن الاقتصاد والسياسة."


@pytest.mark.parametrize(("tag", "written"), [
    ("ar", "ar"), ("en-GB", "en-GB"), ("zh-Hant-TW", "zh-Hant-TW"), ("fil", "fil"), ("gsw", "gsw"), ("und", "und"),
    ("arb", "ar-arb"), ("arb-EG", "ar-arb-EG"), ("yue-HK", "zh-yue-HK"),  # extlang form: the macrolanguage, then itself
    ("pes", "fa"), ("prs", "fa"), ("ekk", "et"),  # the macrolanguage, same direction
    ("pnb", "lah-Arab"), ("pnb-PK", "lah-Arab-PK"), ("ckb", "ku-Arab"), ("ckb-Latn", "ku-Latn"),  # and the script
    ("mzn", "mis-Arab"), ("nqo", "mis-Nkoo"), ("tok", "mis"),  # none on the list: "uncoded", in its script
])
def test_a_language_tag_is_written_as_iso_639_1_or_2_as_precisely_as_it_can_be(tag, written):
    assert listed_language(tag) == written


@pytest.mark.parametrize("tag", sorted(RTL_LANGUAGES - {"azb"}))
def test_a_right_to_left_language_stays_right_to_left_as_written(tag):
    """As model.text_direction and feed.xsl read the tag written. (azb: langcodes knows no script for South
    Azerbaijani, which is written az, left to right.)"""
    assert text_direction(listed_language(tag)) == "rtl"
    assert listed_language(tag).split("-")[0] not in INDIVIDUAL


def test_an_iso_639_3_language_is_named_in_rss_atom_and_opml_as_their_validator_takes_it(make_publisher, articles_dir):
    for tag in INDIVIDUAL:
        write(articles_dir, f"{tag}.md", markdown(f"عنوان {tag}", ARABIC_SCRIPT_BODY, date="2026-11-06 10:00",
                                                  category=f"{tag}cat", lang=tag))
    write(articles_dir, "en.md", markdown("In English", "A paragraph of English prose with the words the and of.",
                                          date="2026-11-06 11:00", category="encat", lang="en"))
    snap = make_publisher(articles_dir).build(FIXED_NOW)
    opml = {o.get("xmlUrl").rsplit("/category/", 1)[-1]: o.get("language")
            for o in etree.fromstring(snap.resources["feeds.opml"].body).iter("outline")}
    for tag, written in INDIVIDUAL.items():
        rss, atom = (snap.resources[f"category/{tag}cat/feed.{fmt}"].body for fmt in XML_FMTS)
        assert f"<language>{written}</language>".encode() in rss and f"<dc:language>{written}</dc:language>".encode() in rss
        assert etree.fromstring(atom).get(XML_LANG) == written
        assert opml[f"{tag}cat/feed.rss"] == written  # the RSS feed's <language>, as OPML 2.0 says
        parsed = feedparser.parse(rss)
        assert (parsed.feed.language, parsed.entries[0].language) == (written, written)
        # Everything else keeps the article's own tag: JSON Feed, the body's wrapper, the article's page.
        assert json.loads(snap.resources[f"category/{tag}cat/feed.json"].body)["language"] == tag
        assert f'<div dir="rtl" lang="{tag}">'.encode() in rss
        page = lxml_html.fromstring(snap.resources[f"articles/{tag}"].body)
        assert (page.get("lang"), page.get("dir")) == (tag, "rtl")
    # The site-wide feeds, where each entry names its own: no tag the validator refuses.
    for fmt in XML_FMTS:
        body = snap.resources[f"feed.{fmt}"].body
        for tag in INDIVIDUAL:
            assert f">{tag}<".encode() not in body and f'xml:lang="{tag}"'.encode() not in body, (fmt, tag)
    entries = {e.title: e.title_detail.language for e in feedparser.parse(snap.resources["feed.atom"].body).entries}
    assert entries == {"In English": "en", **{f"عنوان {tag}": written for tag, written in INDIVIDUAL.items()}}


# RSS plain text as the RSS Best Practices Profile asks (https://www.rssboard.org/rss-profile#data-types-characterdata):
# a title that could be read as HTML, written "&lt;blink&gt;", drew the W3C Feed Validator's warning 'Encode "&" and
# "<" in plain text using hexadecimal character references'; the Atom feed was clean.


def test_rss_plain_text_that_could_be_read_as_html_is_written_with_hexadecimal_references(make_publisher, articles_dir):
    write(articles_dir, "blink.md", markdown("Browsers drop the <blink> tag", date="2026-11-06 10:02", category="Web <dev>",
                                             author="R&D <team>", tags=["&copy; notices"], summary="We said <blink> & meant it."))
    write(articles_dir, "lt.md", markdown("3 < 4 at AT&T", date="2026-11-06 10:01", category="Maths & more"))
    snap = make_publisher(articles_dir, SITE_TITLE="News <i>today</i>", SITE_DESCRIPTION="Q&A &amp; more").build(FIXED_NOW)
    body = snap.resources["feed.rss"].body
    for written in (b"<title>Browsers drop the &#x3C;blink&#x3E; tag</title>", b"<category>Web &#x3C;dev&#x3E;</category>",
                    b"<dc:creator>R&#x26;D &#x3C;team&#x3E;</dc:creator>", b"<category>&#x26;copy; notices</category>",
                    b"<title>News &#x3C;i&#x3E;today&#x3C;/i&#x3E;</title>", b"<description>Q&#x26;A &#x26;amp; more</description>",
                    # Nothing in it a reader could take for HTML: written as it always was.
                    b"<title>3 &lt; 4 at AT&amp;T</title>", b"<category>Maths &amp; more</category>"):
        assert written in body, written
    # An item's description and content:encoded are HTML: escaped once more, never referenced so.
    assert b"<description>We said &amp;lt;blink&amp;gt; &amp;amp; meant it.</description>" in body
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0 and parsed.feed.title == "News <i>today</i>"
    blink = {e.title: e for e in parsed.entries}["Browsers drop the <blink> tag"]
    assert blink.author == "R&D <team>" and [t.term for t in blink.tags] == ["Web <dev>", "&copy; notices"]
    assert "3 < 4 at AT&T" in {e.title for e in parsed.entries}
    assert b"<title>Browsers drop the &lt;blink&gt; tag</title>" in snap.resources["feed.atom"].body  # Atom: text is text


# Same input, same bytes


def test_two_publishers_sharing_one_state_file_give_byte_identical_feeds(make_publisher, sample_dir, articles_dir):
    write(articles_dir, "undated.txt", "News\nUndated article\nIts date comes from the state store.\n")
    write(articles_dir, "dated.md", markdown("Dated", date="2026-05-01", category="News"))
    one = make_publisher(articles_dir).build(FIXED_NOW)
    two = make_publisher(articles_dir).build(FIXED_NOW.replace(hour=18))
    assert feed_paths(one) == feed_paths(two)
    for path in feed_paths(one):
        assert one.resources[path].body == two.resources[path].body, path


# Golden files: one category in all three formats (UPDATE_GOLDEN=1 rewrites them). RSS and Atom are compared byte
# for byte; JSON Feed in its pretty form (indent 2, key order kept), so that a change shows as a readable line diff.
#
# They were written by the renderer, then checked by hand against GOLDEN_ARTICLES and the specs (2026-11-30):
# - ids: urn:uuid:7dd324f7… (2026-11-20-rates), cb3b4561… (port-deal, from front matter `id`), f973022c…
#   (economy/2026-10-19-wheat) are uuid5 of those IDs in feedsvc.model's namespace, recomputed outside the code;
# - order newest first: 2026-11-20, 2026-11-02, 2026-10-19; dates without a zone read as UTC (TIME_ZONE);
#   RSS pubDate weekdays are right (Fri 20 Nov, Mon 2 Nov, Mon 19 Oct 2026); the rates article's `updated`
#   (2026-11-21 09:00) is its Atom updated / JSON date_modified and the feed's updated / lastBuildDate;
#   RSS items carry no updated date (RSS 2.0 has no element for it);
# - the wheat file's chrome trailer (تابعونا على … زر الذهاب إلى الأعلى) is gone; its "<بحسب التقديرات>" is text,
#   escaped once in HTML (and once more inside Atom's escaped content), raw in content_text;
# - Arabic bodies are wrapped in <div dir="rtl" lang="ar">, the English one in dir="ltr" lang="en"; the feed's
#   language is ar and only the English entry names its own (Atom xml:lang, JSON language); every RSS item names its
#   own in dc:language (ar, en, ar: an RSS item's bytes do not depend on the feed's language);
# - Markdown: **bold**, the h2 and the list render; the link gets rel="noopener"; "&" is escaped;
# - categories then tags as RSS category / Atom category / JSON tags; the relative image becomes
#   https://news.example/articles/images/port.jpg; authors from front matter, the feed's from SITE_AUTHOR;
# - CATEGORY_SLUGS puts the feed at /category/economy/; self and alternate links point there.

GOLDEN_ARTICLES = {
    "economy/2026-10-19-wheat.txt": (
        "---\ndate: 2026-10-19 08:15\nauthor: قسم الاقتصاد\nlang: ar\n---\n"
        "اقتصاد\nارتفاع محصول القمح يخفف الضغط على أسعار الطحين\n"
        "أظهرت بيانات أولية أن محصول القمح ارتفع بنسبة اثني عشر في المئة مقارنة بالموسم الماضي.\n\n"
        "ويتوقع تجار الجملة أن ينعكس ذلك على الأسعار خلال الأسابيع المقبلة <بحسب التقديرات>.\n\n"
        "تابعونا على\nاظهر المزيد\n\nاترك تعليقاً\n\nزر الذهاب إلى الأعلى\n"
    ),
    "2026-11-20-rates.md": markdown(
        "البنك المركزي يبقي أسعار الفائدة دون تغيير",
        "قرر البنك المركزي **إبقاء** أسعار الفائدة دون تغيير للاجتماع الثالث على التوالي.\n\n"
        "## التوقعات\n\n- تضخم أقل\n- نمو أبطأ",
        date="2026-11-20 10:30", updated="2026-11-21 09:00", category="اقتصاد", tags=["بنوك", "فائدة"],
        summary="المركزي يثبت الفائدة.", lang="ar", author="غرفة الأخبار",
    ),
    "2026-11-02-port.md": markdown(
        "Port deal signed: a corridor to the interior",
        "The port authority signed the deal on Monday, [the ministry said](https://gov.example/news).\n\n"
        "Work starts in spring & ends in 2029.",
        date="2026-11-02 07:00", categories=["اقتصاد", "Business"], tags=["trade"], author="Jane Doe",
        image="images/port.jpg", lang="en", id="port-deal",
    ),
}
GOLDEN_SETTINGS = {
    "SITE_URL": "https://news.example",
    "SITE_TITLE": "Example News",
    "SITE_DESCRIPTION": "News from the example desk",
    "SITE_AUTHOR": "Example Newsroom",
    "SITE_LANGUAGE": "ar",
    "CATEGORY_SLUGS": {"اقتصاد": "economy"},
}


@pytest.fixture
def golden_snapshot(make_publisher, articles_dir):
    for name, text in GOLDEN_ARTICLES.items():
        write(articles_dir, name, text)
    return make_publisher(articles_dir, **GOLDEN_SETTINGS).build(FIXED_NOW)


def comparable(fmt: str, body: bytes) -> bytes:
    """The form a golden file is kept in: XML as rendered, JSON pretty-printed with its key order."""
    if fmt != "json":
        return body
    return (json.dumps(json.loads(body), ensure_ascii=False, indent=2) + "\n").encode("utf-8")


@pytest.mark.parametrize("fmt", FMTS)
def test_a_category_feed_matches_its_golden_file(golden_snapshot, fmt):
    produced = comparable(fmt, golden_snapshot.resources[f"category/economy/feed.{fmt}"].body)
    golden = GOLDEN / f"economy.{fmt}"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        golden.write_bytes(produced)
    assert golden.is_file(), f"{golden} is missing; run the tests with UPDATE_GOLDEN=1 to write it"
    expected = golden.read_bytes()
    if produced != expected:
        diff = difflib.unified_diff(expected.decode("utf-8", "replace").splitlines(), produced.decode("utf-8", "replace").splitlines(),
                                    f"golden/economy.{fmt}", "rendered", lineterm="", n=1)
        shown = list(diff)
        pytest.fail("rendered feed differs from its golden file (UPDATE_GOLDEN=1 rewrites it):\n"
                    + "\n".join(line[:200] for line in shown[:40]) + ("\n…" if len(shown) > 40 else ""), pytrace=False)


def test_the_golden_json_feed_is_kept_pretty_printed_one_field_a_line():
    lines = (GOLDEN / "economy.json").read_text(encoding="utf-8").splitlines()
    assert len(lines) > 50 and max(len(line) for line in lines if '"content_' not in line) < 200


# Property: whatever text a file holds, every article the loader accepts renders into well-formed feeds

TEXT = st.lists(
    st.one_of(
        st.characters(codec="utf-8"),                            # anything encodable (no lone surrogates)
        st.characters(min_codepoint=0x600, max_codepoint=0x6FF),  # Arabic
        st.characters(max_codepoint=0x1F),                        # C0 controls
        st.sampled_from(["\n", "\n\n", " ", "\u202e", "\u200f", "\ufeff", "\x85", "<", ">", "&", "]]>", "<script>",
                         "---\n", "# ", "*", "`", "[x](javascript:alert(1))", "&#0;", "&#x202E;", "<p onclick=x>"]),
    ),
    max_size=60,
).map("".join)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(head=TEXT, body=TEXT)
def test_every_article_the_loader_accepts_renders_into_well_formed_feeds(make_publisher, tmp_path_factory, json_feed_validator, head, body):
    folder = tmp_path_factory.mktemp("property")
    write(folder, "raw.txt", head + body)
    write(folder, "plain.txt", f"News\nA headline {head}\n{body}")
    write(folder, "marked.md", f"---\ntitle: T\ncategory: News\n---\n{head}\n{body}")
    pub = make_publisher(folder)
    # The stages of Publisher.build() that decide feed bytes; pages and compression are tested elsewhere.
    articles, _ = load_articles(pub.root, pub.scanner.options)
    appeared = {a.id: datetime.fromtimestamp((folder / a.source).stat().st_mtime, timezone.utc) for a in articles}
    feeds = build_feeds(pub.store.stamp(articles, FIXED_NOW, appeared), pub.site, {}, 50, FIXED_NOW)
    assert len(feeds[0].items) == len(articles)
    for feed in feeds:
        for fmt in FORMATS.values():
            raw = fmt.render(feed, pub.site)
            if fmt.key == "json":
                assert not list(json_feed_validator.iter_errors(json.loads(raw))), feed.key
                continue
            root = etree.fromstring(raw)  # raises on anything that is not well-formed XML 1.0
            contents = root.iterfind(".//content:encoded" if fmt.key == "rss" else ".//atom:content", NS)
            for content in contents:
                lxml_html.fragment_fromstring(content.text, create_parent="body")
    shutil.rmtree(folder)


def test_only_the_formats_table_names_a_feed_format():
    """Every part derives the formats from FORMATS: no other module spells a feed's media type, label or list of keys."""
    import ast

    package = Path(__file__).resolve().parents[1] / "feedsvc"
    writers = {package / "formats" / name for name in ("__init__.py", "rss.py", "atom.py", "jsonfeed.py")}
    named = {f.media_type for f in FORMATS.values()} | {"|".join(FORMATS)}  # inside any string
    labels = {f.label for f in FORMATS.values()}  # as a string of its own (prose may say "RSS")
    found = []
    for path in sorted(set(package.rglob("*.py")) - writers):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                      and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):  # a list of the keys, such as ("rss", "atom", "json")
                keys = [e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in FORMATS]
                if len(keys) > 1:
                    found.append(f"{path.relative_to(package)}:{node.lineno}: {keys!r}")
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                found += [f"{path.relative_to(package)}:{node.lineno}: {word!r}" for word in named if word in node.value]
                found += [f"{path.relative_to(package)}:{node.lineno}: {node.value!r}" for _ in [0] if node.value in labels]
    assert not found


def test_the_routes_pages_and_cors_follow_the_formats_table(client):
    home = lxml_html.fromstring(client.get("/").data)
    links = [(a.get("type"), a.get("title")) for a in home.xpath("//head/link[@rel='alternate']")]
    assert [type_ for type_, _ in links] == [f.media_type for f in FORMATS.values()]
    assert [title.rsplit("(", 1)[1].rstrip(")") for _, title in links] == [f.label for f in FORMATS.values()]
    for fmt in FORMATS.values():
        res = client.get("/feed" + fmt.suffix)
        assert res.status_code == 200 and res.mimetype == fmt.media_type
        assert res.headers["Access-Control-Allow-Origin"] == "*"
    assert all(suffix in client.get("/feed.nope").get_data(as_text=True) for suffix in ["/feed" + f.suffix for f in FORMATS.values()])


def test_json_feed_bytes_are_the_standard_librarys_compact_utf8_json():
    # orjson writes them (jsonfeed.serialise); the contract is json.dumps's: every character but '"', '\\' and the C0
    # controls as it is, in UTF-8, the controls as \b \t \n \f \r or \u00XX, keys in insertion order, no spaces.
    from feedsvc.formats.jsonfeed import serialise

    text = "".join(map(chr, range(0x80))) + "\u2028\u2029\ufeff\u00a0 «سياسة» ‏עברית‎ 𝔘 </script> \\u0041 ☃"
    value = {"z": text, "a": [1, -2, 0, True, False, None, {"k": "", "ق": [text[::-1]]}], "id": "tag:x,2024:1"}
    assert serialise(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(moment=st.datetimes(timezones=st.timezones() | st.just(timezone.utc)))
def test_rss_dates_are_feedgens_text_in_the_c_locale(moment):
    import locale

    from feedsvc.formats.content import rfc2822

    before = locale.setlocale(locale.LC_TIME)
    locale.setlocale(locale.LC_TIME, "C")
    try:  # what feedgen's formatRFC2822 writes: its format, in the locale it sets
        assert rfc2822(moment) == moment.strftime("%a, %d %b %Y %H:%M:%S %z")
    finally:
        locale.setlocale(locale.LC_TIME, before)


def test_rss_dates_never_set_the_process_locale_on_any_thread(sample_snapshot, make_publisher, sample_dir, monkeypatch):
    # feedgen set the process's locale to C around each RSS date and back (setlocale is process-wide): two threads at
    # once (a serving process renders archive pages and deltas on APP_THREADS) left LC_CTYPE "C", where Python's
    # default text encoding is ASCII (formats/content.py rfc2822).
    import locale
    import threading

    import feedgen.entry
    import feedgen.feed

    from feedsvc.formats.content import rfc2822

    calls, setlocale = [], locale.setlocale
    monkeypatch.setattr(locale, "setlocale", lambda *args: calls.append(args) or setlocale(*args))
    body = FORMATS["rss"].render(sample_snapshot.feeds[0], make_publisher(sample_dir).site)  # feedgen's whole feed
    assert b"<lastBuildDate>" in body and b"<pubDate>" in body
    moment, written = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc), set()

    def dates() -> None:  # what feedgen dates its RSS items and channels with, from threads at once
        for _ in range(2_000):
            written.update((feedgen.entry.formatRFC2822(moment), feedgen.feed.formatRFC2822(moment)))

    threads = [threading.Thread(target=dates) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [] and written == {rfc2822(moment)} == {"Sun, 29 Nov 2026 12:00:00 +0000"}

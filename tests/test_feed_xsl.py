"""The feed stylesheet (feedsvc/static/feed.xsl) applied with lxml's XSLT 1.0, as a browser applies it to a copy of a
feed served as application/xml: each item laid out in its own language's direction, not guessed from its first letter.
A review saw an Arabic item whose title begins with a Latin brand laid out left to right under `<li dir="auto">`."""
from __future__ import annotations

import ast
from importlib import resources
from urllib.parse import quote

import pytest
from lxml import etree, html

from feedsvc.model import text_direction
from tests.conftest import ROOT, write

TECH = quote("تقنية")
APPLE = "Apple تطلق iPhone 17 Pro في الأسواق العربية"
XSL_NS = {"xsl": "http://www.w3.org/1999/XSL/Transform"}


def stylesheet() -> etree._Element:
    return etree.fromstring((resources.files("feedsvc") / "static" / "feed.xsl").read_bytes())


def page(feed: bytes | etree._Element) -> html.HtmlElement:
    """The page a browser shows for the feed's bytes: the stylesheet's output, parsed as HTML."""
    root = feed if isinstance(feed, etree._Element) else etree.fromstring(feed)
    return html.fromstring(str(etree.XSLT(stylesheet())(root)))


def items(shown: html.HtmlElement) -> dict[str, html.HtmlElement]:
    """The page's items by their title."""
    return {li.find("a").text_content(): li for li in shown.iter("li")}


ARABIC = {
    "apple.md": f"---\ntitle: {APPLE}\ncategory: تقنية\ndate: 2026-11-01T00:00:00Z\n---\n"
                "أعلنت شركة Apple اليوم عن طرح هاتف iPhone 17 Pro في الأسواق العربية بأسعار جديدة.\n",
    "ai.md": "---\ntitle: خبر عن الذكاء الاصطناعي\ncategory: تقنية\ndate: 2026-11-02T00:00:00Z\n---\n"
             "وصل الأمين العام لمجلس الأمن إلى طهران يوم الاثنين في زيارة رسمية.\n",
}
ENGLISH_IN_ARABIC = ("openai.md", "---\ntitle: OpenAI opens an office in Dubai\ncategory: تقنية\nlang: en\n"
                                  "date: 2026-11-03T00:00:00Z\n---\nThe company said the office would open next year.\n")


@pytest.fixture
def mixed_client(make_app, articles_dir):
    """An Arabic category (تقنية) with a Latin-first Arabic title and one English article."""
    for name, text in [*ARABIC.items(), ENGLISH_IN_ARABIC]:
        write(articles_dir, name, text)
    return make_app(articles_dir).test_client()


def test_an_arabic_rss_item_with_a_latin_first_title_is_right_to_left(make_app, articles_dir):
    for name, text in ARABIC.items():
        write(articles_dir, name, text)
    feed = make_app(articles_dir).test_client().get(f"/category/{TECH}/feed.rss").data
    assert b"<language>ar</language>" in feed
    shown = page(feed)
    assert shown.get("dir") == "rtl" and shown.get("lang") == "ar"
    apple = items(shown)[APPLE]
    assert apple.get("dir") == "rtl" and apple.get("lang") == "ar"
    assert apple.find("a").get("dir") == "rtl"  # the title isolated, in the item's direction: not dir="auto"
    assert apple.find("time").get("dir") == "ltr"  # the RFC 822 date, English words, isolated left to right
    assert all(li.get("dir") == "rtl" for li in shown.iter("li"))


def test_an_english_feed_is_left_to_right(make_app, articles_dir):
    write(articles_dir, "en.md", "---\ntitle: 17 ways to read feeds\ncategory: technology\nlang: en\n"
                                 "date: 2026-11-01T00:00:00Z\n---\nHello.\n")
    write(articles_dir, "en2.md", "---\ntitle: «Arabic quotes» first, then English\ncategory: technology\nlang: en\n"
                                  "date: 2026-11-02T00:00:00Z\n---\nمرحبا is how it starts, in English.\n")
    client = make_app(articles_dir).test_client()
    for fmt in ("rss", "atom"):
        shown = page(client.get(f"/category/technology/feed.{fmt}").data)
        assert shown.get("dir") == "ltr" and shown.get("lang") == "en", fmt
        assert [li.get("dir") for li in shown.iter("li")] == ["ltr", "ltr"], fmt


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_an_english_entry_in_an_arabic_feed_is_left_to_right(mixed_client, fmt):
    feed = mixed_client.get(f"/category/{TECH}/feed.{fmt}").data
    if fmt == "atom":
        assert b'<entry xml:lang="en">' in feed
    shown = page(feed)
    assert shown.get("dir") == "rtl"
    shown_items = items(shown)
    english = shown_items["OpenAI opens an office in Dubai"]
    assert english.get("dir") == "ltr" and english.get("lang") == "en" and english.find("a").get("dir") == "ltr"
    assert english.find("a").get("href") == "http://127.0.0.1:8000/articles/openai"
    assert shown_items[APPLE].get("dir") == "rtl" and shown_items[APPLE].get("lang") == "ar"
    assert shown_items[APPLE].find("a").get("href") == "http://127.0.0.1:8000/articles/apple"


DC_LANGUAGE = "{http://purl.org/dc/elements/1.1/}language"


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_an_english_entry_in_an_arabic_summary_only_feed_is_left_to_right(make_app, articles_dir, fmt):
    """PUBLIC_CONTENT=summary: an RSS item has no body, whose wrapper named its language, so the English item was laid
    out right to left (".Oil prices rise 3% on supply fears"). Every RSS item names its language in a dc:language."""
    for name, text in [*ARABIC.items(), ENGLISH_IN_ARABIC]:
        write(articles_dir, name, text)
    feed = make_app(articles_dir, PUBLIC_CONTENT="summary").test_client().get(f"/category/{TECH}/feed.{fmt}").data
    assert b"content:encoded" not in feed and b"<content" not in feed
    shown_items = items(page(feed))
    english = shown_items["OpenAI opens an office in Dubai"]
    assert english.get("dir") == "ltr" and english.get("lang") == "en" and english.find("a").get("dir") == "ltr"
    assert shown_items[APPLE].get("dir") == "rtl" and shown_items[APPLE].get("lang") == "ar"
    if fmt == "rss":
        root = etree.fromstring(feed)
        assert {i.findtext("title"): i.findtext(DC_LANGUAGE) for i in root.iter("item")} == {
            "OpenAI opens an office in Dubai": "en", APPLE: "ar", "خبر عن الذكاء الاصطناعي": "ar"}


def test_an_rss_item_naming_no_language_takes_the_feeds_language(mixed_client):
    """An RSS item with no dc:language and no body (another feed's, or one of ours written before items named their
    language): every item is laid out as the feed's language is."""
    root = etree.fromstring(mixed_client.get(f"/category/{TECH}/feed.rss").data)
    for name in ("{http://purl.org/rss/1.0/modules/content/}encoded", DC_LANGUAGE):
        for element in list(root.iter(name)):
            element.getparent().remove(element)
    shown_items = items(page(root))
    assert {title: li.get("dir") for title, li in shown_items.items()} == dict.fromkeys(shown_items, "rtl")


def test_an_rss_items_dc_language_comes_before_its_bodys(mixed_client):
    """Where an item's dc:language and its body's wrapper differ (another feed's), the element the item names wins."""
    root = etree.fromstring(mixed_client.get(f"/category/{TECH}/feed.rss").data)
    (english,) = [i for i in root.iter("item") if i.findtext("title") == "OpenAI opens an office in Dubai"]
    english.find(DC_LANGUAGE).text = "fa"
    assert items(page(root))["OpenAI opens an office in Dubai"].get("dir") == "rtl"


def test_a_language_with_a_region_subtag_is_right_to_left(make_app, articles_dir):
    write(articles_dir, "eg.md", "---\ntitle: Apple تطلق iPhone 17 Pro في مصر\ncategory: تقنية\nlang: ar-EG\n"
                                 "date: 2026-11-01T00:00:00Z\n---\nأعلنت شركة Apple اليوم عن طرح هاتف iPhone 17 Pro في مصر.\n")
    write(articles_dir, "eg2.md", "---\ntitle: خبر من القاهرة\ncategory: تقنية\nlang: ar-EG\n"
                                  "date: 2026-11-03T00:00:00Z\n---\nافتتح معرض القاهرة للتقنية أبوابه اليوم.\n")
    write(articles_dir, "gb.md", "---\ntitle: Apple launches iPhone 17 Pro in Egypt\ncategory: تقنية\nlang: en-GB\n"
                                 "date: 2026-11-02T00:00:00Z\n---\nApple said so.\n")
    client = make_app(articles_dir).test_client()
    for fmt in ("rss", "atom"):
        feed = client.get(f"/category/{TECH}/feed.{fmt}").data
        assert b"ar-EG" in feed
        shown = page(feed)
        shown_items = items(shown)
        egypt = shown_items["Apple تطلق iPhone 17 Pro في مصر"]
        assert egypt.get("dir") == "rtl" and egypt.get("lang") == "ar-EG", fmt
        assert shown_items["Apple launches iPhone 17 Pro in Egypt"].get("dir") == "ltr", fmt
        assert shown.get("lang") == "ar-EG" and shown.get("dir") == "rtl", fmt


# ISO 639-3 individual languages, each named in the feeds as the W3C Feed Validator takes it (formats/content.py
# listed_language: arb as ar-arb, pnb as lah-Arab): still laid out right to left.
INDIVIDUAL = {"arb": "ar-arb", "pes": "fa", "pnb": "lah-Arab", "ckb": "ku-Arab", "mzn": "mis-Arab"}


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_an_iso_639_3_language_named_as_the_validator_takes_it_is_still_right_to_left(make_app, articles_dir, fmt):
    """PUBLIC_CONTENT=summary: no body, whose wrapper names the article's own tag; each item is laid out by the tag its
    feed writes (an RSS item's dc:language, an Atom entry's xml:lang or its feed's), in an English feed and in one of
    its own language."""
    for hour, (name, title, lang) in enumerate([("en", "Port deal signed", "en"), ("en2", "Rates held", "en"),
                                                *((tag, f"خبر {tag}", tag) for tag in INDIVIDUAL)]):
        write(articles_dir, f"{name}.md", f"---\ntitle: {title}\ncategories: [mixed, {name}cat]\nlang: {lang}\n"
                                          f"date: 2026-11-01T0{hour}:00:00Z\n---\nA paragraph of text, هذا نص.\n")
    client = make_app(articles_dir, PUBLIC_CONTENT="summary").test_client()
    mixed = page(client.get(f"/category/mixed/feed.{fmt}").data)
    assert mixed.get("lang") == "en" and items(mixed)["Port deal signed"].get("dir") == "ltr"
    for tag, written in INDIVIDUAL.items():
        for shown in (mixed, page(client.get(f"/category/{tag}cat/feed.{fmt}").data)):
            assert (items(shown)[f"خبر {tag}"].get("dir"), items(shown)[f"خبر {tag}"].get("lang")) == ("rtl", written), tag


def atom_feed(feed_lang: str | None, entry_langs: list[str | None]) -> etree._Element:
    attr = "" if feed_lang is None else f' xml:lang="{feed_lang}"'
    entries = "".join(f'<entry{"" if lang is None else f" xml:lang={chr(34)}{lang}{chr(34)}"}><title>e{i}</title>'
                      f'<link href="http://example.com/{i}"/><summary>s</summary></entry>'
                      for i, lang in enumerate(entry_langs))
    return etree.fromstring(f'<feed xmlns="http://www.w3.org/2005/Atom"{attr}><title>t</title>{entries}</feed>')


TAGS = ["ar", "AR", "ar-EG", "AR-eg", "ar_EG", "fa-IR", "he-IL", "HE", "ur-PK", "ckb-IQ", "iw", "arz", "ar-Latn",
        "ku-Arab", "pa-Arab", "az-Latn", "az-Arab-IR", "en", "en-US", "fr-CA", "ku", "zh-Hant-TW", "tr", "sr-Cyrl",
        "dv-MV", "syr", "ff-Adlm", "ar-EG-u-nu-latn", "he-IL-u-ca-hebrew", "ar-x-latn", "en-US-x-arab", "az-IR-u-nu-arab",
        "ar-arb-Latn", "zh-yue-Arab", "ar-419", "sr-Latn-RS"]


def test_the_stylesheet_decides_every_direction_as_text_direction_does():
    """Each entry's direction, for tags in any case and with subtags, and for every right-to-left language: as
    feedsvc/model.py text_direction decides it for the pages (an underscore taken as a hyphen)."""
    from feedsvc.model import RTL_LANGUAGES

    tags = TAGS + sorted(RTL_LANGUAGES) + [f"{lang.upper()}-x" for lang in sorted(RTL_LANGUAGES)]
    shown = page(atom_feed("en", tags))
    got = [li.get("dir") for li in shown.iter("li")]
    assert got == [text_direction(tag.replace("_", "-")) for tag in tags]
    assert got[:3] == ["rtl", "rtl", "rtl"] and got[TAGS.index("en-US")] == "ltr"
    # A script subtag comes right after the language (and its extlangs): a region, variant or extension is none.
    expected = {"ar-EG-u-nu-latn": "rtl", "he-IL-u-ca-hebrew": "rtl", "ar-x-latn": "rtl", "en-US-x-arab": "ltr",
                "az-IR-u-nu-arab": "ltr", "ar-arb-Latn": "ltr", "zh-yue-Arab": "rtl", "ar-419": "rtl", "sr-Latn-RS": "ltr"}
    assert {tag: got[TAGS.index(tag)] for tag in expected} == expected


def test_an_entry_takes_the_feeds_language_and_none_gives_auto():
    shown = page(atom_feed("FA-ir", [None, "en"]))
    assert shown.get("dir") == "rtl"
    assert [(li.get("dir"), li.get("lang")) for li in shown.iter("li")] == [("rtl", "FA-ir"), ("ltr", "en")]
    unknown = page(atom_feed(None, [None, "he"]))
    assert unknown.get("dir") == "ltr"
    assert [li.get("dir") for li in unknown.iter("li")] == ["auto", "rtl"]  # no language anywhere: the text decides


def python_set(name: str) -> set[str]:
    """A frozenset({...}) of strings assigned at model.py's top level, read from its source."""
    tree = ast.parse((ROOT / "feedsvc" / "model.py").read_text(encoding="utf-8"))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return set(ast.literal_eval(node.value.args[0]))
    raise AssertionError(f"no {name} in feedsvc/model.py")


def stylesheet_set(name: str) -> set[str]:
    """A top-level xsl:variable's words: select="' ar fa … '"."""
    (select,) = stylesheet().xpath("/xsl:stylesheet/xsl:variable[@name=$n]/@select", namespaces=XSL_NS, n=name)
    assert select[:2] == "' " and select[-2:] == " '", select  # each word between spaces, for contains()
    return set(select.strip("'").split())


def test_the_stylesheets_right_to_left_lists_are_model_pys():
    assert stylesheet_set("rtl-languages") == python_set("RTL_LANGUAGES")
    assert stylesheet_set("rtl-scripts") == python_set("RTL_SCRIPTS")
    assert all(word == word.lower() for word in stylesheet_set("rtl-languages") | stylesheet_set("rtl-scripts"))


def test_the_stylesheet_is_xslt_1_0():
    root = stylesheet()
    assert root.get("version") == "1.0"
    uses = {el.tag.split("}")[1] for el in root.iter() if isinstance(el.tag, str) and el.tag.startswith("{" + XSL_NS["xsl"])}
    assert uses <= {"stylesheet", "output", "variable", "template", "apply-templates", "call-template", "with-param",
                    "param", "value-of", "if", "choose", "when", "otherwise", "attribute", "text"}, uses

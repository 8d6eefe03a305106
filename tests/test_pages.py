"""HTML pages, the OPML list and the feed stylesheet, through the real Flask app; lists put together item by item
held to list.html's rendering of the whole list."""
from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import timedelta
from importlib import resources
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from feedsvc.formats import pages
from feedsvc.model import Article, stable_id
from tests.conftest import FIXED_NOW, ROOT, write
from tests.test_fragments import SITE, articles

POLITICS = quote("سياسة")


@pytest.fixture
def hostile_client(make_app, articles_dir):
    write(articles_dir, "x.txt", 'News"><script>alert(1)</script>\nTitle <img src=x onerror=alert(2)>\nBody <b>bold</b> & more.\n')
    write(articles_dir, "en.md", "---\ntitle: An English story\ncategory: News\"><script>alert(1)</script>\nlang: en\ndate: 2026-11-01\n---\nHello.\n")
    return make_app(articles_dir).test_client()


def test_every_value_on_a_page_is_escaped(hostile_client):
    for path in ["/", "/articles/x", "/articles/en"]:
        html = hostile_client.get(path).get_data(as_text=True)
        assert "<script>" not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;" in html or path == "/articles/en"
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more." in hostile_client.get("/articles/x").get_data(as_text=True)


def test_home_page_lists_categories_with_counts_pages_and_feeds(client):
    html = client.get("/").get_data(as_text=True)
    assert f'href="http://127.0.0.1:8000/category/{POLITICS}/"' in html
    assert "سياسة</a> <span class=\"count\">(5)</span>" in html
    assert 'rel="alternate" type="application/feed+json"' in html
    assert 'rel="outline" type="text/x-opml"' in html


def test_category_page_advertises_its_own_three_feeds(client):
    html = client.get(f"/category/{POLITICS}/").get_data(as_text=True)
    for fmt in ("rss", "atom", "json"):
        assert f'href="http://127.0.0.1:8000/category/{POLITICS}/feed.{fmt}"' in html
    assert '<html lang="ar" dir="rtl">' in html


def test_an_arabic_pages_own_words_are_arabic_and_an_english_ones_english(client):
    # A right-to-left Arabic category page said "Subscribe:" in English (a review).
    assert '<p class="feeds">اشترك: <a' in client.get(f"/category/{POLITICS}/").get_data(as_text=True)
    assert '<p class="feeds">Subscribe: <a' in client.get("/category/technology/").get_data(as_text=True)


def test_an_arabic_article_page_says_when_it_was_updated_in_arabic(articles_dir, make_app):
    write(articles_dir, "ar.md", "---\ntitle: خبر\ncategory: أخبار\ndate: 2026-11-01T00:00:00Z\n---\nوصل الأمين العام لمجلس الأمن إلى طهران يوم الاثنين في زيارة رسمية.\n")
    app = make_app(articles_dir)
    (articles_dir / "ar.md").write_text("---\ntitle: خبر\ncategory: أخبار\ndate: 2026-11-01T00:00:00Z\n---\nوصل الأمين العام لمجلس الأمن إلى طهران يوم الثلاثاء في زيارة رسمية.\n", encoding="utf-8")
    app.extensions["feedsvc"].refresh()
    page = app.test_client().get("/articles/ar").get_data(as_text=True)
    assert " · حُدِّث <time" in page and " · updated <time" not in page, page


# HTML's valid global date and time string: at most three digits of a second, and an offset.
# https://html.spec.whatwg.org/multipage/common-microsyntaxes.html#valid-global-date-and-time-string
HTML_DATETIME = r"\d{4,}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d{1,3})?)?(?:Z|[+-]\d\d:\d\d)"


def test_every_time_a_page_shows_is_a_valid_html_datetime(make_app, articles_dir):
    """An article dated when first seen (no `date:`) has microseconds; six digits of a second are no valid <time>."""
    import re

    write(articles_dir, "undated.md", "---\ntitle: Undated\ncategory: News\n---\nBody.\n")
    write(articles_dir, "edited.md", "---\ntitle: Edited\ncategory: News\ndate: 2026-11-01T10:00:00.123456Z\n"
                                     "updated: 2026-11-02T10:00:00.654321+03:00\n---\nBody.\n")
    client = make_app(articles_dir).test_client()
    found = []
    for path in ("/", "/category/news/", "/articles/undated", "/articles/edited", "/feed.rss"):
        res = client.get(path, headers={"Sec-Fetch-Dest": "document", "Accept": "text/html"})
        assert res.status_code == 200, path
        found += [(path, value) for value in re.findall(r'<time[^>]* datetime="([^"]*)"', res.get_data(as_text=True))]
    assert {path for path, _ in found} >= {"/", "/category/news/", "/articles/undated", "/articles/edited"}
    assert [(path, v) for path, v in found if not re.fullmatch(HTML_DATETIME, v)] == []


def test_a_category_without_its_slash_redirects_to_the_page(client):
    res = client.get("/category/technology")
    assert res.status_code == 301 and res.headers["Location"].endswith("/category/technology/")


def test_pages_follow_each_articles_language_and_direction(client):
    english = client.get("/articles/tech/2026-10-22-open-data-portal").get_data(as_text=True)
    assert '<html lang="en" dir="ltr">' in english
    assert 'href="http://127.0.0.1:8000/category/technology/feed.atom"' in english
    home = client.get("/").get_data(as_text=True)
    assert '<li><span class="item" lang="en" dir="ltr">' in home and '<li><span class="item" lang="ar" dir="rtl">' in home


def test_opml_lists_every_feed_once_for_a_one_step_import(client):
    res = client.get("/feeds.opml")
    assert res.headers["Content-Type"] == "text/x-opml; charset=utf-8"
    outlines = ET.fromstring(res.data).findall("./body/outline")
    urls = [o.get("xmlUrl") for o in outlines]
    assert urls[0] == "http://127.0.0.1:8000/feed.rss"
    assert f"http://127.0.0.1:8000/category/{POLITICS}/feed.rss" in urls
    assert len(urls) == len(set(urls)) == 5


@pytest.mark.parametrize("path", ["/feed.rss", f"/category/{POLITICS}/feed.atom"])
def test_the_feed_stylesheet_shows_a_right_to_left_page_with_a_subscribe_note(client, path):
    feed = client.get(path).data
    assert b'<?xml-stylesheet type="text/xsl" href="' in feed
    xsl = etree.XSLT(etree.fromstring((resources.files("feedsvc") / "static" / "feed.xsl").read_bytes()))
    page = str(xsl(etree.fromstring(feed)))
    assert '<html lang="ar" dir="rtl">' in page
    assert "To subscribe, copy this address into your feed reader" in page
    assert "زيارة مسؤول أمني روسي لطهران" in page


def test_the_stylesheet_href_resolves_to_the_served_stylesheet(client):
    from urllib.parse import urljoin

    feed = client.get(f"/category/{POLITICS}/feed.rss").get_data(as_text=True)
    href = feed.split('href="', 1)[1].split('"', 1)[0]
    target = urljoin(f"http://127.0.0.1:8000/category/{POLITICS}/feed.rss", href)
    assert client.get(target.replace("http://127.0.0.1:8000", "")).status_code == 200


def test_a_small_favicon_is_served_and_every_page_links_it(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["Content-Type"] == "image/x-icon"
    assert icon.data[:4] == b"\x00\x00\x01\x00" and len(icon.data) < 2048  # an ICO: reserved 0, type 1
    # A static file like the others: the same way in, the same validators and time.
    assert icon.headers["Last-Modified"] == client.get("/style.css").headers["Last-Modified"]
    assert client.get("/favicon.ico", headers={"If-None-Match": icon.headers["ETag"]}).status_code == 304
    # Sent as it is to a client that takes gzip or brotli, as nginx sends the exported file: gzip made it 10 bytes larger.
    coded = client.get("/favicon.ico", headers={"Accept-Encoding": "br, gzip"})
    assert "Content-Encoding" not in coded.headers and coded.data == icon.data and coded.headers["ETag"] == icon.headers["ETag"]
    navigation = {"Sec-Fetch-Dest": "document"}
    for path in ["/", f"/category/{POLITICS}/", "/articles/000_4c2ff0435fbab79d", "/feed.atom"]:
        html = client.get(path, headers=navigation).get_data(as_text=True)
        assert '<link rel="icon" href="http://127.0.0.1:8000/favicon.ico" sizes="16x16 32x32">' in html, path


def test_list_items_carry_their_language_on_their_content_so_the_numbers_stay_on_the_lists_side(client):
    home = client.get("/").get_data(as_text=True)
    items = home.split('<ol class="articles">', 1)[1].split("</ol>", 1)[0]
    assert items.count("<li>") == 11 and "<li " not in items
    assert items.count('<span class="item" lang="ar" dir="rtl">') == 8 and items.count('<span class="item" lang="en" dir="ltr">') == 3


# --- Lists put together item by item (formats/pages.list_html) ----------------------------------------------------

def whole_list(items, site, summaries: bool) -> str:
    """templates/list.html rendered over the whole list at once: what list_html must give."""
    rows = [{**row, "summary": item.summary} for row, item in zip(pages._rows(items, site), items)]  # every field, always
    return pages._ENV.get_template("list.html").render(articles=rows, summaries=summaries)


# What a list item shows, each changed on its own: an item's HTML kept for one must never stand in for the other.
SHOWN = {"title": lambda a: a.title + "·", "lang": lambda a: "ar" if a.lang == "en" else "en",
         "published": lambda a: a.published - timedelta(minutes=1), "summary": lambda a: a.summary + "·",
         "id": lambda a: a.id + "-2"}


@st.composite
def pools(draw) -> list[Article]:
    """Random articles, then copies of the first that each differ from it in one thing a list item shows."""
    pool = draw(articles(4))
    return pool + [replace(pool[0], **{field: change(pool[0])}) for field, change in SHOWN.items()]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pool=pools(), picks=st.lists(st.lists(st.integers(0, 3 + len(SHOWN)), max_size=8), min_size=1, max_size=4),
       summaries=st.booleans(), kept=st.sampled_from([1, 3, pages.LIST_ITEMS_KEPT]))
def test_a_list_put_together_from_items_is_the_whole_list_rendered(pool, picks, summaries, kept):
    """Lists in turn (items shared, repeated, in any order, a cache smaller than a list) give list.html's own bytes."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pages, "LIST_ITEMS_KEPT", kept)
        pages._list_items.clear()
        for pick in picks:
            items = [pool[i] for i in pick]
            assert pages.list_html(items, SITE, summaries) == whole_list(items, SITE, summaries)
            assert len(pages._list_items) <= kept


def plain(count: int) -> list[Article]:
    """Articles in Arabic and English, an hour apart."""
    return [Article(id=f"p/{n}", source=f"p/{n}.txt", title=("خبر" if n % 2 else "Story") + f" {n} <&>", categories=("سياسة",),
                    body_html="<p>x</p>", body_text="x", summary=f"summary {n}", lang="ar" if n % 2 else "en",
                    content_hash=str(n), published=FIXED_NOW - timedelta(hours=n), updated=FIXED_NOW - timedelta(hours=n),
                    guid=stable_id(f"p/{n}")) for n in range(count)]


def test_an_item_is_rendered_once_while_it_shows_the_same(monkeypatch):
    pool = plain(3)
    pages._list_items.clear()
    rendered = []
    real = pages._render_list
    monkeypatch.setattr(pages, "_render_list", lambda rows, summaries: rendered.append(len(rows)) or real(rows, summaries))
    pages.list_html(pool, SITE)
    assert sorted(rendered) == [0, 1, 1, 1]  # the empty list (head and foot) and each item once
    rendered.clear()
    pages.list_html(pool[:2], SITE)
    assert rendered == [0]
    edited = replace(pool[0], title=pool[0].title + " (updated)")  # what an item shows changed: rendered again
    assert pages.list_html([edited, pool[1]], SITE) == whole_list([edited, pool[1]], SITE, False)
    assert rendered == [0, 0, 1]


def test_a_list_template_that_no_longer_cuts_is_rendered_whole(monkeypatch):
    """If list.html's items stopped sitting between an empty list's head and foot, the whole render is used."""
    pool = plain(2)
    pages._list_items.clear()
    real = pages._render_list
    monkeypatch.setattr(pages, "_render_list", lambda rows, summaries: real(rows, summaries) + ("<!-- %d -->" % len(rows)))
    assert pages.list_html(pool, SITE) == real(pages._rows(pool, SITE), False) + "<!-- 2 -->"
    assert not pages._list_items


_RENDER_ONE = """
import sys
sys.path.insert(0, {root!r})
from feedsvc.formats import pages
from tests.test_pages import plain
from tests.test_fragments import SITE
compiled = []
real = pages._ENV.compile
pages._ENV.compile = lambda *a, **k: compiled.append(1) or real(*a, **k)
pages.keep_compiled({state!r})
if {gone!r}:  # the folder deleted once the process has it (by hand, a tmp cleaner)
    import shutil; shutil.rmtree({state!r} + ".templates")
body = pages.render_article(plain(1)[0], (), SITE)[0]
sys.stdout.buffer.write(b"%d\\n" % len(compiled) + body)
"""


def _render_in_a_new_process(folder, gone: bool = False) -> tuple[int, bytes]:
    """An article page rendered by a fresh interpreter keeping its templates in `folder` (a state store's name with
    .templates): (templates compiled, page)."""
    done = subprocess.run([sys.executable, "-c", _RENDER_ONE.format(root=str(ROOT), state=str(folder).removesuffix(".templates"), gone=gone)],
                          capture_output=True, check=True, cwd=ROOT)
    count, _, body = done.stdout.partition(b"\n")
    return int(count), body


def test_the_templates_are_compiled_once_for_a_deployment_and_render_the_same(tmp_path):
    folder = tmp_path / "state.sqlite3.templates"
    compiled, first = _render_in_a_new_process(folder)
    assert compiled == 2 and len(list(folder.iterdir())) == 2  # article.html and the base.html it extends
    assert _render_in_a_new_process(folder) == (0, first)  # the next process compiles nothing: same bytes


def test_a_damaged_or_missing_template_cache_is_compiled_again_never_an_error(tmp_path):
    folder = tmp_path / "state.sqlite3.templates"
    _, page = _render_in_a_new_process(folder)
    for cached in folder.iterdir():
        cached.write_bytes(cached.read_bytes()[:40])  # cut short: its checksum or code unreadable
    assert _render_in_a_new_process(folder) == (2, page)
    assert _render_in_a_new_process(folder) == (0, page)  # written over whole
    assert _render_in_a_new_process(folder, gone=True) == (2, page)  # its compiled code could not be written
    folder.write_text("a file where the folder was")
    assert _render_in_a_new_process(folder) == (2, page)


def test_a_pages_own_words_are_in_its_language_or_marked_english_and_isolated(make_app, articles_dir):
    """On a Persian page the English "Tags:" showed as ":Tags" and was read with a Persian voice; an Arabic home page had
    English headings; a tag's name in the other direction was aligned against its page (`dir="auto"` on its heading)."""
    write(articles_dir, "fa.md", "---\ntitle: تورم در ایران\ncategory: اقتصاد\nlang: fa\ntags: [تورم, IMF]\n"
                                 "date: 2026-11-01T08:00:00Z\n---\nنرخ تورم در ماه گذشته افزایش یافت.\n")
    write(articles_dir, "ar.md", "---\ntitle: الاقتصاد اليوم\ncategory: اقتصاد\ntags: [IMF]\ndate: 2026-11-02T08:00:00Z\n---\n"
                                 "ارتفع معدل التضخم في الشهر الماضي.\n")
    client = make_app(articles_dir, SITE_LANGUAGE="en").test_client()
    persian = client.get("/articles/fa").get_data(as_text=True)
    assert '<p class="tags"><bdi lang="en" dir="ltr">Tags:</bdi> ' in persian
    home = client.get("/").get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in home and "<h2>الأقسام</h2>" in home and "<h2>آخر المقالات</h2>" in home
    assert '<h1><bdi lang="en" dir="ltr">' in home  # the site's own title is in SITE_LANGUAGE
    tag = client.get("/tag/imf/").get_data(as_text=True)
    assert "<h1><bdi>IMF</bdi></h1>" in tag and 'dir="auto"' not in tag.split("<h1>")[1].split("</h1>")[0]
    assert "<h2>أحدث المواد</h2>" in client.get("/feed.rss", headers={"Sec-Fetch-Dest": "document"}).get_data(as_text=True)


def test_an_article_pages_footer_names_the_category_of_each_feed(make_app, articles_dir):
    """An article in two categories listed "RSS Atom JSON Feed RSS Atom JSON Feed" with nothing to tell them apart."""
    write(articles_dir, "two.md", "---\ntitle: Two\ncategories: [Economy, Politics]\ndate: 2026-11-01T08:00:00Z\n---\nBody.\n")
    footer = make_app(articles_dir).test_client().get("/articles/two").get_data(as_text=True).split("<footer>")[1]
    assert footer.index("<bdi>Economy</bdi>: ") < footer.index('href="http://127.0.0.1:8000/category/economy/feed.rss"') \
        < footer.index("<bdi>Politics</bdi>: ") < footer.index('href="http://127.0.0.1:8000/category/politics/feed.rss"')


def test_a_pages_title_says_what_kind_of_page_it_is(client):
    """/category/technology/, /tag/technology/ and /search/?q=Technology were all titled "Technology — feedsvc": a tab, the
    history and a screen reader could not tell a section from a tag or a search (WCAG 2.4.2)."""
    import re

    def title(path: str) -> str:
        return re.search(r"<title>(.*?)</title>", client.get(path).get_data(as_text=True))[1]

    assert title("/category/technology/") == "Section: Technology — feedsvc"
    assert '<p class="meta">' not in client.get("/category/technology/").get_data(as_text=True)  # the kind shown on tags only
    tag = re.search(r'htmlUrl="[^"]*?(/tag/[^"]+/)"', client.get("/feeds-all.opml").get_data(as_text=True))[1]
    assert title(tag).startswith(("Tag: ", "وسم: "))
    assert title(f"/category/{quote('سياسة')}/") == "قسم: سياسة — feedsvc"
    assert title("/search/?q=Technology").startswith(("Search: Technology", "بحث: Technology"))


def test_an_english_word_in_a_right_to_left_pages_title_keeps_its_colon_after_it(make_app, articles_dir):
    """A Persian author's page was titled "Author: خبرنگار اقتصادی — feedsvc" on a right-to-left page: the colon showed
    before "Author" (found in review). A <title> holds no <bdi>: the English word and its colon are a left-to-right
    isolate. Arabic and English pages' titles are as they were."""
    import re

    persian = "نرخ تورم در ایران در ماه گذشته به بالاترین سطح خود در یک سال اخیر رسید و کارشناسان هشدار دادند. " * 3
    write(articles_dir, "fa.md", f"---\ntitle: گزارش تورم\ncategory: اقتصاد\nauthor: خبرنگار اقتصادی\ndate: 2026-11-01T08:00:00Z\n---\n{persian}\n")
    client = make_app(articles_dir).test_client()
    opml = client.get("/feeds-all.opml").get_data(as_text=True)
    page = re.search(r'htmlUrl="[^"]*?(/author/[^"]+/)"', opml)[1]
    html = client.get(page).get_data(as_text=True)
    assert 'lang="fa" dir="rtl"' in html
    assert re.search(r"<title>(.*?)</title>", html)[1] == "\u2066Author:\u2069 خبرنگار اقتصادی — feedsvc"


def test_each_category_on_the_home_page_is_in_its_own_language(client):
    """An English category on the Arabic home page had dir="auto" and no lang: a screen reader said "Technology" with its
    Arabic voice (WCAG 3.1.2)."""
    home = client.get("/").get_data(as_text=True)
    assert 'category/technology/" lang="en" dir="ltr">Technology</a>' in home
    assert f'category/{quote("سياسة")}/" lang="ar" dir="rtl">سياسة</a>' in home


def test_an_articles_lead_image_has_the_alt_its_front_matter_gives(make_app, articles_dir):
    """alt="" on every lead image: a news photo a screen reader skipped, and no way for the author to say what it shows."""
    write(articles_dir, "a.md", "---\ntitle: Cabinet\ncategory: News\ndate: 2026-01-01T00:00:00Z\nimage: /img/c.jpg\n"
                                "image_alt: The cabinet in session\n---\nBody.\n")
    write(articles_dir, "b.md", "---\ntitle: Other\ncategory: News\ndate: 2026-01-02T00:00:00Z\nimage: /img/d.jpg\n---\nBody.\n")
    client = make_app(articles_dir).test_client()
    assert 'alt="The cabinet in session"' in client.get("/articles/a").get_data(as_text=True)
    assert 'alt=""' in client.get("/articles/b").get_data(as_text=True)  # none given: decorative, as before

"""Sitemaps, the Google News sitemap and robots.txt: valid against the published XSDs (tests/xsd/, see its
SOURCES), complete, split past the protocol's limits, and dated from the build, never from the clock."""
from __future__ import annotations

import gc
import hashlib

from dataclasses import replace
from datetime import timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, strategies as st
from lxml import etree

from feedsvc.formats.sitemap import (
    MAX_BYTES, MAX_URLS, NEWS_MAX_URLS, URLS_PER_FILE, NS, NEWS_NS, news_language, news_window, render_sitemaps, url_entry, w3c_datetime,
)
from feedsvc.model import Article, Site, stable_id
from feedsvc.building.sitemaps import Sitemaps
from feedsvc.urls import listing_page
from tests.conftest import FIXED_NOW, ROOT, SAMPLE_ARTICLES, write
from tests.test_export import run_build

XSD = ROOT / "tests" / "xsd"
N = {"s": NS, "news": NEWS_NS}
SITE = "http://127.0.0.1:8000"


def schema(*parts: tuple[str, str]) -> etree.XMLSchema:
    """One schema importing each (namespace, file in tests/xsd): a News sitemap needs both of its schemas, since
    sitemap.xsd validates the <news:news> inside a <url> strictly (processContents="strict")."""
    imports = "".join(f'<xsd:import namespace="{ns}" schemaLocation="{(XSD / name).as_uri()}"/>' for ns, name in parts)
    return etree.XMLSchema(etree.XML(f'<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema">{imports}</xsd:schema>'))


SITEMAP = schema((NS, "sitemap.xsd"))
SITEINDEX = schema((NS, "siteindex.xsd"))
NEWS = schema((NS, "sitemap.xsd"), (NEWS_NS, "sitemap-news.xsd"))


def valid(xsd: etree.XMLSchema, body: bytes) -> etree._Element:
    root = etree.fromstring(body)
    assert xsd.validate(root), xsd.error_log
    return root


def locs(root: etree._Element) -> dict[str, str]:
    """loc → lastmod of every <url> (or <sitemap>) in a document."""
    return {node.findtext("s:loc", namespaces=N): node.findtext("s:lastmod", namespaces=N) for node in root.xpath("s:url|s:sitemap", namespaces=N)}


def story(folder: Path, name: str, title: str, category: str, when, extra: str = "") -> None:
    write(folder, name, f"---\ntitle: {title}\ncategory: {category}\ndate: {when.isoformat()}\n{extra}---\nBody of {title}, long enough.\n")


@pytest.fixture
def newsroom(articles_dir):
    """Articles of the last hours and days, Arabic and English, a draft and an embargoed one."""
    story(articles_dir, "fresh.md", "Port deal & <talks>", "Economy", FIXED_NOW - timedelta(hours=1))
    write(articles_dir, "arabic.md", f"---\ntitle: الحكومة تعلن موازنة العام\ncategory: سياسة\ndate: {(FIXED_NOW - timedelta(hours=47)).isoformat()}\n---\n"
                                     "أعلنت الحكومة اليوم عن موازنة العام المقبل في مؤتمر صحفي عقد في العاصمة.\n")
    story(articles_dir, "old.md", "Older story", "Economy", FIXED_NOW - timedelta(hours=49))
    story(articles_dir, "draft.md", "Secret draft", "Economy", FIXED_NOW - timedelta(hours=2), "draft: true\n")
    story(articles_dir, "soon.md", "Embargoed scoop", "Scoops", FIXED_NOW + timedelta(hours=3))
    return articles_dir


def test_the_sitemap_lists_every_section_and_article_page_with_their_dates_and_validates(make_publisher, sample_dir):
    snap = make_publisher(sample_dir).build(FIXED_NOW)
    root = valid(SITEMAP, snap.resources["sitemap.xml"].body)
    listed = locs(root)
    sections = {f"{SITE}/": w3c_datetime(snap.resources[""].last_modified)}
    sections.update({feed.page_url: w3c_datetime(snap.resources[listing_page(feed.key)].last_modified) for feed in snap.feeds[1:]})
    pages = {f"{SITE}/articles/{quote(a.id, safe='/')}": w3c_datetime(a.updated) for a in snap.articles.values()}
    assert listed == {**sections, **pages} and len(listed) == len(snap.feeds) + len(snap.articles)
    assert len(root) == len(listed)  # each page once


def test_drafts_and_embargoed_articles_appear_in_no_sitemap(make_publisher, newsroom):
    snap = make_publisher(newsroom).build(FIXED_NOW)
    for path in ("sitemap.xml", "sitemap-news.xml"):
        body = snap.resources[path].body
        assert b"draft" not in body and b"soon" not in body and b"Scoops" not in body, path
    assert f"{SITE}/articles/old" in locs(etree.fromstring(snap.resources["sitemap.xml"].body))


def test_the_news_sitemap_holds_the_last_two_days_with_publication_language_date_and_title(make_publisher, newsroom):
    pub = make_publisher(newsroom, SITE_TITLE="أخبار اليوم")
    root = valid(NEWS, pub.build(FIXED_NOW).resources["sitemap-news.xml"].body)
    found = {url.findtext("s:loc", namespaces=N): (url.findtext("news:news/news:publication/news:name", namespaces=N),
                                                   url.findtext("news:news/news:publication/news:language", namespaces=N),
                                                   url.findtext("news:news/news:publication_date", namespaces=N),
                                                   url.findtext("news:news/news:title", namespaces=N)) for url in root}
    assert found == {
        f"{SITE}/articles/fresh": ("أخبار اليوم", "en", w3c_datetime(FIXED_NOW - timedelta(hours=1)), "Port deal & <talks>"),
        f"{SITE}/articles/arabic": ("أخبار اليوم", "ar", w3c_datetime(FIXED_NOW - timedelta(hours=47)), "الحكومة تعلن موازنة العام"),
    }
    assert list(found) == [f"{SITE}/articles/fresh", f"{SITE}/articles/arabic"]  # newest first


def test_an_article_leaves_the_news_sitemap_at_the_refresh_due_when_its_two_days_are_over(make_publisher, newsroom):
    clock = [FIXED_NOW]
    pub = make_publisher(newsroom)
    pub.clock = lambda: clock[0]
    assert pub.refresh()
    before, full = pub.snapshot.resources["sitemap-news.xml"], pub.snapshot.resources["sitemap.xml"]
    leaves = FIXED_NOW - timedelta(hours=47) + timedelta(days=2)  # the Arabic story's two days are over
    assert pub.next_wakeup() == leaves  # the scheduler refreshes then, with no file changed
    clock[0] = leaves
    assert pub.refresh()
    after = pub.snapshot.resources["sitemap-news.xml"]
    assert b"/articles/arabic" in before.body and b"/articles/arabic" not in after.body and b"/articles/fresh" in after.body
    assert after.etag != before.etag and after.last_modified > before.last_modified
    assert pub.snapshot.resources["sitemap.xml"] is full  # every page is still there, unchanged


def test_the_same_build_gives_the_same_sitemap_bytes_after_a_restart(make_publisher, newsroom):
    first = make_publisher(newsroom).build(FIXED_NOW)
    again = make_publisher(newsroom).build(FIXED_NOW + timedelta(minutes=5))  # a restart on the same state, a refresh later
    for path in ("sitemap.xml", "sitemap-news.xml", "robots.txt"):
        assert again.resources[path].body == first.resources[path].body, path
        assert again.resources[path].last_modified == first.resources[path].last_modified, path


def test_past_a_small_limit_the_sitemap_becomes_an_index_of_children_that_each_validate(make_publisher, sample_dir):
    pub = make_publisher(sample_dir)
    whole = pub.build(FIXED_NOW)
    live = list(whole.listings[""].items)
    sections = [(f"{SITE}/", FIXED_NOW)] + [(feed.page_url, FIXED_NOW) for feed in whole.feeds[1:]]
    files = Sitemaps(pub.site, max_urls=4).render(sections, live, FIXED_NOW)
    index = valid(SITEINDEX, files["sitemap.xml"])
    children = locs(index)
    total = len(sections) + len(live)
    assert list(children) == [f"{SITE}/sitemap-{n}.xml" for n in range(1, -(-total // 4) + 1)]
    listed = {}
    for loc, lastmod in children.items():
        child = valid(SITEMAP, files[loc.rsplit("/", 1)[1]])
        pages = locs(child)
        assert 1 <= len(pages) <= 4 and lastmod == max(pages.values())
        listed.update(pages)
    unsplit = Sitemaps(pub.site).render(sections, live, FIXED_NOW)
    assert listed == locs(etree.fromstring(unsplit["sitemap.xml"])) and len(listed) == total
    assert "sitemap-1.xml" not in unsplit


def test_the_builder_puts_2000_urls_in_a_sitemap_and_a_changed_newest_article_remakes_only_the_last(make_publisher, sample_dir):
    """URLS_PER_FILE, as WordPress: at 4,500 pages three children of at most 2,000, oldest first, so a save to the
    newest article remakes its child and the index, never the older children."""
    pub = make_publisher(sample_dir)
    base = list(pub.build(FIXED_NOW).listings[""].items)[0]
    live = [replace(base, id=f"story-{n:05d}", source=f"story-{n:05d}.txt", guid=stable_id(f"story-{n:05d}"),
                    published=FIXED_NOW - timedelta(minutes=n), updated=FIXED_NOW - timedelta(minutes=n)) for n in range(4_500)]
    maker = Sitemaps(pub.site)
    files = maker.render([(f"{SITE}/", FIXED_NOW)], live, FIXED_NOW)
    assert URLS_PER_FILE == 2_000 and {"sitemap-1.xml", "sitemap-2.xml", "sitemap-3.xml"} <= set(files) and "sitemap-4.xml" not in files
    counts = [len(valid(SITEMAP, files[f"sitemap-{n}.xml"])) for n in (1, 2, 3)]
    assert counts == [2_000, 2_000, 501]
    valid(SITEINDEX, files["sitemap.xml"])
    saved = [replace(live[0], updated=FIXED_NOW + timedelta(minutes=1)), *live[1:]]
    again = maker.render([(f"{SITE}/", FIXED_NOW)], saved, FIXED_NOW + timedelta(minutes=1))
    assert sorted(path for path in files if files[path] != again.get(path)) == ["sitemap-3.xml", "sitemap.xml"]


def test_a_byte_limit_splits_too_and_a_new_article_changes_only_the_last_child(make_publisher, sample_dir):
    pub = make_publisher(sample_dir)
    snap = pub.build(FIXED_NOW)
    live = list(snap.listings[""].items)
    limit = 700  # two or three of the sample's pages a file
    maker = Sitemaps(pub.site, max_bytes=limit)
    files = maker.render([], live, FIXED_NOW)
    children = {path: body for path, body in files.items() if path.startswith("sitemap-") and path != "sitemap-news.xml"}
    assert len(children) >= 3 and all(len(body) <= limit for body in children.values())
    assert sum(body.count(b"<url>") for body in children.values()) == len(live)
    newer = replace(live[0], id="zz-newest", source="zz.txt", guid=stable_id("zz-newest"), published=FIXED_NOW, updated=FIXED_NOW)
    grown = maker.render([], [newer, *live], FIXED_NOW + timedelta(minutes=1))
    changed = sorted(path for path in files.keys() | grown.keys() if files.get(path) != grown.get(path))
    last = max((p for p in grown if p.startswith("sitemap-") and p[8:-4].isdigit()), key=lambda p: int(p[8:-4]))
    assert last in changed and set(changed) <= {"sitemap.xml", "sitemap-news.xml", last}  # oldest first: the rest stay


def test_with_the_real_limits_50000_urls_fit_one_sitemap_and_one_more_makes_an_index():
    entries = [url_entry(f"{SITE}/articles/story-{n}", FIXED_NOW + timedelta(seconds=n)) for n in range(MAX_URLS + 1)]
    single = render_sitemaps(entries[:MAX_URLS], SITE)
    assert list(single) == ["sitemap.xml"] and single["sitemap.xml"].count(b"<url>") == MAX_URLS == 50_000
    split = render_sitemaps(entries, SITE)
    assert sorted(split) == ["sitemap-1.xml", "sitemap-2.xml", "sitemap.xml"]
    index = valid(SITEINDEX, split["sitemap.xml"])
    assert locs(index) == {f"{SITE}/sitemap-1.xml": w3c_datetime(FIXED_NOW + timedelta(seconds=MAX_URLS - 1)),
                           f"{SITE}/sitemap-2.xml": w3c_datetime(FIXED_NOW + timedelta(seconds=MAX_URLS))}
    first = valid(SITEMAP, split["sitemap-1.xml"])
    assert len(first) == 50_000 and len(valid(SITEMAP, split["sitemap-2.xml"])) == 1


def test_with_the_real_byte_limit_long_urls_split_before_50_mb():
    # sitemaps.org: at most 50 MB (52,428,800 bytes) uncompressed; URLs of 2,000 characters pass it at 25,000 pages.
    entries = [url_entry(f"{SITE}/articles/{n:06d}-" + "x" * 1960, FIXED_NOW) for n in range(30_000)]
    files = render_sitemaps(entries, SITE)
    assert MAX_BYTES == 52_428_800 and sorted(files) == ["sitemap-1.xml", "sitemap-2.xml", "sitemap.xml"]
    assert all(len(body) <= MAX_BYTES for body in files.values()) and len(files["sitemap-1.xml"]) > MAX_BYTES - 3000
    assert files["sitemap-1.xml"].count(b"<url>") + files["sitemap-2.xml"].count(b"<url>") == 30_000
    valid(SITEINDEX, files["sitemap.xml"])


def test_the_news_sitemap_holds_at_most_1000_articles_the_newest():
    base = Article(id="x", source="x.txt", title="t", categories=("News",), body_html="", body_text="", summary="", lang="en",
                   content_hash="1")
    live = [replace(base, id=f"n{i}", published=FIXED_NOW - timedelta(minutes=i)) for i in range(NEWS_MAX_URLS + 5)]
    chosen, leaves = news_window(live, FIXED_NOW)
    assert [a.id for a in chosen] == [f"n{i}" for i in range(1000)] and NEWS_MAX_URLS == 1000
    assert leaves == live[999].published + timedelta(days=2)
    assert news_window(live, FIXED_NOW + timedelta(days=3)) == ([], None)


@pytest.mark.parametrize("lang, google", [
    ("ar", "ar"), ("en", "en"), ("en-GB", "en"), ("EN_us", "en"), ("fil", "fil"), ("zh", "zh-cn"), ("zh-Hans-CN", "zh-cn"),
    ("zh-TW", "zh-tw"), ("zh-Hant", "zh-tw"), ("zh-HK", "zh-tw"), ("x-klingon", "und"), ("", "und"),
])
def test_an_articles_language_is_given_as_google_news_wants_it(lang, google):
    assert news_language(lang) == google


def test_robots_txt_names_both_sitemaps_by_absolute_url(make_publisher, sample_dir):
    robots = make_publisher(sample_dir, SITE_URL="https://news.example/ar").build(FIXED_NOW).resources["robots.txt"]
    lines = robots.body.decode().splitlines()
    assert robots.media_type == "text/plain"
    assert "Sitemap: https://news.example/ar/sitemap.xml" in lines and "Sitemap: https://news.example/ar/sitemap-news.xml" in lines
    assert "User-agent: *" in lines and "Disallow: /ar/partners/" in lines
    assert "Disallow: /ar/search/" in lines  # a URL per query: no end for a crawler


@pytest.mark.parametrize("path, media", [("/sitemap.xml", "application/xml"), ("/sitemap-news.xml", "application/xml"),
                                         ("/robots.txt", "text/plain")])
def test_the_app_serves_them_with_their_media_type_and_validators(client, path, media):
    res = client.get(path)
    assert res.status_code == 200 and res.headers["Content-Type"] == f"{media}; charset=utf-8"
    assert client.get(path, headers={"If-None-Match": res.headers["ETag"]}).status_code == 304
    if path.endswith(".xml"):
        valid(NEWS if "news" in path else SITEMAP, res.data)


def test_the_static_export_writes_them_as_the_app_serves_them(tmp_path):
    out = tmp_path / "export"
    run_build(SAMPLE_ARTICLES, out, tmp_path / "state.sqlite3")
    valid(SITEMAP, (out / "sitemap.xml").read_bytes())
    valid(NEWS, (out / "sitemap-news.xml").read_bytes())
    assert b"Sitemap: http://127.0.0.1:8000/sitemap.xml\n" in (out / "robots.txt").read_bytes()
    assert (out / "sitemap.xml.gz").exists() and (out / "robots.txt.br").exists()


def test_a_sitemap_made_in_part_is_the_bytes_of_one_made_whole_after_additions_edits_removals_and_growing_past_a_file(make_publisher, sample_dir):
    pub = make_publisher(sample_dir)
    live = list(pub.build(FIXED_NOW).listings[""].items)
    sections = [(pub.site.url + "/", FIXED_NOW)]

    made: dict[int, Article] = {}

    def newer(n: int) -> Article:  # the same object each time, as a refresh keeps the articles that did not change
        moment = FIXED_NOW + timedelta(minutes=n)
        return made.setdefault(n, replace(live[0], id=f"zz-{n}", source=f"zz-{n}.txt", guid=stable_id(f"zz-{n}"),
                                          published=moment, updated=moment))

    steps = [live, [newer(1), *live], [newer(1), *live], [newer(3), newer(2), newer(1), *live],  # new ones, nothing
             [newer(3), newer(2), replace(newer(1), updated=FIXED_NOW + timedelta(hours=1)), *live],  # an edit
             [newer(3), *live[1:]]]  # removals
    steps += [[newer(n) for n in range(k, 3, -1)] + steps[-1] for k in (5, 8, 12, 20)]  # growing past one file
    limit = len(Sitemaps(pub.site).render(sections, steps[-3], FIXED_NOW)["sitemap.xml"]) + 200  # one file up to there
    maker, parts, hashed = Sitemaps(pub.site, max_bytes=limit), [], 0
    for n, articles in enumerate(steps):
        when = sections if n % 2 else [(pub.site.url + "/", FIXED_NOW + timedelta(seconds=n))]
        files = maker.render(when, articles, FIXED_NOW)
        assert files == Sitemaps(pub.site, max_bytes=limit).render(when, articles, FIXED_NOW), n
        parts.append(len(files))
        # The digest a file made in part was hashed by as it grew (the renderer dates and tags it by that) is its own.
        known = {path: digest for path, body in files.items() if (digest := maker.digest(path, body)) is not None}
        assert known == {path: hashlib.sha256(files[path]).hexdigest() for path in known}, n
        hashed += len(known)
    assert parts[0] == parts[-3] == 3 and parts[-1] > 3  # sitemap.xml, the News sitemap, robots.txt; then children
    assert hashed == len(steps)  # every step: its last file hashed as it was made (in part or remade), not again


def test_past_one_file_a_new_article_makes_only_the_last_child_and_the_index_again(make_publisher, sample_dir):
    pub = make_publisher(sample_dir)
    live = list(pub.build(FIXED_NOW).listings[""].items)
    maker, remade = Sitemaps(pub.site, max_urls=5), []
    remake = maker._remake
    maker._remake = lambda *args: (remade.append(len(args[1])), remake(*args))[1]
    articles, before, made = live, None, 0
    for n in range(1, 9):
        sections = [(f"{SITE}/", FIXED_NOW + timedelta(minutes=n)), (f"{SITE}/category/news/", FIXED_NOW)]
        files = maker.render(sections, articles, FIXED_NOW)
        assert files == Sitemaps(pub.site, max_urls=5).render(sections, articles, FIXED_NOW), n  # the bytes of a whole one
        children = sorted((p for p in files if p[8:-4].isdigit()), key=lambda p: int(p[8:-4]))
        assert len(children) >= 2 and all(len(locs(valid(SITEMAP, files[p]))) <= 5 for p in children)
        assert files["sitemap.xml"].count(b"<sitemap>") == len(children)
        assert b"/category/news/" in files[children[-1]]  # the sections come last, with the newest articles
        if before is not None and len(remade) == made:  # not made whole: the children before the last are the very
            assert all(files[p] is before[p] for p in children[:-1])  # bytes of the last refresh
        before, made = files, len(remade)
        newer = replace(live[0], id=f"zz-{n}", source=f"zz-{n}.txt", guid=stable_id(f"zz-{n}"),
                        published=FIXED_NOW + timedelta(minutes=n), updated=FIXED_NOW + timedelta(minutes=n))
        articles = [newer, *articles]
    # Made whole at first, and when the last child was full or began where a new article could move it (a section
    # after a file closed by its size, or within the sections); the other five times only the last child and the
    # index, also after a last child that began with the first section after a full file (as at 100,000 articles).
    assert remade == [len(live), len(live) + 3, len(live) + 4], remade


@given(st.text(alphabet=st.sampled_from("a&<>\"';é\u0633 \n#x]>"), min_size=1, max_size=30)
       | st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn", "Co")), min_size=1, max_size=30))
def test_a_news_entry_title_and_name_read_back_as_written(text):
    """The News sitemap's text (escaped by hand, not with xml.sax.saxutils: formats/sitemap.py) parses back to itself."""
    from feedsvc.formats.sitemap import news_entry

    article = Article(id="x", source="x.txt", title=text, categories=("News",), body_html="", body_text="", summary="", content_hash="b:0",
                      lang="ar", published=FIXED_NOW, updated=FIXED_NOW)
    doc = b'<urlset xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">' + news_entry("http://example.test/a?b=1&c", article, text) + b"</urlset>"
    url = etree.fromstring(doc)[0]
    assert url.findtext("news:news/news:title", namespaces=N) == text
    assert url.findtext("news:news/news:publication/news:name", namespaces=N) == text
    assert url.findtext("loc") == "http://example.test/a?b=1&c"


@given(st.text(alphabet=st.sampled_from("aZ09_.~:/?#[]@!$&'()*+,;=%- \"<>é\u0633\x7f"), max_size=12),
       st.datetimes(timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-5))])))
def test_an_entry_quotes_and_dates_as_the_protocol_says_on_every_path(path, moment):
    """url_entry's shortcuts (a URL with nothing to quote or escape, a UTC time) give what the general rule gives."""
    from xml.sax.saxutils import escape

    from feedsvc.formats.sitemap import _URI_SAFE, url_entry

    body = url_entry("http://example.test/" + path, moment).body.decode()
    loc = escape(quote("http://example.test/" + path, safe=_URI_SAFE))
    lastmod = moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    assert body == f"  <url>\n    <loc>{loc}</loc>\n    <lastmod>{lastmod}</lastmod>\n  </url>\n"


def pooled(n: int, minutes: int, edited: bool = False) -> Article:
    """Article n of a pool, dated minutes after FIXED_NOW (edited: an hour later): the same ID, a new object each time."""
    moment = FIXED_NOW + timedelta(minutes=minutes)
    return Article(id=f"p-{n}", source=f"p-{n}.txt", title=f"Story {n}", categories=("News",), body_html="<p>B</p>",
                   body_text="B", summary="B", lang="en", content_hash=str(n), published=moment,
                   updated=moment + timedelta(hours=1) if edited else moment)


@given(st.lists(st.lists(st.tuples(st.integers(0, 40), st.booleans()), max_size=25, unique_by=lambda t: t[0]),
                min_size=1, max_size=6),
       st.sampled_from([{}, {"max_urls": 3}, {"max_urls": 7}, {"max_bytes": 900}]))
def test_a_sitemap_remade_from_the_entries_its_files_hold_is_the_bytes_of_one_made_whole(steps, limits):
    """Any sequence of article sets (articles added, removed, edited, kept as new objects), one file or children:
    each remake takes the kept entries out of the files that hold them, and its files are those of sitemaps made
    whole."""
    maker = Sitemaps(Site("News", SITE, "d", "a", "en", 60), **limits)
    for n, rows in enumerate(steps):
        live = sorted((pooled(i, i, edited) for i, edited in rows), key=lambda a: (a.published, a.id), reverse=True)
        sections = [(f"{SITE}/", FIXED_NOW + timedelta(minutes=n % 2))]
        maker._tail = None  # made whole each time (_remake), not added to (_added)
        whole = Sitemaps(Site("News", SITE, "d", "a", "en", 60), **limits).render(sections, live, FIXED_NOW)
        assert maker.render(sections, live, FIXED_NOW) == whole, n


def test_the_sitemaps_keep_no_bytes_of_their_own_for_each_entry(make_publisher, sample_dir):
    """The entries are kept in the files that list them: beside those, the last file's entries joined (its tail) and
    the News sitemap and robots.txt, no bytes an entry (a map of them held every entry twice: 28 MiB at 100,000)."""
    site = Site("News", SITE, "d", "a", "en", 60)
    maker = Sitemaps(site, max_urls=10)
    live = sorted((pooled(i, i) for i in range(60)), key=lambda a: (a.published, a.id), reverse=True)
    files = maker.render([(f"{SITE}/", FIXED_NOW)], live, FIXED_NOW)
    maker._tail = None
    edited = [pooled(59, 59, edited=True), *(pooled(i, i) for i in range(58, -1, -1))]  # an edit and new objects: remade
    files = maker.render([(f"{SITE}/", FIXED_NOW)], edited, FIXED_NOW)
    assert files == Sitemaps(site, max_urls=10).render([(f"{SITE}/", FIXED_NOW)], edited, FIXED_NOW)
    held, todo, seen = [], [v for k, v in vars(maker).items() if k != "_live"], set()
    while todo:
        thing = todo.pop()
        if id(thing) in seen:
            continue
        seen.add(id(thing))
        if isinstance(thing, bytes):
            held.append(thing)
        elif not isinstance(thing, (str, type, Site)):
            todo.extend(gc.get_referents(thing))  # into containers and the objects in them (an entry's dataclass)
    assert len(files) == 10  # the index, seven children (61 URLs), the News sitemap and robots.txt
    assert len(held) <= len(files) + 2  # the files; the last file's entries joined (tail); nothing an entry

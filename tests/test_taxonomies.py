"""Tag and author feeds: /tag/<slug>/ and /author/<slug>/ with their three feeds, paged and with ?since= like a
category's, linked from article pages, listed in /feeds-all.opml, with slugs that stay with their name for good."""
from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import quote

import feedparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc.building.feeds import ListingBuilder, build_listings
from feedsvc.model import Article, Site
from feedsvc.building.state import StateStore
from tests.conftest import FIXED_NOW, write
from tests.feed_rules import feed_problems
from tests.http_helpers import MEDIA_TYPES, Server, check_feed_http, fetch

RATES_AR = "أسعار الفائدة"
REPORTER_AR = "مراسل الاقتصاد"
FORMATS = ("rss", "atom", "json")


def story(folder, name: str, title: str, *, tags=(), author=None, category="Economy", day=1, extra="") -> None:
    """A dated Markdown article with these tags and author."""
    meta = f"title: {title}\ncategory: {category}\ndate: 2026-11-{day:02}T09:00:00Z\n"
    if tags:
        meta += "tags: [" + ", ".join(json.dumps(t, ensure_ascii=False) for t in tags) + "]\n"
    if author:
        meta += f"author: {json.dumps(author, ensure_ascii=False)}\n"
    write(folder, name, f"---\n{meta}{extra}---\nThe body of {title}, long enough to be read as a paragraph.\n")


@pytest.fixture
def tagged(articles_dir):
    story(articles_dir, "a.md", "Central bank keeps rates unchanged", tags=("rates", "banks"), author="Newsroom", day=1)
    story(articles_dir, "b.md", "البنك المركزي يبقي أسعار الفائدة", tags=(RATES_AR, "rates"), author=REPORTER_AR,
          category="اقتصاد", day=2)
    story(articles_dir, "c.md", "Football results", tags=("sport",), author="Newsroom", category="Sport", day=3)
    return articles_dir


def paths(kind: str, name: str) -> tuple[str, list[str]]:
    """A tag's or author's page and its feeds, as URL paths (names slugged as the site slugs them)."""
    slug = quote(re.sub(r"\s+", "-", name.lower()), safe="")
    return f"/{kind}/{slug}/", [f"/{kind}/{slug}/feed.{fmt}" for fmt in FORMATS]


@pytest.mark.parametrize("kind, name, titles", [
    ("tag", "rates", ["البنك المركزي يبقي أسعار الفائدة", "Central bank keeps rates unchanged"]),
    ("tag", RATES_AR, ["البنك المركزي يبقي أسعار الفائدة"]),
    ("author", "Newsroom", ["Football results", "Central bank keeps rates unchanged"]),
    ("author", REPORTER_AR, ["البنك المركزي يبقي أسعار الفائدة"]),
])
def test_each_tag_and_author_has_three_feeds_that_readers_read_back(make_app, tagged, kind, name, titles):
    client = make_app(tagged).test_client()
    _, feeds = paths(kind, name)
    for path in feeds:
        res = client.get(path)
        assert res.status_code == 200, path
        assert res.headers["Content-Type"] == MEDIA_TYPES[path.rsplit(".", 1)[1]]
        assert res.headers["Access-Control-Allow-Origin"] == "*" and res.headers["ETag"]
        assert feed_problems(path, res.data, "http://127.0.0.1:8000" + path) == [], path
        if path.endswith(".json"):
            doc = json.loads(res.data)
            assert [i["title"] for i in doc["items"]] == titles
            assert doc["feed_url"] == "http://127.0.0.1:8000" + path
            assert name in doc["title"]
        else:
            parsed = feedparser.parse(res.data)
            assert not parsed.bozo and [e.title for e in parsed.entries] == titles
            assert name in parsed.feed.title
            assert parsed.feed.link == "http://127.0.0.1:8000" + paths(kind, name)[0]


def test_a_tag_named_in_arabic_is_titled_in_arabic_and_an_english_one_in_english(make_app, tagged):
    client = make_app(tagged).test_client()
    titles = {json.loads(client.get(path).data)["title"] for path in
              (paths("tag", RATES_AR)[1][2], paths("tag", "rates")[1][2], paths("author", REPORTER_AR)[1][2], paths("author", "Newsroom")[1][2])}
    # The Arabic word and name form one right-to-left run, never an English word joined to Arabic by a colon.
    assert titles == {f"feedsvc — وسم: {RATES_AR}", "feedsvc — Tag: rates", f"feedsvc — الكاتب: {REPORTER_AR}", "feedsvc — Author: Newsroom"}
    arabic = client.get(paths("tag", RATES_AR)[1][1]).get_data(as_text=True)
    assert 'xml:lang="ar"' in arabic


@pytest.mark.parametrize("kind, name, title", [
    ("tag", "עברית", "תגית: עברית"), ("author", "כתב ישראלי", "מחבר: כתב ישראלי"), ("tag", "\u200fשלום", "תגית: \u200fשלום"),
    ("tag", "Rates", "Tag: Rates"), ("author", "سارة", "الكاتب: سارة"),
])
def test_a_hebrew_tag_or_author_is_titled_in_hebrew(kind, name, title):
    """`Tag: עברית` in a Hebrew feed: an English word and its colon before a right-to-left name read with the colon on the
    wrong side in a right-to-left reader (the Arabic names had their own words, Hebrew ones did not)."""
    from feedsvc.building.feeds import label

    assert f"{label(kind, name)}: {name}" == title


@pytest.mark.parametrize("language, titles", [
    ("fa", ("برچسب: اقتصاد ایران", "نویسنده: خبرنگار اقتصادی")), ("fa-IR", ("برچسب: اقتصاد ایران", "نویسنده: خبرنگار اقتصادی")),
    ("ur", ("ٹیگ: اقتصاد ایران", "مصنف: خبرنگار اقتصادی")), ("ar", ("وسم: اقتصاد ایران", "الكاتب: خبرنگار اقتصادی")),
])
def test_a_persian_or_urdu_site_titles_its_tags_and_authors_in_its_own_language(make_app, tmp_path, language, titles):
    """A Persian site's tag feed was titled `وسم: …`, Arabic's word, as the name's script is Arabic's; a name in Arabic
    script now takes the site's own words when the site is written in that script (fa, ur), and Arabic's otherwise.
    Names in other scripts are as before, whatever the site's language."""
    from feedsvc.building.feeds import label

    assert (f"{label('tag', 'اقتصاد ایران', language)}: اقتصاد ایران",
            f"{label('author', 'خبرنگار اقتصادی', language)}: خبرنگار اقتصادی") == titles
    assert (label("tag", "Rates", language), label("author", "כתב", language)) == ("Tag", "מחבר")
    folder = tmp_path / "articles"
    write(folder, "a.md", "---\ntitle: گزارش بازار\ncategory: اقتصاد\ntags: [اقتصاد ایران]\nauthor: خبرنگار اقتصادی\n"
                          "date: 2026-01-02T10:00:00Z\n---\nمتن گزارش بازار امروز، که به اندازه کافی بلند است.\n")
    client = make_app(folder, SITE_LANGUAGE=language).test_client()
    got = set()
    for kind, name in (("tag", "اقتصاد ایران"), ("author", "خبرنگار اقتصادی")):
        parsed = feedparser.parse(client.get(paths(kind, name)[1][1]).data)
        assert not parsed.bozo
        got.add(parsed.feed.title)
    assert got == {f"feedsvc — {title}" for title in titles}


def test_tag_and_author_pages_list_their_articles_and_name_their_feeds_for_autodiscovery(make_app, tagged):
    client = make_app(tagged).test_client()
    for kind, name in (("tag", "rates"), ("author", REPORTER_AR), ("tag", RATES_AR)):
        page, feeds = paths(kind, name)
        res = client.get(page)
        html = res.get_data(as_text=True)
        assert res.status_code == 200 and res.headers["Content-Type"] == MEDIA_TYPES["html"]
        assert "Content-Security-Policy" in res.headers
        for path, media in zip(feeds, ("application/rss+xml", "application/atom+xml", "application/feed+json")):
            assert f'<link rel="alternate" type="{media}"' in html and f'href="http://127.0.0.1:8000{path}"' in html
        assert f"<h1><bdi>{name}</bdi></h1>" in html
    assert client.get(paths("tag", "rates")[0].rstrip("/")).status_code == 301  # /tag/rates → /tag/rates/
    arabic = client.get(paths("author", REPORTER_AR)[0]).get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in arabic and "الكاتب" in arabic


def test_an_article_page_links_its_tags_and_its_author(make_app, tagged):
    client = make_app(tagged).test_client()
    html = client.get("/articles/b").get_data(as_text=True)
    assert f'<a rel="tag" href="http://127.0.0.1:8000{paths("tag", RATES_AR)[0]}"><bdi>{RATES_AR}</bdi></a>' in html
    assert f'<a rel="tag" href="http://127.0.0.1:8000/tag/rates/"><bdi>rates</bdi></a>' in html
    # Each name isolated, as the tags are: a line of names of the other direction joined by " · " showed them reversed.
    assert f'<a class="author" rel="author" href="http://127.0.0.1:8000{paths("author", REPORTER_AR)[0]}"><bdi>{REPORTER_AR}</bdi></a>' in html
    meta = html.split('<p class="meta">')[1].split("</p>")[0]
    assert meta.count("<bdi>") == 1 + meta.count('<a href=')  # the author and every category
    assert "الوسوم:" in html  # the label in the article's language
    english = client.get("/articles/a").get_data(as_text=True)
    assert "Tags: " in english and 'href="http://127.0.0.1:8000/author/newsroom/"' in english
    # Autodiscovery stays with the article's categories: tags and authors are linked, not announced.
    assert "/tag/rates/feed" not in english


def test_an_article_page_rendered_before_the_builder_commits_it_is_the_builders(make_app, tagged):
    app = make_app(tagged)
    committed = app.test_client().get("/articles/b").data
    made = app.extensions["feedsvc.variants"]._make_article_page("b")  # what a worker renders during a cold start
    assert made.body == committed


def test_tag_feeds_page_and_take_since_like_a_category(make_app, articles_dir):
    for day in range(1, 8):
        story(articles_dir, f"s{day}.md", f"Story {day}", tags=("rates",), day=day)
    story(articles_dir, "other.md", "Untagged", day=9)
    client = make_app(articles_dir, FEED_MAX_ITEMS=3).test_client()
    seen, path = [], "/tag/rates/feed.atom"
    while path:
        parsed = feedparser.parse(client.get(path).data)
        seen += [e.title for e in parsed.entries]
        following = [link.href for link in parsed.feed.links if link.rel == "next"]
        path = following[0].replace("http://127.0.0.1:8000", "") if following else None
    assert seen == [f"Story {day}" for day in range(7, 0, -1)]
    assert client.get("/tag/rates/feed.rss?page=1").status_code == 301
    assert client.get("/tag/rates/feed.rss?page=9").status_code == 404
    assert client.get("/tag/rates/feed.rss?page=x").status_code == 400
    delta = json.loads(client.get("/tag/rates/feed.json?since=2026-11-05T00:00:00Z").data)
    assert [i["title"] for i in delta["items"]] == ["Story 7", "Story 6", "Story 5"]
    assert client.get("/author/nobody/feed.rss?page=2").status_code == 404


def test_the_opml_keeps_listing_sections_and_feeds_all_lists_every_tag_and_author(make_app, tagged):
    client = make_app(tagged).test_client()
    sections = client.get("/feeds.opml").get_data(as_text=True)
    assert "/tag/" not in sections and "/author/" not in sections and "/category/sport/feed.rss" in sections
    res = client.get("/feeds-all.opml")
    assert res.status_code == 200 and res.headers["Content-Type"] == MEDIA_TYPES["opml"]
    urls = re.findall(r'xmlUrl="([^"]+)"', res.get_data(as_text=True))
    expected = ["/feed.rss", "/category/economy/feed.rss", "/category/sport/feed.rss", f"/category/{quote('اقتصاد')}/feed.rss",
                "/tag/banks/feed.rss", "/tag/rates/feed.rss", "/tag/sport/feed.rss", paths("tag", RATES_AR)[1][0],
                "/author/newsroom/feed.rss", paths("author", REPORTER_AR)[1][0]]
    assert sorted(urls) == sorted("http://127.0.0.1:8000" + path for path in expected)
    assert urls.index("http://127.0.0.1:8000/tag/banks/feed.rss") < urls.index("http://127.0.0.1:8000/author/newsroom/feed.rss")
    assert client.get("/feeds-all.opml", headers={"If-None-Match": res.headers["ETag"]}).status_code == 304


def test_a_tags_atom_id_is_not_a_categorys_of_the_same_name(make_app, articles_dir):
    story(articles_dir, "a.md", "Sport story", tags=("Sport",), category="Sport")
    client = make_app(articles_dir).test_client()
    ids = {feedparser.parse(client.get(path).data).feed.id for path in ("/category/sport/feed.atom", "/tag/sport/feed.atom")}
    assert len(ids) == 2


def test_a_tags_slug_stays_with_its_name_across_a_rename_and_a_restart(make_app, articles_dir, tmp_path):
    story(articles_dir, "a.md", "First", tags=("Rates",), day=1)
    app = make_app(articles_dir)
    client = app.test_client()
    assert client.get("/tag/rates/feed.json").status_code == 200
    story(articles_dir, "a.md", "First", tags=("rates",), day=1)  # renamed: a look-alike of the published name
    app.extensions["feedsvc"].refresh()
    assert client.get("/tag/rates/feed.json").status_code == 404  # the slug is still "Rates"'s, unpublished now
    renamed = [p for p in app.extensions["feedsvc"].snapshot.resources if p.startswith("tag/rates-") and p.endswith("/")]
    assert renamed == ["tag/rates-ff24aad2/"]  # the slug cut short plus a hash of the name (README's example)
    restarted = make_app(articles_dir).test_client()  # the same state store: the same slugs
    assert restarted.get(f"/{renamed[0]}feed.json").status_code == 200
    story(articles_dir, "b.md", "Second", tags=("Rates",), day=2)  # the first name is back: its slug is its own
    second = make_app(articles_dir).test_client()
    assert [i["title"] for i in json.loads(second.get("/tag/rates/feed.json").data)["items"]] == ["Second"]
    assert json.loads(second.get(f"/{renamed[0]}feed.json").data)["items"][0]["title"] == "First"
    recorded = StateStore(tmp_path / "state.sqlite3").claim_term_slugs("tag", set(), lambda new, had: dict(had))
    assert recorded["Rates"] == "rates"


def test_tags_authors_and_categories_have_slugs_of_their_own(make_app, articles_dir):
    story(articles_dir, "a.md", "One", tags=("Economy",), author="Economy", category="Economy")
    client = make_app(articles_dir).test_client()
    for path in ("/category/economy/feed.rss", "/tag/economy/feed.rss", "/author/economy/feed.rss"):
        assert client.get(path).status_code == 200, path


def test_drafts_and_embargoed_articles_publish_no_tag_and_claim_no_slug(make_app, articles_dir, tmp_path):
    story(articles_dir, "d.md", "Draft", tags=("secret",), author="Ghost", extra="draft: true\n")
    write(articles_dir, "e.md", "---\ntitle: Later\ncategory: News\ntags: [later]\ndate: 2099-01-01T00:00:00Z\n---\nBody.\n")
    story(articles_dir, "p.md", "Public", tags=("open",))
    client = make_app(articles_dir).test_client()
    for path in ("/tag/secret/", "/author/ghost/", "/tag/later/feed.rss"):
        assert client.get(path).status_code == 404, path
    assert client.get("/tag/open/").status_code == 200
    recorded = StateStore(tmp_path / "state.sqlite3").claim_term_slugs("tag", set(), lambda new, had: dict(had))
    assert recorded == {"open": "open"}


def test_a_partner_sees_a_tag_and_an_author_in_its_licensed_categories_only(make_app, tagged, monkeypatch):
    monkeypatch.setenv("AGENCY_KEY", "agency-key-0123456789abcdef")
    partners = [{"name": "Agency", "key_env": "AGENCY_KEY", "categories": ["Economy"], "full_text": True}]
    client = make_app(tagged, PARTNERS=partners).test_client()
    auth = {"Authorization": "Bearer agency-key-0123456789abcdef"}
    rates = client.get("/partners/tag/rates/feed.json", headers=auth)
    assert rates.status_code == 200 and "private" in rates.headers["Cache-Control"]
    assert [i["title"] for i in json.loads(rates.data)["items"]] == ["Central bank keeps rates unchanged"]
    newsroom = json.loads(client.get("/partners/author/newsroom/feed.json?page=1", headers=auth).data)  # no redirect for partners
    assert [i["title"] for i in newsroom["items"]] == ["Central bank keeps rates unchanged"]
    assert client.get("/partners/tag/rates/feed.json").status_code == 401
    assert client.get("/partners/tag/nothing/feed.json", headers=auth).status_code == 404


def test_a_saved_file_renders_only_its_own_tag_and_author_feeds_again(make_app, articles_dir):
    for i in range(30):
        story(articles_dir, f"a{i:02}.md", f"Story {i}", tags=(f"t{i % 10}", f"u{i % 7}"), author=f"Writer {i % 5}", day=1 + i % 20)
    app = make_app(articles_dir)
    publisher = app.extensions["feedsvc"]
    before = dict(publisher.snapshot.resources.ready)
    story(articles_dir, "new.md", "Fresh", tags=("t3",), author="Writer 2", day=25)
    publisher.refresh()
    after = publisher.snapshot.resources.ready
    changed = sorted(p for p in after if after[p] is not before.get(p))
    feeds = [p for p in changed if "/feed." in p or p.startswith("feed.")]
    assert feeds == sorted(f"{key}feed.{fmt}" for key in ("author/writer-2/", "category/economy/", "tag/t3/", "") for fmt in FORMATS)
    assert "feeds-all.opml" not in changed  # no new feed, no new title: the list is as it was


def test_the_websub_hub_hears_of_each_changed_tag_and_author_feed(make_app, articles_dir):
    from tests.test_websub import Hub

    hub = Hub()
    try:
        story(articles_dir, "a.md", "One", tags=("rates",), author="Newsroom")
        app = make_app(articles_dir, WEBSUB_HUB=hub.url)
        assert app.extensions["feedsvc.websub"].drain(timeout=10)
        urls = {p["hub.url"][0] for p in hub.pings}
        assert {f"http://127.0.0.1:8000/{key}/feed.{fmt}" for key in ("tag/rates", "author/newsroom") for fmt in FORMATS} <= urls
        atom = app.test_client().get("/tag/rates/feed.atom")
        assert atom.headers["Link"] == f'<{hub.url}>; rel="hub", <http://127.0.0.1:8000/tag/rates/feed.atom>; rel="self"'
    finally:
        hub.close()


def test_a_browser_opening_a_tag_feed_gets_its_page(make_app, tagged):
    client = make_app(tagged).test_client()
    res = client.get("/tag/rates/feed.rss", headers={"Sec-Fetch-Dest": "document"})
    html = res.get_data(as_text=True)
    assert res.headers["Content-Type"] == MEDIA_TYPES["html"] and "This is a web feed" in html
    assert 'href="http://127.0.0.1:8000/tag/rates/"' in html  # the tag's page on the site


def test_the_static_export_writes_tag_and_author_feeds_pages_and_the_full_opml(tagged, tmp_path):
    from tests.test_export import run_build

    run_build(tagged, tmp_path / "export", tmp_path / "state.sqlite3")
    out = tmp_path / "export"
    for name in ("tag/rates/feed.rss", "tag/rates/feed.atom.gz", "tag/rates/feed.json.br", "tag/rates/index.html",
                 "tag/rates/feed.rss.html", f"tag/{RATES_AR.replace(' ', '-')}/feed.atom", "author/newsroom/index.html",
                 f"author/{REPORTER_AR.replace(' ', '-')}/feed.json", "feeds-all.opml"):
        assert (out / name).is_file(), name
    assert not feedparser.parse((out / "tag/rates/feed.atom").read_bytes()).bozo


# The listings kept up to date between refreshes are the listings built from scratch, tags and authors too

SITE = Site(title="Example", url="https://news.example", description="News", author="Desk", language="en", max_age=60)
HOURS = st.integers(min_value=-6, max_value=6)
ARTICLE = st.tuples(
    st.integers(0, 12), HOURS,
    st.lists(st.sampled_from(["Sport", "sport", "اقتصاد"]), min_size=1, max_size=2, unique=True).map(tuple),
    st.lists(st.sampled_from(["rates", "Rates", RATES_AR, "Sport"]), max_size=3, unique=True).map(tuple),
    st.sampled_from([None, "Newsroom", "newsroom", REPORTER_AR]),
    st.booleans(),
)
STEP = st.tuples(st.lists(ARTICLE, max_size=5), st.lists(st.integers(0, 12), max_size=3), st.integers(0, 3))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=7))
def test_tag_and_author_listings_updated_between_refreshes_equal_listings_built_from_scratch(steps):
    builder, folder, now, edits = ListingBuilder(), {}, FIXED_NOW, 0
    recorded: dict[str, str] = {}
    terms: dict[str, dict[str, str]] = {"tag": {}, "author": {}}
    for written, deleted, hours in steps:
        for number, offset, names, tags, author, draft in written:
            edits += 1
            published = FIXED_NOW + timedelta(hours=offset)
            folder[number] = Article(id=f"n{number}", source=f"n{number}.md", title=f"T{number}.{edits}", categories=names,
                                     body_html="", body_text="", summary="", lang="en", content_hash=f"{number}.{edits}",
                                     published=published, updated=published, tags=tags, author=author, draft=draft)
        for number in deleted:
            folder.pop(number, None)
        now += timedelta(hours=hours)
        articles = list(folder.values())
        expected = build_listings(articles, SITE, {}, now, recorded, terms)
        assert builder.build(articles, SITE, {}, now, recorded, terms) == expected
        assert len({listing.key for listing in expected}) == len(expected)
        for listing in expected[1:]:  # slugs once published stay with their name, as the state store keeps them
            kind, name, slug = listing.category.kind, listing.category.name, listing.category.slug
            (recorded if kind == "category" else terms[kind]).setdefault(name, slug)
            assert listing.key == (slug if kind == "category" else f"{kind}/{slug}")


# `feedsvc serve`, a real server process: every new URL over HTTP

@pytest.mark.e2e
def test_feedsvc_serve_answers_every_tag_and_author_url(tagged, tmp_path):
    server = Server(tagged, tmp_path / "state.sqlite3")
    try:
        for kind, name in (("tag", "rates"), ("tag", RATES_AR), ("author", "Newsroom"), ("author", REPORTER_AR)):
            page, feeds = paths(kind, name)
            for path in feeds:
                reply = check_feed_http(server.base, path, MEDIA_TYPES[path.rsplit(".", 1)[1]])
                assert feed_problems(path, reply.body, server.base + path) == [], path
            reply = fetch(server.base, page)
            assert reply.status == 200 and reply.header("content-type") == MEDIA_TYPES["html"]
            assert fetch(server.base, feeds[1] + "?since=2026-11-01T00:00:00Z").status == 200
            assert fetch(server.base, feeds[0] + "?page=1").status == 301
        check_feed_http(server.base, "/feeds-all.opml", MEDIA_TYPES["opml"])
        assert b"/tag/rates/" in fetch(server.base, "/articles/a").body
        assert fetch(server.base, "/tag/nothing/feed.rss").status == 404
    finally:
        server.stop()


def test_a_feeds_page_for_browsers_offers_both_opml_lists(make_app, tagged):
    html = make_app(tagged).test_client().get("/author/newsroom/feed.atom", headers={"Sec-Fetch-Dest": "document"}).get_data(as_text=True)
    assert '<a href="http://127.0.0.1:8000/feeds.opml">OPML</a>' in html and '<a href="http://127.0.0.1:8000/feeds-all.opml">OPML</a>' in html


def test_urls_name_tag_and_author_feeds_pages_and_files_in_one_place():
    from feedsvc.urls import export_file, feed_path, feed_pattern, listing_key, listing_page, listing_url, matched_key

    site = Site(title="T", url="https://news.example/sub", description="D", author="A", language="en", max_age=60)
    assert listing_key("category", "economy") == "economy" and listing_key("tag", RATES_AR) == f"tag/{RATES_AR}"
    assert feed_path("tag/rates", "atom") == "tag/rates/feed.atom" and feed_path("economy", "rss") == "category/economy/feed.rss"
    assert listing_page("author/newsroom") == "author/newsroom/" and listing_page("economy") == "category/economy/"
    assert listing_url(site, "tag", "a/b") == "https://news.example/sub/tag/a%2Fb/"  # a slug is one path segment
    pattern = feed_pattern([".rss", ".atom", ".json"])
    assert [matched_key(pattern.fullmatch(p)) for p in ("feed.rss", "category/x/feed.json", "tag/x/feed.atom", "author/x/feed.rss")] == [
        "", "x", "tag/x", "author/x"]
    assert pattern.fullmatch("people/x/feed.rss") is None
    assert export_file("tag/rates/", "text/html") == "tag/rates/index.html"
    assert export_file("author/x/feed.rss?page=2", "application/rss+xml") == "author/x/feed.rss.page-2"


def test_a_section_path_typed_as_its_name_is_written_is_redirected_to_the_one_published(make_app, tmp_path):
    """/category/الرِّياضة/ was a 404 where /category/الرياضة/ is the section: the name drops its harakat and tatweel, so
    its slug does, and a link typed by hand or copied from a printed name keeps them. A miss under /category/, /tag/ or
    /author/ is now a 301 to the path the slug makes, with the query, where the listing there has that name (marks and
    separators aside); anything else is the 404 it was. From review: /category/Technology/ went to the category
    `technology` where `Technology` is another one (at a hashed slug), and /tag/!!!/ to the tag named `category`."""
    folder = tmp_path / "articles"
    write(folder, "a.md", "---\ntitle: المباراة\ncategory: الرياضة\ntags: [Champions League]\nauthor: سارَة\n"
                          "date: 2026-01-02T10:00:00Z\n---\nنص المقال عن المباراة، بما يكفي من الطول.\n")
    write(folder, "b.md", "---\ntitle: One\ncategory: technology\ntags: [category]\ndate: 2026-01-02T11:00:00Z\n---\nBody one.\n")
    write(folder, "c.md", "---\ntitle: Two\ncategory: Technology\ndate: 2026-01-02T12:00:00Z\n---\nBody two.\n")
    client = make_app(folder).test_client()
    sport = quote("الرياضة")
    for typed, published in [("/category/الرِّياضة/", f"/category/{sport}/"),
                             ("/category/الريـاضة/feed.rss", f"/category/{sport}/feed.rss"),
                             ("/category/الرِّياضة", f"/category/{sport}/"),
                             ("/tag/Champions-League/feed.json", "/tag/champions-league/feed.json"),
                             ("/tag/Champions League/", "/tag/champions-league/"),
                             ("/author/سارَة/", f"/author/{quote('سارة')}/"),
                             (f"{quote('/category/الرِّياضة/feed.rss')}?page=2", f"/category/{sport}/feed.rss?page=2"),
                             (f"{quote('/category/الرِّياضة/feed.json')}?since=2026-01-01T00:00:00Z",
                              f"/category/{sport}/feed.json?since=2026-01-01T00:00:00Z")]:
        res = client.get(typed if "?" in typed else quote(typed))
        assert (res.status_code, res.headers.get("Location")) == (301, published), typed
        assert client.get(published).status_code == (404 if "page=2" in published else 200), published  # one page
    assert client.get("/category/technology/").status_code == 200
    assert client.get("/category/technology?utm_source=x").headers["Location"] == "/category/technology/?utm_source=x"
    for missing in ("/category/الرِّياضيات/", "/category/Nothing/", "/articles/الرِّياضة", "/tag/champions-league/nothing.rss",
                    "/category/Technology/", "/tag/!!!/", f"/tag/{chr(0x640)}/", "/tag/champions league/"):
        assert client.get(quote(missing)).status_code == 404, missing


def test_a_configured_category_typed_as_its_name_is_redirected_to_its_configured_slug(make_app, tmp_path):
    """CATEGORY_SLUGS gives الرياضة the slug sport: /category/الرياضة/ and /category/الرِّياضة/ were 404s (found in
    review), a reader's hand-typed link to the name it sees on the page."""
    folder = tmp_path / "articles"
    write(folder, "a.md", "---\ntitle: المباراة\ncategory: الرياضة\ndate: 2026-01-02T10:00:00Z\n---\nنص المقال، بما يكفي من الطول.\n")
    client = make_app(folder, CATEGORY_SLUGS={"الرياضة": "sport"}).test_client()
    for typed in ("/category/الرياضة/", "/category/الرِّياضة/feed.atom"):
        res = client.get(quote(typed))
        assert (res.status_code, res.headers.get("Location")) == (301, "/category/sport/" + typed.rsplit("/", 1)[1]), typed
    assert client.get("/category/sport/feed.atom").status_code == 200

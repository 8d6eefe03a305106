"""Paging (RFC 5005) and deltas (?since=) through the real app."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import feedparser
import pytest

from tests.conftest import write
from tests.feed_rules import feed_problems

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc)


def corpus(folder, n: int) -> None:
    for i in range(n):
        when = (T0 + timedelta(hours=i)).isoformat()
        write(folder, f"a{i:03}.md", f"---\ntitle: Story {i}\ncategory: News\ndate: {when}\n---\nBody {i}.\n")


@pytest.fixture
def paged(make_app, articles_dir):
    corpus(articles_dir, 23)
    return make_app(articles_dir, FEED_MAX_ITEMS=5).test_client()


def local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def walk_atom(client, path: str) -> tuple[list[str], list[str]]:
    """Follow rel=next from the first page; the titles seen and the pages visited."""
    titles, visited, url = [], [], path
    while url:
        assert url not in visited, "paging loops"
        visited.append(url)
        res = client.get(url)
        assert res.status_code == 200, url
        doc = feedparser.parse(res.data)
        titles += [e.title for e in doc.entries]
        nxt = [link.href for link in doc.feed.links if link.rel == "next"]
        url = local(nxt[0]) if nxt else None
    return titles, visited


@pytest.mark.parametrize("path", ["/feed.atom", "/category/news/feed.atom"])
def test_walking_next_links_visits_every_item_once_newest_first(paged, path):
    titles, visited = walk_atom(paged, path)
    assert titles == [f"Story {i}" for i in range(22, -1, -1)]
    assert len(visited) == 5


def test_every_page_has_first_and_last_and_the_archive_pages_previous(paged):
    links = {link.rel: local(link.href) for link in feedparser.parse(paged.get("/feed.atom?page=3").data).feed.links}
    assert links["first"] == "/feed.atom" and links["last"] == "/feed.atom?page=2"
    assert links["next"] == "/feed.atom?page=2" and links["previous"] == "/feed.atom?page=4"


def test_archive_pages_keep_their_content_when_new_articles_arrive(make_app, articles_dir):
    corpus(articles_dir, 23)
    client = make_app(articles_dir, FEED_MAX_ITEMS=5).test_client()
    before = {p: client.get(f"/feed.json?page={p}").data for p in (2, 3, 4, 5)}
    write(articles_dir, "z-new.md", f"---\ntitle: Newest\ncategory: News\ndate: {(T0 + timedelta(days=9)).isoformat()}\n---\nNew.\n")
    client.application.extensions["feedsvc"].refresh()
    # Complete archive pages (2, 3, 4: the oldest 15 items) are unchanged; the newest archive page grew.
    for p in (2, 3, 4):
        assert client.get(f"/feed.json?page={p}").data == before[p]
    assert client.get("/feed.json?page=5").data != before[5]


def test_complete_archive_pages_say_so_with_a_long_cache_lifetime(paged):
    assert paged.get("/feed.rss?page=2").headers["Cache-Control"] == "public, max-age=86400"
    assert paged.get("/feed.rss?page=5").headers["Cache-Control"] == "public, max-age=60"  # still filling
    assert paged.get("/feed.rss").headers["Cache-Control"] == "public, max-age=60"


def test_json_feed_pages_carry_next_url(paged):
    first = json.loads(paged.get("/feed.json").data)
    assert local(first["next_url"]) == "/feed.json?page=5"
    last = json.loads(paged.get("/feed.json?page=2").data)
    assert "next_url" not in last


def test_rss_pages_carry_atom_paging_links(paged):
    body = paged.get("/feed.rss?page=4").get_data(as_text=True)
    for rel in ("first", "last", "next", "previous"):
        assert f'rel="{rel}"' in body


@pytest.mark.parametrize("query", ["?page=6", "?page=99"])
def test_an_out_of_range_page_is_404(paged, query):
    assert paged.get("/feed.atom" + query).status_code == 404


@pytest.mark.parametrize("query", ["?page=0", "?page=-1", "?page=two"])
def test_a_malformed_page_is_400_saying_the_form(paged, query):
    res = paged.get("/feed.atom" + query)
    assert res.status_code == 400 and b"?page=N" in res.data


def since_titles(client, path: str, since: str) -> list[str]:
    """Every item title of a delta, walking its next_url pages."""
    titles, url = [], f"{path}?since={since}"
    while url:
        page = json.loads(client.get(url).data)
        titles += [i["title"] for i in page["items"]]
        url = local(page["next_url"]) if "next_url" in page else None
    return titles


def test_since_returns_exactly_the_items_published_or_updated_after_it(paged):
    # A deployment's first scan's articles were news to no reader of it: their dates alone say (paging.changed_after).
    since = (T0 + timedelta(hours=17, minutes=30)).isoformat().replace("+00:00", "Z")
    doc = json.loads(paged.get(f"/feed.json?since={since}").data)
    assert [i["title"] for i in doc["items"]] == ["Story 22", "Story 21", "Story 20", "Story 19", "Story 18"]
    assert "next_url" not in doc


def test_since_is_paged_like_the_rest(paged):
    since = (T0 + timedelta(hours=5, minutes=30)).isoformat()  # "+00:00", not "Z": both are RFC 3339
    first = json.loads(paged.get("/feed.json", query_string={"since": since}).data)
    assert len(first["items"]) == 5
    assert since_titles(paged, "/feed.json", since.replace("+00:00", "Z")) == [f"Story {i}" for i in range(22, 5, -1)]


def test_a_delta_walk_skips_nothing_when_an_item_it_walked_past_goes(make_app, articles_dir):
    """A delta's pages were counted by number: an item deleted from page 1 while a reader walked moved every older
    item up a place, and page 2 began one too late. The item skipped was older than the reader's next `since`: missed
    for good (found in review). Page 2 is now where page 1 ended (its next link), whatever went before it."""
    corpus(articles_dir, 12)
    app = make_app(articles_dir, FEED_MAX_ITEMS=5)
    client, since = app.test_client(), "2026-01-01T00:00:00Z"
    first = json.loads(client.get(f"/feed.json?since={since}").data)
    assert [i["title"] for i in first["items"]] == [f"Story {i}" for i in range(11, 6, -1)]
    (articles_dir / "a009.md").unlink()  # on page 1, which the reader has
    app.extensions["feedsvc"].refresh()
    titles, url = [], local(first["next_url"])
    while url:
        page = json.loads(client.get(url).data)
        titles += [i["title"] for i in page["items"]]
        url = local(page["next_url"]) if "next_url" in page else None
    assert titles == [f"Story {i}" for i in range(6, -1, -1)]  # Story 6 first: none skipped
    assert json.loads(client.get(f"/feed.json?since={since}&page=2").data)["items"][0]["title"] == "Story 5"  # by number: 6 lost


def test_a_delta_pages_links_say_where_the_page_before_ended(paged):
    links = {link.rel: local(link.href) for link in feedparser.parse(paged.get("/feed.atom?since=2026-01-01T12:00:00Z").data).feed.links}
    # Story 18, the last item of page 1: 2026-01-01T08:00:00Z + 18 hours; its id, the file's slug.
    assert links["next"] == "/feed.atom?since=2026-01-01T12:00:00Z&after=2026-01-02T02:00:00Z,a018"
    assert links["first"] == "/feed.atom?since=2026-01-01T12:00:00Z" and "last" not in links and "previous" not in links
    last = feedparser.parse(paged.get("/feed.atom?since=2026-01-01T12:00:00Z&after=2026-01-01T18:00:00Z,a010").data)
    assert [e.title for e in last.entries] == ["Story 9", "Story 8", "Story 7", "Story 6", "Story 5"]
    assert local([link.href for link in last.feed.links if link.rel == "next"][0]).endswith("&after=2026-01-01T13:00:00Z,a005")
    last = feedparser.parse(paged.get("/feed.atom?since=2026-01-01T12:00:00Z&after=2026-01-01T13:00:00Z,a005").data)
    assert [e.title for e in last.entries] == ["Story 4"]  # 12:00:00, in the second before since (since_feed)
    assert {link.rel for link in last.feed.links} - {"alternate"} == {"self", "first"}  # the last page: no next


@pytest.mark.parametrize("query", ["after=2026-01-02T02:00:00Z,a018",  # without since
                                   "since=2026-01-01T12:00:00Z&after=2026-01-02T02:00:00Z",  # no id
                                   "since=2026-01-01T12:00:00Z&after=tomorrow,a018",
                                   "since=2026-01-01T12:00:00Z&after=2026-01-02T02:00:00Z,a018&page=2"])
def test_a_malformed_after_is_400_that_shows_the_form(paged, query):
    for asked in {f"/feed.atom?{query}", f"/feed.atom?page=2&{query}"}:
        res = paged.get(asked)
        assert res.status_code == 400 and b"after=" in res.data, asked


def mark(client, path: str = "/feed.json") -> str:
    """A poller's `since` after its last poll: the feed's Last-Modified (RFC 3339), a second past so that nothing of the
    poll's own second comes again, once that second is over."""
    from email.utils import parsedate_to_datetime

    when = parsedate_to_datetime(client.get(path).headers["Last-Modified"]) + timedelta(seconds=1)
    while datetime.now(timezone.utc) < when + timedelta(milliseconds=50):
        time.sleep(0.05)
    return when.isoformat().replace("+00:00", "Z")


def test_a_delta_holds_what_changed_after_it_whatever_its_dates_say(make_app, articles_dir, deletions_at_once):
    """A story written with an older `date:` (scraped with its source's time), an edit that writes an older `updated:`,
    and an article back after it went were in no delta: it went by their dates alone (found in review). Nothing else is."""
    corpus(articles_dir, 4)
    app = make_app(articles_dir)
    client, refresh = app.test_client(), app.extensions["feedsvc"].refresh
    since = mark(client)
    assert since_titles(client, "/feed.json", since) == []
    write(articles_dir, "old.md", f"---\ntitle: Scraped\ncategory: News\ndate: {(T0 - timedelta(days=30)).isoformat()}\n---\nFrom the wire.\n")
    write(articles_dir, "a000.md", f"---\ntitle: Story 0 corrected\ncategory: News\ndate: {T0.isoformat()}\nupdated: 2026-01-02T00:00:00Z\n---\nFixed.\n")
    refresh()
    assert since_titles(client, "/feed.json", since) == ["Story 0 corrected", "Scraped"]
    assert since_titles(client, "/category/news/feed.json", since) == ["Story 0 corrected", "Scraped"]
    kept = (articles_dir / "a002.md").read_text()
    (articles_dir / "a002.md").unlink()
    refresh()
    since = mark(client)
    write(articles_dir, "a002.md", kept)  # as it was: its content recorded long ago
    refresh()
    assert since_titles(client, "/feed.json", since) == ["Story 2"]
    assert [e.title for e in feedparser.parse(client.get(f"/feed.atom?since={since}").data).entries] == ["Story 2"]
    again = make_app(articles_dir).test_client()  # a restart: the same deltas, the first scan's articles still by their dates
    assert since_titles(again, "/feed.json", since) == ["Story 2"]
    assert since_titles(again, "/feed.json", "2026-01-01T09:30:00Z") == ["Story 3", "Story 2", "Story 0 corrected", "Scraped"]


def test_an_edited_old_article_comes_back_in_since(make_app, articles_dir):
    corpus(articles_dir, 3)
    app = make_app(articles_dir)
    since = mark(app.test_client())
    write(articles_dir, "a000.md", f"---\ntitle: Story 0 corrected\ncategory: News\ndate: {T0.isoformat()}\nupdated: 2026-06-01T00:00:00Z\n---\nFixed.\n")
    app.extensions["feedsvc"].refresh()
    doc = json.loads(app.test_client().get(f"/feed.json?since={since}").data)
    assert [i["title"] for i in doc["items"]] == ["Story 0 corrected"]


@pytest.mark.parametrize("value", ["yesterday", "2026-01-01", "2026-01-01T10:00:00", "2026-13-01T00:00:00Z",
                                   "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])  # past the calendar in UTC: not a 500
def test_a_malformed_since_is_400_that_shows_the_expected_form(paged, value):
    res = paged.get("/feed.atom", query_string={"since": value})
    assert res.status_code == 400
    assert b"RFC 3339" in res.data and b"2026-11-29T08:00:00Z" in res.data


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00.999Z", "0001-01-01T00:00:00%2B00:00",
                                   "0001-01-01T00:00:00.5-00:00"])
def test_a_since_in_year_ones_first_second_is_every_item_not_a_500(paged, value):
    """.NET's DateTime.MinValue, a client's "everything": the second before it is no datetime, and was a 500."""
    everything = [e.id for e in feedparser.parse(paged.get("/feed.atom?since=0001-01-01T00:00:01Z").data).entries]
    for path in (f"/feed.atom?since={value}", f"/feed.json?since={value}&page=2", f"/category/news/feed.rss?since={value}"):
        res = paged.get(path)
        assert res.status_code == 200, (path, res.data[:200])
    assert [e.id for e in feedparser.parse(paged.get(f"/feed.atom?since={value}").data).entries] == everything


def test_summary_mode_leaves_the_body_out_of_public_feeds(make_app, articles_dir):
    write(articles_dir, "a.md", "---\ntitle: T\ncategory: News\nsummary: Short.\ndate: 2026-01-01T00:00:00Z\n---\nThe long secret body.\n")
    client = make_app(articles_dir, PUBLIC_CONTENT="summary").test_client()
    for fmt in ("rss", "atom", "json"):
        body = client.get(f"/feed.{fmt}").get_data(as_text=True)
        assert "Short." in body and "long secret body" not in body, fmt


def test_paged_and_since_feeds_break_no_rule_a_feed_reader_relies_on(paged):
    problems = {}
    for path in ("/feed.json?page=3", "/feed.json?since=2026-01-01T12:00:00Z&page=2", "/category/news/feed.atom?page=4",
                 "/feed.rss?since=2026-01-01T12:00:00Z", "/feed.atom?since=2026-01-01T12:00:00Z&after=2026-01-01T18:00:00Z,a010"):
        res = paged.get(path)
        assert res.status_code == 200, path
        problems[path] = feed_problems(path, res.data, feed_url=f"http://127.0.0.1:8000{path}" if ".json" in path else None)
    assert {path: found for path, found in problems.items() if found} == {}


@pytest.mark.parametrize("path", ["/feed.rss", "/category/news/feed.json"])
def test_page_one_redirects_to_the_url_its_self_link_names(paged, path):
    res = paged.get(path + "?page=1", headers={"Origin": "https://reader.example"})
    assert res.status_code == 301 and urlsplit(res.headers["Location"]).path == path
    assert res.headers["Access-Control-Allow-Origin"] == "*"  # a reader in a browser elsewhere follows it (Fetch: CORS check)
    assert paged.get(path + "?page=1&since=2000-01-01T00:00:00Z").status_code == 200  # a delta's first page stays


def test_page_one_of_a_feed_nobody_publishes_is_a_404_not_a_redirect_to_one(paged):
    res = paged.get("/category/nowhere/feed.rss?page=1")
    assert res.status_code == 404 and "Location" not in res.headers


def test_the_newest_archive_page_is_not_cached_long_even_when_full(make_app, articles_dir):
    """The newest archive page's "previous" link is page 1 until a page opens after it, then that page: even full, its
    bytes change then, so it is cached as briefly as page 1 and gets a new date with its new bytes (RFC 5005 §4:
    archive documents do not change; RFC 9110 §13.1.3: a 304 on If-Modified-Since would keep the old link)."""
    corpus(articles_dir, 20)  # page 1 the newest 5, pages 2-4 the 15 older: page 4 full and the newest archive page
    client = make_app(articles_dir, FEED_MAX_ITEMS=5).test_client()
    before = client.get("/feed.atom?page=4")
    assert before.headers["Cache-Control"] == "public, max-age=60"
    assert client.get("/feed.atom?page=3").headers["Cache-Control"] == "public, max-age=86400"
    links = {link.rel: local(link.href) for link in feedparser.parse(before.data).feed.links}
    assert links["previous"] == "/feed.atom"
    write(articles_dir, "z-new.md", f"---\ntitle: Newest\ncategory: News\ndate: {(T0 + timedelta(days=9)).isoformat()}\n---\nNew.\n")
    client.application.extensions["feedsvc"].refresh()
    after = client.get("/feed.atom?page=4")
    links = {link.rel: local(link.href) for link in feedparser.parse(after.data).feed.links}
    assert links["previous"] == "/feed.atom?page=5"
    assert after.headers["ETag"] != before.headers["ETag"]
    assert after.headers["Last-Modified"] != before.headers["Last-Modified"]
    assert client.get("/feed.atom?page=4", headers={"If-Modified-Since": before.headers["Last-Modified"]}).status_code == 200
    assert after.headers["Cache-Control"] == "public, max-age=86400"  # complete now: a page follows it


def test_a_delta_walked_in_memory_ends_each_page_where_the_store_does():
    """paging.since_feed's `after` on a listing held in memory (the builder's) is the store's (rank, id) order: items of
    one instant are taken by id, none twice, none left out, whatever went in between."""
    from urllib.parse import parse_qs, urlsplit

    from feedsvc.model import Article, Site, dated
    from feedsvc.model import item_place
    from feedsvc.paging import Listing, since_feed

    site = Site(title="T", url="http://127.0.0.1:9", description="", author="", language="en", max_age=60)
    when = [T0 + timedelta(hours=i // 3) for i in range(14)]  # three items an instant
    items = sorted((dated(Article(id=f"x{i:02}", source=f"x{i:02}.md", title=f"S{i}", categories=("News",), body_html="<p>b</p>",
                                  body_text="b", summary="b", lang="en", content_hash="0" * 64), when[i], when[i]) for i in range(14)),
                   key=lambda a: item_place(a.published, a.id))
    listing = Listing("", "T", "T", None, tuple(items), "http://127.0.0.1:9/")
    seen, after = [], None
    while True:
        feed = since_feed(listing, site, 4, T0 - timedelta(days=1), 1, after)
        seen += [a.id for a in feed.items]
        nxt = dict(feed.links).get("next")
        if nxt is None:
            break
        moment, _, id_ = parse_qs(urlsplit(nxt).query)["after"][0].partition(",")
        after = (datetime.fromisoformat(moment.replace("Z", "+00:00")), id_)
    assert seen == [a.id for a in items]
    gone = Listing("", "T", "T", None, tuple(a for a in items if a.id != seen[5]), "http://127.0.0.1:9/")  # on the page before
    assert [a.id for a in since_feed(gone, site, 4, T0 - timedelta(days=1), 1, (items[7].published, items[7].id)).items] == seen[8:12]


def test_a_delta_since_a_whole_second_tells_the_deletions_of_that_second():
    """A tombstone is dated to its whole second: `since` = the feed's Last-Modified (the usual poll) and a deletion a
    moment later in the same second was never told by any delta."""
    from feedsvc.model import Deleted, Site
    from feedsvc.paging import Listing, since_feed

    site = Site(title="T", url="http://127.0.0.1:9", description="", author="", language="en", max_age=60)
    last_modified = datetime(2026, 12, 7, 1, 35, 3, tzinfo=timezone.utc)
    went = (Deleted("urn:uuid:a", last_modified), Deleted("urn:uuid:b", last_modified - timedelta(seconds=1)))
    listing = Listing("", "T", "T", None, (), "http://127.0.0.1:9/", deleted=went)
    assert [d.ref for d in since_feed(listing, site, 5, last_modified, 1).deleted] == ["urn:uuid:a"]
    assert [d.ref for d in since_feed(listing, site, 5, last_modified + timedelta(microseconds=999_999), 1).deleted] == ["urn:uuid:a"]
    assert since_feed(listing, site, 5, last_modified + timedelta(seconds=1), 1).deleted == ()


def test_one_instant_written_with_any_offset_is_one_delta(paged):
    """Each process kept the spelling it was first asked in, its links naming it: bytes and ETags differed by worker."""
    spellings = ["2026-01-01T13:00:00%2B05:00", "2026-01-01T08:00:00Z", "2026-01-01T08:00:00.000Z", "2026-01-01T03:00:00-05:00"]
    answers = [paged.get(f"/feed.atom?since={s}") for s in reversed(spellings)]
    assert len({(res.data, res.headers["ETag"]) for res in answers}) == 1
    links = {link.rel: local(link.href) for link in feedparser.parse(answers[0].data).feed.links}
    assert links["self"] == "/feed.atom?since=2026-01-01T08:00:00Z"


@pytest.mark.parametrize("stored", [False, True])
def test_a_delta_holds_the_items_of_the_second_before_since(make_app, articles_dir, tmp_path, stored):
    """A build waits for the next whole second to be dated (Last-Modified has whole seconds): an embargo released while
    it waited, dated within that second, is only in the next build, and `?since=` that Last-Modified (the usual poll)
    missed it for good (found in review: 5 of 5 tries). A delta holds the items of the second before `since` too, in
    the builder's own process and in a serving one's (SQL: ListingIndex.newer_than) alike."""
    for name, when in (("older", "2026-11-13T10:00:58.9Z"), ("edge", "2026-11-13T10:00:59.000001Z"),
                       ("exact", "2026-11-13T10:01:00Z"), ("newer", "2026-11-13T10:01:00.5Z")):
        write(articles_dir, f"{name}.md", f"---\ntitle: {name}\ncategory: News\ndate: {when}\n---\nBody.\n")
    app = make_app(articles_dir)
    if stored:
        from feedsvc import create_app

        from feedsvc.building.committer import Committer

        for committer in (o for o in app.extensions["feedsvc"].observers if isinstance(o, Committer)):
            committer.wait()
        app = create_app({"ARTICLES_DIR": str(articles_dir), "STATE_PATH": str(tmp_path / "state.sqlite3")}, build=False)
    res = app.test_client().get("/feed.json", query_string={"since": "2026-11-13T10:01:00Z"})
    assert res.status_code == 200
    assert [item["title"] for item in json.loads(res.data)["items"]] == ["newer", "exact", "edge"]


def test_a_leap_second_since_is_the_last_instant_of_its_minute(make_app, articles_dir):
    """RFC 3339 §5.6 allows time-second 60: ?since=…T23:59:60Z was a 400 "Bad since"."""
    for name, when in (("before", "2026-11-13T23:59:58Z"), ("after", "2026-11-14T00:00:00Z")):  # (a delta takes the second before since)
        write(articles_dir, f"{name}.md", f"---\ntitle: {name}\ncategory: News\ndate: {when}\n---\nBody.\n")
    client = make_app(articles_dir).test_client()
    answers = [client.get("/feed.atom", query_string={"since": s})
               for s in ("2026-11-13T23:59:60Z", "2026-11-14T00:59:60.5+01:00")]
    assert [res.status_code for res in answers] == [200, 200]
    assert len({(res.data, res.headers["ETag"]) for res in answers}) == 1  # one instant, one delta
    doc = feedparser.parse(answers[0].data)
    assert [e.title for e in doc.entries] == ["after"]
    links = {link.rel: local(link.href) for link in doc.feed.links}
    assert links["self"] == "/feed.atom?since=2026-11-13T23:59:59.999999Z"  # in UTC, Z, as every other instant


SLOW = timedelta(seconds=3)  # how long before it lands a slow refresh began (a big file read: the README's table took 3 s)


def slow_refresh(app, lag: timedelta = SLOW) -> tuple[datetime, datetime]:
    """A refresh that began `lag` before it landed, as one that reads a big file for seconds: the publisher dates it by a
    clock that far behind, its build lands (store.builds.landed) by the real one. The real times before and after it."""
    publisher = app.extensions["feedsvc"]
    clock, publisher.clock = publisher.clock, lambda: datetime.now(timezone.utc) - lag
    started = datetime.now(timezone.utc)
    try:
        assert publisher.refresh()
    finally:
        publisher.clock = clock
    return started, datetime.now(timezone.utc)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def test_an_article_a_slow_refresh_dated_as_it_began_is_in_the_delta_of_any_moment_before_it_landed(make_app, articles_dir,
                                                                                                      tmp_path):
    """A file with no `date:` is dated as the refresh that first sees it begins, and seen once that refresh's build lands,
    seconds later when the refresh is slow. A delta looked back a second from `since` alone: a reader polling with the
    Date of its last answer (or its own poll time) answered in between never had the article (found in review). The
    same bytes from a serving process: the times are the store's."""
    from feedsvc import create_app

    corpus(articles_dir, 3)
    app = make_app(articles_dir)
    client = app.test_client()
    write(articles_dir, "new.txt", "News\nNewcomer\nA paragraph.\n")
    started, finished = slow_refresh(app)
    worker = create_app({"ARTICLES_DIR": str(articles_dir), "STATE_PATH": str(tmp_path / "state.sqlite3")}, build=False).test_client()
    item = next(i for i in json.loads(client.get("/feed.json").data)["items"] if i["title"] == "Newcomer")
    dated = datetime.fromisoformat(item["date_published"].replace("Z", "+00:00"))
    assert started - dated > SLOW - timedelta(seconds=0.5)  # dated as the refresh began, long before it landed
    for since in (dated + timedelta(seconds=0.5), dated + timedelta(seconds=1.5), dated + timedelta(seconds=2.5), started):
        assert since_titles(client, "/feed.json", rfc3339(since)) == ["Newcomer"], since - dated
        assert [e.title for e in feedparser.parse(client.get(f"/feed.atom?since={rfc3339(since)}").data).entries] == ["Newcomer"]
        assert since_titles(client, "/category/news/feed.json", rfc3339(since)) == ["Newcomer"]
        ours, theirs = client.get(f"/feed.atom?since={rfc3339(since)}"), worker.get(f"/feed.atom?since={rfc3339(since)}")
        assert (theirs.data, theirs.headers["ETag"]) == (ours.data, ours.headers["ETag"])
    # A second after it landed, the delta is what it always was: what changed after the second before `since`.
    assert since_titles(client, "/feed.json", rfc3339(finished + timedelta(seconds=1))) == []


def test_the_pages_of_a_delta_reach_back_as_its_first_does(make_app, articles_dir):
    """A delta's next page (after=, and ?page=N) reaches back to what a slow refresh was dated at, as its first page."""
    corpus(articles_dir, 3)
    app = make_app(articles_dir, FEED_MAX_ITEMS=2)
    for n in range(3):
        write(articles_dir, f"new{n}.txt", f"News\nNewcomer {n}\nA paragraph.\n")
    started, _ = slow_refresh(app)
    client, since = app.test_client(), rfc3339(started)
    first = json.loads(client.get(f"/feed.json?since={since}").data)
    assert "after=" in first["next_url"]
    assert sorted(since_titles(client, "/feed.json", since)) == ["Newcomer 0", "Newcomer 1", "Newcomer 2"]
    second = json.loads(client.get(f"/feed.json?since={since}&page=2").data)
    assert sorted(i["title"] for i in first["items"] + second["items"]) == ["Newcomer 0", "Newcomer 1", "Newcomer 2"]


def test_a_deletion_a_slow_refresh_recorded_as_it_began_is_in_the_delta_of_any_moment_before_it_landed(
        make_app, articles_dir, deletions_at_once):
    """A tombstone is dated to the second its refresh began, and told once that refresh's build lands: a reader polling
    with the Date of its last answer, answered in between, was never told of the deletion (found in review)."""
    from tests.test_tombstones import json_deleted, tombstones

    corpus(articles_dir, 3)
    app = make_app(articles_dir)
    client = app.test_client()
    doomed = next(i["id"] for i in json.loads(client.get("/feed.json").data)["items"] if i["title"] == "Story 1")
    (articles_dir / "a001.md").unlink()
    started, finished = slow_refresh(app)
    went = json_deleted(client.get("/feed.json").data)
    assert [d["id"] for d in went] == [doomed]
    when = datetime.fromisoformat(went[0]["when"].replace("Z", "+00:00"))
    assert started - when > SLOW - timedelta(seconds=1)
    for since in (when + timedelta(seconds=1.5), when + timedelta(seconds=2.5), started):
        assert [d["id"] for d in json_deleted(client.get(f"/feed.json?since={rfc3339(since)}").data)] == [doomed], since - when
        assert list(tombstones(client.get(f"/feed.atom?since={rfc3339(since)}").data)) == [doomed]
        assert [d["id"] for d in json_deleted(client.get(f"/category/news/feed.json?since={rfc3339(since)}").data)] == [doomed]
    later = rfc3339(finished + timedelta(seconds=1))
    assert json_deleted(client.get(f"/feed.json?since={later}").data) == []
    assert tombstones(client.get(f"/feed.atom?since={later}").data) == {}


def test_a_reader_polling_with_the_date_of_its_last_answer_misses_nothing_a_slow_refresh_brings(
        make_app, articles_dir, deletions_at_once):
    """The review's reader: `since` = the Date header of its previous answer, a poll every few tenths of a second while
    a refresh runs for seconds (real Date headers: the app as gunicorn's asyncio worker calls it). It missed, for good,
    the new article and the deletion that refresh brought."""
    from email.utils import parsedate_to_datetime

    from feedsvc.serving.asgi import WSGIOnThreads
    from tests.test_asgi import call, scope

    corpus(articles_dir, 3)
    app = make_app(articles_dir)
    asgi = WSGIOnThreads(app, threads=1)
    seen, told = set(), set()

    def poll(since: str | None) -> str:
        status, headers, body = call(asgi, scope(b"/feed.json", query=f"since={since}".encode() if since else b"",
                                                 headers=[(b"accept-encoding", b"identity")]))
        assert status == 200
        doc = json.loads(body)
        seen.update(i["title"] for i in doc["items"])
        told.update(d["id"] for d in doc.get("_feedsvc", {}).get("deleted", []))
        return rfc3339(parsedate_to_datetime(headers["date"]))

    try:
        since = poll(None)
        doomed = next(i["id"] for i in json.loads(app.test_client().get("/feed.json").data)["items"] if i["title"] == "Story 1")
        seen.clear()
        write(articles_dir, "new.txt", "News\nNewcomer\nA paragraph.\n")
        (articles_dir / "a001.md").unlink()
        for _ in range(3):  # answered while the refresh runs: by the build before it
            since = poll(since)
            time.sleep(0.3)
        assert "Newcomer" not in seen and doomed not in told
        slow_refresh(app)
        for _ in range(3):
            since = poll(since)
            time.sleep(0.3)
    finally:
        asgi.executor.shutdown()
    assert "Newcomer" in seen and doomed in told


def test_a_delta_that_reaches_back_as_a_slow_build_lands_moves_its_last_modified_with_its_bytes(make_app, articles_dir):
    """A slow build that changes another listing (Sport) makes a News delta reach back further: its bytes change (an item
    the reader had, again) while the News listing does not. Its Last-Modified moves too, so If-Modified-Since alone
    is not answered 304 for bytes it does not have."""
    from email.utils import parsedate_to_datetime

    corpus(articles_dir, 3)
    app = make_app(articles_dir)
    client = app.test_client()
    write(articles_dir, "fresh.txt", "News\nFresh\nA paragraph.\n")
    assert app.extensions["feedsvc"].refresh()
    since = datetime.now(timezone.utc) + timedelta(seconds=1.05)  # a reader answered a second after that build landed
    url = f"/category/news/feed.json?since={rfc3339(since)}"
    before = client.get(url)
    assert json.loads(before.data)["items"] == []
    changed = parsedate_to_datetime(before.headers["Last-Modified"])
    # The next build lands after that answer, in a later second than the listing's Last-Modified.
    while datetime.now(timezone.utc) < max(changed + timedelta(seconds=1.1), since - timedelta(seconds=0.9)):
        time.sleep(0.05)
    write(articles_dir, "match.txt", "Sport\nMatch\nA paragraph.\n")
    slow_refresh(app)
    after = client.get(url)
    assert [i["title"] for i in json.loads(after.data)["items"]] == ["Fresh"]
    assert parsedate_to_datetime(after.headers["Last-Modified"]) > changed
    assert client.get(url, headers={"If-Modified-Since": before.headers["Last-Modified"]}).status_code == 200
    assert client.get(url, headers={"If-None-Match": after.headers["ETag"]}).status_code == 304


def test_an_embargo_that_ended_while_a_slow_refresh_ran_is_in_the_delta_of_a_reader_that_saw_that_refresh(make_app, articles_dir):
    """An embargo that ends after a slow refresh began, and before its build landed, is released by the next refresh,
    dated at its end: seconds before that refresh began. A reader answered by the slow refresh's build, and not yet by the
    next one's, must still get it: the next build is dated from the embargo's end, not from its own start."""
    corpus(articles_dir, 3)
    app = make_app(articles_dir)
    client = app.test_client()
    ends = datetime.now(timezone.utc) + timedelta(seconds=0.2)  # after the slow refresh below is dated, before it lands
    write(articles_dir, "held.md", f"---\ntitle: Embargoed\ncategory: News\ndate: {ends.isoformat()}\n---\nAt noon.\n")
    while datetime.now(timezone.utc) < ends + timedelta(seconds=0.1):
        time.sleep(0.05)
    started, finished = slow_refresh(app)
    assert started - SLOW < ends < started
    assert "Embargoed" not in [i["title"] for i in json.loads(client.get("/feed.json").data)["items"]]
    since = finished + timedelta(seconds=1.1)  # a reader answered by that build, a second after it landed
    while datetime.now(timezone.utc) < since:  # the next build lands after that answer
        time.sleep(0.05)
    assert app.extensions["feedsvc"].refresh()
    assert since_titles(client, "/feed.json", rfc3339(since)) == ["Embargoed"]


def test_an_embargo_that_ended_while_no_builder_ran_is_in_the_delta_of_a_reader_answered_by_the_stored_build(
        make_app, articles_dir):
    """A restart: serving processes answer from the stored build until the new builder's first build lands. An embargo
    that ended meanwhile is dated at its end, before that builder began: its first build is dated from the stored one's."""
    corpus(articles_dir, 3)
    ends = datetime.now(timezone.utc) + timedelta(seconds=0.2)
    write(articles_dir, "held.md", f"---\ntitle: Embargoed\ncategory: News\ndate: {ends.isoformat()}\n---\nAt noon.\n")
    make_app(articles_dir)
    while datetime.now(timezone.utc) < ends + timedelta(seconds=1.2):  # no builder runs
        time.sleep(0.05)
    since = datetime.now(timezone.utc)  # a reader answered by the stored build
    client = make_app(articles_dir).test_client()  # the next builder's first build releases it
    assert "Embargoed" in [i["title"] for i in json.loads(client.get("/feed.json").data)["items"]]
    assert since_titles(client, "/feed.json", rfc3339(since)) == ["Embargoed"]


def test_a_delta_reaches_back_to_what_the_builds_landed_since_were_dated_at_and_no_further():
    """paging.delta_start: the second before `since`, or before what the builds landed after `since` - LANDING_SLACK are dated from
    when that is earlier; asked of those moments alone (a build landed before was seen by the reader; one dated from
    after `since` moves nothing), with the latest landing among them, which dates the delta."""
    from feedsvc.paging import delta_start

    since, asked, found = datetime(2026, 12, 8, 0, 59, 43, tzinfo=timezone.utc), [], None
    landing = since + timedelta(seconds=2)

    def landed_after(moment, dated_before):
        asked.append((moment, dated_before))
        return found

    assert delta_start(since, landed_after) == (since - timedelta(seconds=1), None)
    assert asked == [(since - timedelta(seconds=0.25), since)]
    found = (since - timedelta(seconds=3.9), landing)  # a slow refresh's
    assert delta_start(since, landed_after) == (since - timedelta(seconds=4.9), landing)
    assert delta_start(since) == (since - timedelta(seconds=1), None)
    year_one = datetime(1, 1, 1, 0, 0, 0, 500, tzinfo=timezone.utc)
    assert delta_start(year_one, landed_after) == (year_one, None)

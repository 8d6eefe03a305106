"""/metrics: requests, 304s, bytes, refreshes, articles and the subscribers aggregators report."""
from __future__ import annotations

from urllib.parse import quote

import pytest
from prometheus_client.parser import text_string_to_metric_families

from feedsvc.serving.metrics import MAX_OTHERS, MAX_SUBSCRIBERS, REPORT_TTL, aggregator_name, parse_subscribers
from tests.conftest import write

POLITICS = "/category/" + quote("سياسة") + "/feed.atom"
FEEDLY = "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 42 subscribers; like FeedFetcher-Google)"


def value(client, name: str, **labels) -> float | None:
    """One sample of /metrics, or None when there is no such series."""
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def test_metrics_are_prometheus_text(client):
    res = client.get("/metrics")
    assert res.status_code == 200 and res.mimetype == "text/plain" and "version=" in res.content_type
    assert res.headers["Cache-Control"] == "no-store"


def test_a_request_is_counted_by_kind_format_and_status_with_its_bytes(client):
    body = client.get("/feed.rss").data
    client.get(POLITICS, headers={"Accept-Encoding": "gzip"})
    client.get("/nope")
    assert value(client, "feedsvc_http_requests_total", kind="feed", format="rss", status="200") == 1
    assert value(client, "feedsvc_http_requests_total", kind="feed", format="atom", status="200") == 1
    assert value(client, "feedsvc_http_requests_total", kind="other", status="404") == 1
    assert value(client, "feedsvc_http_response_bytes_total", kind="feed") < 2 * len(body)  # the atom one went gzipped


@pytest.mark.parametrize("path, kind, fmt", [
    ("/", "page", "html"), ("/articles/000_4c2ff0435fbab79d", "article", "html"), ("/feeds.opml", "opml", "opml"),
    ("/style.css", "static", "css"), ("/feed.xsl", "static", "xsl"), ("/favicon.ico", "static", "ico"),
    ("/healthz", "healthz", "json"),
])
def test_each_kind_of_resource_has_its_label(client, path, kind, fmt):
    client.get(path)
    assert value(client, "feedsvc_http_requests_total", kind=kind, format=fmt, status="200") == 1


def test_a_304_is_counted_so_their_share_can_be_taken(client):
    etag = client.get("/feed.json").headers["ETag"]
    client.get("/feed.json", headers={"If-None-Match": etag})
    client.get("/feed.json", headers={"If-None-Match": etag})
    assert value(client, "feedsvc_http_requests_total", kind="feed", format="json", status="304") == 2
    assert value(client, "feedsvc_http_requests_total", kind="feed", format="json", status="200") == 1


def test_a_subscriber_count_in_the_user_agent_is_kept_per_feed_and_aggregator(client):
    client.get("/feed.rss", headers={"User-Agent": FEEDLY})
    client.get(POLITICS, headers={"User-Agent": "Mozilla/5.0 (compatible; inoreader.com; 7 subscribers)"})
    assert value(client, "feedsvc_feed_subscribers", feed="/feed.rss", aggregator="feedly") == 42
    assert value(client, "feedsvc_feed_subscribers", feed="/category/سياسة/feed.atom", aggregator="inoreader") == 7
    client.get("/feed.rss", headers={"User-Agent": FEEDLY.replace("42", "45")})  # the latest report counts
    assert value(client, "feedsvc_feed_subscribers", feed="/feed.rss", aggregator="feedly") == 45


def test_a_conditional_request_reports_subscribers_too(client):
    etag = client.get("/feed.atom").headers["ETag"]
    assert client.get("/feed.atom", headers={"If-None-Match": etag, "User-Agent": FEEDLY}).status_code == 304
    assert value(client, "feedsvc_feed_subscribers", feed="/feed.atom", aggregator="feedly") == 42


def test_counts_for_several_feed_ids_of_one_aggregator_add_up(client):
    google = "Feedfetcher-Google; (+http://www.google.com/feedfetcher.html; {n} subscribers; feed-id={id})"
    client.get("/feed.rss", headers={"User-Agent": google.format(n=3, id="111")})
    client.get("/feed.rss", headers={"User-Agent": google.format(n=4, id="222")})
    client.get("/feed.rss", headers={"User-Agent": google.format(n=5, id="111")})
    assert value(client, "feedsvc_feed_subscribers", feed="/feed.rss", aggregator="google") == 9


def test_subscriber_labels_stay_bounded(client):
    client.get("/no/such/feed.rss", headers={"User-Agent": FEEDLY})  # only published feeds
    client.get("/", headers={"User-Agent": FEEDLY})  # only feeds
    for i in range(MAX_OTHERS + 20):  # made-up names are pooled under one label
        client.get("/feed.rss", headers={"User-Agent": f"Reader{i}/1.0 (3 subscribers)"})
    text = client.get("/metrics").get_data(as_text=True)
    series = [line for line in text.splitlines() if line.startswith("feedsvc_feed_subscribers{")]
    assert series == ['feedsvc_feed_subscribers{aggregator="other",feed="/feed.rss"} ' + f"{3.0 * MAX_OTHERS}"]


def test_made_up_aggregators_never_crowd_out_a_known_one(client):
    for i in range(500):
        client.get("/feed.atom", headers={"User-Agent": f"Fake{i}Reader/1.0 (+https://x{i}.example; 9 subscribers)"})
    client.get("/feed.atom", headers={"User-Agent": "Mozilla/5.0 (compatible; inoreader.com; 12 subscribers)"})
    assert value(client, "feedsvc_feed_subscribers", feed="/feed.atom", aggregator="inoreader") == 12
    assert value(client, "feedsvc_feed_subscribers", feed="/feed.atom", aggregator="other") == 9 * MAX_OTHERS


def test_an_implausible_count_is_not_believed(client):
    client.get("/feed.rss", headers={"User-Agent": FEEDLY})
    client.get("/feed.rss", headers={"User-Agent": FEEDLY.replace("42", "8,400,000")})
    assert value(client, "feedsvc_feed_subscribers", feed="/feed.rss", aggregator="feedly") == 42
    google = "Feedfetcher-Google; ({n} subscribers; feed-id={id})"
    for i in range(20):  # many believable forged feed ids still add up to no more than the bound
        client.get("/feed.rss", headers={"User-Agent": google.format(n=MAX_SUBSCRIBERS, id=i)})
    assert value(client, "feedsvc_feed_subscribers", feed="/feed.rss", aggregator="google") == MAX_SUBSCRIBERS


def test_reports_age_out(make_app, sample_dir):
    app = make_app(sample_dir)
    client, metrics = app.test_client(), app.extensions["feedsvc.metrics"]
    now = [1_000_000.0]
    metrics.clock = lambda: now[0]  # the one thing replaced: the clock
    client.get("/feed.rss", headers={"User-Agent": FEEDLY.replace("; like", "; feed-id=forged; like").replace("42", "900000")})
    now[0] += 3600
    client.get("/feed.rss", headers={"User-Agent": FEEDLY})
    assert value(client, "feedsvc_feed_subscribers", feed="/feed.rss", aggregator="feedly") == 900042
    now[0] += REPORT_TTL - 1800  # the forged report is past its time, the real one is not
    assert value(client, "feedsvc_feed_subscribers", feed="/feed.rss", aggregator="feedly") == 42
    now[0] += 3600  # and then neither is counted
    assert value(client, "feedsvc_feed_subscribers", feed="/feed.rss", aggregator="feedly") == 0


@pytest.mark.parametrize("agent, expected", [
    (FEEDLY, ("feedly", 42, "")),
    ("Mozilla/5.0 (compatible; inoreader.com; 12 subscribers)", ("inoreader", 12, "")),
    ("NewsBlur Feed Fetcher - 1 subscriber - https://www.newsblur.com/site/1234/news (\"Mozilla/5.0\")", ("newsblur", 1, "")),
    ("NewsBlur Page Fetcher (5 subscribers)", ("newsblur", 5, "")),
    ("Feedbin feed-id:1234 - 3,210 subscribers", ("feedbin", 3210, "1234")),
    ("theoldreader.com (7 subscribers; feed-id=abc123)", ("theoldreader", 7, "abc123")),
    ("Mozilla/5.0 (compatible; SomeReader/2.1; +https://some.example; 8 subscribers)", ("somereader", 8, "")),
    ("Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0", None),
    ("", None),
])
def test_subscriber_reports_are_read_from_the_user_agents_aggregators_send(agent, expected):
    assert parse_subscribers(agent) == expected


def test_aggregator_names_are_short_and_stable():
    assert aggregator_name("www.bloglovin.com/1.0") == "bloglovin"
    assert aggregator_name("Some.Reader.io/3 (x)") == "some-reader"
    assert len(aggregator_name("X" * 300)) == 32


def test_refreshes_are_timed_and_counted_by_outcome(make_app, articles_dir):
    write(articles_dir, "a.txt", "News\nTitle\n" + "A paragraph of text. " * 20)
    app = make_app(articles_dir)
    client, publisher = app.test_client(), app.extensions["feedsvc"]
    assert value(client, "feedsvc_refreshes_total", outcome="changed") == 1
    assert value(client, "feedsvc_articles_published") == 1 and value(client, "feedsvc_files_skipped") == 0
    publisher.refresh()
    assert value(client, "feedsvc_refreshes_total", outcome="unchanged") == 1
    write(articles_dir, "empty.txt", "")
    publisher.refresh()
    assert value(client, "feedsvc_files_skipped") == 1
    (articles_dir / "a.txt").unlink()
    (articles_dir / "empty.txt").unlink()
    articles_dir.rmdir()
    publisher.refresh()
    assert value(client, "feedsvc_refreshes_total", outcome="failed") == 1
    assert value(client, "feedsvc_refresh_duration_seconds_count") == 4
    assert value(client, "feedsvc_last_refresh_success_timestamp_seconds") == publisher.last_success.timestamp()


def test_a_refresh_whose_build_is_not_committed_is_counted_failed(make_app, articles_dir):
    """A store a newer feedsvc changed (a column more in `builds`): every commit fails, serving processes serve the last
    build committed, and /healthz turns stale. The refresh counted "changed" and moved the last success all the same:
    metrics observed it after the committer had failed."""
    import sqlite3
    import time

    from feedsvc.building.committer import Committer

    write(articles_dir, "a.txt", "News\nFirst\n" + "A paragraph of text. " * 20)
    app = make_app(articles_dir)
    client, publisher = app.test_client(), app.extensions["feedsvc"]
    for committer in (o for o in publisher.observers if isinstance(o, Committer)):
        committer.wait()
    success = value(client, "feedsvc_last_refresh_success_timestamp_seconds")
    with sqlite3.connect(publisher.store.path) as conn:
        conn.execute("ALTER TABLE builds ADD COLUMN made_by TEXT")
    time.sleep(1.05)  # a version of its own second
    write(articles_dir, "b.txt", "News\nSecond\n" + "A paragraph of text. " * 20)
    publisher.refresh()
    assert publisher.last_error.startswith("the build could not be committed")
    assert value(client, "feedsvc_refreshes_total", outcome="changed") == 1  # the first build's alone
    assert value(client, "feedsvc_refreshes_total", outcome="failed") == 1
    assert value(client, "feedsvc_last_refresh_success_timestamp_seconds") == success


@pytest.mark.e2e
def test_workers_add_their_counts_up(tmp_path):
    """Under `feedsvc serve --workers 2` a scrape that reaches any worker sees every worker's requests."""
    from tests.conftest import SAMPLE_ARTICLES
    from tests.http_helpers import Server, fetch, until

    server = Server(SAMPLE_ARTICLES, tmp_path / "state.sqlite3", workers=2)

    def scrape() -> dict:
        families = text_string_to_metric_families(fetch(server.base, "/metrics").body.decode())
        return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}

    try:
        for _ in range(20):
            fetch(server.base, "/feed.json", headers={"User-Agent": FEEDLY})
        # The builder counts its first build once it is committed (and served): it imports prometheus_client only
        # then (building/builder.py), so a scrape right after the first feeds may come before that count.
        until(lambda: ("feedsvc_articles_published", ()) in scrape(), 10, "the builder never counted its first build")
        for _ in range(4):  # whichever worker answers
            samples = scrape()
            assert samples[("feedsvc_http_requests_total", (("format", "json"), ("kind", "feed"), ("status", "200")))] == 20
            assert samples[("feedsvc_feed_subscribers", (("aggregator", "feedly"), ("feed", "/feed.json")))] == 42
            assert samples[("feedsvc_articles_published", ())] == 11
    finally:
        server.stop()

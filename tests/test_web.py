"""HTTP through the real Flask app: media types, validators, conditional GET, compression, errors."""
from __future__ import annotations

import gzip
import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import write

FEEDS = {
    "/feed.rss": "application/rss+xml; charset=utf-8",
    "/feed.atom": "application/atom+xml; charset=utf-8",
    "/feed.json": "application/feed+json; charset=utf-8",
}


@pytest.mark.parametrize("path, media_type", FEEDS.items())
def test_feeds_are_served_with_their_media_type_and_validators(client, path, media_type):
    res = client.get(path)
    assert res.status_code == 200
    assert res.headers["Content-Type"] == media_type
    assert res.headers["ETag"].startswith('"')
    assert res.headers["Last-Modified"].endswith("GMT")
    assert res.headers["Access-Control-Allow-Origin"] == "*"
    assert res.headers["Vary"] == "Accept-Encoding, Sec-Fetch-Dest, Accept"  # a browser opening it gets a page (preview.py)
    assert res.headers["Cache-Control"] == "public, max-age=60"


def test_arabic_category_feed_is_reached_by_its_percent_encoded_slug(client):
    res = client.get("/category/" + quote("سياسة") + "/feed.atom")
    assert res.status_code == 200
    assert "زيارة مسؤول أمني روسي" in res.get_data(as_text=True)


def test_if_none_match_gives_304_without_a_body(client):
    etag = client.get("/feed.rss").headers["ETag"]
    res = client.get("/feed.rss", headers={"If-None-Match": etag})
    assert res.status_code == 304 and res.data == b""
    assert res.headers["ETag"] == etag


def test_if_modified_since_gives_304_and_if_none_match_decides_when_both_are_sent(client):
    last_modified = client.get("/feed.atom").headers["Last-Modified"]
    assert client.get("/feed.atom", headers={"If-Modified-Since": last_modified}).status_code == 304
    both = {"If-Modified-Since": last_modified, "If-None-Match": '"something-else"'}
    assert client.get("/feed.atom", headers=both).status_code == 200


def test_gzip_and_brotli_are_served_when_accepted_with_their_own_etags(client):
    plain = client.get("/feed.json")
    zipped = client.get("/feed.json", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == plain.data
    br = client.get("/feed.json", headers={"Accept-Encoding": "gzip, br"})
    assert br.headers["Content-Encoding"] == "br"
    assert len({plain.headers["ETag"], zipped.headers["ETag"], br.headers["ETag"]}) == 3
    # A validator from any coding revalidates the resource.
    assert client.get("/feed.json", headers={"If-None-Match": zipped.headers["ETag"]}).status_code == 304


@pytest.mark.parametrize("accepted, coding", [
    ("gzip;q=0.001, identity", None),  # identity ranked first: the bytes as they are
    ("br;q=0.5, gzip;q=0.4, *;q=0.9", None),  # identity under "*", above both
    ("gzip, identity;q=0.5", "gzip"),
    ("gzip", "gzip"),  # identity unnamed: acceptable, not preferred
    ("br, gzip, identity", "br"),  # a tie: compressed
    ("*;q=0.1, gzip;q=0.5", "gzip"),
])
def test_the_coding_sent_is_the_one_the_client_ranks_first(client, accepted, coding):
    res = client.get("/feed.json", headers={"Accept-Encoding": accepted})
    assert res.headers.get("Content-Encoding") == coding and res.status_code == 200


def test_head_gives_the_headers_without_a_body(client):
    res = client.head("/feed.rss")
    assert res.status_code == 200 and res.data == b""
    assert int(res.headers["Content-Length"]) == len(client.get("/feed.rss").data)


@pytest.mark.parametrize("path", ["/category/no-such/feed.rss", "/feed.xml", "/articles/../README.md", "/%2e%2e/pyproject.toml", "/..%2fwsgi.py", "/category/..\\..\\wsgi.py/feed.rss"])
def test_unknown_or_traversing_paths_are_404_with_a_helpful_body(client, path):
    res = client.get(path)
    assert res.status_code == 404
    assert b"/feed.rss" in res.data
    assert b"import" not in res.data


@pytest.mark.parametrize("path", ["/static/feed.xsl", "/static/style.css", "/static/x", "/static/__init__.py"])
def test_flasks_own_static_route_serves_nothing(client, path):
    """The package's static files are published from the build store at their own paths (/feed.xsl, /style.css), with
    the site's headers; Flask's /static/ route served them from disk with its own, and its misses as an HTML page."""
    res = client.get(path)
    assert res.status_code == 404 and res.mimetype == "text/plain" and b"/feed.rss" in res.data
    assert res.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["/feed.rss", "/category/no-such/feed.rss", "/feeds.opml", "/sitemap.xml", "/",
                                  "/feed.rss?page=2", "/search/feed.rss?q=x", "/partners/feed.rss?key=s3cr3t-partner-key"])
def test_before_the_first_build_everything_is_503_with_retry_after_not_404(sample_dir, tmp_path, monkeypatch, path):
    from feedsvc import create_app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AGENCY_KEY", "s3cr3t-partner-key")
    config = {"ARTICLES_DIR": str(sample_dir), "STATE_PATH": str(tmp_path / "state.sqlite3"), "SETTLE_MS": 0,
              "PARTNERS": [{"name": "Agency", "key_env": "AGENCY_KEY", "categories": "all"}]}
    worker = create_app(config, build=False).test_client()  # a cold start's worker: its builder has not committed yet
    res = worker.get(path)
    assert res.status_code == 503 and res.headers["Retry-After"].isdigit()
    assert b"first build" in res.data and res.headers["Cache-Control"] == "no-store"
    create_app(config)  # the first build, committed
    res = worker.get(path)
    assert res.status_code == (404 if "no-such" in path or "page=" in path else 200), res.data
    assert "Retry-After" not in res.headers


def test_other_methods_are_405(client):
    for res in (client.post("/feed.rss"), client.delete("/feed.json"), client.put("/")):
        assert res.status_code == 405 and res.headers["Allow"] == "GET, HEAD, OPTIONS"
        assert res.headers["Cache-Control"] == "no-store" and res.mimetype == "text/plain"


def test_odd_validators_are_compared_or_ignored_never_an_error(client):
    """If-None-Match with an empty tag ("" is a valid entity-tag, never ours), a tag of our hash with more after it (not
    one we send), and an If-Modified-Since past what a datetime holds (no valid date: ignored, RFC 9110 §13.1.3)."""
    for path in ("/feed.rss", "/feed.rss?since=2020-01-01T00:00:00Z"):  # a feed, and a delta (serving/variants.py)
        etag = client.get(path).headers["ETag"]
        for headers, status in (({"If-None-Match": '""'}, 200), ({"If-None-Match": 'W/""'}, 200),
                                ({"If-None-Match": f'"", {etag}'}, 304), ({"If-None-Match": etag[:-1] + '-gzip"'}, 304),
                                ({"If-None-Match": etag[:-1] + '-gzip-x"'}, 200), ({"If-None-Match": etag[:-1] + '-"'}, 200),
                                ({"If-Modified-Since": "Fri, 31 Dec 9999 23:59:59 -1200"}, 200),
                                ({"If-Modified-Since": "Mon, 01 Jan 0001 00:00:00 +1400"}, 200),
                                # two dates (repeated fields joined): the field is ignored, not read as its first
                                ({"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT, Sat, 01 Jan 2000 00:00:00 GMT"}, 200)):
            assert client.get(path, headers=headers).status_code == status, (path, headers)


def test_x_gzip_is_gzip_and_an_unencoded_plus_in_since_is_its_offset(client):
    assert client.get("/feed.rss", headers={"Accept-Encoding": "x-gzip"}).headers["Content-Encoding"] == "gzip"
    plus, encoded = (client.get(f"/feed.rss?since=2026-11-01T00:00:00{sign}01:00") for sign in ("+", "%2B"))
    assert plus.status_code == encoded.status_code == 200 and plus.data == encoded.data


def test_a_browser_script_may_revalidate_a_feed_across_origins(client):
    """A script elsewhere reading a feed conditionally: the preflight its If-None-Match needs is granted, and it may read
    the ETag (not a CORS-safelisted header)."""
    asked = {"Origin": "https://reader.example", "Access-Control-Request-Method": "GET",
             "Access-Control-Request-Headers": "if-none-match"}
    for path in ("/feed.rss", "/category/%D8%B3%D9%8A%D8%A7%D8%B3%D8%A9/feed.json", "/feeds.opml", "/search/feed.json?q=x"):
        res = client.options(path, headers=asked)
        assert res.status_code == 200 and res.headers["Access-Control-Allow-Origin"] == "*"
        assert "If-None-Match" in res.headers["Access-Control-Allow-Headers"]
        assert client.get(path).headers["Access-Control-Expose-Headers"] == "ETag"
    assert "Access-Control-Allow-Origin" not in client.options("/", headers=asked).headers  # pages: same origin only
    assert "Access-Control-Allow-Origin" not in client.options("/search/?q=x", headers=asked).headers


def test_a_browser_script_can_read_a_feeds_refusal_and_when_to_come_back(make_app, sample_dir):
    """A 429, 401, 404 or 400 of a feed had no Access-Control-Allow-Origin: a script elsewhere saw a network error and
    could not read Retry-After, so it retried at once."""
    from feedsvc.serving.ratelimit import RateLimiter

    app = make_app(sample_dir)
    app.extensions["feedsvc.limits"]["public"] = RateLimiter(1, clock=lambda: 0.0)
    client = app.test_client()
    answers = [client.get("/feed.json") for _ in range(3)]
    refused = answers[-1]
    assert refused.status_code == 429 and refused.headers["Access-Control-Allow-Origin"] == "*"
    assert "Retry-After" in refused.headers["Access-Control-Expose-Headers"]
    for path, status in (("/category/no-such/feed.rss", 404), ("/partners/feed.json", 401), ("/feed.rss?page=0", 400)):
        app.extensions["feedsvc.limits"]["public"] = RateLimiter(1000)
        res = client.get(path)
        assert res.status_code == status and res.headers["Access-Control-Allow-Origin"] == "*", path
    assert "Access-Control-Allow-Origin" not in client.get("/no/such/page").headers  # pages: same origin only


def test_healthz_reports_articles_skipped_files_and_the_last_refresh(client):
    body = client.get("/healthz").get_json()
    assert body["articles"] == 11 and body["skipped"] == 0
    assert body["last_refresh"]


def test_healthz_errors_never_show_the_servers_file_system(tmp_path):
    from feedsvc.serving.web import public_error

    root = tmp_path / "articles"
    assert public_error(f"FileNotFoundError: articles folder {root} does not exist", root) == \
        "FileNotFoundError: articles folder ARTICLES_DIR does not exist"
    assert public_error(f"PermissionError: [Errno 13] Permission denied: '{root}/politics/a.txt'", root) == \
        "PermissionError: [Errno 13] Permission denied: 'politics/a.txt'"
    assert public_error("StateError: state file /var/lib/feedsvc/state.sqlite3: disk I/O error", root) == \
        "StateError: state file <path>: disk I/O error"
    assert public_error("see https://news.example/a/b", root) == "see https://news.example/a/b"


def test_healthz_is_503_with_the_reason_when_the_state_file_is_emptied(tmp_path, articles_dir, monkeypatch):
    """`: > state.sqlite3` under a running server made every feed a 503 while /healthz stayed 200 "ok". A serving
    process over a store a build left, with no builder in this process to write the file again (the same test with
    one was removed as flaky: its later writes and its log made the emptied file readable again)."""
    import subprocess
    import sys
    import types

    from feedsvc import create_app
    from feedsvc.building.lock import BuilderStatus, status_path
    from tests.conftest import ROOT

    monkeypatch.chdir(tmp_path)
    write(articles_dir, "a.txt", "News\nTitle\nBody.\n")
    state = tmp_path / "state.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FEEDSVC_STATE_PATH": str(state), "FEEDSVC_CONFIG": ""}
    built = subprocess.run([sys.executable, "-m", "feedsvc", "build", "--out", str(tmp_path / "site"), "--articles",
                            str(articles_dir)], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    app = create_app({"ARTICLES_DIR": str(articles_dir), "STATE_PATH": str(state)}, refresh=False, build=False)
    client = app.test_client()
    assert client.get("/healthz").get_json()["build"] == 1
    with sqlite3.connect(state) as conn:  # no writer anywhere: the log's pages into the file, the log emptied
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    state.write_bytes(b"")
    res = client.get("/healthz")
    body = res.get_json()
    assert res.status_code == 503 and body["status"] == "unreadable"
    assert "emptied" in body["last_error"] and "\n" not in body["last_error"] and str(tmp_path) not in body["last_error"]
    builder = types.SimpleNamespace(progress=types.SimpleNamespace(now=lambda: None), site=types.SimpleNamespace(url="http://x"),
                                    root=str(articles_dir), last_success=None, observer_error=None,
                                    last_error=f"state file {state} is damaged (file is not a database)")
    BuilderStatus(status_path(str(state))).write(builder)  # once the builder has failed on it: its own error says more
    body = client.get("/healthz").get_json()
    assert body["status"] == "unreadable" and body["last_error"] == "state file <path> is damaged (file is not a database)"


def test_healthz_is_503_with_the_reason_when_the_state_file_is_deleted(make_app, articles_dir):
    """A deleted state file was "stale" with last_error null (or "ok" while this process read the deleted file)."""
    write(articles_dir, "a.txt", "News\nTitle\nBody.\n")
    app = make_app(articles_dir)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    Path(app.extensions["feedsvc.state_path"]).unlink()
    res = client.get("/healthz")
    assert res.status_code == 503 and res.get_json()["status"] == "unreadable"
    assert "build store" in res.get_json()["last_error"]  # not null


def test_healthz_is_503_with_the_reason_when_the_state_file_is_replaced_by_one_without_the_build(make_app, articles_dir, tmp_path):
    """This process still reads the file it opened (its build 1): the one at STATE_PATH, which a restart would serve,
    holds none."""
    from feedsvc.store import create_schema

    write(articles_dir, "a.txt", "News\nTitle\nBody.\n")
    app = make_app(articles_dir)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    create_schema(tmp_path / "other.sqlite3")
    (tmp_path / "other.sqlite3").replace(app.extensions["feedsvc.state_path"])
    res = client.get("/healthz")
    assert res.status_code == 503 and res.get_json()["status"] == "unreadable"
    assert res.get_json()["last_error"].startswith("the state file holds build none, not build 1 this process serves")


def test_healthz_reports_no_refresh_running_between_refreshes(client):
    assert client.get("/healthz").get_json()["refreshing"] is None


def test_a_serving_process_renders_nothing_the_builder_committed_only_what_the_readme_lists(make_app, sample_dir, monkeypatch):
    """README "What is published": every stored resource is looked up, never rendered, in any coding; only a feed
    asked for by query (and an article page not committed yet) is rendered on a request."""
    import sqlite3

    import feedsvc.building.render
    import feedsvc.formats.fragments
    import feedsvc.formats.ondemand
    import feedsvc.preview
    import feedsvc.serving.variants

    from feedsvc import create_app

    builder = make_app(sample_dir, FEED_MAX_ITEMS=3)
    assert next(o for o in builder.extensions["feedsvc"].observers if hasattr(o, "wait")).wait(10)
    worker = create_app({"ARTICLES_DIR": str(sample_dir), "STATE_PATH": builder.extensions["feedsvc.state_path"],
                         "FEED_MAX_ITEMS": 3}, build=False).test_client()
    rendered = []

    def trap(name):
        def rendering(*args, **kwargs):
            rendered.append(name)
            raise AssertionError(f"{name} ran on a request")
        return rendering

    for module, name in [(feedsvc.formats.ondemand.FeedRenderer, "feed"), (feedsvc.formats.fragments.Fragments, "assemble"),
                         (feedsvc.building.render.Renderer, "render"), (feedsvc.serving.variants, "render_article"),
                         (feedsvc.preview, "preview_page")]:
        monkeypatch.setattr(module, name, trap(name))
    with sqlite3.connect(builder.extensions["feedsvc.state_path"]) as conn:
        paths = [path for (path,) in conn.execute("SELECT path FROM resources") if not path.startswith("#")]
    assert len(paths) > 20 and any(p.startswith("articles/") for p in paths)
    for path in paths:
        for coding in ("identity", "gzip", "br"):
            reply = worker.get("/" + quote(path), headers={"Accept-Encoding": coding})
            assert reply.status_code == 200, (path, coding)
        browser = worker.get("/" + quote(path), headers={"Sec-Fetch-Dest": "document", "Accept-Encoding": "br"})
        assert browser.status_code == 200, path
    assert rendered == []
    assert worker.get("/feed.rss?page=2").status_code == 500 and rendered == ["feed"]  # the exception: a feed by query


def test_if_match_and_if_unmodified_since_are_preconditions_a_412_when_they_fail(client):
    """RFC 9110 §13.1.1, §13.1.4, §13.2.2: If-Match (strong comparison, `*` any current version) and, without it,
    If-Unmodified-Since are weighed before If-None-Match; a failed one is a 412 (nginx answers the export so too)."""
    for path in ("/feed.rss", "/feed.rss?since=2020-01-01T00:00:00Z", "/feeds.opml", "/"):
        ok = client.get(path)
        etag, modified = ok.headers["ETag"], ok.headers["Last-Modified"]
        for headers, status in (({"If-Match": etag}, 200), ({"If-Match": f'"other", {etag}'}, 200), ({"If-Match": "*"}, 200),
                                ({"If-Match": '"other"'}, 412), ({"If-Match": "W/" + etag}, 412),  # weak: never a strong match
                                ({"If-Match": '""'}, 412),
                                ({"If-Unmodified-Since": modified}, 200),
                                ({"If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}, 412),
                                ({"If-Unmodified-Since": "not a date"}, 200),  # ignored
                                ({"If-Match": etag, "If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}, 200),  # If-Match decides
                                ({"If-Match": '"other"', "If-None-Match": etag}, 412),  # before If-None-Match
                                ({"If-Match": etag, "If-None-Match": etag}, 304)):
            res = client.get(path, headers=headers)
            assert res.status_code == status, (path, headers)
            if status == 412:
                assert res.headers["Cache-Control"] == "no-store" and res.mimetype == "text/plain"


def test_an_if_modified_since_later_than_now_is_ignored(client):
    """No Last-Modified we send is later than its Date: a later If-Modified-Since is one from before the clock stepped
    back (the bytes dated since are older than it) or a client's own; it gets the bytes (RFC 2616 §14.25), not a 304."""
    ok = client.get("/feed.rss")
    assert client.get("/feed.rss", headers={"If-Modified-Since": ok.headers["Last-Modified"]}).status_code == 304
    assert client.get("/feed.rss", headers={"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}).status_code == 200


@pytest.mark.parametrize("path", ["/feed.rss", "/search/feed.rss", "/"])
def test_a_query_string_that_is_not_utf8_is_a_400_not_a_500(client, path):
    """Raw bytes a client sends in the query as they are (x=\\xff): werkzeug's parse of the arguments raised
    UnicodeDecodeError, a 500 with a traceback."""
    res = client.get(path, environ_overrides={"QUERY_STRING": "x=\xff&q=a"})
    assert res.status_code == 400 and "not UTF-8" in res.get_data(as_text=True)


def test_healthz_and_a_preflight_read_no_query_and_answer_whatever_it_holds(client):
    """/healthz never reads its query: a monitor's cache-busting bytes made it a 400 with the UTF-8 check."""
    assert client.get("/healthz", environ_overrides={"QUERY_STRING": "x=\xff"}).status_code == 200
    assert client.options("/feed.rss", environ_overrides={"QUERY_STRING": "x=\xff"}).status_code == 200

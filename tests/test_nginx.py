"""End to end: a `feedsvc build` export served by Debian's nginx with deploy/nginx.conf behaves as the app."""
from __future__ import annotations

import email.utils
import gzip
from datetime import timedelta
import http.client
import shutil
from urllib.parse import quote, urlsplit

import brotli

import feedparser
import pytest

from feedsvc import create_app
from feedsvc.building.export import read_manifest
from feedsvc.urls import EXPORT_PREVIEW
from feedsvc.preview import VARY, is_navigation
from tests.conftest import SAMPLE_ARTICLES, write
from tests.http_helpers import MEDIA_TYPES, Nginx, check_feed_http, check_not_found, fetch, free_port
from tests.test_export import corpus, run_build
from tests.test_preview import CHROMIUM, FIREFOX, READERS
from tests.test_server import FEED_PATHS, POLITICS, SEED_PAGE

pytestmark = pytest.mark.e2e

PAGE_SIZE = 4  # the sample's eleven articles make three pages of the site-wide feed
# nginx rejects a path that climbs above the root before any location is looked at: 400, not 404.
TRAVERSING = ("/../pyproject.toml", "/%2e%2e/pyproject.toml", "/articles/%2e%2e%2f%2e%2e%2fwsgi.py",
              "/category/..%2f..%2fwsgi.py", "/static/../../README.md")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """nginx serving a fresh export of the sample articles, and the app built from the same state."""
    folder = tmp_path_factory.mktemp("nginx")
    port = free_port()
    settings = {"SITE_URL": f"http://127.0.0.1:{port}", "FEED_MAX_ITEMS": PAGE_SIZE}
    run_build(SAMPLE_ARTICLES, folder / "export", folder / "state.sqlite3", **settings)
    server = Nginx(folder / "export", folder, port=port)
    server.export = folder / "export"
    app = create_app({"ARTICLES_DIR": str(SAMPLE_ARTICLES), "STATE_PATH": str(folder / "state.sqlite3"), **settings})
    yield server, app
    server.stop()


def url(path: str) -> str:
    """The URL path of a resource key, percent-encoded as links carry it (a feed's page is at the feed's URL)."""
    path, _, query = path.removesuffix(EXPORT_PREVIEW).partition("?")
    return "/" + quote(path, safe="/") + (f"?{query}" if query else "")


@pytest.mark.parametrize("path, fmt", FEED_PATHS)
def test_every_feed_follows_the_http_rules(site, path, fmt):
    check_feed_http(site[0].base, path, MEDIA_TYPES[fmt])


def test_every_resource_is_served_at_the_apps_url_with_the_apps_bytes_and_headers(site):
    server, app = site
    client = app.test_client()
    resources = [entry[0] for entry in read_manifest(server.export)["files"].values()]
    assert "feed.atom?page=3" in resources
    assert "feed.atom#preview" in resources and "category/سياسة/feed.json#preview" in resources
    for path in resources:
        headers = CHROMIUM if path.endswith(EXPORT_PREVIEW) else {}  # a feed's page is what a browser's navigation gets
        ours, theirs = fetch(server.base, url(path), headers=headers), client.get(url(path), headers=headers)
        assert (ours.status, ours.body) == (200, theirs.data), path
        for header in ("Content-Type", "Last-Modified", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers",
                       "Content-Security-Policy", "X-Content-Type-Options", "Vary"):
            assert ours.header(header) == theirs.headers.get(header), (path, header)


@pytest.mark.parametrize("path", ["/feed.rss", f"/category/{POLITICS}/feed.json", "/feeds.opml", "/feed.xsl", "/",
                                  "/feed.atom?page=2", "/feed.rss?page=3"])  # an archive page: $uri is the file try_files found
def test_a_304_carries_cors_as_the_apps_does(site, path):
    """A script's own conditional GET reads the 304 only with Access-Control-Allow-Origin (the map by media type gave a
    304, which has none, no CORS: every unchanged poll of a reader in a browser was a network error)."""
    server, app = site
    origin = {"Origin": "https://reader.example"}
    tag = fetch(server.base, path, headers=origin).header("etag")
    ours = fetch(server.base, path, headers={**origin, "If-None-Match": tag})
    theirs = app.test_client().get(path, headers={**origin, "If-None-Match": app.test_client().get(path).headers["ETag"]})
    assert ours.status == theirs.status_code == 304
    for header in ("Access-Control-Allow-Origin", "Access-Control-Expose-Headers"):
        assert ours.header(header) == theirs.headers.get(header), header


@pytest.mark.parametrize("path", ["/", f"/category/{POLITICS}/", SEED_PAGE, "/articles/economy/2026-11-20-rates-unchanged"])
def test_pages_are_html_with_a_content_security_policy(site, path):
    res = fetch(site[0].base, path)
    assert res.status == 200 and res.header("content-type") == MEDIA_TYPES["html"]
    assert "default-src 'none'" in res.header("content-security-policy")
    assert res.header("x-content-type-options") == "nosniff"


def test_a_category_without_its_slash_is_redirected_to_its_page(site):
    res = fetch(site[0].base, f"/category/{POLITICS}")
    assert res.status == 301 and res.header("location") == f"/category/{POLITICS}/"


def test_walking_next_links_visits_every_item_once(site):
    server = site[0]
    titles, link = [], "/feed.atom"
    while link:
        doc = feedparser.parse(fetch(server.base, link).body)
        titles += [e.title for e in doc.entries]
        nxt = [lk.href for lk in doc.feed.links if lk.rel == "next"]
        link = urlsplit(nxt[0])._replace(scheme="", netloc="").geturl() if nxt else None
    assert len(titles) == len(set(titles)) == 11


def test_page_one_and_a_delta_are_the_first_page(site):
    server = site[0]
    first = fetch(server.base, "/feed.rss").body
    assert fetch(server.base, "/feed.rss?since=2026-11-01T00:00:00Z").body == first  # a superset of the delta


@pytest.mark.parametrize("path", [
    "/category/nope/", "/category/nope/feed.rss", "/feed.xml", "/articles/nope", "/category/", "/articles/",
    "/index.html", f"/category/{POLITICS}/index.html", f"{SEED_PAGE}.html", "/feed.rss.gz", "/feed.atom.br",
    "/feed.atom.page-2", "/feed.atom?page=9", "/category/..%5c..%5cwsgi.py", "/feed.rss.html",
    f"/category/{POLITICS}/feed.json.html", "/feed.atom.html.gz", "/.feedsvc-export.lock", "/.feedsvc-export.json",
])
def test_unknown_paths_and_the_exports_own_file_names_are_404(site, path):
    res = fetch(site[0].base, path)
    check_not_found(site[0].base, path)
    assert res.header("content-type") == "text/plain; charset=utf-8" and res.header("cache-control") == "no-store"
    # A script polling a feed gone reads the 404, not a CORS error; a page's 404 is the site's own, as the app's.
    assert res.header("access-control-allow-origin") == site[1].test_client().get(path).headers.get("Access-Control-Allow-Origin")


def test_nothing_in_a_hidden_folder_of_the_export_is_served(site):
    """A build's staging folder is inside the export: a file there is never a URL of the site, whatever its name."""
    staged = site[0].export / ".feedsvc-export.staging-1" / "feed.rss"
    staged.parent.mkdir()
    staged.write_bytes((site[0].export / "feed.rss").read_bytes())
    (staged.parent / "index.html").write_bytes((site[0].export / "index.html").read_bytes())
    try:
        check_not_found(site[0].base, "/.feedsvc-export.staging-1/feed.rss")
        check_not_found(site[0].base, "/.feedsvc-export.staging-1/")  # a folder's page: `location ~ /$` came first
    finally:
        shutil.rmtree(staged.parent)


@pytest.mark.parametrize("path", TRAVERSING)
def test_paths_climbing_out_of_the_export_are_refused(site, path):
    check_not_found(site[0].base, path, statuses=(400, 404))


def test_other_methods_are_405(site):
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        res = fetch(site[0].base, "/feed.rss", method=method)
        assert res.status == 405 and res.header("allow") == "GET, HEAD"


PREFLIGHT = {"Origin": "https://reader.example", "Access-Control-Request-Method": "GET",
             "Access-Control-Request-Headers": "if-none-match"}
CORS_GRANT = ("Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers",
              "Access-Control-Max-Age")


@pytest.mark.parametrize("path", ["/feed.rss", "/feed.json", f"/category/{POLITICS}/feed.atom", "/feeds.opml",
                                  "/feeds-all.opml", "/search/feed.atom", "/search/feed.json"])
def test_a_browsers_preflight_for_a_feed_is_granted_as_the_app_grants_it(site, path):
    """A reader running in a browser elsewhere polls conditionally (If-None-Match): its CORS preflight must be granted
    by nginx as by the app, or the browser never sends the GET."""
    server, app = site
    ours, theirs = fetch(server.base, path, method="OPTIONS", headers=PREFLIGHT), app.test_client().options(path, headers=PREFLIGHT)
    assert 200 <= ours.status < 300 and theirs.status_code == 200, path
    for header in CORS_GRANT:
        assert ours.header(header) == theirs.headers.get(header) and ours.header(header), (path, header)


def test_other_preflights_are_refused(site):
    for path in ("/", "/articles/x", "/robots.txt"):
        assert fetch(site[0].base, path, method="OPTIONS", headers=PREFLIGHT).status == 405, path


def test_a_rebuild_is_served_at_once_without_reloading_nginx(tmp_path):
    articles, out, state = tmp_path / "articles", tmp_path / "export", tmp_path / "state.sqlite3"
    corpus(articles, 3)
    run_build(articles, out, state)
    server = Nginx(out, tmp_path)
    try:
        etag = fetch(server.base, "/feed.atom").header("etag")
        write(articles, "late.md", "---\ntitle: Late news\ncategory: C0\ndate: 2026-06-01T00:00:00Z\n---\nText.\n")
        run_build(articles, out, state)
        res = fetch(server.base, "/feed.atom", headers={"If-None-Match": etag})
        assert res.status == 200 and b"Late news" in res.body
        assert fetch(server.base, "/articles/late").status == 200
    finally:
        server.stop()


@pytest.mark.parametrize("browser", [CHROMIUM, FIREFOX], ids=["chromium", "firefox"])
@pytest.mark.parametrize("path, fmt", [(p, fmt) for p, fmt in FEED_PATHS if fmt != "opml"])
def test_a_browser_opening_a_feed_gets_the_apps_page_and_feed_readers_get_the_feed(site, browser, path, fmt):
    server, app = site
    client = app.test_client()
    page = fetch(server.base, path, headers=browser)
    assert page.status == 200 and page.header("content-type") == MEDIA_TYPES["html"]
    assert page.body == client.get(path, headers=browser).data and b"<!doctype html>" in page.body
    assert page.header("vary") == VARY and "default-src 'none'" in page.header("content-security-policy")
    assert page.header("access-control-allow-origin") is None
    feed = fetch(server.base, path)
    assert page.header("last-modified") == feed.header("last-modified") and page.header("etag") != feed.header("etag")
    for name, headers in READERS.items():  # the exact headers each reader sends
        res = fetch(server.base, path, headers=headers)
        assert (res.status, res.body, res.header("etag")) == (200, feed.body, feed.header("etag")), name
        assert res.header("content-type") == MEDIA_TYPES[fmt] and res.header("vary") == VARY, name


@pytest.mark.parametrize("coding, decompress", [("gzip", gzip.decompress), ("br", brotli.decompress)])
def test_the_page_comes_compressed_and_answers_304_without_ever_making_a_readers_request_304(site, coding, decompress):
    server = site[0]
    page = fetch(server.base, "/feed.atom", headers=CHROMIUM)
    coded = fetch(server.base, "/feed.atom", headers={**CHROMIUM, "Accept-Encoding": coding})
    assert coded.header("content-encoding") == coding and decompress(coded.body) == page.body
    assert coded.header("vary") == VARY
    again = fetch(server.base, "/feed.atom", headers={**CHROMIUM, "If-None-Match": page.header("etag")})
    assert again.status == 304 and again.header("vary") == VARY
    assert fetch(server.base, "/feed.atom", headers={**READERS["reader"], "If-None-Match": page.header("etag")}).status == 200


# Accept values a browser without Fetch Metadata, a reader or a script may send, each decided as the app decides.
ACCEPTS = [
    FIREFOX["Accept"], CHROMIUM["Accept"], "text/html", "TEXT/HTML, application/xhtml+xml", "text/html;q=1.0, */*;q=0.8",
    " text/html , application/rss+xml;q=0.5", "text/html;q=0.5, */*", "application/rss+xml, text/html", "*/*", "",
    "text/html,*/*", "text/html, application/*", "text/html, text/*;q=0.9, text/xml", "text/html;q=0, text/*",
    "text/html, application/json", "text/html, application/feed+json;q=0.99, application/atom+xml;q=0",
    *(headers.get("Accept", "") for headers in READERS.values()),
]


@pytest.mark.parametrize("accept", ACCEPTS)
def test_without_fetch_metadata_nginx_reads_accept_as_the_app_does(site, accept):
    page = fetch(site[0].base, "/feed.rss", headers={"Accept": accept})
    assert (page.header("content-type") == MEDIA_TYPES["html"]) is is_navigation({"Accept": accept})


def test_where_a_regex_cannot_weigh_q_values_nginx_errs_toward_the_feed(site):
    accept = "text/html;q=0.9, */*;q=0.1"  # the app ranks the page higher; nginx only knows q=1 from less
    assert is_navigation({"Accept": accept})
    assert fetch(site[0].base, "/feed.rss", headers={"Accept": accept}).header("content-type") == MEDIA_TYPES["rss"]


@pytest.mark.parametrize("dest, accept, navigation", [
    ("document", "*/*", True), ("iframe", FIREFOX["Accept"], False), ("empty", "text/html", False),
])
def test_fetch_metadata_decides_when_it_is_sent(site, dest, accept, navigation):
    headers = {"Sec-Fetch-Dest": dest, "Accept": accept}
    assert is_navigation(headers) is navigation
    assert (fetch(site[0].base, "/feed.json", headers=headers).header("content-type") == MEDIA_TYPES["html"]) is navigation


def test_a_date_later_than_the_files_own_never_keeps_its_bytes_from_a_reader(site):
    """After the clock stepped back a build dates its files before the Last-Modified readers hold: a reader sending only
    If-Modified-Since (newsboat) got a 304 for the new bytes (nginx's `if_modified_since before`)."""
    server = site[0]
    modified = fetch(server.base, "/feed.atom").header("last-modified")
    assert fetch(server.base, "/feed.atom", headers={"If-Modified-Since": modified}).status == 304
    held = email.utils.format_datetime(email.utils.parsedate_to_datetime(modified) + timedelta(hours=1), usegmt=True)
    assert fetch(server.base, "/feed.atom", headers={"If-Modified-Since": held}).status == 200


@pytest.mark.parametrize("query", ["?page=1", "?page=1&utm_source=x", "?utm_source=x&page=1"])
def test_page_one_redirects_to_the_feeds_own_url_as_the_app_does(site, query):
    server, app = site
    path = "/category/%D8%B3%D9%8A%D8%A7%D8%B3%D8%A9/feed.rss"
    res = fetch(server.base, path + query, headers=CHROMIUM)
    theirs = app.test_client().get(path + query, headers=CHROMIUM)
    assert res.status == theirs.status_code == 301
    assert res.header("location") == theirs.headers["Location"] == path
    assert res.header("access-control-allow-origin") == theirs.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("path", ["//evil.example/feed.rss", "/%5Cevil.example/feed.json", "/\\evil.example/feed.atom",
                                  "//category/%D8%B3%D9%8A%D8%A7%D8%B3%D8%A9/feed.rss", "/category/nope/feed.rss"])
def test_page_one_of_no_feed_or_a_path_naming_another_host_is_no_redirect(site, path):
    """`//evil.example/feed.rss?page=1` was redirected to //evil.example/feed.rss, which a browser follows to that host
    (an open redirect; /\\ reads as // too), and ?page=1 of a feed that is not there was redirected to it (found in review)."""
    server = site[0]
    res = fetch(server.base, path + "?page=1")
    assert res.status != 301 and not (res.header("location") or "").startswith(("//", "/\\")), (path, res.status, res.header("location"))
    assert res.status == 404 or path.startswith("//category/")  # nginx merges its slashes: the feed itself


@pytest.mark.parametrize("path, query", [("/feed.rss", "?page=1&since=2026-11-01T00:00:00Z"), (f"{SEED_PAGE}", "?page=1")])
def test_page_one_of_a_delta_or_of_a_page_is_no_redirect(site, path, query):
    server, app = site
    res, theirs = fetch(server.base, path + query), app.test_client().get(path + query)
    assert res.status == theirs.status_code == 200, (path, query)


@pytest.mark.parametrize("query", ["?page=0", "?page=abc", "?page=", "?page", "?page=01", "?page=1234567890",
                                   "?page=%D9%A3", "?since=2026-11-01T00:00:00Z&page=-1", "?page=x&page=2"])
@pytest.mark.parametrize("path", ["feed.rss", "category/سياسة/feed.json", "category/nope/feed.atom"])
def test_a_malformed_page_is_the_apps_400_that_shows_the_form(site, path, query):
    """A page number that is no whole number from 1 is told as such, as the app tells it: it was a 404 'Not found' for
    a feed that is there."""
    server, app = site
    res = fetch(server.base, url(path) + query)
    theirs = app.test_client().get(url(path) + query)
    assert res.status == theirs.status_code == 400, (path, query)
    assert res.header("content-type") == theirs.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "expected ?page=N with N a whole number from 1" in res.body.decode() and res.header("cache-control") == "no-store"
    assert res.header("access-control-allow-origin") == theirs.headers["Access-Control-Allow-Origin"] == "*"  # a script reads it


@pytest.mark.parametrize("query", ["?PAGE=2", "?Page=1", "?PAGE=abc", "?SINCE=x&page=2"])
def test_page_and_since_are_read_by_their_exact_names_as_the_app_reads_them(site, query):
    """nginx's $arg_page reads PAGE= too: ?PAGE=2 was page 2 where the app gives page 1, ?Page=1 a redirect, ?PAGE=abc a
    404 for a feed that is there (found in review)."""
    server, app = site
    res, theirs = fetch(server.base, "/feed.rss" + query), app.test_client().get("/feed.rss" + query)
    assert res.status == theirs.status_code and res.body == theirs.data, query


@pytest.mark.parametrize("query", ["?page=2", "?pagex=0", "?mypage=0", "?page=2&page=0"])
def test_a_well_formed_page_or_another_parameter_is_no_400(site, query):
    server, app = site
    res, theirs = fetch(server.base, "/feed.rss" + query), app.test_client().get("/feed.rss" + query)
    assert res.status == theirs.status_code == 200, query


@pytest.mark.parametrize("query, vary", [("?page=2", "Accept-Encoding"),
                                         ("?since=2026-11-01T00:00:00Z", "Accept-Encoding"), ("?utm_source=x", VARY)])
def test_archive_pages_and_deltas_are_the_feed_for_browsers_too(site, query, vary):
    server, app = site
    res = fetch(server.base, "/feed.rss" + query, headers=CHROMIUM)
    theirs = app.test_client().get("/feed.rss" + query, headers=CHROMIUM)
    assert res.header("content-type") == theirs.headers["Content-Type"]
    assert res.header("vary") == theirs.headers["Vary"] == vary


@pytest.mark.parametrize("headers", [CHROMIUM, READERS["feedparser"], {"Accept-Encoding": "gzip", **CHROMIUM}],
                         ids=["page", "feed", "gzip-page"])
@pytest.mark.parametrize("path", ["/feed.rss", "/feed.rss?page=2", "/", "/style.css"])
def test_every_answer_has_one_vary_line_as_the_app_sends(site, headers, path):
    # gzip_vary would add a line of its own beside the feeds' Vary; some caches read only the first.
    conn = http.client.HTTPConnection("127.0.0.1", site[0].port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        lines = [value for name, value in conn.getresponse().getheaders() if name.lower() == "vary"]
    finally:
        conn.close()
    assert lines == [site[1].test_client().get(path, headers=headers).headers["Vary"]]


def test_with_the_page_deleted_from_try_files_as_the_readme_says_browsers_get_the_feed(tmp_path, monkeypatch):
    import tests.http_helpers

    conf = tests.http_helpers.NGINX_CONF.read_text(encoding="utf-8")
    assert conf.count("$feedsvc_page$feedsvc_preview ") == 3  # the three try_files lines
    (tmp_path / "no-page.conf").write_text(conf.replace("$feedsvc_page$feedsvc_preview ", "$feedsvc_page "), encoding="utf-8")
    monkeypatch.setattr(tests.http_helpers, "NGINX_CONF", tmp_path / "no-page.conf")
    corpus(tmp_path / "articles", 3)
    run_build(tmp_path / "articles", tmp_path / "export", tmp_path / "state.sqlite3")
    server = Nginx(tmp_path / "export", tmp_path)
    try:
        for path, media in (("/feed.rss", "rss"), ("/category/c1/feed.json", "json")):
            res = fetch(server.base, path, headers=CHROMIUM)
            assert (res.status, res.header("content-type")) == (200, MEDIA_TYPES[media]), path
    finally:
        server.stop()

"""A person's view of the static export: Chromium and Firefox (Debian's, headless) open a feed's URL served by nginx
with deploy/nginx.conf and get the feed's page, as from the app; feed readers there get the feed (test_readers.py)."""
from __future__ import annotations

import re

import feedparser
import pytest

from feedsvc.preview import VARY
from tests.bidi import Firefox
from tests.conftest import SAMPLE_ARTICLES
from tests.http_helpers import Nginx, fetch, free_port
from tests.test_browser import ARTIFACTS, CHROMIUM, FLAGS
from tests.test_export import run_build
from tests.test_preview import POLITICS

pytestmark = pytest.mark.e2e

FEEDS = [("/feed.rss", "feedsvc"), (f"/category/{POLITICS}/feed.atom", "feedsvc — سياسة")]
# A name that is not localhost: Chromium resolves it to 127.0.0.1 (and nothing else) and, the origin not being
# potentially trustworthy, sends no Fetch Metadata, so nginx can tell the navigation only by its Accept header.
NAME = "feeds.test"
RESOLVER = f"--host-resolver-rules=MAP {NAME} 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
# An access-log line (nginx's combined format) of a request Firefox made: its path and status.
FIREFOX_AGENT = re.compile(r'"GET (\S+) HTTP/1\.1" (\d{3}) .*Firefox/[\d.]+')
PAGE = """() => ({
    type: document.contentType, dir: document.documentElement.dir, title: document.querySelector('h1').innerText,
    address: document.querySelector('.subscribe code').innerText,
    items: [...document.querySelectorAll('.articles li a')].map(a => a.href),
    styled: [...document.styleSheets].some(sheet => sheet.href.endsWith('/style.css') && sheet.cssRules.length > 0),
})"""


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """nginx serving a `feedsvc build` export of the sample whose SITE_URL has the given host, one per host."""
    servers: dict[str, tuple[Nginx, str]] = {}

    def serve(host: str) -> tuple[Nginx, str]:
        if host not in servers:
            folder = tmp_path_factory.mktemp("export-browsers")
            port = free_port()
            run_build(SAMPLE_ARTICLES, folder / "export", folder / "state.sqlite3", SITE_URL=f"http://{host}:{port}")
            servers[host] = Nginx(folder / "export", folder, port=port), f"http://{host}:{port}"
        return servers[host]

    yield serve
    for server, _ in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        flags = [flag for flag in FLAGS if not flag.startswith("--host-resolver-rules=")] + [RESOLVER]
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        yield browser
        browser.close()


def entries(base: str, path: str) -> list[str]:
    """The links of the feed's items, as a feed reader gets them."""
    return [e.link for e in feedparser.parse(fetch(base, path).body).entries]


@pytest.mark.parametrize("host", ["127.0.0.1", NAME], ids=["with-fetch-metadata", "by-accept-alone"])
@pytest.mark.parametrize("path, title", FEEDS)
def test_a_feed_of_the_export_opened_in_chromium_is_its_page(exports, chromium, host, path, title):
    nginx, site = exports(host)
    page = chromium.new_page(viewport={"width": 1000, "height": 900})
    messages = []
    page.on("console", lambda message: messages.append(message.text))
    try:
        response = page.goto(site + path)
        sent = response.request.all_headers()
        assert ("sec-fetch-dest" in sent) is (host == "127.0.0.1"), sent  # the second asks by Accept alone
        assert response.status == 200 and response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.headers["vary"] == VARY
        shown = page.evaluate(PAGE)
        assert shown["type"] == "text/html" and shown["dir"] == "rtl" and shown["title"] == title
        assert shown["address"] == site + path and shown["styled"]
        assert shown["items"] == entries(nginx.base, path) and len(shown["items"]) >= 5
        assert not [m for m in messages if "Content Security Policy" in m or "XSLT" in m], messages
        if host != "127.0.0.1" and path == "/feed.rss":
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "preview-nginx-chromium.png"), full_page=True)
    finally:
        page.close()


@pytest.mark.parametrize("path, title", FEEDS)
def test_a_feed_of_the_export_opened_in_firefox_is_its_page_not_a_download(exports, tmp_path, path, title):
    nginx, _ = exports("127.0.0.1")
    with Firefox(tmp_path / "profile") as browser:
        browser.navigate(nginx.base + path)
        shown = browser.evaluate(f"({PAGE})()")
    assert shown["type"] == "text/html" and shown["dir"] == "rtl" and shown["title"] == title
    assert shown["address"] == nginx.base + path and shown["styled"]
    assert shown["items"] == entries(nginx.base, path)
    # nginx's access log: Firefox asked for the feed's URL and was answered 200, then fetched the stylesheet.
    seen = FIREFOX_AGENT.findall((nginx.log_path.parent / "logs" / "access.log").read_text(encoding="utf-8", errors="replace"))
    assert (path, "200") in seen and ("/style.css", "200") in seen, seen

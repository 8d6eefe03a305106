"""A person's view in Debian's headless Firefox, driven over WebDriver BiDi: a feed opened in it is a page."""
from __future__ import annotations

import re
from urllib.parse import unquote

import pytest

from tests.bidi import Firefox, png_pixels
from tests.conftest import ROOT, SAMPLE_ARTICLES
from tests.http_helpers import Server

pytestmark = pytest.mark.e2e

ARTIFACTS = ROOT / "test-artifacts"
# An access-log line of a request Firefox made: its path and status (the rest of the format may vary).
FIREFOX_AGENT = re.compile(r'"GET (\S+) HTTP/1\.1" (\d{3}) .*Firefox/[\d.]+')


@pytest.fixture(scope="module")
def firefox(tmp_path_factory):
    folder = tmp_path_factory.mktemp("firefox")
    server = Server(SAMPLE_ARTICLES, folder / "state.sqlite3")
    try:
        with Firefox(folder / "profile") as browser:
            yield server, browser
    finally:
        server.stop()


@pytest.mark.parametrize("path, title", [("/feed.rss", "feedsvc"), ("/category/%D8%B3%D9%8A%D8%A7%D8%B3%D8%A9/feed.atom", "feedsvc — سياسة")])
def test_a_feed_opened_in_firefox_is_a_right_to_left_page_not_a_download(firefox, path, title):
    server, browser = firefox
    browser.set_viewport(1000, 900)
    browser.navigate(server.base + path)
    shown = browser.evaluate(
        """({
            type: document.contentType, url: location.href, dir: document.documentElement.dir,
            direction: getComputedStyle(document.querySelector('.articles .item[lang=ar]')).direction,
            title: document.querySelector('h1').innerText,
            address: document.querySelector('.subscribe code').innerText,
            items: [...document.querySelectorAll('.articles li a')].map(a => a.href),
        })"""
    )
    assert shown["type"] == "text/html" and shown["url"] == server.base + path
    assert shown["dir"] == shown["direction"] == "rtl" and shown["title"] == title
    assert shown["address"] == server.base + path
    assert shown["items"] and all(href.startswith(server.base + "/articles/") for href in shown["items"])
    # The server's access log: Firefox asked for the feed's URL and was answered 200, then fetched the page's parts.
    seen = FIREFOX_AGENT.findall(server.output())
    assert ("/style.css", "200") in seen
    # The log may show a path percent-encoded, decoded, or (gunicorn's WSGI strings) its UTF-8 read as Latin-1.
    forms = {path, unquote(path), unquote(path).encode("utf-8").decode("latin-1")}
    assert any(status == "200" and asked in forms for asked, status in seen), seen
    if path == "/feed.rss":
        assert ("/favicon.ico", "200") in seen
        ARTIFACTS.mkdir(exist_ok=True)
        browser.screenshot(ARTIFACTS / "preview-firefox.png")


@pytest.mark.parametrize("path", ["/", "/feed.rss"])
@pytest.mark.parametrize("width", [390, 1000])
def test_in_firefox_each_number_of_a_mixed_list_is_drawn_beside_its_own_item(firefox, path, width):
    server, browser = firefox
    browser.set_viewport(width, 900)
    browser.navigate(server.base + path)
    assert browser.evaluate("document.documentElement.scrollWidth") <= width
    lines = browser.evaluate(
        """[...document.querySelectorAll('.articles .item')].map(item => {
            const range = document.createRange();
            range.selectNodeContents(item);
            const line = range.getClientRects()[0];
            return [item.lang, line.right + scrollX, line.top + scrollY, line.height];
        })"""
    )
    assert {lang for lang, *_ in lines} == {"ar", "en"}
    for lang, right, top, height in lines:
        # The page is right to left: the number is drawn in the 24 px just right of its item's first line.
        gutter = png_pixels(browser.screenshot(box=(right + 1, top, 24, height)))
        ink = sum(1 for row in gutter for pixel in row if sum(pixel[:3]) < 3 * 160)
        assert ink >= 5, (lang, right, top, ink)

"""A person's view: headless Chromium opens the home page and an Arabic article page."""
from __future__ import annotations

import shutil

import pytest

from tests.conftest import ROOT, SAMPLE_ARTICLES
from tests.http_helpers import Server

pytestmark = pytest.mark.e2e

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without these, Chromium on a closed network keeps trying to reach Google's hosts.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    server = Server(SAMPLE_ARTICLES, tmp_path_factory.mktemp("browser") / "state.sqlite3")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            yield server, page
            browser.close()
    finally:
        server.stop()


def test_home_page_shows_the_site_and_its_categories(browser_page):
    server, page = browser_page
    page.goto(server.base + "/")
    assert page.locator("h1").first.is_visible()
    assert page.get_by_role("link", name="سياسة").first.is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=True)


def test_arabic_article_is_laid_out_right_to_left_with_its_title_visible(browser_page):
    server, page = browser_page
    page.goto(server.base + "/articles/000_4c2ff0435fbab79d")
    title = page.locator("article h1")
    assert title.is_visible()
    assert title.inner_text().startswith("زيارة مسؤول أمني روسي لطهران")
    layout = page.evaluate(
        """() => {
            const h1 = document.querySelector('article h1');
            const p = document.querySelector('article .body p');
            const box = h1.getBoundingClientRect();
            const range = document.createRange();
            range.selectNodeContents(h1);
            const line = range.getClientRects()[0];
            const para = document.createRange();
            para.selectNodeContents(p);
            const pline = para.getClientRects()[0];
            return {
              htmlDir: document.documentElement.dir,
              direction: getComputedStyle(h1).direction,
              bodyDirection: getComputedStyle(p).direction,
              titleRight: line.right, boxRight: box.right, titleLeft: line.left, boxLeft: box.left,
              paraRight: pline.right, paraBoxRight: p.getBoundingClientRect().right,
              inView: box.top >= 0 && box.bottom <= window.innerHeight && box.width > 0,
            };
        }"""
    )
    assert layout["htmlDir"] == "rtl"
    assert layout["direction"] == layout["bodyDirection"] == "rtl"
    # Right to left: each first line starts at the right edge of its box.
    assert abs(layout["titleRight"] - layout["boxRight"]) <= 2, layout
    assert abs(layout["paraRight"] - layout["paraBoxRight"]) <= 2, layout
    assert layout["inView"], layout
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "article-ar.png"), full_page=False)


def test_an_english_article_on_the_same_site_is_left_to_right(browser_page):
    server, page = browser_page
    page.goto(server.base + "/articles/tech/2026-10-22-open-data-portal")
    direction = page.evaluate("() => [document.documentElement.dir, getComputedStyle(document.querySelector('article h1')).direction]")
    assert direction == ["ltr", "ltr"]

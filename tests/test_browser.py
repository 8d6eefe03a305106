"""A person's view: headless Chromium opens the home page and an Arabic article page."""
from __future__ import annotations

import shutil
import struct
import threading
import zlib
from http.server import ThreadingHTTPServer

import pytest

from tests.conftest import ROOT, SAMPLE_ARTICLES, write
from tests.http_helpers import QuietHandler, Server

pytestmark = pytest.mark.e2e

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without these, Chromium on a closed network keeps trying to reach Google's hosts; the resolver rule answers
# every name but 127.0.0.1 with "not found" without a DNS query (accounts.google.com, update.googleapis.com).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


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


def test_a_feed_opened_in_chromium_is_a_right_to_left_page_with_its_items_and_how_to_subscribe(browser_page):
    server, page = browser_page
    messages = []
    page.on("console", lambda message: messages.append(message.text))
    response = page.goto(server.base + "/feed.rss")
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "Sec-Fetch-Dest" in response.headers["vary"]
    shown = page.evaluate(
        """() => ({
            dir: document.documentElement.dir,
            direction: getComputedStyle(document.querySelector('.articles .item[lang=ar]')).direction,
            title: document.querySelector('h1').innerText,
            address: document.querySelector('.subscribe code').innerText,
            items: [...document.querySelectorAll('.articles li')].map(li => [li.querySelector('a').href, li.querySelector('time').innerText]),
            others: [...document.querySelectorAll('.subscribe a')].map(a => a.innerText),
        })"""
    )
    assert shown["dir"] == "rtl" and shown["direction"] == "rtl" and shown["title"] == "feedsvc"
    assert shown["address"] == server.base + "/feed.rss"
    assert len(shown["items"]) == 11 and all(href.startswith(server.base + "/articles/") and when.endswith("UTC") for href, when in shown["items"])
    assert shown["others"][:3] == ["Atom", "JSON Feed", "OPML"]
    assert page.get_by_role("link", name="زيارة مسؤول أمني روسي لطهران تزامنًا مع التهديدات الأميركية").is_visible()
    assert not [m for m in messages if "XSLT" in m or "Content Security Policy" in m], messages
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "preview-chromium.png"), full_page=True)


@pytest.mark.parametrize("path", ["/", "/feed.rss", "/category/technology/feed.atom", "/articles/000_4c2ff0435fbab79d",
                                  "/articles/tech/2026-10-22-open-data-portal"])
def test_pages_fit_a_390_px_wide_phone_screen(browser_page, path):
    server, page = browser_page
    narrow = page.context.browser.new_page(viewport={"width": 390, "height": 844})
    try:
        narrow.goto(server.base + path)
        assert narrow.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        narrow.close()


def _png(width: int, height: int) -> bytes:
    """A grey PNG of this size (https://www.w3.org/TR/png/): one IDAT of unfiltered RGB rows."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = (b"\x00" + b"\x80\x80\x80" * width) * height
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _table(header: list[str], row: list[str]) -> str:
    """A GFM table of one header row and one body row."""
    return "\n".join("| " + " | ".join(cells) + " |" for cells in (header, ["---"] * len(header), row)) + "\n"


MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
ARABIC_MONTHS = ["يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس", "سبتمبر", "أكتوبر"]


@pytest.fixture(scope="module")
def wide_site(tmp_path_factory):
    """Articles with a 12-column table (English), a 10-column one (Arabic, a right-to-left page) and a 1200×300 image
    in their bodies, served with the image from a loopback server of its own (a body's <img> names an http(s) URL)."""
    image = _png(1200, 300)

    class Image(QuietHandler):
        def do_GET(self):  # noqa: N802 (the name http.server calls)
            self.send_bytes(image, "image/png")

    images = ThreadingHTTPServer(("127.0.0.1", 0), Image)
    threading.Thread(target=images.serve_forever, daemon=True).start()
    folder = tmp_path_factory.mktemp("wide") / "articles"
    front = "---\ntitle: {title}\ncategory: {category}\nlang: {lang}\ndate: 2026-01-0{day}T00:00:00Z\n---\n"
    write(folder, "wide-table.md", front.format(title="Rainfall by month", category="weather", lang="en", day=1)
          + "Rainfall in millimetres, by month.\n\n" + _table(MONTHS, [f"{10 * n + 3}.5 mm" for n in range(12)]))
    write(folder, "wide-table-ar.md", front.format(title="الأمطار حسب الشهر", category="طقس", lang="ar", day=2)
          + "كمية الأمطار بالمليمتر في كل شهر.\n\n" + _table(ARABIC_MONTHS, [f"{10 * n + 3}٫5 مم" for n in range(10)]))
    write(folder, "wide-image.md", front.format(title="A wide photograph", category="weather", lang="en", day=3)
          + f"The valley at dawn.\n\n![The valley at dawn](http://127.0.0.1:{images.server_port}/valley.png)\n")
    server = Server(folder, folder.parent / "state.sqlite3")
    try:
        yield server
    finally:
        server.stop()
        images.shutdown()
        images.server_close()


@pytest.mark.parametrize("path", ["/articles/wide-table", "/articles/wide-table-ar", "/articles/wide-image"])
def test_an_article_with_a_wide_table_or_image_fits_a_390_px_wide_phone_screen(browser_page, wide_site, path):
    """A body's 12-column table made the page 1426 px wide at 390 px, a 10-column one in an Arabic article 696 px (where
    a right-to-left page cannot even scroll to it), a 1200×300 image 1216 px. A table scrolls in its own box, from its
    first column: on the right in a right-to-left article, its last column reached by scrolling left. An image is
    scaled down to the text's width, its proportions kept."""
    narrow = browser_page[1].context.browser.new_page(viewport={"width": 390, "height": 844})
    try:
        narrow.goto(wide_site.base + path)  # after the load event: the image is in
        found = narrow.evaluate("""() => {
            const body = document.querySelector('article .body'), box = body.getBoundingClientRect();
            const found = {page: document.documentElement.scrollWidth, left: box.left, right: box.right};
            const table = body.querySelector('table'), img = body.querySelector('img');
            if (table) {
                const cells = [...table.querySelectorAll('th')].map(th => th.getBoundingClientRect());
                const shown = table.getBoundingClientRect(), first = cells[0];
                Object.assign(found, {direction: getComputedStyle(table).direction, overflow: getComputedStyle(table).overflowX,
                                      box: table.clientWidth, wide: table.scrollWidth, tableLeft: shown.left, tableRight: shown.right,
                                      firstLeft: first.left, firstRight: first.right});
                table.scrollLeft = (found.direction === 'rtl' ? -1 : 1) * (table.scrollWidth - table.clientWidth);
                const last = [...table.querySelectorAll('th')].pop().getBoundingClientRect();
                Object.assign(found, {lastLeft: last.left, lastRight: last.right});
            }
            if (img) Object.assign(found, {loaded: img.complete && img.naturalWidth === 1200, width: img.width, height: img.height});
            return found;
        }""")
        assert found["page"] <= 390, found
        assert 0 <= found["left"] and found["right"] <= 390, found
        if "table" in path:
            assert found["overflow"] == "auto" and found["wide"] > found["box"], found
            assert found["left"] - 1 <= found["tableLeft"] and found["tableRight"] <= found["right"] + 1, found
            if path.endswith("-ar"):  # right to left: the first column at the box's right, the last reached leftwards
                assert found["direction"] == "rtl" and abs(found["firstRight"] - found["tableRight"]) <= 4, found
                assert abs(found["lastLeft"] - found["tableLeft"]) <= 4, found
            else:
                assert found["direction"] == "ltr" and abs(found["firstLeft"] - found["tableLeft"]) <= 4, found
                assert abs(found["lastRight"] - found["tableRight"]) <= 4, found
        else:
            assert found["loaded"] and found["width"] <= found["right"] - found["left"], found
            assert abs(found["height"] * 4 - found["width"]) <= 4, found  # 1200×300: still four times as wide as high
    finally:
        narrow.close()


@pytest.mark.parametrize("width", [390, 1000])
def test_in_a_list_of_arabic_and_english_items_each_number_sits_beside_its_own_item(browser_page, width):
    server, page = browser_page
    view = page.context.browser.new_page(viewport={"width": width, "height": 900})
    try:
        view.goto(server.base + "/")
        # Chromium reports the box of each ::marker (the number) through the DevTools protocol.
        cdp = view.context.new_cdp_session(view)
        root = cdp.send("DOM.getDocument", {"depth": -1, "pierce": True})["root"]
        rows = []
        for li in _nodes(root, lambda n: n.get("nodeName") == "LI" and "articles" in _attribute(n, "class", parent=True)):
            marker = next(p for p in li.get("pseudoElements", []) if p.get("pseudoType") == "marker")
            number = _box(cdp, marker["nodeId"])
            item = next(c for c in li["children"] if c.get("nodeName") == "SPAN")
            cdp.send("DOM.setAttributeValue", {"nodeId": item["nodeId"], "name": "data-row", "value": str(len(rows))})
            rows.append((_attribute(item, "lang"), number))
        lines = view.evaluate(
            """() => [...document.querySelectorAll('[data-row]')].map(item => {
                const range = document.createRange();
                range.selectNodeContents(item);
                const line = range.getClientRects()[0];
                return [line.left, line.right, line.top, line.bottom];
            })"""
        )
        assert {lang for lang, _ in rows} == {"ar", "en"} and len(rows) == 11
        for (lang, (left, right, top, bottom)), (line_left, line_right, line_top, line_bottom) in zip(rows, lines):
            # The home page is right to left: every number on the right, touching its item's first line, on that line.
            assert line_right - 1 <= left <= line_right + 8, (lang, left, line_right)
            assert line_top - 2 <= (top + bottom) / 2 <= line_bottom + 2, (lang, top, bottom, line_top, line_bottom)
            assert right <= width
    finally:
        view.close()


def _nodes(node: dict, wanted) -> list[dict]:
    found = [node] if wanted(node) else []
    for child in node.get("children", []):
        child["parent"] = node
        found += _nodes(child, wanted)
    return found


def _attribute(node: dict, name: str, parent: bool = False) -> str:
    node = node.get("parent", {}) if parent else node
    pairs = node.get("attributes", [])
    return dict(zip(pairs[::2], pairs[1::2])).get(name, "")


def _box(cdp, node_id: int) -> tuple[float, float, float, float]:
    quad = cdp.send("DOM.getBoxModel", {"nodeId": node_id})["model"]["border"]
    return quad[0], quad[2], quad[1], quad[5]


def test_a_wide_code_block_in_a_right_to_left_article_scrolls_in_its_own_box(browser_page, tmp_path):
    """At 320 px a long command in an Arabic article ran past the page's edge, where a right-to-left page cannot scroll:
    its end was lost (WCAG 1.4.10). The block scrolls in its own box; the page does not scroll sideways. Its footnote's
    way back keeps its name for a screen reader, and the lead image its alt."""
    from tests.conftest import write

    folder = tmp_path / "articles"
    write(folder, "code.md", "---\ntitle: أمر طويل\ncategory: تقنية\ndate: 2026-01-01T00:00:00Z\nimage: /img/x.png\n"
                             "image_alt: مجلس الوزراء في جلسته\n---\nنص المقال هنا مع حاشية[^1].\n\n```\ncurl https://api.example.com/v1/"
                             + "datasets/" * 12 + "export?format=csv\n```\n\n[^1]: المصدر.\n")
    server = Server(folder, tmp_path / "state.sqlite3")
    narrow = browser_page[1].context.browser.new_page(viewport={"width": 320, "height": 700})
    try:
        narrow.goto(server.base + "/articles/code")
        found = narrow.evaluate("""() => {
            const pre = document.querySelector('article pre');
            return {page: document.documentElement.scrollWidth, box: pre.clientWidth, code: pre.scrollWidth,
                    overflow: getComputedStyle(pre).overflowX};
        }""")
        assert found["page"] <= 320 and found["code"] > found["box"] and found["overflow"] == "auto", found
        assert narrow.get_by_role("link", name="Back to reference 1").count() == 1
        assert narrow.get_by_role("img", name="مجلس الوزراء في جلسته").count() == 1
    finally:
        narrow.close()
        server.stop()

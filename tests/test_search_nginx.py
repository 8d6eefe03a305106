"""deploy/nginx.conf sends /search/ to a running `feedsvc serve` (search cannot be exported), all real processes:
nginx serving a `feedsvc build` export, feedsvc answering the searches with its own bytes and headers."""
from __future__ import annotations

import http.client
import os
import re
from urllib.parse import quote_plus

import feedparser
import pytest

from tests.conftest import SAMPLE_ARTICLES
from tests.http_helpers import NGINX, NGINX_CONF, Process, Server, fetch, free_port
from tests.test_export import run_build

pytestmark = pytest.mark.e2e

SEED_TITLE = "زيارة مسؤول أمني روسي لطهران تزامنًا مع التهديدات الأميركية"


class NginxWithSearch(Process):
    """deploy/nginx.conf with its listen, root and search upstream lines set, as a deployer would."""

    def __init__(self, export, workdir, port: int, search: str):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        conf = NGINX_CONF.read_text(encoding="utf-8")
        for pattern, line in ((r"listen \S+;", f"listen 127.0.0.1:{port};"), (r"root \S+;", f"root {export};"),
                              (r"server 127\.0\.0\.1:\d+;(?=\s+# feedsvc: where `feedsvc serve` listens)", f"server {search};")):
            conf, count = re.subn(rf"^(\s*){pattern}", rf"\g<1>{line}", conf, count=1, flags=re.MULTILINE)
            assert count == 1, pattern
        for folder in ("logs", "temp"):
            (workdir / folder).mkdir(exist_ok=True)
        (workdir / "nginx.conf").write_text(conf, encoding="utf-8")
        extra = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
        super().__init__([NGINX, "-p", f"{workdir}/", "-c", str(workdir / "nginx.conf"), "-g", extra], workdir / "nginx.log", "/feeds.opml")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("search-nginx")
    port = free_port()
    base = f"http://127.0.0.1:{port}"  # links in the export and in search answers name nginx
    run_build(SAMPLE_ARTICLES, folder / "export", folder / "export-state.sqlite3", SITE_URL=base)
    app = Server(SAMPLE_ARTICLES, folder / "state.sqlite3", env={"FEEDSVC_SITE_URL": base, "FEEDSVC_PROXY_HOPS": "1"})
    work = folder / "nginx"
    work.mkdir()
    nginx = NginxWithSearch(folder / "export", work, port, f"127.0.0.1:{app.port}")
    path = f"/search/feed.atom?q={quote_plus('الامين')}"
    for _ in range(300):  # the builder indexes a moment after its first build
        if feedparser.parse(fetch(app.base, path).body).entries:
            break
        import time
        time.sleep(0.1)
    yield app, nginx
    nginx.stop()
    app.stop()


def raw_headers(base: str, path: str, headers: dict | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        res = conn.getresponse()
        return res.status, res.getheaders(), res.read()
    finally:
        conn.close()


@pytest.mark.parametrize("path", [f"/search/feed.rss?q={quote_plus('مسئول')}", f"/search/feed.atom?q={quote_plus('الأَمِين')}",
                                  f"/search/feed.json?q={quote_plus('طهـران')}", f"/search/?q={quote_plus('هنيه')}"])
def test_nginx_sends_search_to_feedsvc_which_answers_with_its_own_bytes_and_headers(deployed, path):
    app, nginx = deployed
    status, headers, body = raw_headers(nginx.base, path)
    direct = fetch(app.base, path)
    assert status == 200 and body == direct.body and SEED_TITLE.encode() in body
    names = [name.lower() for name, _ in headers]
    for name in ("cache-control", "etag", "last-modified", "content-type", "x-content-type-options", "vary"):
        assert names.count(name) == 1, name  # the app's header, not doubled by the server block's add_header
    sent = dict((name.lower(), value) for name, value in headers)
    for name in ("cache-control", "etag", "last-modified", "content-type", "vary"):
        assert sent[name] == direct.header(name), name


def test_a_search_revalidates_through_nginx(deployed):
    app, nginx = deployed
    path = f"/search/feed.rss?q={quote_plus('مسئول')}"
    etag = fetch(nginx.base, path).header("etag")
    again = fetch(nginx.base, path, headers={"If-None-Match": etag})
    assert again.status == 304 and again.body == b""


def test_a_bad_search_is_feedsvcs_400_through_nginx(deployed):
    _, nginx = deployed
    res = fetch(nginx.base, "/search/feed.rss?q=")
    assert res.status == 400 and res.body.startswith(b"Empty search") and res.header("cache-control") == "no-store"


def test_everything_else_still_comes_from_the_export(deployed):
    _, nginx = deployed
    res = fetch(nginx.base, "/feed.rss")
    assert res.status == 200 and b"<rss" in res.body
    assert fetch(nginx.base, "/search.rss").status == 404

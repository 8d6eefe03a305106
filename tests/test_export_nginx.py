"""End to end: Debian's nginx with deploy/nginx.conf serves the coded forms `feedsvc build` chose — brotli
where a .br is written, gzip where only a .gz is — gzips on the fly the cold pages written without any
(article and archive pages), sends favicon.ico as it is, and never serves the export's own files."""
from __future__ import annotations

import gzip
from urllib.parse import quote

import brotli
import pytest

from feedsvc.building.export import MANIFEST, read_manifest
from tests.conftest import SAMPLE_ARTICLES, write
from tests.http_helpers import Nginx, fetch, free_port
from tests.test_export import run_build

pytestmark = pytest.mark.e2e

BOTH = "gzip, deflate, br"  # what a browser sends
DECODE = {"br": brotli.decompress, "gzip": gzip.decompress, None: lambda body: body}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nginx-forms")
    port = free_port()
    run_build(SAMPLE_ARTICLES, folder / "export", folder / "state.sqlite3", SITE_URL=f"http://127.0.0.1:{port}", FEED_MAX_ITEMS=4)
    server = Nginx(folder / "export", folder, port=port)
    yield server, folder / "export"
    server.stop()


def url(path: str) -> str:
    path, _, query = path.partition("?")
    return "/" + quote(path, safe="/") + (f"?{query}" if query else "")


def test_each_file_comes_in_the_best_form_it_was_written_in_or_gzipped_by_nginx(site):
    server, out = site
    seen = set()
    for name, entry in read_manifest(out)["files"].items():
        path, forms = entry[0], entry[4]
        if path.endswith("#preview"):
            continue  # a feed's page for browsers: tested in test_nginx.py
        plain = fetch(server.base, url(path))
        assert plain.status == 200 and plain.header("content-encoding") is None and plain.body == (out / name).read_bytes()
        # no coded form written: nginx gzips text as it is asked for (article and archive pages), not favicon.ico
        fly = "gzip" if not forms and not path.endswith(".ico") else None
        for accept, best in ((BOTH, "br" if "br" in forms else "gzip" if "gzip" in forms else fly),
                             ("gzip", "gzip" if "gzip" in forms else fly)):
            res = fetch(server.base, url(path), headers={"Accept-Encoding": accept})
            assert res.header("content-encoding") == best, (path, accept)
            assert DECODE[best](res.body) == plain.body, (path, accept)
            if best and not forms:
                assert not (out / (name + ".gz")).exists() and len(res.body) < len(plain.body)
            seen.add((path.partition("?")[0] if "?page=" in path else path.partition("/")[0] if path.startswith("articles/")
                      else path.rpartition(".")[2], best))
    # archive and article pages gzipped by nginx, whole feeds and pages in brotli, favicon.ico as it is
    assert {("feed.rss", "gzip"), ("category/سياسة/feed.json", "gzip"), ("articles", "gzip"), ("rss", "br"), ("css", "br"),
            ("ico", None)} <= seen
    assert not {("feed.rss", "br"), ("articles", "br")} & seen


def test_a_file_being_written_and_the_manifest_are_never_served(site):
    server, out = site
    write(out, ".feed.rss.123.tmp", "half a file")
    assert fetch(server.base, "/" + MANIFEST).status == 404
    assert fetch(server.base, "/.feed.rss.123.tmp").status == 404
    assert fetch(server.base, "/.feed.rss.123").status == 404
    (out / ".feed.rss.123.tmp").unlink()


def test_every_item_link_of_an_exported_feed_is_served_whatever_its_ids_characters(tmp_path):
    # An id with "?" was left out of the export ("not a path a file can have") while its feeds linked to it: a 404.
    import json

    articles, port = tmp_path / "articles", free_port()
    ids = ["q?x=1", "a#b", "50%off", "two words", "سياسة/خبر?"]
    for n, id_ in enumerate(ids):
        write(articles, f"a{n}.md", f"---\nid: \"{id_}\"\ntitle: Story {n}\ncategory: News\ndate: 2026-11-0{n + 1} 10:00\n---\nBody {n}.\n")
    run_build(articles, tmp_path / "export", tmp_path / "state.sqlite3", SITE_URL=f"http://127.0.0.1:{port}")
    server = Nginx(tmp_path / "export", tmp_path, port=port)
    try:
        items = json.loads(fetch(server.base, "/feed.json").body)["items"]
        assert len(items) == len(ids)
        for item in items:
            page = fetch(server.base, item["url"].removeprefix(server.base))
            assert page.status == 200 and item["title"].encode() in page.body, (item["url"], page.status)
    finally:
        server.stop()


def test_the_readmes_nginx_command_reads_the_shipped_config(tmp_path):
    # `-c deploy/nginx.conf` was looked for inside the -p folder: "open() .../deploy/nginx.conf failed".
    import re
    import shlex
    import subprocess

    from tests.http_helpers import NGINX, ROOT

    said = re.search(r"`(nginx -p (\S+) -c \S+)`", (ROOT / "README.md").read_text(encoding="utf-8"))
    assert said, "the README names the command that runs deploy/nginx.conf"
    command, prefix = said.groups()
    for folder in ("logs", "temp"):
        (tmp_path / folder).mkdir()
    line = command.replace(prefix, f"{tmp_path}/").replace("$PWD", str(ROOT))
    done = subprocess.run([NGINX if word == "nginx" else word for word in shlex.split(line)] + ["-t"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr

"""The static export: every resource as a file with .gz and .br beside it, switched into place whole,
rewriting only what changed."""
from __future__ import annotations

import brotli
import gzip
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedsvc.cli import main
from feedsvc.building.export import ExportError, export_resources, export_snapshot
from feedsvc.urls import EXPORT_PREVIEW, export_file
from feedsvc.resource import Rendered
from tests.conftest import ROOT, write

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc)


def run_build(articles: Path, out: Path, state: Path, **settings) -> str:
    """`feedsvc build` in this process, with settings as FEEDSVC_* variables; its output."""
    env = {"FEEDSVC_STATE_PATH": str(state), "FEEDSVC_CONFIG": str(state.parent / "absent.toml"),
           "FEEDSVC_SETTLE_MS": "0", **{f"FEEDSVC_{name}": str(value) for name, value in settings.items()}}
    result = CliRunner().invoke(main, ["build", "--out", str(out), "--articles", str(articles)], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def corpus(folder: Path, n: int, body: str = "Body") -> None:
    """n dated Markdown articles in five categories."""
    for i in range(n):
        write(folder, f"a{i:03}.md", f"---\ntitle: Story {i}\ncategory: C{i % 5}\ndate: {(T0 + timedelta(hours=i)).isoformat()}\n---\n"
                                     f"{body} {i}, long enough to read. " * 8 + "\n")


def files(folder: Path) -> dict[str, os.stat_result]:
    """Every file under folder by relative path, with its stat."""
    return {p.relative_to(folder).as_posix(): p.stat() for p in folder.rglob("*") if p.is_file()}


def contents(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def versions(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.version-*"))


@pytest.fixture
def published(make_publisher, sample_dir):
    publisher = make_publisher(sample_dir, FEED_MAX_ITEMS=4)  # several archive pages
    assert publisher.refresh()
    return publisher


@pytest.mark.parametrize("path, media, name", [
    ("", "text/html", "index.html"),
    ("category/سياسة/", "text/html", "category/سياسة/index.html"),
    ("category/tech/feed.atom", "application/atom+xml", "category/tech/feed.atom"),
    ("articles/economy/2026-rates", "text/html", "articles/economy/2026-rates.html"),
    ("articles/notes.rss", "text/html", "articles/notes.rss.html"),
    ("feed.rss?page=3", "application/rss+xml", "feed.rss.page-3"),
    ("feed.xsl", "text/xsl", "feed.xsl"),
    ("feed.rss#preview", "text/html", "feed.rss.html"),
    ("category/سياسة/feed.json#preview", "text/html", "category/سياسة/feed.json.html"),
    ("feed.rss?page=2#preview", "text/html", None),
    ("articles/feed.rss#preview", "text/html", "articles/feed.rss#preview.html"),  # an article, not a feed's page
    ("feeds.opml#preview", "text/html", None),
    ("feed.atom#preview", "application/atom+xml", None),
    ("articles/a/../../etc", "text/html", None),
    ("articles/a//b", "text/html", None),
    ("articles/x/", "text/html", None),
    ("feed.rss?since=2026", "application/rss+xml", None),
    ("articles/" + "x" * 250, "text/html", None),
])
def test_each_url_has_one_file_that_nginx_serves_at_that_url(path, media, name):
    assert export_file(path, media) == name


def test_an_export_holds_every_resource_with_its_bytes_times_and_compressed_forms(published, tmp_path):
    resources = export_resources(published)
    assert "feed.atom?page=2" in resources and "category/سياسة/" in resources and "feeds.opml" in resources
    out = tmp_path / "export"
    result = export_snapshot(resources, out)
    assert out.is_symlink() and result.left_out == () and result.kept == 0
    for path, res in resources.items():
        target = out / export_file(path, res.media_type)
        assert target.read_bytes() == res.body, path
        assert gzip.decompress((target.parent / (target.name + ".gz")).read_bytes()) == res.body
        assert brotli.decompress((target.parent / (target.name + ".br")).read_bytes()) == res.body
        for suffix in ("", ".gz", ".br"):
            stat = (target.parent / (target.name + suffix)).stat()
            assert stat.st_mtime == res.last_modified.timestamp(), path  # nginx's Last-Modified is the app's
            assert stat.st_mode & 0o777 == 0o644
    assert len(files(out)) == 3 * len(resources)


def test_each_public_feed_has_its_page_for_browsers_beside_it_with_the_apps_bytes(make_app, sample_dir, tmp_path):
    from tests.test_preview import CHROMIUM

    app = make_app(sample_dir)
    resources = export_resources(app.extensions["feedsvc"])
    out = tmp_path / "export"
    export_snapshot(resources, out)
    feeds = [path for path, res in resources.items() if res.media_type.startswith("application/") and "?" not in path
             and res.media_type != "application/xml"]  # not the sitemaps
    assert len(feeds) == 3 * len(app.extensions["feedsvc"].snapshot.feeds) > 3
    client = app.test_client()
    for path in feeds:
        page = client.get("/" + path, headers=CHROMIUM)
        assert page.headers["Content-Type"] == "text/html; charset=utf-8", path
        assert resources[path + EXPORT_PREVIEW].body == (out / (path + ".html")).read_bytes() == page.data, path
        assert (out / (path + ".html")).stat().st_mtime == resources[path].last_modified.timestamp()
    assert not [p for p in resources if p.endswith(EXPORT_PREVIEW) and p.removesuffix(EXPORT_PREVIEW) not in feeds]


def test_an_unchanged_rebuild_rewrites_no_file(published, tmp_path):
    out = tmp_path / "export"
    export_snapshot(export_resources(published), out)
    before = files(out)
    published.refresh()
    result = export_snapshot(export_resources(published), out)
    after = files(out)
    assert result.written == 0 and result.kept == len(after)
    assert {p: (s.st_ino, s.st_mtime_ns) for p, s in after.items()} == {p: (s.st_ino, s.st_mtime_ns) for p, s in before.items()}


def test_a_changed_article_rewrites_only_the_files_it_is_in(make_publisher, articles_dir, tmp_path):
    corpus(articles_dir, 12)
    publisher = make_publisher(articles_dir, FEED_MAX_ITEMS=5)
    publisher.refresh()
    out = tmp_path / "export"
    old = export_resources(publisher)
    export_snapshot(old, out)
    before = files(out)
    write(articles_dir, "a003.md", (articles_dir / "a003.md").read_text(encoding="utf-8").replace("Body 3,", "Edited 3,"))
    publisher.refresh()
    new = export_resources(publisher)
    export_snapshot(new, out)
    after = files(out)
    changed = {p for p in after if after[p].st_ino != before[p].st_ino}
    moved = {p for p, r in new.items() if (r.body, r.last_modified) != (old[p].body, old[p].last_modified)}
    expected = {export_file(p, new[p].media_type) + s for p in moved for s in ("", ".gz", ".br")}
    assert changed == expected
    assert "articles/a003.html" in changed and "category/c3/feed.atom" in changed and "category/c3/feed.atom.html" in changed
    assert "category/c1/feed.atom" not in changed and "articles/a004.html" not in changed and "style.css" not in changed
    assert "category/c1/feed.atom.html" not in changed


def test_a_build_that_fails_midway_leaves_the_previous_export_as_it_was(published, tmp_path, monkeypatch):
    import feedsvc.building.export

    out = tmp_path / "export"
    export_snapshot(export_resources(published), out)
    target, before = os.readlink(out), contents(out)
    real, count = feedsvc.building.export.write_file, [0]

    def failing(path, data, mtime_ns):
        count[0] += 1
        if count[0] > 10:
            raise OSError(28, "No space left on device")
        real(path, data, mtime_ns)

    monkeypatch.setattr(feedsvc.building.export, "write_file", failing)
    changed = {path: Rendered(res.body + b"\n", res.media_type, res.last_modified) for path, res in export_resources(published).items()}
    with pytest.raises(OSError, match="No space"):
        export_snapshot(changed, out)
    assert os.readlink(out) == target and contents(out) == before
    assert versions(out) == [out.parent / target]  # the half-written version is gone


def test_a_build_killed_midway_leaves_the_previous_export_whole(tmp_path):
    articles, out, state = tmp_path / "articles", tmp_path / "export", tmp_path / "state.sqlite3"
    corpus(articles, 150)
    run_build(articles, out, state)
    target, before = os.readlink(out), contents(out)
    corpus(articles, 150, body="Edited")  # every article changes: the next build rewrites nearly everything
    # A real build in its own process, its writer slowed so that SIGKILL lands while it writes.
    code = ("import time, feedsvc.building.export as e; w = e.write_file\n"
            "e.write_file = lambda *a: (time.sleep(0.002), w(*a))\n"
            "from feedsvc.cli import main; main()")
    env = {**os.environ, "FEEDSVC_STATE_PATH": str(state), "FEEDSVC_SETTLE_MS": "0", "PYTHONPATH": str(ROOT),
           "FEEDSVC_CONFIG": str(tmp_path / "absent.toml")}
    proc = subprocess.Popen([sys.executable, "-c", code, "build", "--out", str(out), "--articles", str(articles)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not any(sum(1 for _ in v.rglob("*.html")) > 20 for v in versions(out) if v.name != target):
            assert proc.poll() is None and time.monotonic() < deadline, "the build ended before it could be killed"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert os.readlink(out) == target and contents(out) == before
    assert len(versions(out)) == 2  # the old one, and the half-written one
    run_build(articles, out, state)  # the next build finishes and clears the leftover
    assert b"Edited 3" in (out / "articles" / "a003.html").read_bytes()
    assert len(versions(out)) == 2  # the new one and the one before it


def test_old_versions_are_removed_and_the_one_before_kept(published, tmp_path):
    out = tmp_path / "export"
    resources = export_resources(published)
    for _ in range(4):
        export_snapshot(resources, out)
    current = out.parent / os.readlink(out)
    assert len(versions(out)) == 2 and current in versions(out)


def test_a_resource_that_cannot_be_a_file_is_left_out_and_named(tmp_path, caplog):
    page = Rendered(b"<p>x</p>", "text/html", T0)
    result = export_snapshot({"articles/a/../../../escape": page, "articles/fine": page}, tmp_path / "export")
    assert result.left_out == ("articles/a/../../../escape",)
    assert (tmp_path / "export" / "articles" / "fine.html").exists() and not (tmp_path / "escape.html").exists()
    assert "articles/a/../../../escape" in caplog.text


def test_a_folder_that_is_not_an_export_is_never_replaced(tmp_path):
    out = tmp_path / "site"
    write(out, "keep.html", "mine")
    with pytest.raises(ExportError, match="not an export"):
        export_snapshot({"feed.xsl": Rendered(b"x", "text/xsl", T0)}, out)
    assert (out / "keep.html").read_text() == "mine" and versions(out) == []


def test_build_writes_the_export_and_says_what_it_did(sample_dir, tmp_path):
    output = run_build(sample_dir, tmp_path / "export", tmp_path / "state.sqlite3")
    assert "files written" in output and "0 left out" in output
    assert (tmp_path / "export" / "category" / "سياسة" / "feed.atom.br").is_file()
    assert "0 files written" in run_build(sample_dir, tmp_path / "export", tmp_path / "state.sqlite3")


def test_a_build_that_cannot_read_the_articles_leaves_the_export_alone(sample_dir, tmp_path):
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    run_build(sample_dir, out, state)
    target = os.readlink(out)
    env = {"FEEDSVC_STATE_PATH": str(state), "FEEDSVC_CONFIG": str(tmp_path / "absent.toml")}
    result = CliRunner().invoke(main, ["build", "--out", str(out), "--articles", str(tmp_path / "gone")], env=env)
    assert result.exit_code == 1 and "left as it was" in result.output
    assert os.readlink(out) == target


def test_a_large_build_on_a_terminal_shows_progress(sample_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("feedsvc.cli._show_progress", lambda count: True)
    output = run_build(sample_dir, tmp_path / "export", tmp_path / "state.sqlite3")
    assert "Writing" in output


def test_build_tells_the_hub_of_exported_changes_only(articles_dir, tmp_path):
    from tests.test_websub import Hub

    hub = Hub()
    try:
        corpus(articles_dir, 3)
        out, state = tmp_path / "export", tmp_path / "state.sqlite3"
        run_build(articles_dir, out, state, WEBSUB_HUB=hub.url)
        first = sorted(p["hub.url"][0] for p in hub.pings)
        assert len(first) == 3 * 4 and "http://127.0.0.1:8000/category/c1/feed.atom" in first  # site-wide + three categories
        hub.pings.clear()
        run_build(articles_dir, out, state, WEBSUB_HUB=hub.url)
        assert hub.pings == []  # nothing changed
        write(articles_dir, "a001.md", (articles_dir / "a001.md").read_text(encoding="utf-8").replace("Body", "New"))
        run_build(articles_dir, out, state, WEBSUB_HUB=hub.url)
        site = "http://127.0.0.1:8000/"
        assert {p["hub.url"][0] for p in hub.pings} == {site + f"{where}feed.{fmt}" for where in ("", "category/c1/")
                                                         for fmt in ("rss", "atom", "json")}
    finally:
        hub.close()

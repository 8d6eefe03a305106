"""The static export: `feedsvc build` builds into the store, then writes into the export folder the files of
what changed since the build it holds — every resource, each feed's page for browsers and archive pages —
with the coded forms that pay beside them, each file replaced whole."""
from __future__ import annotations

import brotli
import gzip
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from feedsvc import create_app
from feedsvc.cli import main
from feedsvc.building.export import MANIFEST, ExportError, export_store, read_manifest
from feedsvc.building.exportfolder import LOCK
from feedsvc.resource import Rendered
from feedsvc.building.storewriter import Build, StoreWriter
from feedsvc.urls import EXPORT_PREVIEW as PREVIEW, export_file
from tests.conftest import ROOT, write

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc)
CHROMIUM = {"Sec-Fetch-Dest": "document", "Accept": "text/html"}  # a browser's navigation: a feed's page


def run_build(articles: Path, out: Path, state: Path, **settings) -> str:
    """`feedsvc build` in this process, with settings as FEEDSVC_* variables; its output."""
    env = {"FEEDSVC_STATE_PATH": str(state), "FEEDSVC_CONFIG": "",
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
    """Every file under folder by relative path, with its stat (the manifest, rewritten by every build, and the lock aside)."""
    return {p.relative_to(folder).as_posix(): p.stat() for p in folder.rglob("*") if p.is_file() and p.name not in (MANIFEST, LOCK)}


def contents(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name not in (MANIFEST, LOCK)}


def entries(out: Path) -> dict[str, list]:
    """The manifest's files: name → [URL path, ETag, Last-Modified, …]."""
    return read_manifest(out)["files"]


def served(state: Path, articles: Path, **settings):
    """A serving process's app over the same store (it reads the store, never builds)."""
    return create_app({"ARTICLES_DIR": str(articles), "STATE_PATH": str(state), **settings}, build=False).test_client()


def assert_served_alike(out: Path, client) -> int:
    """Every file of the export has the bytes and ETag the app answers at its URL; its forms decode to them."""
    for name, (path, etag, modified, *_rest) in entries(out).items():
        url, _, query = path.removesuffix(PREVIEW).partition("?")
        res = client.get("/" + quote(url) + (f"?{query}" if query else ""), headers=CHROMIUM if path.endswith(PREVIEW) else {})
        body = (out / name).read_bytes()
        assert (res.status_code, res.data, res.headers["ETag"]) == (200, body, etag), path
        assert (out / name).stat().st_mtime_ns == datetime.fromisoformat(modified).timestamp() * 10**9, path
        assert res.headers["Last-Modified"] == Rendered(b"", "", datetime.fromisoformat(modified)).http_date, path
        for suffix, decode in ((".gz", gzip.decompress), (".br", brotli.decompress)):
            coded = out / (name + suffix)
            if coded.exists():
                assert decode(coded.read_bytes()) == body, name + suffix
                assert coded.stat().st_mtime_ns == (out / name).stat().st_mtime_ns
    return len(entries(out))


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


def test_an_export_holds_what_the_store_holds_as_serve_answers_it(sample_dir, tmp_path):
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    run_build(sample_dir, out, state, FEED_MAX_ITEMS=4)  # several archive pages
    paths = {entry[0] for entry in entries(out).values()}
    assert {"feed.atom?page=3", "category/سياسة/", "feeds.opml", "feed.rss#preview", "category/سياسة/feed.json#preview",
            "style.css"} <= paths
    assert assert_served_alike(out, served(state, sample_dir, FEED_MAX_ITEMS=4)) == len(paths)
    coded = {name: entry[4] for name, entry in entries(out).items()}
    assert len(files(out)) == len(coded) + sum(map(len, coded.values()))  # nothing else in the folder
    for name in coded:
        assert (out / name).stat().st_mode & 0o777 == 0o644


def test_what_is_precompressed_follows_what_pays(sample_dir, tmp_path):
    out = tmp_path / "export"
    run_build(sample_dir, out, tmp_path / "state.sqlite3", FEED_MAX_ITEMS=4)
    coded = {entry[0]: entry[4] for entry in entries(out).values()}
    assert coded["favicon.ico"] == []  # compresses by 0.1%: nginx sends the file
    assert coded["feed.rss"] == coded["style.css"] == coded["feeds.opml"] == coded["category/سياسة/"] == ["br", "gzip"]
    assert coded["feed.rss#preview"] == ["br", "gzip"]
    # cold: article and archive pages, each asked for seldom, are left to nginx's gzip (test_export_nginx.py)
    assert coded["articles/000_4c2ff0435fbab79d"] == coded["feed.rss?page=2"] == coded["feed.json?page=3"] == []
    assert not [p for p in files(out) if p.startswith("articles/") and p.endswith((".gz", ".br"))]
    for name, entry in entries(out).items():
        if "br" in entry[4]:
            assert (out / (name + ".br")).stat().st_size < (out / (name + ".gz")).stat().st_size


def test_a_second_build_with_nothing_changed_writes_no_file(sample_dir, tmp_path):
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    run_build(sample_dir, out, state, FEED_MAX_ITEMS=4)
    before, manifest = files(out), (out / MANIFEST).stat()
    assert "0 files written" in run_build(sample_dir, out, state, FEED_MAX_ITEMS=4)
    after = files(out)
    assert {p: (s.st_ino, s.st_mtime_ns) for p, s in after.items()} == {p: (s.st_ino, s.st_mtime_ns) for p, s in before.items()}
    assert (out / MANIFEST).stat().st_ino == manifest.st_ino  # not even the manifest


def test_one_changed_article_rewrites_only_its_page_and_what_lists_it(articles_dir, tmp_path):
    corpus(articles_dir, 12)
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    had, before = entries(out), files(out)
    write(articles_dir, "a003.md", (articles_dir / "a003.md").read_text(encoding="utf-8").replace("Body 3,", "Edited 3,"))
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    now, after = entries(out), files(out)
    moved = {name for name in now if now[name][1] != had[name][1]}  # new bytes
    retimed = {name for name in now if now[name][1] == had[name][1] and now[name][2] != had[name][2]}
    rewritten = {p for p in after if after[p].st_ino != before[p].st_ino}
    assert rewritten == {name + suffix for name in moved for suffix in ("", *(".gz" if c == "gzip" else ".br" for c in now[name][4]))}
    assert {p for p in after if after[p].st_mtime_ns != before[p].st_mtime_ns} >= rewritten
    # The article's page, its category's feeds and their pages for browsers, and the site-wide feed's archive page
    # that holds it (page 2: the five oldest), dated anew; nothing that does not list it: not the other archive
    # page, which is dated by its own items (RFC 5005 §4), not by its listing.
    assert {"articles/a003.html", "category/c3/feed.atom", "category/c3/feed.atom.html", "feed.rss.page-2",
            "feed.json.page-2", "feed.atom.page-2"} <= moved
    untouched = {"category/c1/feed.atom", "category/c1/feed.atom.html", "articles/a004.html", "style.css", "feed.rss",
                 "feed.json", "feed.rss.page-3", "feed.atom.page-3", "feed.json.page-3"}
    assert not untouched & (moved | retimed)
    assert now["feed.atom.page-2"][2] > had["feed.atom.page-2"][2]
    assert assert_served_alike(out, served(state, articles_dir, FEED_MAX_ITEMS=5)) == len(now)


def test_a_new_article_leaves_full_archive_pages_as_they_were(articles_dir, tmp_path):
    corpus(articles_dir, 23)  # five on the first page, archive pages 2 to 4 full, page 5 with three
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    had, before = entries(out), files(out)
    write(articles_dir, "late.md", f"---\ntitle: Late\ncategory: C0\ndate: {(T0 + timedelta(days=9)).isoformat()}\n---\nLate news. " * 3)
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    now, after = entries(out), files(out)
    for fmt in ("rss", "atom", "json"):
        for page in (2, 3, 4):  # the same bytes, ETag and date, and the file never written again
            name = f"feed.{fmt}.page-{page}"
            assert now[name][:5] == had[name][:5] and after[name].st_ino == before[name].st_ino, name
        name = f"feed.{fmt}.page-5"  # the item the new article pushed off the first page
        assert now[name][1] != had[name][1] and now[name][2] > had[name][2]
    assert assert_served_alike(out, served(state, articles_dir, FEED_MAX_ITEMS=5)) == len(now)


def forget_page_times(state: Path) -> None:
    """Drop the archive pages' recorded times, as a state kept from code that dated them by their listing has none."""
    conn = sqlite3.connect(state)
    with conn:
        conn.execute("DELETE FROM versions WHERE key LIKE 'page:%'")
    conn.close()
    time.sleep(1.1)  # a time recorded anew is another second


def test_an_archive_page_whose_date_alone_moves_is_redated_in_place(articles_dir, tmp_path):
    corpus(articles_dir, 23)
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    had, old = entries(out), (out / "feed.atom.page-2").read_bytes()
    forget_page_times(state)
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    now, new = entries(out), (out / "feed.atom.page-2").read_bytes()
    assert now["feed.atom.page-2"][3] == had["feed.atom.page-2"][3] and now["feed.atom.page-2"][1] != had["feed.atom.page-2"][1]
    before, after = datetime.fromisoformat(had["feed.atom.page-2"][2]), datetime.fromisoformat(now["feed.atom.page-2"][2])
    assert new == old.replace(before.isoformat().encode(), after.isoformat().encode(), 1) != old  # only its date moved
    assert now["feed.json.page-2"][:2] == had["feed.json.page-2"][:2]  # JSON Feed has no date of its own: a new time alone
    assert now["feed.json.page-2"][2] == now["feed.atom.page-2"][2] != had["feed.json.page-2"][2]
    assert not (out / "feed.atom.page-2.gz").exists()
    assert assert_served_alike(out, served(state, articles_dir, FEED_MAX_ITEMS=5)) == len(now)


def test_an_archive_page_changed_by_hand_is_rendered_again_not_redated(articles_dir, tmp_path):
    corpus(articles_dir, 23)
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    page = out / "feed.atom.page-2"
    page.write_bytes(page.read_bytes().replace(b"Story 0", b"Story zero"))  # a new time: not the file the manifest names
    forget_page_times(state)
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    assert b"Story zero" not in page.read_bytes()
    assert assert_served_alike(out, served(state, articles_dir, FEED_MAX_ITEMS=5)) == len(entries(out))


def test_a_deleted_articles_files_are_removed(articles_dir, tmp_path):
    corpus(articles_dir, 6)
    write(articles_dir, "lone.md", f"---\ntitle: Alone\ncategory: Solo\ndate: {T0.isoformat()}\n---\nThe only one here. " * 3)
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    run_build(articles_dir, out, state)
    assert (out / "articles" / "lone.html").is_file() and (out / "category" / "solo" / "feed.rss.gz").is_file()
    (articles_dir / "lone.md").unlink()
    (articles_dir / "a005.md").unlink()
    said = run_build(articles_dir, out, state)
    assert "0 removed" not in said
    left = files(out)
    assert not [p for p in left if p.startswith(("articles/lone.html", "articles/a005.html", "category/solo"))]
    assert not (out / "category" / "solo").exists()  # the folder of a category gone
    assert assert_served_alike(out, served(state, articles_dir)) == len(entries(out))


def test_another_store_into_the_same_folder_writes_it_whole(articles_dir, tmp_path):
    corpus(articles_dir, 6)
    out = tmp_path / "export"
    run_build(articles_dir, out, tmp_path / "one.sqlite3")
    write(articles_dir, "extra.md", f"---\ntitle: Extra\ncategory: Solo\ndate: {T0.isoformat()}\n---\nOnly in the first. " * 3)
    run_build(articles_dir, out, tmp_path / "one.sqlite3")
    before = files(out)
    (articles_dir / "extra.md").unlink()
    said = run_build(articles_dir, out, tmp_path / "two.sqlite3")
    assert "written whole" in said
    after = files(out)
    assert all(after[p].st_ino != before[p].st_ino for p in after)  # every file written again
    assert not [p for p in after if "extra" in p or "solo" in p]  # the other store's files gone
    assert assert_served_alike(out, served(tmp_path / "two.sqlite3", articles_dir)) == len(entries(out))


def disk_full_after(monkeypatch, writes: int) -> None:
    """The export's file writes fail with ENOSPC after this many."""
    import feedsvc.building.export
    import feedsvc.building.exportfolder

    real, count = feedsvc.building.export.write_file, [0]

    def failing(path, data, mtime_ns):
        count[0] += 1
        if count[0] > writes:
            raise OSError(28, "No space left on device", str(path))
        real(path, data, mtime_ns)

    monkeypatch.setattr(feedsvc.building.export, "write_file", failing)
    monkeypatch.setattr(feedsvc.building.exportfolder, "write_file", failing)  # put_file's


def test_a_build_that_fails_midway_leaves_whole_files_and_the_next_finishes(articles_dir, tmp_path, monkeypatch):
    corpus(articles_dir, 12)
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    run_build(articles_dir, out, state)
    before = contents(out)
    corpus(articles_dir, 12, body="Edited")
    disk_full_after(monkeypatch, 10)
    env = {"FEEDSVC_STATE_PATH": str(state), "FEEDSVC_CONFIG": "", "FEEDSVC_SETTLE_MS": "0"}
    result = CliRunner().invoke(main, ["build", "--out", str(out), "--articles", str(articles_dir)], env=env)
    assert result.exit_code == 1 and "No space left on device" in result.output and "the next build finishes it" in result.output
    middle = contents(out)
    assert 0 < sum(middle[p] != before[p] for p in before) and set(middle) >= set(before)
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]
    monkeypatch.undo()
    run_build(articles_dir, out, state)
    assert b"Edited 3" in (out / "articles" / "a003.html").read_bytes()
    assert_served_alike(out, served(state, articles_dir))


def same_as_fresh(out: Path, articles: Path, state: Path, fresh: Path, **settings) -> None:
    """The export holds what the same store exported into an empty folder holds: the same files, bytes, times and
    manifest entries."""
    run_build(articles, fresh, state, **settings)
    ours, theirs = files(out), files(fresh)
    assert {name: (contents_of(out, name), st.st_mtime_ns) for name, st in ours.items()} == \
        {name: (contents_of(fresh, name), st.st_mtime_ns) for name, st in theirs.items()}
    assert entries(out) == entries(fresh)
    shutil.rmtree(fresh)


def contents_of(folder: Path, name: str) -> bytes:
    return (folder / name).read_bytes()


def test_what_a_failed_build_changed_is_made_right_by_the_next_even_when_it_goes_back(articles_dir, tmp_path, monkeypatch):
    """A build that fails after writing some files, or after removing a gone article's, leaves the manifest naming the
    files as they were: the next build writes again (or removes) every file the failed one may have touched, so an
    edit taken back, or an article put back as it was, leaves no file of the failed build and misses none."""
    corpus(articles_dir, 30)
    out, state, fresh = tmp_path / "export", tmp_path / "state.sqlite3", tmp_path / "fresh"
    env = {"FEEDSVC_STATE_PATH": str(state), "FEEDSVC_CONFIG": "", "FEEDSVC_SETTLE_MS": "0"}
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=4)
    newest = articles_dir / "a029.md"
    kept = newest.read_bytes(), newest.stat()
    newest.write_text(newest.read_text().replace("Body 29", "Edited 29"))
    disk_full_after(monkeypatch, 20)
    result = CliRunner().invoke(main, ["build", "--out", str(out), "--articles", str(articles_dir)],
                                env={**env, "FEEDSVC_FEED_MAX_ITEMS": "4"})
    assert result.exit_code == 1 and "is partly updated" in result.output
    monkeypatch.undo()
    newest.write_bytes(kept[0])
    os.utime(newest, ns=(kept[1].st_atime_ns, kept[1].st_mtime_ns))  # as it was: the store's rows as the manifest names them
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=4)
    same_as_fresh(out, articles_dir, state, fresh, FEED_MAX_ITEMS=4)
    # The only article of a category deleted; the build fails once it has removed its files, writing the manifest.
    write(articles_dir, "lone.md", "---\ntitle: Alone\ncategory: Solo\n---\nThe one story of its section.\n")
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=4)
    lone = articles_dir / "lone.md"
    kept = lone.read_bytes(), lone.stat()
    lone.unlink()
    import feedsvc.building.export

    def manifest_fails(*args):
        raise OSError(28, "No space left on device", str(out / MANIFEST))
    monkeypatch.setattr(feedsvc.building.export, "write_manifest", manifest_fails)
    result = CliRunner().invoke(main, ["build", "--out", str(out), "--articles", str(articles_dir)],
                                env={**env, "FEEDSVC_FEED_MAX_ITEMS": "4"})
    assert result.exit_code == 1 and "is partly updated" in result.output  # its files are gone: not as it was
    assert not (out / "articles" / "lone.html").exists()
    monkeypatch.undo()
    lone.write_bytes(kept[0])
    os.utime(lone, ns=(kept[1].st_atime_ns, kept[1].st_mtime_ns))
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=4)
    assert (out / "articles" / "lone.html").is_file()
    same_as_fresh(out, articles_dir, state, fresh, FEED_MAX_ITEMS=4)


def test_a_setting_that_changes_the_items_makes_the_archive_pages_again(articles_dir, tmp_path):
    """Summaries only in the public feeds, and their length changed: every archive page's items change, though no
    listing's order or dates do."""
    corpus(articles_dir, 14)
    out, state, fresh = tmp_path / "export", tmp_path / "state.sqlite3", tmp_path / "fresh"
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=4, PUBLIC_CONTENT="summary")
    before = contents(out)
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=4, PUBLIC_CONTENT="summary", SUMMARY_LENGTH=40)
    after = contents(out)
    assert before["feed.rss.page-2"] != after["feed.rss.page-2"]
    same_as_fresh(out, articles_dir, state, fresh, FEED_MAX_ITEMS=4, PUBLIC_CONTENT="summary", SUMMARY_LENGTH=40)
    assert_served_alike(out, served(state, articles_dir, FEED_MAX_ITEMS=4, PUBLIC_CONTENT="summary", SUMMARY_LENGTH=40))


def test_a_first_build_that_fails_leaves_no_file_and_one_killed_is_finished_by_the_next(sample_dir, tmp_path, monkeypatch):
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    disk_full_after(monkeypatch, 10)
    env = {"FEEDSVC_STATE_PATH": str(state), "FEEDSVC_CONFIG": "", "FEEDSVC_SETTLE_MS": "0"}
    result = CliRunner().invoke(main, ["build", "--out", str(out), "--articles", str(sample_dir)], env=env)
    assert result.exit_code == 1 and f"{out} is left as it was" in result.output
    assert [p.name for p in out.iterdir()] == [LOCK]  # no file of the site: only the build's lock, hidden
    monkeypatch.undo()
    write(out, ".feedsvc-export.writing", "{}")  # as a first build killed midway leaves it: no manifest yet
    write(out, "feed.rss", "half of an old build")
    assert "written whole" in run_build(sample_dir, out, state)
    assert assert_served_alike(out, served(state, sample_dir)) == len(entries(out))


def test_a_build_killed_midway_leaves_every_file_whole_and_the_next_finishes(tmp_path):
    articles, out, state = tmp_path / "articles", tmp_path / "export", tmp_path / "state.sqlite3"
    corpus(articles, 150)
    run_build(articles, out, state)
    before = contents(out)
    corpus(articles, 150, body="Edited")  # every article changes: the next build rewrites nearly everything
    # A real build in its own process, its writer slowed so that SIGKILL lands while it writes.
    code = ("import time, feedsvc.building.export as e; w = e.write_file\n"
            "e.write_file = lambda *a: (time.sleep(0.002), w(*a))\n"
            "from feedsvc.cli import main; main()")
    env = {**os.environ, "FEEDSVC_STATE_PATH": str(state), "FEEDSVC_SETTLE_MS": "0", "PYTHONPATH": str(ROOT),
           "FEEDSVC_CONFIG": ""}
    proc = subprocess.Popen([sys.executable, "-c", code, "build", "--out", str(out), "--articles", str(articles)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while sum(b"Edited" in (out / "articles" / f"a{i:03}.html").read_bytes() for i in range(150)) < 20:
            assert proc.poll() is None and time.monotonic() < deadline, "the build ended before it could be killed"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    for name, body in contents(out).items():  # each file whole: as it was, or as the new build made it
        if name.endswith(".html") and name.startswith("articles/"):
            assert body == before[name] or (b"Edited" in body and body.rstrip().endswith(b"</html>")), name
    assert (out / ".feedsvc-export.writing").exists()
    run_build(articles, out, state)  # the next build finishes the work and sweeps what the killed one left
    assert not [p for p in out.rglob("*.tmp")] and not (out / ".feedsvc-export.writing").exists()
    assert assert_served_alike(out, served(state, articles)) == len(entries(out))


def test_a_resource_that_cannot_be_a_file_is_left_out_and_named(tmp_path, caplog):
    state = tmp_path / "state.sqlite3"
    page = Rendered(b"<p>x</p>", "text/html", T0)
    row = (page.etag, page.media_type, T0.isoformat(), None, "[]", page.body, None, None, "x")
    StoreWriter(state).commit(Build({}, resources={"articles/a/../../../escape": row, "articles/fine": row}), T0)
    result = export_store(state, tmp_path / "export", lambda *a, **k: None, 10)
    assert result.left_out == ("articles/a/../../../escape",)
    assert (tmp_path / "export" / "articles" / "fine.html").exists() and not (tmp_path / "escape.html").exists()
    assert "articles/a/../../../escape" in caplog.text


def test_a_folder_that_is_not_an_export_is_never_written(tmp_path):
    out = tmp_path / "site"
    write(out, "keep.html", "mine")
    StoreWriter(tmp_path / "state.sqlite3")
    with pytest.raises(ExportError, match="not an export"):
        export_store(tmp_path / "state.sqlite3", out, lambda *a, **k: None, 10)
    assert [p.name for p in out.iterdir()] == ["keep.html"]


def test_an_export_of_the_earlier_layout_becomes_a_folder_written_whole(sample_dir, tmp_path):
    out, version = tmp_path / "export", tmp_path / ".export.version-abc"
    write(version, "feed.rss", "old")
    os.symlink(version.name, out)
    said = run_build(sample_dir, out, tmp_path / "state.sqlite3")
    assert "written whole" in said and out.is_dir() and not out.is_symlink() and not version.exists()
    assert (out / "feed.rss").read_bytes() != b"old"


def test_build_writes_the_export_and_says_what_it_did(sample_dir, tmp_path):
    output = run_build(sample_dir, tmp_path / "export", tmp_path / "state.sqlite3")
    assert "files written" in output and "0 left out" in output and "written whole" in output
    assert (tmp_path / "export" / "category" / "سياسة" / "feed.atom.br").is_file()
    assert "0 files written" in run_build(sample_dir, tmp_path / "export", tmp_path / "state.sqlite3")
    manifest = json.loads((tmp_path / "export" / MANIFEST).read_bytes())
    assert manifest["version"] == 1  # the store's build the folder holds: the last that changed a file
    write(sample_dir, "late.md", "---\ntitle: Late news\ncategory: Tech\ndate: 2026-11-29T00:00:00Z\n---\nText.\n")
    assert "build 3," in run_build(sample_dir, tmp_path / "export", tmp_path / "state.sqlite3")
    assert json.loads((tmp_path / "export" / MANIFEST).read_bytes())["version"] == 3


def build_beside_a_server(articles: Path, out: Path, state: Path, **settings) -> str:
    """`feedsvc build` while the build lock is held, as a running server's builder holds it; its output."""
    from feedsvc.building.lock import BuildLock, lock_path

    lock = BuildLock(lock_path(str(state)))
    assert lock.try_acquire()
    try:
        return run_build(articles, out, state, **settings)
    finally:
        os.close(lock.fd)


def test_with_a_server_building_into_the_store_its_latest_build_is_exported(sample_dir, tmp_path):
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    run_build(sample_dir, out, state)
    write(sample_dir, "late.md", "---\ntitle: Late news\ncategory: Tech\ndate: 2026-11-29T00:00:00Z\n---\nText.\n")
    output = build_beside_a_server(sample_dir, out, state)
    assert "another process builds into" in output and "0 files written" in output  # the store's build, as the server left it
    assert not (out / "articles" / "late.html").exists()


def test_a_servers_build_is_exported_with_its_archive_pages_at_the_servers_site_url(sample_dir, tmp_path):
    # A server at its port, SITE_URL unset; `feedsvc build` beside it, SITE_URL unset too: its first pages were the
    # server's (links to the port) and its archive pages made for http://127.0.0.1:8000: one export, two sites.
    out, state, served = tmp_path / "export", tmp_path / "state.sqlite3", "http://127.0.0.1:18152"
    run_build(sample_dir, tmp_path / "served-export", state, SITE_URL=served, FEED_MAX_ITEMS=3)  # the server's build
    output = build_beside_a_server(sample_dir, out, state, FEED_MAX_ITEMS=3)
    assert "another process builds into" in output and served in output
    pages = sorted(out.rglob("*.page-*"))
    assert pages and not [p for p in pages if b"127.0.0.1:8000" in p.read_bytes()]
    assert all(served.encode() in p.read_bytes() for p in pages)


def test_a_servers_build_is_exported_with_its_archive_pages_cut_for_its_own_page_size(articles_dir, tmp_path):
    # A server with FEED_MAX_ITEMS = 5, `feedsvc build` beside it with 4: its first pages are the server's (five items),
    # and archive pages cut for four would repeat an item of the first page and skip none: a reader sees it twice.
    import feedparser

    corpus(articles_dir, 23)
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    run_build(articles_dir, tmp_path / "served-export", state, FEED_MAX_ITEMS=5)  # the server's build
    output = build_beside_a_server(articles_dir, out, state, FEED_MAX_ITEMS=4)
    assert "FEED_MAX_ITEMS" in output and "written with the server's" in output
    first = [e.id for e in feedparser.parse((out / "feed.atom").read_bytes()).entries]
    archive = [e.id for page in sorted(out.glob("feed.atom.page-*"), key=lambda p: -int(p.name.rsplit("-", 1)[1]))
               for e in feedparser.parse(page.read_bytes()).entries]
    assert len(first) == 5 and first + archive == [e.id for e in feedparser.parse(
        (tmp_path / "served-export" / "feed.atom").read_bytes()).entries] + archive  # as the server pages them
    assert len(set(first + archive)) == len(first + archive) == 23  # every item once


def test_a_build_that_cannot_read_the_articles_leaves_the_export_alone(sample_dir, tmp_path):
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    run_build(sample_dir, out, state)
    before = files(out)
    env = {"FEEDSVC_STATE_PATH": str(state), "FEEDSVC_CONFIG": ""}
    result = CliRunner().invoke(main, ["build", "--out", str(out), "--articles", str(tmp_path / "gone")], env=env)
    assert result.exit_code == 1 and "gone does not exist; pass --articles DIR" in result.output  # said before anything
    assert files(out) == before


@pytest.mark.parametrize("where", ["public", ".", ".."])
def test_build_refuses_an_export_folder_inside_the_articles_folder_or_around_it(sample_dir, tmp_path, where):
    # Inside, the next build read the export's robots.txt as an article ("User-agent: *" in the feed); around it, the
    # export would remove the articles as files it did not write.
    out = (sample_dir / where) if where != ".." else sample_dir.parent
    before = sorted(p.name for p in sample_dir.iterdir())
    env = {"FEEDSVC_STATE_PATH": str(tmp_path / "state.sqlite3"), "FEEDSVC_CONFIG": ""}
    result = CliRunner().invoke(main, ["build", "--out", str(out), "--articles", str(sample_dir)], env=env)
    assert result.exit_code == 1 and "choose a folder" in result.output and str(sample_dir) in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in sample_dir.iterdir()) == before and not (tmp_path / "state.sqlite3").exists()


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


def test_a_change_on_the_first_pages_alone_reads_no_listings_order_for_its_archive_pages(articles_dir, tmp_path, monkeypatch):
    import feedsvc.building.export as export

    corpus(articles_dir, 23)
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    had = entries(out)
    read = []
    ids = export._Writer._ids
    monkeypatch.setattr(export._Writer, "_ids", lambda self, key: read.append(key) or ids(self, key))
    newest = articles_dir / "a022.md"
    write(articles_dir, "a022.md", newest.read_text(encoding="utf-8").replace("Body 22,", "Edited 22,"))
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    now = entries(out)
    assert now["feed.atom"][1] != had["feed.atom"][1]  # the first page changed
    assert {name: entry[:5] for name, entry in now.items() if ".page-" in name} == {
        name: entry[:5] for name, entry in had.items() if ".page-" in name}  # every archive page kept, as it was
    assert read == []  # each page known unchanged by the digest it was dated by: no listing's order read
    assert assert_served_alike(out, served(state, articles_dir, FEED_MAX_ITEMS=5)) == len(now)


def test_a_build_flushes_its_own_filesystem_not_every_one(sample_dir, tmp_path, monkeypatch):
    import feedsvc.building.export as export

    def whole_machine():
        raise AssertionError("sync(2) flushes every filesystem of the machine")

    monkeypatch.setattr(export.os, "sync", whole_machine)
    flushed = []
    sync_folder = export.sync_folder
    monkeypatch.setattr(export, "sync_folder", lambda folder: flushed.append(folder) or sync_folder(folder))
    out = tmp_path / "export"
    run_build(sample_dir, out, tmp_path / "state.sqlite3")
    assert flushed == [out] and (out / MANIFEST).is_file()


def test_each_build_records_every_setting_its_archive_pages_are_made_with(tmp_path):
    """feedsvc.VARIANT_SETTINGS (what each build's report records, and what `feedsvc build` beside a server makes its
    archive pages with) is what feedsvc._variants reads of the settings, SITE_URL aside (the report's own site_url):
    a setting read there and not recorded would give an export beside a server pages made with this command's value."""
    from feedsvc import VARIANT_SETTINGS, _variants
    from feedsvc.config import load_settings

    settings = load_settings({"STATE_PATH": str(tmp_path / "state.db")}, toml_path=tmp_path / "none.toml", environ={})
    read: set[str] = set()

    class Reading:
        def __getattr__(self, name):
            read.add(name)
            return getattr(settings, name)

    class Reader:  # what Variants opens beside the store: its path alone
        path = str(tmp_path / "state.db")

    _variants(Reading(), Reader(), str(tmp_path / "state.db"))
    assert read - {"site_url"} == set(VARIANT_SETTINGS)


def test_a_deployer_who_owns_the_export_folder_but_not_its_parent_can_build_into_it(sample_dir, tmp_path):
    """The build's lock and staging live inside the folder: `build` wrote `.OUT.lock` beside it and failed on a
    read-only parent (/var/www owned by root, /var/www/feeds by the deployer). Real permissions, capabilities dropped."""
    parent, state = tmp_path / "www", tmp_path / "state" / "state.sqlite3"
    (parent / "feeds").mkdir(parents=True)
    state.parent.mkdir()
    os.chmod(parent, 0o555)
    drop = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"] if os.getuid() == 0 else []
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FEEDSVC_STATE_PATH": str(state), "FEEDSVC_CONFIG": "", "FEEDSVC_SETTLE_MS": "0"}
    try:
        for _ in range(2):  # written whole, then again with nothing changed
            run = subprocess.run([*drop, sys.executable, "-m", "feedsvc", "build", "--out", str(parent / "feeds"),
                                  "--articles", str(sample_dir)], capture_output=True, text=True, timeout=120, env=env)
            assert run.returncode == 0, run.stderr
    finally:
        os.chmod(parent, 0o755)
    assert sorted(p.name for p in parent.iterdir()) == ["feeds"]  # nothing beside it
    assert (parent / "feeds" / "feed.rss").is_file() and read_manifest(parent / "feeds")["files"]


def test_an_export_folder_reached_by_a_link_is_written_where_it_leads(sample_dir, tmp_path):
    """A web root linked to a volume (/var/www/feeds → /srv/volume/feeds) was refused as 'not an export'."""
    (tmp_path / "volume" / "feeds").mkdir(parents=True)
    (tmp_path / "feeds").symlink_to(tmp_path / "volume" / "feeds")
    state = tmp_path / "state.sqlite3"
    assert "written whole" in run_build(sample_dir, tmp_path / "feeds", state)
    assert "0 files written" in run_build(sample_dir, tmp_path / "feeds", state)
    assert (tmp_path / "feeds").is_symlink() and (tmp_path / "volume" / "feeds" / "feed.atom").is_file()
    (tmp_path / "later").symlink_to(tmp_path / "volume" / "later")  # a folder yet to be made: made where it leads
    assert "written whole" in run_build(sample_dir, tmp_path / "later", tmp_path / "state2.sqlite3")
    assert (tmp_path / "volume" / "later" / "feed.atom").is_file()
    write(tmp_path, "notes.txt", "a file")
    (tmp_path / "file").symlink_to(tmp_path / "notes.txt")
    env = {"FEEDSVC_STATE_PATH": str(state), "FEEDSVC_CONFIG": "", "FEEDSVC_SETTLE_MS": "0"}
    result = CliRunner().invoke(main, ["build", "--out", str(tmp_path / "file"), "--articles", str(sample_dir)], env=env)
    assert result.exit_code == 1 and "is not an export made by `feedsvc build`" in result.output
    assert (tmp_path / "notes.txt").read_text() == "a file"


def test_an_export_folder_that_is_a_volumes_root_is_written_and_its_lost_and_found_kept(sample_dir, tmp_path):
    """A fresh ext4 volume holds lost+found at its root: such an --out was refused as 'not an export'."""
    out = tmp_path / "volume"
    write(out / "lost+found", "#12", "what fsck found")
    state = tmp_path / "state.sqlite3"
    assert "written whole" in run_build(sample_dir, out, state)
    assert "0 files written" in run_build(sample_dir, out, state)
    assert (out / "feed.atom").is_file() and (out / "lost+found" / "#12").read_text() == "what fsck found"
    write(tmp_path / "other", "lost+found", "a file of that name beside another")
    write(tmp_path / "other", "notes.txt", "not an export")
    env = {"FEEDSVC_STATE_PATH": str(tmp_path / "s2.sqlite3"), "FEEDSVC_CONFIG": "", "FEEDSVC_SETTLE_MS": "0"}
    result = CliRunner().invoke(main, ["build", "--out", str(tmp_path / "other"), "--articles", str(sample_dir)], env=env)
    assert result.exit_code == 1 and "is not an export made by `feedsvc build`" in result.output


def test_a_page_made_ahead_that_cannot_be_moved_in_is_made_again(articles_dir, tmp_path, monkeypatch):
    """A page staged on another file system than its place (EXDEV) is rendered again, not the build's failure."""
    import errno

    from feedsvc.building import committer, export

    monkeypatch.setattr(committer, "FIRST_PAGES", 5)
    wait = committer.Committer.wait
    monkeypatch.setattr(committer.Committer, "wait", lambda self, timeout=None: wait(self, timeout) and timeout != 0)
    corpus(articles_dir, 60)
    replace = os.replace

    def across(src, dst, *args, **kwargs):
        if ".feedsvc-export.staging-" in str(src):
            raise OSError(errno.EXDEV, "Invalid cross-device link", str(src))
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(export.os, "replace", across)
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    assert not list(out.glob(".feedsvc-export.staging-*"))
    app = served(state, articles_dir, FEED_MAX_ITEMS=5)
    for name, entry in entries(out).items():
        if "?page=" in entry[0]:
            assert (out / name).read_bytes() == app.get("/" + entry[0]).data, name


def test_links_planted_at_the_builds_own_names_never_lead_it_outside_the_folder(articles_dir, tmp_path):
    """Whoever could write the export folder planted `.feedsvc-export.staging-<pid>` links to a folder elsewhere for the
    next pids: the build made folders and wrote its archive pages there, and left the links. And a link at the lock's
    name would have it make a file wherever that leads."""
    corpus(articles_dir, 600)
    out, victim, state = tmp_path / "out", tmp_path / "victim", tmp_path / "state.sqlite3"
    out.mkdir()
    victim.mkdir()
    base = os.getpid()
    for pid in range(base, base + 3000):  # this process's pid, as the build's, and those of the processes it starts
        (out / f".feedsvc-export.staging-{pid}").symlink_to(victim)
    assert "written whole" in run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    assert list(victim.iterdir()) == [] and not list(out.glob(".feedsvc-export.staging-*"))
    assert assert_served_alike(out, served(state, articles_dir, FEED_MAX_ITEMS=5)) == len(entries(out))
    (out / ".feedsvc-export.lock").unlink()
    (out / ".feedsvc-export.lock").symlink_to(victim / "made")
    env = {"FEEDSVC_STATE_PATH": str(state), "FEEDSVC_CONFIG": "", "FEEDSVC_SETTLE_MS": "0", "FEEDSVC_FEED_MAX_ITEMS": "5"}
    result = CliRunner().invoke(main, ["build", "--out", str(out), "--articles", str(articles_dir)], env=env)
    assert result.exit_code == 1 and "is a link; remove it" in result.output and not (victim / "made").exists()


def test_something_in_the_way_of_a_written_files_coded_form_leaves_it_out_and_the_build_goes_on(tmp_path, caplog):
    """A folder made where a feed's .gz was failed every later build ("cannot write …feed.rss.gz: Is a directory"):
    the feed, left out, was taken for gone, and removing its .gz failed on the folder, after its body had gone
    (found in review). The build now goes on: the feed is left out and named, its files removed but what is in the
    way, and the next build once the way is clear writes it again."""
    articles, out, state = tmp_path / "articles", tmp_path / "site", tmp_path / "state.sqlite3"
    corpus(articles, 3)
    run_build(articles, out, state)
    assert (out / "feed.rss.gz").is_file() and (out / "feed.rss.br").is_file()
    (out / "feed.rss.gz").unlink()
    (out / "feed.rss.gz").mkdir()
    write(articles, "later.md", f"---\ntitle: Later\ncategory: C0\ndate: {(T0 + timedelta(days=1)).isoformat()}\n---\nBody.\n")
    said = run_build(articles, out, state)
    assert "1 left out" in said and "export: /feed.rss left out (Is a directory)" in caplog.text, said
    assert read_manifest(out)["left_out"] == ["feed.rss"]
    assert not (out / "feed.rss").exists() and not (out / "feed.rss.br").exists() and (out / "feed.rss.gz").is_dir()
    assert b"Later" in (out / "feed.atom").read_bytes()  # the rest of the build is written
    (out / "feed.rss.gz").rmdir()
    said = run_build(articles, out, state)
    assert "0 left out" in said and b"Later" in (out / "feed.rss").read_bytes(), said
    assert (out / "feed.rss.gz").is_file() and "left_out" not in read_manifest(out)


def test_files_removed_or_replaced_by_hand_are_written_again_by_the_next_build(tmp_path):
    """A build trusted the manifest: a file removed by hand (or a folder of them, a cleaning script, an rsync gone
    wrong) or a link put in a file's place stayed so for good, since only what changed in the store was written (found
    in review: a category's folder replaced by a file, then removed, left its feeds missing). Each folder the manifest
    names is listed now, and a file not there as a file is written again."""
    articles, out, state = tmp_path / "articles", tmp_path / "site", tmp_path / "state.sqlite3"
    corpus(articles, 6)
    run_build(articles, out, state)
    before = {name: (out / name).read_bytes() for name in entries(out)}
    shutil.rmtree(out / "category" / "c0")
    (out / "feed.json").unlink()
    (out / "feed.rss.br").unlink()
    (out / "index.html").unlink()
    (out / "index.html").symlink_to(articles / "a000.md")
    said = run_build(articles, out, state)  # nothing changed in the store
    assert "0 removed, 0 left out" in said, said
    assert {name: (out / name).read_bytes() for name in entries(out)} == before
    assert not (out / "index.html").is_symlink() and (out / "feed.rss.br").is_file()
    assert assert_served_alike(out, served(state, articles)) == len(entries(out))
    assert "0 files written" in run_build(articles, out, state)  # and then nothing to do


def test_a_file_left_out_is_written_by_the_next_build_that_can(tmp_path):
    """A page left out once (something in its way) was never written again: each later build compared only what changed
    since the manifest's build, while the feeds linked to it (found in review)."""
    articles, out, state = tmp_path / "articles", tmp_path / "site", tmp_path / "state.sqlite3"
    corpus(articles, 3)
    run_build(articles, out, state)
    write(articles, "later.md", f"---\ntitle: Later\ncategory: C0\ndate: {(T0 + timedelta(days=1)).isoformat()}\n---\nBody.\n")
    (out / "articles" / "later.html").mkdir()  # in the way of its page
    assert "1 left out" in run_build(articles, out, state)
    assert read_manifest(out)["left_out"] == ["articles/later"]
    (out / "articles" / "later.html").rmdir()
    said = run_build(articles, out, state)  # nothing changed in the store since
    assert "0 left out" in said and b"Later" in (out / "articles" / "later.html").read_bytes(), said
    assert "left_out" not in read_manifest(out)
    assert "0 files written" in run_build(articles, out, state)  # and then as any build that has nothing to do

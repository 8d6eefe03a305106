"""A deployment moved to another SITE_URL republishes its last build there before its first build (building/rebase.py)."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone

from feedsvc import create_app
from feedsvc.building.builder import republish
from feedsvc.building.rebase import PLAIN, moved_from, rebase
from feedsvc.formats import FORMATS
from feedsvc.formats.opml import date_opml
from tests.conftest import write
from tests.http_helpers import Server, fetch
from tests.test_coldpath import committer, finished, many, rows, settings

OLD, NEW = "http://127.0.0.1:8000", "https://news.example.org"


def republished_by(app) -> list[int]:
    """What a builder's start republishes (builder.run_builder), with this app's writer, state store and reader."""
    return republish(committer(app).writer, app.extensions["feedsvc"].store, app.extensions["feedsvc.settings"],
                     app.extensions["feedsvc.store"])


def builds(state) -> list[tuple[int, dict, set[str]]]:
    """Every build the store keeps: (version, report, the paths it changed), oldest first."""
    with sqlite3.connect(state) as conn:
        changes = {}
        for version, path in conn.execute("SELECT version, path FROM changes"):
            changes.setdefault(version, set()).add(path)
        return [(version, json.loads(report), changes.get(version, set()))
                for version, report in conn.execute("SELECT version, report FROM builds ORDER BY version")]


def test_a_stored_feed_or_list_undated_and_dated_again_is_the_same_bytes(tmp_path):
    """What republishing rests on: a stored document's own date can be taken out again (date(..., undo=True))."""
    from feedsvc.formats.content import UNDATED

    folder, state = many(tmp_path / "articles", 6), tmp_path / "state.sqlite3"
    finished(create_app(settings(folder, state)))
    with sqlite3.connect(state) as conn:
        stored = conn.execute("SELECT media_type, last_modified, body FROM resources").fetchall()
    dating = {**{spec.media_type: spec.date for spec in FORMATS.values()}, "text/x-opml": date_opml}
    seen = set()
    for media, modified, body in stored:
        if media in dating:
            when, date = datetime.fromisoformat(modified), dating[media]
            undated = date(body, when, True)
            assert date(undated, when) == body
            assert (undated == body) == (media == FORMATS["json"].media_type)  # JSON Feed has no date of its own
            assert media == FORMATS["json"].media_type or str(UNDATED.year).encode() in undated
            seen.add(media)
    assert seen == set(dating)


def test_only_a_build_made_alike_at_another_plain_url_is_republished():
    report = {"site_url": OLD, "rebase_key": "k"}
    assert moved_from(report, NEW, "k") == OLD
    assert moved_from(report, OLD, "k") is None  # the same URL: nothing moved
    assert moved_from(report, NEW, "other") is None  # other code or settings: only a render says what they give
    assert moved_from({"rebase_key": "k"}, NEW, "k") is None  # a build from before the site was reported
    assert moved_from(None, NEW, "k") is None
    for url in ("https://news.example.org/a&b", "https://news.example.org/%D8%A3", "https://أخبار.example", "https://x.example/a b"):
        assert not PLAIN.fullmatch(url) and moved_from(report, url, "k") is None  # escaped or encoded in some format
    assert PLAIN.fullmatch("http://[::1]:8080") and PLAIN.fullmatch("https://news.example.org/ar")


def test_a_link_is_rebased_only_where_the_old_url_starts_one():
    assert rebase(b'<a href="http://127.0.0.1:8000/x">http://127.0.0.1:8000/</a>', OLD, NEW) == \
        b'<a href="https://news.example.org/x">https://news.example.org/</a>'
    assert rebase(b"http://127.0.0.1:80001/x", "http://127.0.0.1:8000", NEW) is None  # a longer port: not a link of ours
    assert rebase(b"see http://127.0.0.1:8000, and http://127.0.0.1:8000/x", OLD, NEW) is None
    assert rebase(b"no link at all", OLD, NEW) == b"no link at all"


def test_a_moved_builder_republishes_the_feeds_lists_and_pages_and_its_first_build_finds_the_same_bytes(tmp_path):
    """The republished feeds are what rendering at the new URL gives, dated as it dates them: the first build after
    leaves every one as it is, but for a feed whose article typed the old address as text (a render keeps the text)."""
    folder, state = many(tmp_path / "articles", 30), tmp_path / "state.sqlite3"
    typed = write(folder, "zz-typed.txt", f"economy\nOur old address\nWe were at {OLD}/ until today.\n")
    os.utime(typed, (1_800_000_000,) * 2)  # the newest: on the first pages
    hub = "http://127.0.0.1:9/hub"  # WebSub's Link header names the feed's own URL too (nothing listens: pings fail)
    first = create_app(settings(folder, state, WEBSUB_HUB=hub))
    first.extensions["feedsvc.websub"].close()  # its retries end with it (a later test counts the threads)
    finished(first)
    before = rows(state)
    moved = create_app(settings(folder, state, SITE_URL=NEW, WEBSUB_HUB=hub), refresh=False)
    moved.extensions["feedsvc.websub"].close()
    assert len(republished_by(moved)) == 2
    (_, first_report, lists), (_, report, rest) = builds(state)[-2:]
    # What the feed lists name first (their RSS, and its page for browsers at the same URL) with the listings' heads
    # (archive pages and partners' views), then the rest.
    listings = {path for path in lists if path.startswith("#listing/")}
    assert "#listing/" in listings and lists - listings == {"feeds.opml", "feeds-all.opml", *(path for path in before if path.endswith(".rss"))}
    assert lists > {"feeds.opml", "feed.rss", "#preview/feed.rss"} and not lists & rest
    assert {"feed.atom", "feed.json", "#preview/feed.atom", ""} <= rest and not any(path.endswith(".rss") for path in rest)
    # what /healthz tells of each: the build it republished, at the new URL, no file read
    assert first_report == report and report["site_url"] == NEW and report["files_read"] == 0 and report["articles"] == 31
    republished = rows(state)
    changed = {path for path in republished if republished[path][0] != before[path][0]}
    feeds = {path for path, row in before.items() if row[1] in {spec.media_type for spec in FORMATS.values()}}
    assert feeds and feeds <= changed and {"feeds.opml", "feeds-all.opml", ""} <= changed
    assert not {path for path in changed if path.startswith(("articles/", "sitemap")) or path == "robots.txt"}
    for path in changed:  # every link at the new URL, none left at the old one (but in the article pages, next)
        assert OLD.encode() + b"/" not in republished[path][4] and NEW.encode() + b"/" in republished[path][4]
        assert republished[path][5] is None and republished[path][6] is None  # coded on request, or by the first build
    with sqlite3.connect(state) as conn:  # a listing's page URL too, which archive pages and partners' views link
        heads = [row[0] for row in conn.execute("SELECT head FROM listings")]
    assert heads and all(OLD.encode() not in head for head in heads)

    moved.extensions["feedsvc"].refresh()  # the first build, at the new URL
    finished(moved)
    after = rows(state)
    typed_text = f"{NEW}/ until today".encode()
    assert all(after[path][3] == republished[path][3] for path in changed)  # the headers as the first build makes them
    assert any(NEW in republished[path][3] for path in feeds)
    differ = {path for path in changed if after[path][0] != republished[path][0]}
    assert differ and differ == {path for path in changed if typed_text in republished[path][4]}
    for path in differ:  # the text as typed, as a render keeps it
        assert f"{OLD}/ until today".encode() in after[path][4]
    assert OLD.encode() not in after["sitemap.xml"][4] and NEW.encode() + b"/articles/" in after["sitemap.xml"][4]


def test_a_restart_at_the_same_url_republishes_nothing(tmp_path):
    folder, state = many(tmp_path / "articles", 8), tmp_path / "state.sqlite3"
    finished(create_app(settings(folder, state)))
    assert republished_by(create_app(settings(folder, state), refresh=False)) == []


# A builder's start in a fresh interpreter, as the dedicated builder runs it: what it imported when it republished.
BUILDER_START = """
import json, sys
import feedsvc.cli  # what the serving master imports before it forks the builder
from feedsvc import for_building
from feedsvc.building import builder
seen = {}
real = builder.republish
def spy(*args):
    seen["imported"] = sorted(name for name in sys.modules if name.startswith("feedsvc."))
    seen["versions"] = real(*args)
    return seen["versions"]
def stop(*args, **kwargs):  # the first build's modules are imported from here on: what is measured is done
    print(json.dumps(seen))
    raise SystemExit(0)
builder.republish, builder.start_building = spy, stop
builder.run_builder(for_building(json.loads(sys.argv[1])))
"""


def test_a_moved_builder_republishes_before_it_imports_what_reads_and_renders(tmp_path):
    """A restart at a new URL answers once the feed lists name it: the builder republishes first, and imports the
    modules that read articles and render feeds (0.05-0.1 s on two busy cores) only after."""
    folder, state = many(tmp_path / "articles", 8), tmp_path / "state.sqlite3"
    finished(create_app(settings(folder, state)))
    out = subprocess.run([sys.executable, "-c", BUILDER_START, json.dumps(settings(folder, state, SITE_URL=NEW))],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    seen = json.loads(out.splitlines()[-1])
    assert len(seen["versions"]) == 2  # republished
    building = {"feedsvc.building.site", "feedsvc.building.render", "feedsvc.building.feeds", "feedsvc.reading.articles",
                "feedsvc.formats.fragments", "feedsvc.formats.pages", "feedsvc.building.scheduler"}
    assert seen["imported"] and not building & set(seen["imported"])


def test_a_server_restarted_on_another_port_lists_its_feeds_there_before_its_first_build(tmp_path):
    """As serve_ready.py restarts it: each run on a free port, which is its SITE_URL."""
    folder, state = many(tmp_path / "articles", 30), tmp_path / "state" / "state.db"
    state.parent.mkdir()
    first = Server(folder, state)
    try:
        assert fetch(first.base, "/feeds.opml").body.count(first.base.encode()) > 1
    finally:
        first.stop()
    second = Server(folder, state)
    try:
        deadline = time.monotonic() + 30
        while first.base.encode() in (opml := fetch(second.base, "/feeds.opml").body) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert first.base.encode() not in opml and opml.count(second.base.encode() + b"/") > 1
        # Logged once the build is committed: a worker may serve that build a moment before the line is written.
        deadline = time.monotonic() + 10
        while "republished at " + second.base not in second.output() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "republished at " + second.base in second.output()
    finally:
        second.stop()
    at_second = [(report, paths) for _, report, paths in builds(state) if report.get("site_url") == second.base]
    report, paths = at_second[0]  # its first build there: the feeds, lists and pages, nothing of the sitemaps
    assert "feeds.opml" in paths and "feed.rss" in paths and not any(path.startswith("sitemap") for path in paths)


def test_each_build_leaves_the_write_ahead_log_empty_so_a_start_after_a_kill_copies_nothing(tmp_path):
    """SQLite's own checkpoint leaves the log's bytes in place; a builder killed after a build (a deploy) left them for
    the next start to copy again, in the first process to close the file (0.33 s for 30 MB)."""
    from feedsvc.building.storewriter import Build, StoreWriter

    state = tmp_path / "state.sqlite3"
    writer = StoreWriter(state)
    for n in range(3):
        body = os.urandom(2 << 20)  # 2 MB: 500 pages, past no automatic checkpoint's threshold
        writer.commit(Build({}, {f"big-{n}": ("e", "text/plain", "2026-12-02T00:00:00+00:00", None, "[]", body, None, None, "")}),
                      datetime.now(timezone.utc))
        assert writer.checkpoints.wait() and os.path.getsize(str(state) + "-wal") == 0
    with sqlite3.connect(state) as conn:  # and every build is in the file
        assert conn.execute("SELECT COUNT(*) FROM resources").fetchone()[0] == 3

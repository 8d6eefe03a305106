"""The builder keeps no copy of what it committed (Rendered.release): the bytes live in the build store alone."""
from __future__ import annotations

import gzip
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from feedsvc import create_app
import feedsvc.building.committer
from feedsvc.building import builder, render
from feedsvc.building.builder import start_building
from feedsvc.building.committer import Committer
from feedsvc.building.site import Publisher
from feedsvc.formats import FORMATS
from feedsvc.model import UNDATED
from feedsvc.resource import Rendered
from tests.conftest import write


def the_builder(config: dict):
    """A process wired as the dedicated builder is (builder.run_builder): it holds the lock, so it releases."""
    app = create_app(config, refresh=False, build=False)
    publisher = start_building(app, release=True)
    committer = next(o for o in publisher.observers if isinstance(o, Committer))
    return app, publisher, committer


def feed_paths(publisher) -> list[str]:
    return [feed.path(fmt) for feed in publisher.snapshot.feeds for fmt in FORMATS]


@pytest.fixture
def config(sample_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return {"ARTICLES_DIR": str(sample_dir), "STATE_PATH": str(tmp_path / "state.sqlite3"), "SETTLE_MS": 0}


@pytest.mark.parametrize("first_pages", [500, 3], ids=["in-one-build", "pages-and-codings-after"])
def test_once_committed_the_builder_holds_no_feed_bytes_and_reads_them_back_from_the_store(config, first_pages, monkeypatch):
    monkeypatch.setattr(feedsvc.building.committer, "FIRST_PAGES", first_pages)  # 3: a cold start's way, codings committed after the feeds
    app, publisher, committer = the_builder(config)
    publisher.refresh()
    assert committer.wait(30)
    resources, store = publisher.snapshot.resources, app.extensions["feedsvc.store"]
    paths = feed_paths(publisher)
    assert paths and [p for p in paths if resources[p]._body is not None] == []
    for path in paths:
        stored = store.resource(path)
        assert resources[path].body == stored.body and resources[path].etag == stored.etag
        assert gzip.decompress(resources[path].coded("gzip")) == stored.body


def test_a_saved_file_after_a_release_is_committed_and_served_and_released_in_turn(config, sample_dir):
    app, publisher, committer = the_builder(config)
    publisher.refresh()
    assert committer.wait(30)
    before = publisher.snapshot.resources["feed.json"]
    category = publisher.snapshot.feeds[1].category.name
    write(sample_dir, "zz-new.txt", f"{category}\nA story saved after the release\nIts body.\n")
    publisher.refresh()
    assert committer.wait(30)
    after = publisher.snapshot.resources["feed.json"]
    assert after is not before and after._body is None  # rendered anew, committed, let go
    worker = create_app(config, build=False).test_client()
    served = worker.get("/feed.json")
    assert served.status_code == 200 and served.headers["ETag"] == after.etag
    assert json.loads(served.data)["items"][0]["title"] == "A story saved after the release" == json.loads(after.body)["items"][0]["title"]


def test_a_process_that_does_not_hold_the_lock_keeps_its_bytes(config):
    app = create_app(config)  # tests, tools, `feedsvc build`: not the one writer of the store
    publisher = app.extensions["feedsvc"]
    assert all(publisher.snapshot.resources[p]._body is not None for p in feed_paths(publisher))


def test_released_bytes_the_store_no_longer_holds_are_an_error_not_other_bytes():
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    mine, replaced = Rendered(b"<rss>mine</rss>", "application/rss+xml", when), Rendered(b"<rss>newer</rss>", "application/rss+xml", when)
    mine.release(lambda: replaced)
    assert repr(mine).startswith("Rendered(application/rss+xml, released,")
    with pytest.raises(LookupError, match="released"):
        mine.body
    with pytest.raises(LookupError, match="released"):
        mine.coded("br")
    gone = Rendered(b"<rss>gone</rss>", "application/rss+xml", when)
    gone.release(lambda: None)
    with pytest.raises(LookupError, match="no longer holds"):
        gone.body


def stories(folder, count: int = 24) -> None:
    for number in range(count):
        write(folder, f"s{number:02d}.txt", f"---\ndate: 2026-11-{1 + number:02d} 08:00\n---\n{('News', 'Sport', 'Culture', 'Tech')[number % 4]}\n"
                                            f"Story {number}\nBody of story {number}, a paragraph.\n")


@pytest.fixture
def four_categories(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stories(tmp_path / "articles")
    return {"ARTICLES_DIR": str(tmp_path / "articles"), "STATE_PATH": str(tmp_path / "state.sqlite3"), "SETTLE_MS": 0, "FEED_MAX_ITEMS": 5}


def test_the_builder_keeps_the_site_wide_pages_items_only_and_cuts_the_others_from_the_stored_feeds(four_categories, monkeypatch):
    monkeypatch.setattr(render, "LEAN_SPARE", 0)  # none kept of the others: each is cut from the stored feeds
    app, publisher, committer = the_builder(four_categories)
    publisher.refresh()
    assert committer.wait(30)
    fragments, feeds = publisher.renderer.fragments, publisher.snapshot.feeds
    assert len(feeds) == 5 and fragments._kept.keys() == {a.id for a in feeds[0].items}  # not every first page's
    made = fragments.made
    write(Path(four_categories["ARTICLES_DIR"]), "zz-new.txt", "---\ndate: 2026-11-30 08:00\n---\nTech\nA new story\nIts body.\n")
    publisher.refresh([four_categories["ARTICLES_DIR"] + "/zz-new.txt"])
    assert committer.wait(30)
    # The new article's items alone are rendered: the Tech feed's other four are cut from its bytes in the store.
    assert fragments.made - made == len(FORMATS)
    store, tech = app.extensions["feedsvc.store"], next(f for f in publisher.snapshot.feeds if f.category and f.category.name == "Tech")
    for feed in (publisher.snapshot.feeds[0], tech):
        assert feed.items[0].title == "A new story"
        for fmt, spec in FORMATS.items():
            served = store.resource(feed.path(fmt))
            whole = spec.render(replace(feed, updated=UNDATED), publisher.site)
            assert served.body == spec.date(whole, served.last_modified), feed.path(fmt)


@pytest.mark.parametrize("spare", [0, 3000])
def test_a_builder_never_holds_every_first_pages_items_beside_the_feeds(four_categories, monkeypatch, spare):
    monkeypatch.setattr(render, "LEAN_SPARE", spare)
    app, publisher, committer = the_builder(four_categories)
    renderer, held = publisher.renderer, []
    undated = renderer._undated_feed
    monkeypatch.setattr(renderer, "_undated_feed", lambda fmt, feed: (undated(fmt, feed), held.append({id_: entry[2] for id_, entry in renderer.fragments._kept.items()}))[0])
    publisher.refresh()
    site_wide = {a.id for a in publisher.snapshot.feeds[0].items}
    assert len(held) == 5 * len(FORMATS)  # every feed assembled, each with no more kept but the site-wide page's than the spare
    others = [sum(size for id_, size in kept.items() if id_ not in site_wide) for kept in held]
    assert max(others) <= spare and (spare == 0 or max(others) > 0), others
    every = {a.id for feed in publisher.snapshot.feeds for a in feed.items}
    assert all(kept.keys() < every for kept in held)


def test_a_category_saved_to_again_is_assembled_from_the_items_kept_without_reading_its_feeds_back(four_categories, monkeypatch):
    app, publisher, committer = the_builder(four_categories)
    publisher.refresh()
    assert committer.wait(30)
    fragments, read_back = publisher.renderer.fragments, []
    fragments.keep_only({a.id for a in publisher.snapshot.feeds[0].items})  # as after saves to every other category
    refill = fragments.refill
    monkeypatch.setattr(fragments, "refill", lambda fmt, feed, before, body: refill(fmt, feed, before, lambda: read_back.append(feed.path(fmt)) or body()))
    folder = Path(four_categories["ARTICLES_DIR"])
    for number, title in enumerate(["A new story", "Another new story"]):
        read_back.clear()
        write(folder, f"zz-new-{number}.txt", f"---\ndate: 2026-11-30 0{8 + number}:00\n---\nTech\n{title}\nIts body.\n")
        publisher.refresh([str(folder / f"zz-new-{number}.txt")])
        assert committer.wait(30)
        tech = next(f for f in publisher.snapshot.feeds if f.category and f.category.name == "Tech")
        assert tech.items[0].title == title
        # The first save cuts the Tech feed's items from its stored bytes; the second finds them kept (LEAN_SPARE).
        assert read_back == ([tech.path(fmt) for fmt in FORMATS] if number == 0 else []), read_back
        store = app.extensions["feedsvc.store"]
        for fmt, spec in FORMATS.items():
            served = store.resource(tech.path(fmt))
            assert served.body == spec.date(spec.render(replace(tech, updated=UNDATED), publisher.site), served.last_modified)


def test_a_digest_handed_to_a_resource_gives_the_etag_its_bytes_would():
    import hashlib

    when, body = datetime(2026, 1, 1, tzinfo=timezone.utc), b'{"items":[]}'
    given = Rendered(body, "application/feed+json", when, digest=hashlib.sha256(body).hexdigest())
    assert given.etag == Rendered(body, "application/feed+json", when).etag


def test_the_builder_keeps_none_of_the_feeds_pages_for_browsers_it_commits(four_categories, monkeypatch):
    from feedsvc import preview
    from feedsvc.urls import preview_key

    monkeypatch.setattr(preview, "_made", type(preview._made)())
    app, publisher, committer = the_builder(four_categories)
    publisher.refresh()
    assert committer.wait(30)
    assert len(preview._made) == 0  # made, committed, let go
    store = app.extensions["feedsvc.store"]
    for path in feed_paths(publisher):  # the very page a serving process would make
        assert store.resource(preview_key(path)).body == preview.preview_page(publisher.snapshot, publisher.site, path).body, path


def test_glibc_takes_a_fixed_mmap_threshold_and_a_trim_where_it_is_the_allocator():
    from feedsvc import allocator

    glibc = platform.libc_ver()[0] == "glibc"  # elsewhere both say they did nothing, and nothing fails
    assert allocator.mmap_from(builder.MMAP_THRESHOLD) is glibc
    assert allocator.trim() in ((True, False) if glibc else (False,))  # True once there was free memory to give back


# Run in a process of its own (a fresh allocator): a block of 2 MiB taken after a block of 8 MiB was freed, and
# whether glibc mapped it apart (mallinfo2's hblkhd, the bytes in blocks mapped apart, grows by it) or put it in the heap.
_BIG_BLOCK_AFTER_A_BIGGER_ONE = """
import ctypes, sys
from feedsvc.building import builder
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype, libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = Info, ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
print(builder.map_apart(int(sys.argv[1])))
libc.free(libc.malloc(8 << 20))
before = libc.mallinfo2().hblkhd
block = libc.malloc(2 << 20)
print(libc.mallinfo2().hblkhd - before >= 2 << 20)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator: elsewhere map_apart asks nothing of it")
@pytest.mark.parametrize("big", [True, False], ids=["a-big-cold-start", "a-smaller-one"])
def test_a_big_cold_start_has_glibc_map_its_builders_big_blocks_apart_from_its_walk(big):
    # Left to itself, glibc raises its threshold to the largest block freed, so the heap keeps the high-water mark of the
    # biggest blocks a process held: a cold start's at 100,000 articles held its builder's peak at the 400 MiB line.
    files = builder.MAP_APART_FROM - (0 if big else 1)
    done = subprocess.run([sys.executable, "-c", _BIG_BLOCK_AFTER_A_BIGGER_ONE, str(files)], capture_output=True, text=True,
                          check=True, env={k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")})
    assert done.stdout.split() == [str(big), str(big)]  # asked, and mapped apart


@pytest.mark.parametrize("case", ["no-build-yet", "fewer-files", "a-build-stored"])
def test_a_builder_that_takes_over_before_any_build_maps_apart_by_the_cold_starts_bound(config, sample_dir, monkeypatch, case):
    # A builder that waited for the lock (build_forever's lock None: no read-ahead, so no map_apart from its walk) and took
    # it over from one that died before its first build builds a first build, holding its rows back as a cold start's
    # does: its big blocks go apart by the same bound, its files counted by name (100,000 articles peaked at 408 MiB).
    from feedsvc import allocator

    asked = []
    monkeypatch.setattr(allocator, "mmap_from", lambda size: asked.append(size) or True)
    files = len([p for p in Path(sample_dir).rglob("*") if p.suffix in (".txt", ".md")])  # what the walk counts
    monkeypatch.setattr(builder, "MAP_APART_FROM", files + (1 if case == "fewer-files" else 0))
    if case == "a-build-stored":  # the builder it waited for committed a build: a restart, nothing held back
        app, publisher, committer = the_builder(config)
        publisher.refresh()
        assert committer.wait(30)
    taken = builder.map_apart_taken_over(config["STATE_PATH"], config["ARTICLES_DIR"])
    assert taken == (case == "no-build-yet") and asked == ([builder.MMAP_THRESHOLD] if taken else [])


@pytest.mark.parametrize("alone", [True, False], ids=["the-builder", "a-tool-without-the-lock"])
def test_the_builder_reads_back_no_recorded_dates_in_a_refresh_as_no_other_process_dates_what_it_renders(config, sample_dir,
                                                                                                      monkeypatch, alone):
    # Renderer.drifted and ListingVersions.drifted read every resource's and listing's recorded date each refresh, to
    # take a later one another process recorded for the same bytes; the process holding the build lock is the only one.
    from feedsvc.building.state import StateStore

    reads = []
    recorded = StateStore.recorded_versions
    monkeypatch.setattr(StateStore, "recorded_versions", lambda self, keys: reads.append(len(keys)) or recorded(self, keys))
    if alone:
        app, publisher, committer = the_builder(config)
    else:
        app = create_app(config, refresh=False)
        publisher = app.extensions["feedsvc"]
    publisher.refresh()
    category = publisher.snapshot.feeds[1].category.name
    write(sample_dir, "zz-new.txt", f"{category}\nA story saved after the first build\nIts body.\n")
    reads.clear()
    publisher.refresh()
    assert b"A story saved after the first build" in publisher.snapshot.resources["feed.json"].body
    assert (reads == []) == alone


def test_once_every_file_is_read_a_small_build_keeps_the_memory_it_freed_for_the_next_and_a_big_one_gives_it_back(
        config, sample_dir, monkeypatch):
    # Given back after each one-file refresh and taken anew by the next, the same pages cost it ~1,200 page faults.
    import feedsvc.reading.scan

    finish_reading = Publisher.finish_reading
    trims = []
    monkeypatch.setattr(builder.allocator, "trim", lambda: trims.append(len(trims)) or True)
    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 2)  # a cold start's way: placed first, read in the background
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 0)
    monkeypatch.setattr(Publisher, "finish_reading", lambda self, placed: None)  # the background reading waits
    app, publisher, committer = the_builder({**config, "FEED_MAX_ITEMS": 1})  # most files not on a first page
    publisher.refresh()
    assert committer.wait(30) and len(publisher.scanner.placed) and trims  # files left to read: every build gives back
    finish_reading(publisher, publisher.scanner.placed)
    assert committer.wait(30) and not publisher.scanner.placed
    category = publisher.snapshot.feeds[1].category.name
    for number, trim_from in enumerate([feedsvc.building.committer.TRIM_FROM, 1]):
        monkeypatch.setattr(feedsvc.building.committer, "TRIM_FROM", trim_from)
        trims.clear()
        write(sample_dir, f"zz-new-{number}.txt", f"{category}\nStory {number} saved once every file is read\nIts body.\n")
        publisher.refresh([str(sample_dir / f"zz-new-{number}.txt")])
        assert committer.wait(30)
        assert f"Story {number} saved".encode() in app.extensions["feedsvc.store"].resource("feed.json").body
        assert bool(trims) == (trim_from == 1), trims  # a build of a few MB keeps it; a big one (here: any) gives back
        trims.clear()
        publisher.refresh()  # the schedule's: nothing changed, so the saves are over
        assert bool(trims) == (trim_from != 1), trims  # what the small build kept is given back now

"""Archive pages that keep their place (building/archive.py): an article dated back into the archive, or deleted from
it, changes its own archive page alone; a restart keeps every page where it was."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from hypothesis import given, settings, strategies as st

from feedsvc.building.archive import GROWN, freeze
from feedsvc.building.feeds import order_key
from feedsvc.model import Site
from feedsvc.paging import Listing, archive_spans, page_count, page_feed
from tests.conftest import write

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc)
SITE = Site(title="T", url="http://127.0.0.1:9", description="", author="", language="en", max_age=60)
SIZE = 5


def item(n: float, name: str | None = None):
    """All paging and order_key read of an article: its time, ID and language."""
    return SimpleNamespace(published=T0 + timedelta(minutes=n), updated=T0, id=name or f"a{n:08.2f}", lang="en")


def newest_first(items) -> tuple:
    return tuple(sorted(items, key=order_key))


def pages(items: tuple, cuts: tuple = ()) -> list[tuple]:
    """Every archive page's items (page 2 first), as page_feed gives them."""
    listing = Listing("", "T", "T", None, items, "http://127.0.0.1:9/", cuts=cuts)
    return [page_feed(listing, SITE, SIZE, p).items for p in range(2, page_count(len(items), SIZE, cuts) + 1)]


def test_a_first_freeze_cuts_as_counting_does():
    items = newest_first(item(n) for n in range(37))
    bounds, cuts = freeze(items, SIZE, [])
    assert cuts == (5,) * 6  # 32 archive items: pages 2-8, the newest (2 items) not frozen
    assert pages(items, cuts) == pages(items)
    assert freeze(items, SIZE, bounds) == (bounds, cuts)  # the same items: the same pages


def test_an_article_dated_back_into_the_archive_changes_its_own_page_alone():
    items = newest_first(item(n) for n in range(37))
    bounds, cuts = freeze(items, SIZE, [])
    before = pages(items, cuts)
    back = item(12.5)  # between the 13th and 14th oldest: page 4 (the 11th to 15th oldest)
    after_items = newest_first(items + (back,))
    bounds2, cuts2 = freeze(after_items, SIZE, bounds)
    after = pages(after_items, cuts2)
    assert len(after) == len(before)
    changed = [p + 2 for p, (old, new) in enumerate(zip(before, after)) if old != new]
    assert changed == [4]
    assert back in after[2] and len(after[2]) == SIZE + 1
    # Cut by count, every page from there on would have moved by one.
    assert [p + 2 for p, (old, new) in enumerate(zip(before, pages(after_items))) if old != new] == [4, 5, 6, 7, 8]


def test_an_article_deleted_from_the_archive_changes_its_own_page_alone():
    items = newest_first(item(n) for n in range(37))
    bounds, cuts = freeze(items, SIZE, [])
    before = pages(items, cuts)
    gone = before[0][2]  # a page 2 item
    rest = tuple(a for a in items if a is not gone)
    _, cuts2 = freeze(rest, SIZE, bounds)
    after = pages(rest, cuts2)
    assert [p + 2 for p, (old, new) in enumerate(zip(before, after)) if old != new] == [2]
    assert len(after) == len(before) and gone not in after[0]


def test_when_the_newest_archive_page_empties_the_frozen_page_before_it_stays_as_it_was(make_app, articles_dir, deletions_at_once):
    corpus(articles_dir, 37)  # pages 2-8, page 8 with the two items past the frozen pages (hours 30 and 31)
    app = make_app(articles_dir, FEED_MAX_ITEMS=SIZE)
    client = app.test_client()
    before = served(client, ARCHIVE)
    assert before["/feed.rss?page=7"][0].count(b"<item>") == SIZE
    (articles_dir / "a036.md").unlink()  # the newest: page 1 takes hour 31's from page 8
    (articles_dir / "a030.md").unlink()  # and page 8's other one goes
    assert app.extensions["feedsvc"].refresh()
    after = served(client, ARCHIVE)
    assert changed_pages(before, after) == {"8"}  # page 7 keeps its bytes, its "previous" link to page 8 and its lifetime
    assert json.loads(after["/feed.json?page=8"][0])["items"] == []
    assert client.get("/feed.rss?page=7").headers["Cache-Control"] == "public, max-age=86400"


def test_when_page_one_reaches_into_frozen_pages_they_are_cut_anew_and_nothing_is_lost():
    items = newest_first(item(n) for n in range(37))
    bounds, _ = freeze(items, SIZE, [])
    rest = items[12:]  # the twelve newest deleted: page 1 now holds what were archive items
    bounds2, cuts2 = freeze(rest, SIZE, bounds)
    assert sum(cuts2) <= len(rest) - SIZE
    walked = [a for page in reversed(pages(rest, cuts2)) for a in page]
    assert list(rest[:SIZE]) + walked == list(rest)


def test_a_back_catalogue_dated_into_a_page_has_it_and_the_newer_ones_cut_anew_and_the_older_ones_kept():
    items = newest_first(item(n) for n in range(37))
    bounds, cuts = freeze(items, SIZE, [])
    before = pages(items, cuts)
    imported = tuple(item(12.5 + k / 100) for k in range(GROWN * SIZE))  # into page 4 (the 11th to 15th oldest)
    grown = newest_first(items + imported)
    _, cuts2 = freeze(grown, SIZE, bounds)
    after = pages(grown, cuts2)
    assert after[:2] == before[:2]  # pages 2 and 3 as they were
    assert max(cuts2) == SIZE and after[2:] == pages(grown)[2:]  # from page 4 on, cut by count


def test_a_back_catalogue_dated_into_the_oldest_page_has_the_listing_cut_anew():
    items = newest_first(item(n) for n in range(37))
    bounds, _ = freeze(items, SIZE, [])
    imported = tuple(item(0.5 + k / 100) for k in range(GROWN * SIZE))  # all of them older than page 2's newest
    grown = newest_first(items + imported)
    _, cuts = freeze(grown, SIZE, bounds)
    assert max(cuts) == SIZE and pages(grown, cuts) == pages(grown)


operations = st.lists(st.tuples(st.sampled_from(["add", "back", "delete", "import"]), st.floats(0, 1)), max_size=40)


@settings(max_examples=150, deadline=None)
@given(start=st.integers(0, 40), ops=operations)
def test_every_item_is_on_exactly_one_page_and_only_the_touched_page_changes(start, ops):
    items = newest_first(item(n) for n in range(start))
    bounds, cuts = freeze(items, SIZE, [])
    clock = float(start)
    for step, (op, where) in enumerate(ops):
        before_pages, old_bounds = pages(items, cuts), list(bounds)
        if op == "add":  # news: newer than everything
            clock += 1
            touched = (item(clock),)
        elif op == "back":  # dated back among the others, with an ID of its own (as every article of a listing has)
            touched = (item(where * clock, f"b{step:03}"),)
        elif op == "import":  # a back catalogue dated into one place: more than a page grows to hold
            touched = tuple(item(where * clock + k / 1000, f"i{step:03}-{k:02}") for k in range(GROWN * SIZE + 1))
        elif items:
            touched = (items[int(where * (len(items) - 1))],)
        else:
            continue
        left, came = (touched, ()) if op == "delete" else ((), touched)
        items = tuple(a for a in items if a not in left) + came
        items = newest_first(items)
        placed = freeze(items, SIZE, bounds, (cuts, left, came))  # by the moved items alone, as a refresh does
        bounds, cuts = freeze(items, SIZE, bounds)  # by a look at every bound
        assert placed == (bounds, cuts)
        after = pages(items, cuts)
        # Walking next from page 1 visits every item once, each page newest first.
        assert list(items[:SIZE]) + [a for page in reversed(after) for a in page] == list(items)
        assert all(len(page) <= GROWN * SIZE for page in after)
        assert list(archive_spans(len(items), SIZE, cuts))[:len(cuts)] == [
            (sum(cuts[:k]), sum(cuts[:k + 1])) for k in range(len(cuts))]
        if cuts:  # the newest archive page is never a frozen one: the last frozen page keeps its "previous" link
            assert len(after) > len(cuts)
        # A frozen page that held none of the touched items keeps its items while the pages older than it are kept
        # (none was cut anew below it).
        kept = next((k for k, bound in enumerate(old_bounds) if k >= len(bounds) or bounds[k] != bound), len(old_bounds))
        for k in range(kept):
            if not any(a in after[k] or a in before_pages[k] for a in touched):
                assert after[k] == before_pages[k]


def corpus(folder, n: int) -> None:
    for i in range(n):
        write(folder, f"a{i:03}.md", f"---\ntitle: Story {i}\ncategory: News\ndate: {(T0 + timedelta(hours=i)).isoformat()}\n---\nBody {i}.\n")


def served(client, paths: list[str]) -> dict[str, tuple]:
    found = {}
    for path in paths:
        res = client.get(path)
        assert res.status_code == 200, path
        found[path] = (res.data, res.headers["ETag"], res.headers["Last-Modified"])
    return found


ARCHIVE = [f"{feed}?page={p}" for feed in ("/feed.json", "/feed.atom", "/feed.rss", "/category/news/feed.atom")
           for p in range(2, 9)]


def changed_pages(before: dict, after: dict) -> set[str]:
    return {path.split("=")[1] for path in before if after[path] != before[path]}


def test_through_the_app_a_back_dated_article_and_a_deletion_change_one_archive_page_and_a_restart_none(
        make_app, articles_dir, deletions_at_once):
    corpus(articles_dir, 37)  # 32 archive items: pages 2-8, pages 2-7 complete
    app = make_app(articles_dir, FEED_MAX_ITEMS=SIZE)
    client, publisher = app.test_client(), app.extensions["feedsvc"]
    before = served(client, ARCHIVE)
    # Dated between the 13th and 14th oldest (hours 12 and 13): page 4, which holds the 11th to 15th oldest.
    write(articles_dir, "old.md", f"---\ntitle: Found in a drawer\ncategory: News\ndate: {(T0 + timedelta(hours=12, minutes=30)).isoformat()}\n---\nOld.\n")
    assert publisher.refresh()
    after = served(client, ARCHIVE)
    assert changed_pages(before, after) == {"4"}
    assert b"Found in a drawer" in after["/feed.json?page=4"][0]
    assert client.get("/feed.json?page=9").status_code == 404  # no page more
    (articles_dir / "a002.md").unlink()  # the 3rd oldest: page 2
    assert publisher.refresh()
    deleted = served(client, ARCHIVE)
    assert changed_pages(after, deleted) == {"2"}
    # A restart on the same state keeps every page where it was (the bounds are in the state store).
    restarted = served(make_app(articles_dir, FEED_MAX_ITEMS=SIZE).test_client(), ARCHIVE)
    assert changed_pages(deleted, restarted) == set()


def test_a_thin_worker_serves_the_archive_pages_as_the_builder_cut_them(make_app, articles_dir, tmp_path):
    from tests.test_export import served as worker_app

    corpus(articles_dir, 37)
    app = make_app(articles_dir, FEED_MAX_ITEMS=SIZE)
    write(articles_dir, "old.md", f"---\ntitle: Found in a drawer\ncategory: News\ndate: {(T0 + timedelta(hours=12, minutes=30)).isoformat()}\n---\nOld.\n")
    assert app.extensions["feedsvc"].refresh()
    worker = worker_app(tmp_path / "state.sqlite3", articles_dir, FEED_MAX_ITEMS=SIZE)
    assert served(worker, ARCHIVE) == served(app.test_client(), ARCHIVE)
    assert len(feedparser_items(worker.get("/feed.json?page=4").data)) == SIZE + 1


def feedparser_items(body: bytes) -> list:
    import json
    return json.loads(body)["items"]


def test_the_static_export_rewrites_only_the_archive_page_an_article_was_dated_back_into(articles_dir, tmp_path):
    from tests.test_export import assert_served_alike, entries, files, run_build, served as worker_app

    corpus(articles_dir, 37)
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=SIZE)
    had, before = entries(out), files(out)
    write(articles_dir, "old.md", f"---\ntitle: Found in a drawer\ncategory: News\ndate: {(T0 + timedelta(hours=12, minutes=30)).isoformat()}\n---\nOld.\n")
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=SIZE)
    now, after = entries(out), files(out)
    for feed in ("feed", "category/news/feed"):
        for fmt in ("rss", "atom", "json"):
            names = {page: f"{feed}.{fmt}.page-{page}" for page in range(2, 9)}
            assert f"{feed}.{fmt}.page-9" not in now
            rewritten = {page for page, name in names.items() if now[name][:5] != had[name][:5] or after[name].st_ino != before[name].st_ino}
            assert rewritten == {4}, (feed, fmt)
    assert assert_served_alike(out, worker_app(state, articles_dir, FEED_MAX_ITEMS=SIZE)) == len(now)


def test_bounds_spoilt_in_the_state_store_have_that_feed_cut_by_count_and_publishing_goes_on(
        make_app, articles_dir, tmp_path, caplog):
    import sqlite3

    corpus(articles_dir, 37)
    app = make_app(articles_dir, FEED_MAX_ITEMS=SIZE)
    client = app.test_client()
    before = served(client, ARCHIVE)
    with sqlite3.connect(tmp_path / "state.sqlite3") as conn:
        conn.execute("UPDATE archive_cuts SET bounds = '[[1, \"a\"], [5, \"b\"]]' WHERE listing = ''")  # not newest last
        conn.execute("UPDATE archive_cuts SET bounds = 'not json' WHERE listing = 'news'")
    write(articles_dir, "new.md", f"---\ntitle: Newest\ncategory: News\ndate: {(T0 + timedelta(days=9)).isoformat()}\n---\nNew.\n")
    restarted = make_app(articles_dir, FEED_MAX_ITEMS=SIZE)
    assert restarted.extensions["feedsvc"].last_error is None
    assert b"Newest" in restarted.test_client().get("/feed.json").data
    assert "archive page bounds of feed '' are not" in caplog.text and "feed 'news'" in caplog.text
    # Cut by count again: the new article's arrival changes the newest archive page, and the full ones stay.
    after = served(restarted.test_client(), ARCHIVE)
    assert changed_pages(before, after) == {"8"}


def test_another_page_size_cuts_every_archive_page_anew(make_app, articles_dir):
    corpus(articles_dir, 37)
    make_app(articles_dir, FEED_MAX_ITEMS=SIZE)  # bounds recorded for pages of five
    write(articles_dir, "old.md", f"---\ntitle: Found in a drawer\ncategory: News\ndate: {(T0 + timedelta(hours=12, minutes=30)).isoformat()}\n---\nOld.\n")
    client = make_app(articles_dir, FEED_MAX_ITEMS=4).test_client()  # 34 archive items: pages of four, by count
    counts = [len(json.loads(client.get(f"/feed.json?page={p}").data)["items"]) for p in range(2, 11)]
    assert counts == [4, 4, 4, 4, 4, 4, 4, 4, 2] and client.get("/feed.json?page=11").status_code == 404


def test_a_listings_pages_are_laid_out_once_not_once_a_page():
    from feedsvc import paging

    items = newest_first(item(n) for n in range(2000 * SIZE + 3))
    _, cuts = freeze(items, SIZE, [])
    listing = Listing("", "T", "T", None, items, "http://127.0.0.1:9/", cuts=cuts)
    paging._layout.cache_clear()
    assert all(page_feed(listing, SITE, SIZE, p) is not None for p in range(1, page_count(len(items), SIZE, cuts) + 1))
    # An export asks for each of 2,000 pages: each ask cutting every page again made it quadratic in the pages.
    assert paging._layout.cache_info().misses == 1

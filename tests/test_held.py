"""What the builder holds for each article after a cold start: one placement record, its strings shared by every
stage's map, and the state store's dated copy of it; not the placements the background reading replaced."""
from __future__ import annotations

import gc
import os
import pickle
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

import feedsvc.model
import feedsvc.reading.articles
import feedsvc.reading.scan
from feedsvc import create_app
import feedsvc.building.committer
from feedsvc.building import builder
from feedsvc.building.sitemaps import Sitemaps
from feedsvc.building.state import StateStore
from feedsvc.building.tombstones import Tombstones
from feedsvc.model import Article, Site, dated
from feedsvc.paging import Listing
from tests.conftest import write

CATEGORIES = ("economy", "sport", "tech", "culture")
SITE = Site("T", "http://example.org", "d", "a", "en", 60)
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def articles_held(sources: set[str]) -> list[Article]:
    """Every Article alive in this process read from one of these files."""
    gc.collect()
    return [o for o in gc.get_objects() if type(o) is Article and o.source in sources]


def an_article(i: int, **more) -> Article:
    fields = {"id": f"held-{i}", "source": f"held-{i}.txt", "title": f"Story {i}", "categories": (CATEGORIES[i % 4],),
              "body_html": "", "body_text": "", "summary": "", "lang": "", "content_hash": f"b:{i:064x}",
              "published": datetime(2025, 1, 1 + i % 28, tzinfo=timezone.utc), "updated": None, **more}
    fields["updated"] = fields["updated"] or fields["published"]
    return Article(**fields)


def test_after_a_cold_start_the_builder_holds_two_articles_a_file_sharing_their_strings(tmp_path, monkeypatch):
    """The scanner's placement and the dated copy, nothing more: the placements the background reading replaced
    (each with its own ID, source, title, GUID and hash strings) are held by no stage."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 10)
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 0)  # every file placed first, read in full in the background
    monkeypatch.setattr(feedsvc.building.committer, "FIRST_PAGES", 5)  # article pages committed in background builds too
    folder = tmp_path / "articles"
    for i in range(120):
        path = write(folder, f"held-{i:04d}.txt", f"{CATEGORIES[i % 4]}\nStory number {i}\nA paragraph about story {i}.\n")
        os.utime(path, (1_700_000_000 + 3600 * i,) * 2)
    app = create_app({"ARTICLES_DIR": str(folder), "STATE_PATH": str(tmp_path / "state.sqlite3"), "SETTLE_MS": 0,
                      "FEED_MAX_ITEMS": 3}, refresh=False, build=False)
    publisher = builder.start_building(app, release=True)
    publisher.refresh()
    assert publisher.wait_reading(60)
    committer = next(o for o in publisher.observers if isinstance(o, feedsvc.building.committer.Committer))
    assert committer.wait(60) and app.extensions["feedsvc.indexer"].wait(60)
    held = articles_held({f"held-{i:04d}.txt" for i in range(120)})
    per_file = Counter(a.source for a in held)
    assert len(per_file) == 120 and max(per_file.values()) == 2, per_file.most_common(3)
    for source in per_file:
        mine = [a for a in held if a.source == source]
        for name in ("id", "source", "title", "guid", "content_hash", "categories"):
            assert len({id(getattr(a, name)) for a in mine}) == 1, (source, name)
    entries = publisher.scanner._entries
    assert all(key is entries[key].result.source for key in entries)  # the file's key is its article's source
    pages = publisher.renderer._pages  # an article page's entry: one (article, links) tuple, no list with room for a page
    assert len(pages) == 120 and all(type(entry) is tuple and len(entry) == 2 for entry in pages.values())


def test_a_scanner_keeps_each_files_stat_as_one_int_and_gives_it_back_as_listed(tmp_path, monkeypatch):
    """scan.py _Entry: (size, mtime_ns) packed in one int, not a tuple of two (8 MiB at 100,000 files); a file dated
    before 1970 (a negative mtime) and a size past 32 bits come back as they were, and an unchanged file is not read
    again."""
    scanner = placing_scanner(tmp_path / "articles", 3, monkeypatch)
    os.utime(tmp_path / "articles" / "0.txt", ns=(-86_400_123_456_789, -86_400_123_456_789))
    scanner.scan()
    for source, entry in scanner._entries.items():
        st = os.stat(tmp_path / "articles" / source)
        assert type(entry.packed) is int and entry.stat == (st.st_size, st.st_mtime_ns), source
    assert scanner._entries["0.txt"].stat[1] == -86_400_123_456_789
    assert scanner.scan().changed == frozenset()  # every stat as it was: nothing read again
    for stat in ((0, 0), (1 << 40, -1), ((1 << 64) - 1, 1_700_000_000_123_456_789), (5, -(1 << 62))):
        assert feedsvc.reading.scan._Entry(feedsvc.reading.scan._packed(*stat), None).stat == stat


def placing_scanner(folder, count: int, monkeypatch):
    """A scanner over `count` short articles that places every file first (a cold start's), with a parse store."""
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 0)
    for i in range(count):
        write(folder, f"{i}.txt", f"sport\nStory {i}\nA paragraph about story {i}.\n")
    return feedsvc.reading.scan.Scanner(folder, feedsvc.reading.articles.Options(site_url="http://127.0.0.1:8000"),
                                        settle=0, parsed=_Parsed(), place_from=2)


def test_a_placement_read_again_in_full_keeps_the_strings_of_the_one_it_replaces(tmp_path, monkeypatch):
    """scan.py adopt(): the new placement is a new object (the stages see it came), made of the old one's values."""
    scanner = placing_scanner(tmp_path / "articles", 4, monkeypatch)
    before = {a.source: a for a in scanner.scan().articles}
    full = {s: (scanner.placed[s], scanner.full(s)) for s in before}
    assert all(not feedsvc.model.is_placed(found) for _, found in full.values())
    scanner.adopt(full)
    after = {a.source: a for a in scanner.scan().articles}
    for source, old in after.items():
        assert old is not before[source] and old == before[source]
        for name in ("id", "source", "title", "guid", "content_hash", "categories"):
            assert getattr(old, name) is getattr(before[source], name), name


def test_a_placed_file_rewritten_since_is_not_read_in_full_as_it_was_placed(tmp_path, monkeypatch):
    """scan.py full(): the file read in full must be the one placed (its stat); rewritten since, the next scan reads it."""
    folder = tmp_path / "articles"
    scanner = placing_scanner(folder, 3, monkeypatch)
    scanner.scan()
    write(folder, "1.txt", "sport\nStory 1, rewritten\nA longer paragraph about story 1, written again.\n")
    assert scanner.full("1.txt") is None and scanner.full("0.txt").title == "Story 0"
    assert "Story 1, rewritten" in {a.title for a in scanner.scan().articles}


class _Parsed:
    """A parse store in memory (parsed.ParsedCache's get/put/put_placement/get_all)."""

    def __init__(self):
        self.rows = {}
        self.placed = {}

    def get(self, source, stat):
        return self.rows.get((source, stat))

    def get_all(self, keys):
        return {source: self.rows[(source, stat)] for source, stat in keys if (source, stat) in self.rows}

    def put(self, source, stat, result, placement, names_site=True):
        self.rows[(source, stat)] = result

    def put_placement(self, source, stat, placement, names_site=True):
        self.placed[(source, stat)] = placement  # never a full result: get() does not give it


def test_articles_have_no_dict_and_their_copies_keep_every_field():
    """Slots: 160 bytes an Article instead of 280 with a __dict__; dated() and a pickle's round trip keep the rest."""
    article = an_article(1, tags=("a",), author="Someone", image="http://example.org/i.png", draft=True, guid="urn:x")
    assert not hasattr(article, "__dict__")
    moved = dated(article, NOW, NOW)
    assert (moved.published, moved.updated) == (NOW, NOW)
    assert [getattr(moved, f) for f in Article.__dataclass_fields__ if f not in ("published", "updated")] == \
           [getattr(article, f) for f in Article.__dataclass_fields__ if f not in ("published", "updated")]
    assert pickle.loads(pickle.dumps(article)) == article


def test_articles_unpickled_with_the_same_categories_share_one_tuple():
    one, two = (pickle.loads(pickle.dumps(an_article(i))) for i in (0, 4))  # both "economy"
    assert one.categories == two.categories and one.categories is two.categories


def test_the_shared_category_tuples_stay_bounded(monkeypatch):
    """A folder of ever new category names does not grow the table of shared tuples for ever."""
    monkeypatch.setattr(feedsvc.model, "NAME_SETS", 8)
    monkeypatch.setattr(feedsvc.model, "_NAMES", {})
    for n in range(50):
        pickle.loads(pickle.dumps(replace(an_article(n), categories=(f"c{n}",))))
        assert len(feedsvc.model._NAMES) <= 9
    one, two = (pickle.loads(pickle.dumps(an_article(i))) for i in (0, 4))
    assert one.categories is two.categories  # shared again after the table was emptied


def test_the_sitemaps_keep_no_article_but_each_entry_made_of_its_id_and_date():
    """A sitemap entry is made of the article's ID and `updated`: an equal article read again (a new object) keeps
    its entry, and the sitemaps hold none of the article objects they were made from."""
    sitemaps = Sitemaps(SITE)
    live = [an_article(i) for i in range(50)]
    first = sitemaps.render([], live, NOW)
    again = [dated(a, a.published, a.updated) for a in live]  # equal, not the same objects
    assert sitemaps.render([("http://example.org/", NOW)], again, NOW)["sitemap.xml"] != first["sitemap.xml"]
    assert not held_by(sitemaps) & {id(a) for a in live}
    sitemaps._tail = None  # made whole from the entries kept
    remade = sitemaps.render([("http://example.org/", NOW)], again[1:], NOW)
    assert b"articles/held-0<" not in remade["sitemap.xml"] and b"articles/held-1<" in remade["sitemap.xml"]
    assert not held_by(sitemaps) & {id(a) for a in again}  # (the list of the live articles last listed: those)


def held_by(thing) -> set[int]:
    """id() of the objects an object's attributes hold, and those their containers hold, but the last list listed."""
    values = [v for k, v in vars(thing).items() if k != "_live"]
    return {id(o) for o in values} | {id(o) for o in gc.get_referents(*(v for v in values if isinstance(v, (dict, list, tuple))))}


def test_a_later_date_makes_its_sitemap_entry_again():
    sitemaps = Sitemaps(SITE)
    live = [an_article(i) for i in range(5)]
    sitemaps.render([], live, NOW)
    later = datetime(2025, 6, 1, 12, tzinfo=timezone.utc)
    changed = [dated(live[0], live[0].published, later)] + live[1:]
    sitemaps._tail = None  # made whole: the entries kept, the changed one made again
    body = sitemaps.render([], changed, NOW)["sitemap.xml"]
    assert body.count(b"2025-06-01T12:00:00Z") == 1


def test_rows_of_entries_carried_by_the_same_listings_share_one_tuple_of_keys(tmp_path):
    tombstones = Tombstones(StateStore(tmp_path / "state.sqlite3"), timedelta(days=30))
    items = tuple(an_article(i, guid=f"urn:{i}") for i in range(8))
    sport = tuple(a for a in items if a.categories == ("sport",))
    listings = [Listing("", "T", "d", None, items, "http://example.org/"), Listing("sport", "T", "d", None, sport, "x")]
    tombstones.update(listings, NOW)
    keys = [row[1] for ref, row in tombstones._carried.items() if row[2] == ("economy",)]
    assert len(keys) == 2 and keys[0] == ("",) and keys[0] is keys[1]
    sport_keys = [row[1] for row in tombstones._carried.values() if row[2] == ("sport",)]
    assert sport_keys[0] == ("", "sport") and sport_keys[0] is sport_keys[1]


def test_a_scans_times_of_modification_are_read_from_its_entries_not_a_map_of_its_own(tmp_path):
    """No map of every file's mtime beside the entries (a copy of one at each refresh was 1-8 ms at 10,000 articles):
    each time is its entry's stat, and a result asked after a later scan changed the articles says so."""
    folder = tmp_path / "articles"
    for i in range(3):
        write(folder, f"{i}.txt", f"sport\nStory {i}\nA paragraph about story {i}.\n")
    scanner = feedsvc.reading.scan.Scanner(folder, feedsvc.reading.articles.Options(site_url="http://127.0.0.1:8000"), settle=0)
    first = scanner.scan()
    assert not [name for name, value in vars(scanner).items() if isinstance(value, dict) and "0.txt" in value
                and name != "_entries"]  # no second map by source
    assert first.modified["0.txt"] == (folder / "0.txt").stat().st_mtime_ns / 1e9
    again = scanner.scan()  # nothing changed: the first result still answers
    assert set(first.modified) == set(again.modified) == {"0.txt", "1.txt", "2.txt"}
    write(folder, "3.txt", "sport\nStory 3\nA paragraph.\n")
    later = scanner.scan()
    assert "3.txt" in later.modified
    with pytest.raises(RuntimeError, match="later scan"):
        set(first.modified)


def test_the_renderer_keeps_the_publishers_map_of_live_articles_not_a_set_of_its_ids(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "articles"
    for i in range(5):
        write(folder, f"{i}.txt", f"sport\nStory {i}\nA paragraph about story {i}.\n")
    app = create_app({"ARTICLES_DIR": str(folder), "STATE_PATH": str(tmp_path / "state.sqlite3"), "SETTLE_MS": 0})
    publisher = app.extensions["feedsvc"]
    assert publisher.renderer._live is publisher.snapshot.articles
    write(folder, "5.txt", "sport\nStory 5\nA paragraph.\n")
    publisher.refresh()
    assert publisher.renderer._live is publisher.snapshot.articles and len(publisher.snapshot.articles) == 6


def test_a_restarts_owners_of_ids_are_the_callers_strings_not_the_stores_copies(tmp_path):
    """claim_ids(): the builder keeps the owner of every ID (building/owners.py); read back from the state store at a
    restart, each is the candidate's own path string (its article's), not a copy an ID."""
    StateStore(tmp_path / "state.sqlite3").claim_ids({f"held-{i}": [f"held-{i}.txt"] for i in range(3)})
    candidates = {f"held-{i}": [f"held-{i}.txt"] for i in range(3)}  # new string objects, as a restart reads them
    owners = StateStore(tmp_path / "state.sqlite3").claim_ids(candidates)
    assert all(owners[id_] is sources[0] for id_, sources in candidates.items())


def test_a_restarts_tombstone_rows_are_made_of_the_live_articles_strings(tmp_path):
    """Tombstones._shared: the rows loaded from the state store at a restart hold the live articles' own ref and path
    strings once the first update has looked at them; a row whose file is held back (unreadable) stays as loaded."""
    def listings():
        items = tuple(an_article(i, guid=f"urn:held-{i}") for i in range(6))
        return items, [Listing("", "T", "d", None, items, "http://example.org/")]

    Tombstones(StateStore(tmp_path / "state.sqlite3"), timedelta(days=30)).update(listings()[1], NOW)
    items, again = listings()  # the same articles read again: equal strings, other objects
    tombstones = Tombstones(StateStore(tmp_path / "state.sqlite3"), timedelta(days=30))
    tombstones.update([replace(again[0], items=items[1:])], NOW, held={items[0].source})  # the first: unreadable now
    carried = tombstones._carried
    assert set(carried) == {a.guid for a in items}
    keys = {key: key for key in carried}
    for article in items[1:]:
        assert keys[article.guid] is article.guid and carried[article.guid][0] is article.source
    assert carried[items[0].guid][0] == items[0].source  # held back: kept, as loaded

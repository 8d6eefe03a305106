"""A fresh process's first walk and scan of a big folder (`feedsvc build` again, a restart): each file's name is
judged by the one rule at the cost of two string calls, and the parse store's placements come in one pass."""
from __future__ import annotations

import os

from hypothesis import given, strategies as st

from feedsvc.reading import folder as folder_module
from feedsvc.reading.folder import Folder, name_rule
from feedsvc.building.parsed import ParsedCache
from tests.test_export import run_build
from tests.test_rebuild import many

NAME_PARTS = st.sampled_from(["a", "Z", "9", " ", ".", "~", "$", "#", "-", "txt", "md", "TXT", "Md", "swp", "bak",
                              "kate-swp", "save", "tmp", "ش"])


@given(st.lists(NAME_PARTS, min_size=1, max_size=6).map("".join))
def test_the_shortcut_for_article_names_says_what_the_whole_rule_says(name):
    assert name_rule(name) == folder_module._name_rule(name)


def test_a_walk_of_article_files_searches_no_leftover_pattern(tmp_path, monkeypatch):
    for n in range(30):
        (tmp_path / f"story-{n}.txt").write_text("News\n\nTitle\n\n\nBody.\n", encoding="utf-8")
    for leftover in ("story-1.txt~", ".#story-2.txt", "~$story-3.txt", "#story-4.txt#", ".hidden.md", "notes.TXT.bak"):
        (tmp_path / leftover).write_text("x", encoding="utf-8")
    searched = []

    class Counting:
        def __init__(self, pattern):
            self.pattern = pattern

        def search(self, name):
            searched.append(name)
            return self.pattern.search(name)

    monkeypatch.setattr(folder_module, "_BACKUP", Counting(folder_module._BACKUP))
    folder_module._name_rule.cache_clear()
    found, passed = Folder(tmp_path).walk()
    assert [source for source, *_ in found] == sorted(f"story-{n}.txt" for n in range(30))
    assert sorted(passed) == sorted(["story-1.txt~", ".#story-2.txt", "~$story-3.txt", "#story-4.txt#", ".hidden.md",
                                     "notes.TXT.bak"])
    assert not any(name.startswith("story-") and name.endswith(".txt") for name in searched)


def test_a_build_again_takes_every_placement_from_the_parse_store_in_one_call(tmp_path, monkeypatch):
    import feedsvc.reading.scan

    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 10)
    folder, state, out = many(tmp_path / "articles", 40), tmp_path / "state.sqlite3", tmp_path / "export"
    run_build(folder, out, state)
    calls, read = [], []
    placed = ParsedCache.placed

    def counted(self, stats):
        stats = list(stats)
        calls.append(len(stats))
        found = placed(self, stats)
        read.append(self)
        return found

    monkeypatch.setattr(ParsedCache, "placed", counted)
    path = sorted(folder.iterdir())[-1]
    path.write_text(path.read_text(encoding="utf-8") + "\nOne more paragraph.\n", encoding="utf-8")
    os.utime(path, (path.stat().st_mtime + 5,) * 2)
    run_build(folder, out, state)
    assert calls == [41]  # every file (40 and tagged.md), one call: the store's placements of all but the changed one
    assert read[0].read == 1


def stored_cache(state) -> ParsedCache:
    """The parse store as the build that wrote it reads it: its parser, the settings hash of a file that does not
    name the site (.txt) and that of one that does (.md)."""
    from feedsvc.store import connect

    with connect(state, readonly=True) as conn:
        rows = dict(conn.execute("SELECT source LIKE '%.md', settings_hash FROM parsed GROUP BY 1").fetchall())
        version = conn.execute("SELECT parser_version FROM parsed LIMIT 1").fetchone()[0]
    return ParsedCache(state, version, rows[0], rows.get(1))


def test_placements_at_another_stat_or_not_stored_are_not_given(tmp_path):
    folder, state = many(tmp_path / "articles", 12), tmp_path / "state.sqlite3"
    run_build(folder, tmp_path / "export", state)
    from feedsvc.store import connect

    stats = {source: (size, mtime) for source, size, mtime in Folder(folder).walk()[0]}
    first, second, *rest = sorted(stats)
    asked = [(first, stats[first]), (second, (stats[second][0] + 1, stats[second][1])), ("gone.txt", (1, 1)),
             *((source, stats[source]) for source in rest)]
    found = stored_cache(state).placed(asked)
    assert set(found) == {first, *rest}
    assert all(found[source].source == source for source in found)


def test_the_first_pages_full_articles_come_from_the_parse_store_in_one_call(tmp_path, monkeypatch):
    from feedsvc.reading.articles import Options
    from feedsvc.reading.scan import Scanner
    from feedsvc.store import connect

    folder, state = many(tmp_path / "articles", 30), tmp_path / "state.sqlite3"
    run_build(folder, tmp_path / "export", state)
    cache = stored_cache(state)
    scanner = Scanner(folder, Options(site_url="http://127.0.0.1:8000"), settle=0, parsed=cache, slim_from=10)
    placed = scanner.scan()
    assert all(not a.body_text for a in placed.articles) and cache.read == 0  # placements, nothing read
    asked, single = [], []
    get_all, get = ParsedCache.get_all, ParsedCache.get
    monkeypatch.setattr(ParsedCache, "get_all", lambda self, stats: (asked.append(list(stats)), get_all(self, asked[-1]))[1])
    monkeypatch.setattr(ParsedCache, "get", lambda self, *args: (single.append(args), get(self, *args))[1])
    first = sorted(a.source for a in placed.articles)[:7]
    done = scanner.complete(first)
    assert [len(stats) for stats in asked] == [7] and not single
    assert sorted(a.source for a in done.came) == first and all(a.body_text for a in done.came) and cache.read == 0



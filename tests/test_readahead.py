"""A server's cold start reads its folder ahead (reading/readahead.py), from the moment the builder starts, while
it imports what builds: the first scan takes those results, and what it finds is what it would have read itself."""
from __future__ import annotations

import os
import time

import pytest

from feedsvc.config import load_settings
from feedsvc.reading import pool, scan
from feedsvc.reading.articles import Options, is_placed
from feedsvc.reading.readahead import ReadAhead
from feedsvc.reading.scan import Scanner
from tests.conftest import write

OLD = time.time() - 3600  # files settled long ago, as a cold start's archive is


def _folder(root, n: int = 30):
    for i in range(n):
        path = write(root, f"{i:03d}.txt", f"{['News', 'Sport'][i % 2]}\nStory {i}\nParagraph of story {i}.\n")
        os.utime(path, (OLD + i, OLD + i))  # the newest last: those are read in full (first_guess)
    return root


def _options(root) -> Options:
    return Options.from_settings(load_settings({"ARTICLES_DIR": str(root), "SETTLE_MS": 300}))


def _scanner(root, options: Options, ahead: ReadAhead | None = None) -> Scanner:
    scanner = Scanner(root, options, settle=0.3, place_from=10)
    if ahead is not None:  # as run_builder hands it over
        scanner.ahead, scanner.read_ahead = ahead.walk, ahead
    return scanner


def _read_ahead(root, options: Options) -> ReadAhead:
    """A ReadAhead as build_forever makes it (here with PLACE_FROM 10), its reading done."""
    ahead = ReadAhead(root, options, 0.3, place_from=10)
    ahead._thread.join(30)
    return ahead


@pytest.fixture
def counted(monkeypatch):
    """The sources read from now on, in this process (a batch this small is read here, not by workers)."""
    read, one = [], pool.read_one

    def counting(root, options, folder, source, *args, **kwargs):
        read.append(source)
        return one(root, options, folder, source, *args, **kwargs)

    monkeypatch.setattr(pool, "read_one", counting)
    return read


def _found(result) -> dict:
    """What a scan found: each article, and whether it is only placed."""
    return {a.source: (a, is_placed(a)) for a in result.articles}


def test_the_first_scan_takes_what_was_read_ahead_and_finds_what_it_would_have_read(tmp_path, counted):
    root = _folder(tmp_path / "articles")
    options = _options(root)
    ahead = _read_ahead(root, options)
    assert len(counted) == 30 and len(ahead.batch) == 30 and len(ahead.first) == 30  # FIRST_GUESS (1,000) of 30: all in full
    counted.clear()
    with_ahead = _scanner(root, options, ahead).scan()
    assert counted == []  # nothing read again
    alone = _scanner(root, options).scan()
    assert _found(with_ahead) == _found(alone) and len(alone.articles) == 30
    assert with_ahead.skipped == alone.skipped


def test_the_newest_are_read_in_full_and_the_rest_placed_as_the_scan_would(tmp_path, counted, monkeypatch):
    monkeypatch.setattr(scan, "FIRST_GUESS", 5)
    root = _folder(tmp_path / "articles")
    options = _options(root)
    ahead = _read_ahead(root, options)
    newest = ahead.first
    assert newest == {f"{i:03d}.txt" for i in range(25, 30)}
    counted.clear()
    found = _found(_scanner(root, options, ahead).scan())
    assert counted == []
    assert {source for source, (_, placed) in found.items() if not placed} == newest
    assert ahead.batch == {} and not ahead.first  # taken: its list of files let go (30 MB at 100,000 articles)
    assert found == _found(_scanner(root, options).scan())


def test_the_first_scan_finds_the_folder_as_walked_ahead_and_the_next_walks_it_again(tmp_path, counted, monkeypatch):
    monkeypatch.setattr(scan, "FIRST_GUESS", 5)
    root = _folder(tmp_path / "articles")
    options = _options(root)
    ahead = _read_ahead(root, options)
    changed = write(root, "003.txt", "News\nStory 3, corrected\nParagraph of story 3, with a correction.\n")
    os.utime(changed, (OLD + 100, OLD + 100))  # now among the newest: the scan reads it in full
    write(root, "new.txt", "Sport\nJust written\nIt settled a moment ago.\n")  # saved after the walk ahead
    removed = root / "010.txt"
    removed.unlink()
    counted.clear()
    scanner = _scanner(root, options, ahead)
    first = scanner.scan()
    # The folder as it was walked ahead, every file of it read then: nothing walked or read again on the way to the
    # first feeds (a walk is 0.1 s at 10,000 files, beside the workers reading on both cores).
    assert counted == [] and scanner.rewalk
    found = _found(first)
    assert found["003.txt"][0].title == "Story 3" and "010.txt" in found and "new.txt" not in found
    # The next scan walks the folder again though a watcher hints at nothing (it was set after that walk).
    again = scanner.scan({})
    assert not scanner.rewalk
    assert sorted(counted) == ["003.txt", "new.txt"]
    assert again.changed == {"003.txt", "new.txt", "010.txt"}
    # 025 and 026 were read in full ahead (the newest then); placed or not, the articles a scan of the folder finds now.
    placing = lambda result: {source: (a.id, a.title, a.categories, a.published, a.updated, a.content_hash)
                              for source, (a, _) in _found(result).items()}
    now = placing(_scanner(root, options).scan())
    assert placing(again) == now
    assert now["003.txt"][1] == "Story 3, corrected" and "010.txt" not in now and "new.txt" in now


def test_a_file_deleted_after_the_walk_ahead_is_held_back_not_skipped(tmp_path):
    root = _folder(tmp_path / "articles")
    options = _options(root)
    young = write(root, "young.txt", "News\nStill young\nToo young for the read ahead to take it.\n")
    saved = time.time() - 0.2
    os.utime(young, (saved, saved))
    ahead = _read_ahead(root, options)
    assert "young.txt" not in ahead.batch  # not settled when walked (SETTLE_MS 300): the scan reads it
    young.unlink()
    time.sleep(max(0.0, saved + 0.35 - time.time()))  # settled by its mtime now: the scan reads it as listed
    scanner = _scanner(root, options, ahead)
    first = scanner.scan()
    # Listed by the walk ahead, gone when read: not a file that "could not be read", which `feedsvc check` would list.
    assert not [s for s in first.skipped if s.source == "young.txt"]
    assert "young.txt" not in _found(first)
    again = scanner.scan({})
    assert "young.txt" not in again.pending and not [s for s in again.skipped if s.source == "young.txt"]
    assert len(again.articles) == 30


def test_other_reading_options_take_nothing_read_ahead(tmp_path, counted):
    root = _folder(tmp_path / "articles")
    ahead = _read_ahead(root, _options(root))
    other = Options.from_settings(load_settings({"ARTICLES_DIR": str(root), "SUMMARY_LENGTH": 40}))
    counted.clear()
    _scanner(root, other, ahead).scan()
    assert len(counted) == 30


def test_a_folder_that_cannot_be_walked_ahead_is_walked_by_the_scan_which_says_why(tmp_path):
    root = tmp_path / "articles"
    ahead = ReadAhead(root, _options(root), 0.3, place_from=10)
    assert ahead.batch == {}
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _scanner(root, _options(root), ahead).scan()
    root.mkdir()
    _folder(root)
    assert len(_scanner(root, _options(root), ahead).scan().articles) == 30


def test_the_publisher_asks_for_the_walk_again_at_once_after_a_first_scan_walked_ahead(tmp_path, make_publisher):
    root = tmp_path / "articles"
    for i in range(12):
        write(root, f"{i:02d}.md", f"---\ntitle: Story {i}\ncategory: News\ndate: 2020-01-{i + 1:02d}\n---\nParagraph {i}.\n")
    pub = make_publisher(root)
    ahead = ReadAhead(root, pub.scanner.options, 0, place_from=10)
    pub.scanner.ahead, pub.scanner.read_ahead = ahead.walk, ahead  # as run_builder hands it over
    write(root, "late.md", "---\ntitle: Late\ncategory: News\ndate: 2020-02-01\n---\nSaved before the watcher was set.\n")
    assert pub.refresh()
    assert "late" not in pub.snapshot.articles and len(pub.snapshot.articles) == 12
    assert pub.next_wakeup() == pub.clock()  # the scheduler refreshes at once (Refresher.plan)
    assert pub.refresh({})  # what a watcher that saw nothing hands it
    assert "late" in pub.snapshot.articles
    assert pub.next_wakeup() is None


def test_a_walk_asked_for_again_is_asked_once_even_when_the_scan_fails(tmp_path):
    root = _folder(tmp_path / "articles")
    options = _options(root)
    scanner = _scanner(root, options, _read_ahead(root, options))
    scanner.scan()
    assert scanner.rewalk
    root.rename(tmp_path / "moved")
    with pytest.raises(FileNotFoundError):
        scanner.scan({})
    # Not asked for again: Publisher.next_wakeup would have the scheduler refresh at once, and fail, without end.
    assert not scanner.rewalk

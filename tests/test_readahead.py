"""A server's cold start reads its folder ahead (reading/scan.py ReadAhead), from the moment the builder starts, while
it imports what builds: the first scan takes those results, and what it finds is what it would have read itself."""
from __future__ import annotations

import os
import time

import pytest

from feedsvc.config import load_settings
from feedsvc.reading import pool, scan
from feedsvc.reading.articles import Options, is_placed
from feedsvc.reading.scan import ReadAhead, Scanner
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
    if ahead is not None:
        scanner.read_ahead = ahead
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


def test_a_file_changed_or_written_since_the_read_ahead_is_read_by_the_scan(tmp_path, counted, monkeypatch):
    monkeypatch.setattr(scan, "FIRST_GUESS", 5)
    root = _folder(tmp_path / "articles")
    options = _options(root)
    ahead = _read_ahead(root, options)
    changed = write(root, "003.txt", "News\nStory 3, corrected\nParagraph of story 3, with a correction.\n")
    os.utime(changed, (OLD + 100, OLD + 100))  # now among the newest: the scan reads it in full
    write(root, "new.txt", "Sport\nJust written\nIt settled a moment ago.\n")  # too young for the read ahead
    removed = root / "010.txt"
    removed.unlink()
    counted.clear()
    found = _found(_scanner(root, options, ahead).scan())
    # 003 changed, new.txt was not settled then; 025 and 026 were read in full ahead, but those two are the newest
    # five now, so the scan places them, as it would have.
    assert sorted(counted) == ["003.txt", "025.txt", "026.txt", "new.txt"]
    assert found["003.txt"][0].title == "Story 3, corrected" and not found["003.txt"][1]
    assert "010.txt" not in found and "new.txt" in found
    assert found == _found(_scanner(root, options).scan())


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

"""The scanner reads only new or changed files, drops deleted ones and waits for files being written."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from feedsvc.reading.articles import Options
from feedsvc.reading import scan as scan_module
from feedsvc.reading.scan import Scanner
from tests.conftest import ROOT, write

OPTIONS = Options(site_url="http://127.0.0.1:8000")


def article(title: str) -> str:
    return f"News\n{title}\nA paragraph about {title}.\n"


def settled_scanner(folder, **kwargs) -> Scanner:
    return Scanner(folder, OPTIONS, settle=0, **kwargs)


def test_unchanged_files_are_not_read_again(articles_dir, monkeypatch):
    write(articles_dir, "a.txt", article("A"))
    scanner = settled_scanner(articles_dir)
    first = scanner.scan()
    assert first.changed == {"a.txt"}
    reads = []
    monkeypatch.setattr("feedsvc.reading.pool.read_or_skip", lambda *args: reads.append(args))
    second = scanner.scan()
    assert not second.changed and not reads
    assert second.articles[0] is first.articles[0]


def test_the_whole_list_of_an_earlier_scan_is_not_held_once_the_articles_moved_on(articles_dir):
    write(articles_dir, "a.txt", article("A"))
    scanner = settled_scanner(articles_dir)
    first = scanner.scan()
    held = first.articles  # made, and kept for the next result with the same articles
    assert scanner.scan().articles is held
    write(articles_dir, "b.txt", article("B"))
    scanner.scan()
    # Not asked for yet: the old list, which no result can return now (a cold start's 10,000 placements), is gone.
    assert scanner._memo is None


def test_new_changed_deleted_and_renamed_files_are_noticed(articles_dir):
    write(articles_dir, "a.txt", article("A"))
    write(articles_dir, "b.txt", article("B"))
    scanner = settled_scanner(articles_dir)
    scanner.scan()
    write(articles_dir, "c.txt", article("C"))
    path = write(articles_dir, "a.txt", article("A, edited at more length"))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    (articles_dir / "b.txt").unlink()
    (articles_dir / "c.txt").rename(articles_dir / "d.txt")
    result = scanner.scan()
    assert result.changed == {"a.txt", "b.txt", "d.txt"}
    assert {a.id: a.title for a in result.articles} == {"a": "A, edited at more length", "d": "C"}


@pytest.fixture
def kernel_cannot_say(monkeypatch):
    """As on NFS, or for a file another user owns: no read lease, so no telling whether a writer has it open."""
    monkeypatch.setattr("feedsvc.reading.folder.writers_open", lambda fd: None)


def test_a_full_walk_lists_only_what_changed_and_still_finds_what_is_gone(articles_dir, monkeypatch):
    """A scheduled walk of a folder held as it is makes nothing per file (the files held are left out of the walk's
    list), and a file removed, renamed or changed in a subfolder is still found."""
    for name in ("a.txt", "b.txt", "news/c.txt", "news/d.txt"):
        write(articles_dir, name, article(name))
    scanner = settled_scanner(articles_dir)
    scanner.scan()
    from feedsvc.reading.folder import Folder

    walk, listed = Folder.walk, []

    def counted(self, *args):
        found = walk(self, *args)
        listed.append([source for source, _, _ in found[0]])
        return found

    monkeypatch.setattr(Folder, "walk", counted)
    assert not scanner.scan().changed and listed == [[]]
    (articles_dir / "news/c.txt").unlink()
    (articles_dir / "b.txt").rename(articles_dir / "news/b.txt")
    path = write(articles_dir, "news/d.txt", article("D, edited at more length"))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    result = scanner.scan()
    assert listed[-1] == ["news/b.txt", "news/d.txt"]
    assert result.changed == {"b.txt", "news/b.txt", "news/c.txt", "news/d.txt"}
    assert sorted(a.source for a in result.articles) == ["a.txt", "news/b.txt", "news/d.txt"]
    assert not scanner.scan().changed and listed[-1] == []


def test_a_file_still_open_for_writing_is_held_back_and_the_old_version_kept(articles_dir):
    path = write(articles_dir, "a.txt", article("Complete version"))
    old = time.time() - 60
    os.utime(path, (old, old))
    scanner = Scanner(articles_dir, OPTIONS, settle=30)
    assert [a.title for a in scanner.scan().articles] == ["Complete version"]
    with open(path, "w", encoding="utf-8") as writer:
        writer.write("News\nHalf wri")
        writer.flush()
        result = scanner.scan()
        assert result.pending == {"a.txt"} and not result.changed
        assert [a.title for a in result.articles] == ["Complete version"]
        again = scanner.scan()  # unchanged since the last look, but still open: still held
        assert again.pending == {"a.txt"} and [a.title for a in again.articles] == ["Complete version"]
        writer.write("tten\nNow whole.\n")
    done = scanner.scan()
    assert not done.pending and [a.title for a in done.articles] == ["Half written"]


def test_a_file_open_for_writing_but_old_is_held_too(articles_dir):
    path = write(articles_dir, "a.txt", "News\nPaused wri")
    with open(path, "a", encoding="utf-8"):
        old = time.time() - 60  # the writer paused longer than any settle time
        os.utime(path, (old, old))
        result = Scanner(articles_dir, OPTIONS, settle=0.3).scan()
        assert result.pending == {"a.txt"} and not result.articles


def test_a_file_mapped_writable_is_held_after_its_descriptor_is_closed(articles_dir):
    import mmap

    path = write(articles_dir, "a.txt", article("Mapped") + " " * 4096)
    fd = os.open(path, os.O_RDWR)
    mapping = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    os.close(fd)  # an mmap writer: no open descriptor, no close event until the mapping goes
    try:
        assert Scanner(articles_dir, OPTIONS, settle=0.3).scan().pending == {"a.txt"}
    finally:
        mapping.close()
    assert [a.title for a in Scanner(articles_dir, OPTIONS, settle=0.3).scan().articles] == ["Mapped"]


def test_a_file_a_writer_never_closes_is_read_once_unchanged_for_the_hold_time(articles_dir):
    from feedsvc.reading.scan import BUSY_HOLD_SECONDS

    path = write(articles_dir, "a.txt", article("Kept open"))
    now = [time.time()]
    scanner = Scanner(articles_dir, OPTIONS, settle=0.3, clock=lambda: now[0])
    with open(path, "a", encoding="utf-8"):
        assert scanner.scan().pending == {"a.txt"}
        now[0] += 12  # a writer's pause a tester made: at a 10 s hold its half was published to every feed
        assert scanner.scan().pending == {"a.txt"}
        now[0] += BUSY_HOLD_SECONDS - 12
        result = scanner.scan()
    assert not result.pending and [a.title for a in result.articles] == ["Kept open"]


def test_a_young_file_no_one_has_open_is_read_at_once(articles_dir):
    write(articles_dir, "a.txt", article("Just saved"))  # written and closed now: younger than the settle time
    result = Scanner(articles_dir, OPTIONS, settle=30).scan()
    assert not result.pending and [a.title for a in result.articles] == ["Just saved"]


def test_where_the_kernel_cannot_say_a_young_file_waits_to_settle(articles_dir, kernel_cannot_say):
    path = write(articles_dir, "a.txt", article("Complete version"))
    old = time.time() - 60
    os.utime(path, (old, old))
    scanner = Scanner(articles_dir, OPTIONS, settle=30)
    assert [a.title for a in scanner.scan().articles] == ["Complete version"]
    write(articles_dir, "a.txt", "News\nHalf wri")  # mtime now: younger than the settle time
    result = scanner.scan()
    assert result.pending == {"a.txt"} and not result.changed
    assert [a.title for a in result.articles] == ["Complete version"]


def test_where_the_kernel_cannot_say_a_file_closed_after_writing_is_read_at_once(articles_dir, kernel_cannot_say):
    scanner = Scanner(articles_dir, OPTIONS, settle=30)
    scanner.scan()
    closed = write(articles_dir, "closed.txt", article("Closed"))
    moved = write(articles_dir, "moved.txt", article("Moved"))
    touched = write(articles_dir, "touched.txt", article("Modified"))
    result = scanner.scan({str(closed): "closed", str(moved): "moved", str(touched): "changed"})
    assert result.pending == {"touched.txt"}
    assert sorted(a.title for a in result.articles) == ["Closed", "Moved"]


def test_where_the_kernel_cannot_say_a_file_unchanged_across_two_looks_is_read_before_the_settle_time(articles_dir, kernel_cannot_say):
    write(articles_dir, "a.txt", article("Steady"))
    scanner = Scanner(articles_dir, OPTIONS, settle=30)
    assert scanner.scan().pending == {"a.txt"}
    second = scanner.scan()
    assert not second.pending and [a.title for a in second.articles] == ["Steady"]


def test_where_the_kernel_cannot_say_a_file_from_a_clock_ahead_is_published_after_two_looks(articles_dir, kernel_cannot_say):
    path = write(articles_dir, "a.txt", article("From the future"))
    ahead = time.time() + 3600
    os.utime(path, (ahead, ahead))
    scanner = Scanner(articles_dir, OPTIONS, settle=0.3)
    assert scanner.scan().pending == {"a.txt"}
    assert [a.title for a in scanner.scan().articles] == ["From the future"]


def test_a_file_written_to_while_being_read_is_looked_at_again(articles_dir, monkeypatch):
    """Checked on the open file, once read (Folder.read's expect), by whichever process reads it."""
    path = write(articles_dir, "a.txt", article("Racing"))
    real = os.read

    def read_then_append(fd, size):
        data = real(fd, size)
        if os.path.samestat(os.fstat(fd), os.stat(path)):  # the article's bytes, read: a writer adds more meanwhile
            with open(path, "a", encoding="utf-8") as f:
                f.write("More text arriving.\n")
        return data

    held_back_then_read(articles_dir, monkeypatch, os, "read", read_then_append, "Racing")  # whole at the next look


def test_a_file_changed_after_it_was_listed_is_looked_at_again(articles_dir, monkeypatch):
    """Listed at one size, read at another (written to between the walk and the read): read again at the next look."""
    path = write(articles_dir, "a.txt", article("Listed"))
    from feedsvc.reading.folder import Folder

    walk = Folder.walk

    def walk_then_write(self, *args):
        found = walk(self, *args)
        write(articles_dir, "a.txt", article("Rewritten, longer than it was"))
        return found

    held_back_then_read(articles_dir, monkeypatch, Folder, "walk", walk_then_write, "Rewritten, longer than it was")


def held_back_then_read(articles_dir, monkeypatch, owner, name: str, patched, title: str) -> None:
    """A scan with owner.name patched holds a.txt back (pending, no article); the next scan, unpatched, reads it."""
    scanner = settled_scanner(articles_dir)
    monkeypatch.setattr(owner, name, patched)
    result = scanner.scan()
    monkeypatch.undo()
    assert result.pending == {"a.txt"} and not result.articles
    assert [a.title for a in scanner.scan().articles] == [title]


def test_skipped_files_are_listed_and_logged_once(articles_dir, caplog):
    write(articles_dir, "good.txt", article("Good"))
    write(articles_dir, "empty.txt", "")
    scanner = settled_scanner(articles_dir)
    with caplog.at_level("WARNING"):
        first = scanner.scan()
        scanner.scan()
    assert [s.source for s in first.skipped] == ["empty.txt"]
    assert sum("empty.txt" in r.message for r in caplog.records) == 1


def test_a_missing_folder_is_an_error_that_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        settled_scanner(tmp_path / "nope").scan()


# --- the watcher's hints pass the same rule as the full walk --------------------------------------

def hinted_scan(scanner: Scanner, folder, *names):
    """A scan told by a watcher that these names changed, run in a thread that must not hang."""
    import threading

    result = {}
    worker = threading.Thread(target=lambda: result.update(r=scanner.scan([str(folder / n) for n in names])), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "the scan blocked"
    return result["r"]


def test_a_hinted_fifo_device_lock_file_or_link_out_is_never_read(articles_dir, tmp_path):
    write(articles_dir, "a.txt", article("A"))
    scanner = settled_scanner(articles_dir)
    scanner.scan()
    os.mkfifo(articles_dir / "x.txt")
    (articles_dir / "y.txt").symlink_to("/dev/zero")
    write(articles_dir, "~$x.txt", article("Lock file"))
    (articles_dir / "passwd.txt").symlink_to(write(tmp_path, "outside.txt", article("Secret")))
    write(articles_dir, "b.txt", article("B"))
    result = hinted_scan(scanner, articles_dir, "x.txt", "y.txt", "~$x.txt", "passwd.txt", "b.txt")
    assert sorted(a.title for a in result.articles) == ["A", "B"]
    assert {s.source: s.reason for s in result.skipped} == {
        "x.txt": "not a regular file", "y.txt": "link to a file outside the articles folder",
        "~$x.txt": "editor backup or swap file", "passwd.txt": "link to a file outside the articles folder"}
    assert {s.source for s in scanner.scan().skipped} == {"x.txt", "y.txt", "~$x.txt", "passwd.txt"}  # a full walk agrees


def test_an_article_replaced_by_a_fifo_is_withdrawn_on_the_hint(articles_dir):
    write(articles_dir, "a.txt", article("A"))
    scanner = settled_scanner(articles_dir)
    assert [a.title for a in scanner.scan().articles] == ["A"]
    (articles_dir / "a.txt").unlink()
    os.mkfifo(articles_dir / "a.txt")
    result = hinted_scan(scanner, articles_dir, "a.txt")
    assert not result.articles and "a.txt" in result.changed
    assert [s.reason for s in result.skipped] == ["not a regular file"]


def test_a_hint_inside_a_linked_or_hidden_folder_is_ignored_like_the_walk_does(articles_dir, tmp_path):
    write(articles_dir, "a.txt", article("A"))
    write(tmp_path, "elsewhere/e.txt", article("Elsewhere"))
    (articles_dir / "linked").symlink_to(tmp_path / "elsewhere")
    write(articles_dir, ".git/h.txt", article("Hidden"))
    scanner = settled_scanner(articles_dir)
    scanner.scan()
    result = hinted_scan(scanner, articles_dir, "linked/e.txt", ".git/h.txt")
    assert [a.title for a in result.articles] == ["A"]


def test_file_names_reach_the_log_escaped_one_line_each(articles_dir, caplog):
    write(articles_dir, "evil\n\x1b[2J\u202ename.txt", "")
    write(articles_dir, "x\x1b]0;title\x07.docx", "x")
    write(articles_dir, "keys.md", "---\ntitle: T\ncategory: C\n\"k\\e[31m\\n\": 1\n---\nBody.\n")
    with caplog.at_level("DEBUG", logger="feedsvc"):
        settled_scanner(articles_dir).scan()
    lines = [r.getMessage() for r in caplog.records]
    assert any("evil\\n\\x1b[2J\\u202ename.txt: empty" in line for line in lines)
    assert any("x\\x1b]0;title\\x07.docx" in line for line in lines)
    assert any("front matter keys ignored: k\\x1b[31m\\n" in line for line in lines)
    assert not any(c in line for line in lines for c in "\n\x1b\x07\u202e")


def test_the_scan_result_says_when_each_articles_file_was_modified(articles_dir):
    old = time.time() - 3600
    os.utime(write(articles_dir, "a.txt", article("A")), (old, old))
    write(articles_dir, "b.txt", "")  # skipped: no time of its own to give
    scanner = settled_scanner(articles_dir)
    result = scanner.scan()
    assert dict(result.modified) == {"a.txt": pytest.approx(old, abs=1e-6)}
    assert not hasattr(scanner, "modified")  # the publisher reads the result, never calls back into the scanner
    (articles_dir / "a.txt").unlink()
    newer = time.time() - 60
    os.utime(write(articles_dir, "c.txt", article("C")), (newer, newer))
    later = scanner.scan()
    assert dict(later.modified) == {"c.txt": pytest.approx(newer, abs=1e-6)}
    assert later.modified.get("c.txt") == later.modified["c.txt"] and later.modified.get("b.txt") is None
    # An earlier result asked after a later scan changed the articles says so, as its `articles` does, rather than
    # answer with the times of files it never held (the view is the entries': no map of every file copied per scan).
    with pytest.raises(RuntimeError, match="later scan"):
        result.modified.get("a.txt")
    with pytest.raises(RuntimeError, match="later scan"):
        dict(result.modified)


def test_each_result_says_which_articles_came_and_went_since_the_previous_one(articles_dir, monkeypatch):
    monkeypatch.setattr(scan_module, "GONE_AFTER", 0)  # a file the watcher saw go is gone at once (see the test below)
    write(articles_dir, "a.txt", article("A"))
    write(articles_dir, "b.txt", article("B"))
    scanner = settled_scanner(articles_dir)
    first = scanner.scan()
    assert [a.title for a in first.came] == ["A", "B"] and first.went == ()
    unchanged = scanner.scan()
    assert not unchanged.came and not unchanged.went  # nothing changed
    old_a = next(a for a in first.articles if a.title == "A")
    path = write(articles_dir, "a.txt", article("A, edited at more length"))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    (articles_dir / "b.txt").unlink()
    write(articles_dir, "c.txt", article("C"))
    result = scanner.scan([str(path), str(articles_dir / "b.txt"), str(articles_dir / "c.txt")])
    assert [a.title for a in result.came] == ["A, edited at more length", "C"]
    assert result.went[0] is old_a and [a.title for a in result.went] == ["A", "B"]
    assert set(result.came) <= set(result.articles) and not set(map(id, result.went)) & set(map(id, result.articles))
    assert len(first.articles) == 2  # asked before: kept
    with pytest.raises(RuntimeError, match="later scan"):  # made only when asked: not once the articles changed
        unchanged.articles


def test_a_file_written_to_while_it_is_read_is_not_published_from_that_read(articles_dir, monkeypatch):
    """The file's stat once read differs from the walk's: the half-old read is held back, and the next scan publishes
    what the file holds then."""
    import feedsvc.reading.folder as folder_module

    path = write(articles_dir, "story.txt", article("First version"))
    os.utime(path, (1_700_000_000, 1_700_000_000))
    real_read, writes = os.read, []

    def read_while_written(fd, n):
        data = real_read(fd, n)
        if not writes:  # a writer appends while the scan reads
            writes.append(path.write_text(article("Second version") + "More text.\n", encoding="utf-8"))
        return data

    scanner = settled_scanner(articles_dir)
    monkeypatch.setattr(folder_module.os, "read", read_while_written)
    first = scanner.scan()
    monkeypatch.setattr(folder_module.os, "read", real_read)
    assert writes and not first.articles and "story.txt" in first.pending
    again = scanner.scan()
    assert [a.title for a in again.articles] == ["Second version"]


def test_a_folder_moved_out_takes_its_files_with_it_at_once(articles_dir, tmp_path):
    """The watcher names the folder, which is gone: source_of cannot tell it was a folder, and its files stayed
    published until the next full walk (a minute; found in review). A gone path that held files walks the folder."""
    import shutil

    write(articles_dir, "economy/a.txt", article("A"))
    write(articles_dir, "economy/b.txt", article("B"))
    write(articles_dir, "top.txt", article("Top"))
    scanner = settled_scanner(articles_dir)
    assert len(scanner.scan().articles) == 3
    shutil.move(str(articles_dir / "economy"), str(tmp_path / "economy"))
    assert [a.source for a in hinted_scan(scanner, articles_dir, "economy").articles] == ["top.txt"]


def test_a_temporary_file_gone_by_the_look_is_no_skipped_file(articles_dir):
    """An editor's swap file or sed's temporary named by the watcher after it was removed was told as skipped until the
    next full walk (found in review); and a file removed while a walk lists it is not "cannot be read"."""
    from feedsvc.reading.folder import Folder

    write(articles_dir, "a.txt", article("A"))
    scanner = settled_scanner(articles_dir)
    scanner.scan()
    result = hinted_scan(scanner, articles_dir, ".a.txt.swp", "sedulgSuX")
    assert [a.source for a in result.articles] == ["a.txt"] and not result.skipped
    assert Folder(articles_dir).look(".a.txt.swp") is None


def test_a_file_the_watcher_saw_go_stays_a_moment_and_one_written_anew_meanwhile_never_went(articles_dir):
    """git checkout deletes a file and writes it anew: a refresh that came between withdrew the article and announced a
    tombstone, taken back a moment later (found in review). Gone only once GONE_AFTER has passed without it."""
    now = [1000.0]
    write(articles_dir, "a.txt", article("A"))
    write(articles_dir, "b.txt", article("B"))
    scanner = settled_scanner(articles_dir, clock=lambda: now[0])
    scanner.scan()
    (articles_dir / "a.txt").unlink()
    held = hinted_scan(scanner, articles_dir, "a.txt")
    assert sorted(a.source for a in held.articles) == ["a.txt", "b.txt"] and not held.went and "a.txt" in held.pending
    write(articles_dir, "a.txt", article("A"))  # written anew
    back = hinted_scan(scanner, articles_dir, "a.txt")
    assert sorted(a.source for a in back.articles) == ["a.txt", "b.txt"]  # its new bytes: an edit, never gone
    (articles_dir / "b.txt").unlink()
    assert [a.source for a in hinted_scan(scanner, articles_dir, "b.txt").went] == []
    now[0] += scan_module.GONE_AFTER
    gone = hinted_scan(scanner, articles_dir)  # the wake-up: nothing new seen, the file held back looked at again
    assert [a.source for a in gone.went] == ["b.txt"] and [a.source for a in gone.articles] == ["a.txt"]


def test_a_file_the_watcher_saw_go_stays_a_moment_when_a_folder_made_meanwhile_makes_the_scan_a_walk(articles_dir):
    """git checkout makes folders as it deletes files and writes them anew: the folder among the hints makes the scan a
    walk of everything, which withdrew at once the file the watcher saw go. The files of a folder moved out still go at once."""
    now = [1000.0]
    write(articles_dir, "news/a.txt", article("A"))
    write(articles_dir, "old/b.txt", article("B"))
    scanner = settled_scanner(articles_dir, clock=lambda: now[0])
    scanner.scan()
    (articles_dir / "news" / "a.txt").unlink()
    (articles_dir / "sport").mkdir()
    shutil.move(articles_dir / "old", articles_dir.parent / "old")
    held = scanner.scan({str(articles_dir / "news" / "a.txt"): "changed", str(articles_dir / "sport"): "changed",
                         str(articles_dir / "old"): "changed"})
    assert [a.source for a in held.articles] == ["news/a.txt"] and [a.source for a in held.went] == ["old/b.txt"]
    assert "news/a.txt" in held.pending
    write(articles_dir, "news/a.txt", article("A"))  # written anew
    assert [a.source for a in scanner.scan({str(articles_dir / "news" / "a.txt"): "closed"}).articles] == ["news/a.txt"]


def test_a_file_renamed_to_another_articles_name_goes_in_the_scan_that_reads_the_new_name(articles_dir):
    """Renamed, it was kept GONE_AFTER as a file that may come back, while the new name was read at once: both published
    for a moment, a duplicate item for good in an RSS reader that polled then (found in review)."""
    now = [1000.0]
    write(articles_dir, "a.txt", article("A"))
    write(articles_dir, "b.txt", article("B"))
    scanner = settled_scanner(articles_dir, clock=lambda: now[0])
    scanner.scan()
    (articles_dir / "a.txt").rename(articles_dir / "c.txt")
    result = scanner.scan({str(articles_dir / "a.txt"): scan_module.RENAMED_EVENT, str(articles_dir / "c.txt"): "moved"})
    assert sorted(a.source for a in result.articles) == ["b.txt", "c.txt"] and [a.source for a in result.went] == ["a.txt"]
    assert "a.txt" not in result.pending


def test_a_file_the_watcher_saw_rewritten_with_the_same_size_and_mtime_is_read_again(articles_dir, tmp_path):
    # A tool that dates each file by its article writes a correction of the same length: size and mtime as they were.
    from feedsvc.building.parsed import ParsedCache
    from feedsvc.building.storewriter import StoreWriter

    dated = time.time() - 86400
    path = write(articles_dir, "a.txt", article("Rate at 12%"))
    os.utime(path, (dated, dated))
    parsed = ParsedCache(tmp_path / "store.db", "v1", "settings")
    scanner = settled_scanner(articles_dir, parsed=parsed)
    assert [a.title for a in scanner.scan().articles] == ["Rate at 12%"]
    path.write_text(article("Rate at 13%"), encoding="utf-8")
    os.utime(path, (dated, dated))
    assert not scanner.scan({str(path): "changed"}).changed  # the stat alone says nothing changed
    result = scanner.scan({str(path): "closed"})  # the watcher saw it written and closed
    assert result.changed == {"a.txt"} and [a.title for a in result.articles] == ["Rate at 13%"]
    assert parsed.get("a.txt", (path.stat().st_size, path.stat().st_mtime_ns)).title == "Rate at 13%"  # what a restart takes
    path.write_text(article("Rate at 14%"), encoding="utf-8")
    os.utime(path, (dated, dated))
    scanner.rewalk = True  # a scan that walks the whole folder, with what the watcher saw (a cold start's next)
    assert [a.title for a in scanner.scan({str(path): "closed"}).articles] == ["Rate at 14%"]


def test_a_file_that_could_not_be_read_is_read_again_once_it_can_be_though_its_stat_is_the_same(articles_dir, tmp_path):
    """A file that cannot be read this time (here its permissions, as for a process without root's capabilities) is
    skipped, said once, and read again at each look: a chmod keeps its size and mtime, and it was left out for good."""
    write(articles_dir, "a.txt", article("A"))
    write(articles_dir, "b.txt", article("B"))
    os.chmod(articles_dir / "b.txt", 0)
    before = (articles_dir / "b.txt").stat().st_mtime_ns
    code = f"""
import logging, os
from feedsvc.reading.articles import Options
from feedsvc.reading.scan import Scanner
from feedsvc.building.parsed import ParsedCache
logging.basicConfig(level=logging.WARNING, format="%(message)s")
parsed = ParsedCache({str(tmp_path / "build.db")!r}, "v1", "s1")
from pathlib import Path
scanner = Scanner(Path({str(articles_dir)!r}), Options(site_url="http://127.0.0.1:8000"), settle=0, parsed=parsed)
first = scanner.scan()
print("first", sorted(a.source for a in first.articles), [(s.source, s.reason) for s in first.skipped])
again = scanner.scan()
print("again", sorted(again.changed))
os.chmod({str(articles_dir / "b.txt")!r}, 0o644)
later = scanner.scan()
print("later", sorted(a.source for a in later.articles), sorted(later.changed), [s.source for s in later.skipped])
"""
    drop = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"] if os.getuid() == 0 else []
    run = subprocess.run([*drop, sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "first ['a.txt'] [('b.txt', 'cannot be read (Permission denied)')]",
        "again []",  # unreadable as it was: nothing changed
        "later ['a.txt', 'b.txt'] ['b.txt'] []",
    ]
    assert run.stderr.count("skipped b.txt") == 1  # said once, not at every look
    assert (articles_dir / "b.txt").stat().st_mtime_ns == before


@pytest.mark.parametrize("mode", [0, 0o644])  # 644: listed, but its files cannot be looked at (a `chmod -R 644` slip)
def test_a_folder_that_cannot_be_read_for_a_moment_keeps_its_articles_and_announces_no_deletion(articles_dir, tmp_path, mode):
    """`chmod 000` of a sub-folder (or an I/O error listing it) withdrew its articles and the feeds announced them deleted
    (RFC 6721 tombstones), while a file that cannot be read stays published as last read (found in review)."""
    write(articles_dir, "a.txt", "News\nTop story\nBody.\n")
    write(articles_dir, "sub/b.txt", "News\nStory in a folder\nBody.\n")
    write(articles_dir, "sub/deep/c.txt", "News\nStory a folder further\nBody.\n")
    code = f"""
import os
from pathlib import Path
from feedsvc.reading.articles import Options
from feedsvc.reading.scan import Scanner
scanner = Scanner(Path({str(articles_dir)!r}), Options(site_url="http://127.0.0.1:8000"), settle=0)
first = scanner.scan()
print("first", sorted(a.source for a in first.articles))
os.chmod({str(articles_dir / "sub")!r}, {mode})
walked = scanner.scan()
print("walked", sorted(a.source for a in walked.articles), [s.reason for s in walked.skipped])
looked = scanner.scan({{{str(articles_dir / "sub" / "b.txt")!r}: "closed"}})
print("looked", sorted(a.source for a in looked.articles))
os.chmod({str(articles_dir / "sub")!r}, 0o755)
later = scanner.scan()
print("later", sorted(a.source for a in later.articles), [s.source for s in later.skipped])
"""
    drop = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"] if os.getuid() == 0 else []
    try:
        run = subprocess.run([*drop, sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        os.chmod(articles_dir / "sub", 0o755)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "first ['a.txt', 'sub/b.txt', 'sub/deep/c.txt']",
        "walked ['a.txt', 'sub/b.txt', 'sub/deep/c.txt'] " + str(["folder cannot be read (Permission denied)"] if mode == 0 else
                                                                  ["cannot be reached (Permission denied): its folder sub can be listed but not searched",
                                                                   "folder cannot be read (Permission denied)"]),
        "looked ['a.txt', 'sub/b.txt', 'sub/deep/c.txt']",
        "later ['a.txt', 'sub/b.txt', 'sub/deep/c.txt'] []",
    ]


def test_a_link_inside_follows_its_target_when_the_watcher_names_the_target_alone(articles_dir):
    """A link to a file inside is an article of its own with the target's text (README: like a copy), but a save of the
    target, which the watcher names alone, left the link's article as it was, and its target deleted left it published,
    until the next full walk (found in review). A target named brings the links that lead to it."""
    import os

    write(articles_dir, "target.txt", "News\nTarget v1\nBody.\n")
    (articles_dir / "copy.txt").symlink_to("target.txt")
    write(articles_dir, "other.txt", "News\nOther\nBody.\n")
    scanner = settled_scanner(articles_dir)
    assert sorted(a.title for a in scanner.scan().articles) == ["Other", "Target v1", "Target v1"]
    write(articles_dir, "target.txt", "News\nTarget v2 edited\nBody.\n")
    os.utime(articles_dir / "target.txt", ns=(1, 10**18))  # a stat of its own, whatever the clock's grain
    result = scanner.scan({str(articles_dir / "target.txt"): "closed"})
    assert {a.source: a.title for a in result.articles} == {"copy.txt": "Target v2 edited", "other.txt": "Other",
                                                            "target.txt": "Target v2 edited"}
    (articles_dir / "target.txt").unlink()
    result = scanner.scan({str(articles_dir / "target.txt"): "changed"})
    # (the target itself is kept a moment, as any file the watcher saw go: a tool's delete and write anew, _vanishing)
    assert "copy.txt" not in [a.source for a in result.articles]
    assert "copy.txt" in {s.source for s in result.skipped}  # a link that leads nowhere now, said so


def test_a_link_through_a_link_follows_the_one_in_the_middle_when_it_is_pointed_elsewhere_or_deleted(articles_dir):
    """x.txt → y.txt → z.txt: y pointed at w.txt left x published with z's text, and y deleted left x published though
    it led nowhere, until the next full walk (found in review of 8eb081a, which brought only a link's final file)."""
    import os

    write(articles_dir, "z.txt", "News\nZ one\nBody.\n")
    write(articles_dir, "w.txt", "News\nW other\nBody.\n")
    (articles_dir / "y.txt").symlink_to("z.txt")
    (articles_dir / "x.txt").symlink_to("y.txt")
    scanner = settled_scanner(articles_dir)
    assert {a.source: a.title for a in scanner.scan().articles}["x.txt"] == "Z one"
    os.symlink("w.txt", articles_dir / "y.tmp")
    os.replace(articles_dir / "y.tmp", articles_dir / "y.txt")
    result = scanner.scan({str(articles_dir / "y.tmp"): "changed", str(articles_dir / "y.txt"): "moved"})
    assert {a.source: a.title for a in result.articles}["x.txt"] == "W other"
    (articles_dir / "y.txt").unlink()
    result = scanner.scan({str(articles_dir / "y.txt"): "changed"})
    assert "x.txt" not in [a.source for a in result.articles] and "x.txt" in {s.source for s in result.skipped}

"""Big scans are read by worker processes: the same Articles as read in this process, and a worker that
fails costs nothing but time."""
from __future__ import annotations

import pickle
import sys

import pytest

from feedsvc.model import Article, is_placed
from feedsvc.reading import pool
from feedsvc.reading.articles import Options
from feedsvc.reading.scan import Scanner
from tests.conftest import ROOT, write

OPTIONS = Options(site_url="http://127.0.0.1:8000")


def folder_of(articles_dir, count: int):
    for i in range(count):
        if i % 3 == 0:
            text = f"أخبار\nخبر رقم {i}\nفقرة عن الخبر رقم {i} في المدينة.\n"
        elif i % 3 == 1:
            text = f"---\ntitle: Story {i}\ncategory: World\n---\nA *Markdown* story, number {i}.\n"
        else:
            text = f"News\nStory {i}\nThe council met on Tuesday to discuss story number {i} and its budget.\n"
        write(articles_dir, f"a{i:03}.{'md' if i % 3 == 1 else 'txt'}", text)
    write(articles_dir, "empty.txt", "")


def scan_with(articles_dir, pool_from: int):
    return Scanner(articles_dir, OPTIONS, settle=0.3, pool_from=pool_from).scan()


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(pool, "CHUNK", 2)  # so that a test's few files are shared out


def test_a_worker_process_reads_the_same_articles_as_this_process(articles_dir, caplog):
    from feedsvc.reading.folder import Folder

    folder_of(articles_dir, 30)
    with caplog.at_level("INFO", logger="feedsvc.reading.pool"):
        here = scan_with(articles_dir, pool_from=10**9)
        assert "processes" not in caplog.text
        there = scan_with(articles_dir, pool_from=2)
    assert "read 31 files in 2 worker processes (0 here)" in caplog.text
    assert there.articles == here.articles and len(there.articles) == 30
    batch = [(name, False, None) for name in sorted(p.name for p in articles_dir.iterdir())]
    sources = {id(item[0]) for item in batch}
    results = list(pool.read_files(articles_dir, OPTIONS, batch, Folder(articles_dir), pool_from=2))
    assert {id(source) for source, _ in results} == sources  # the caller's own strings, not the workers' copies
    assert there.skipped == here.skipped and [s.source for s in there.skipped] == ["empty.txt"]
    assert {a.lang for a in there.articles} == {"ar", "en"}


def test_a_worker_that_cannot_start_leaves_its_share_to_this_process(articles_dir, monkeypatch, caplog):
    folder_of(articles_dir, 12)
    monkeypatch.setattr(pool.sys, "executable", "/nonexistent/python")
    with caplog.at_level("WARNING"):
        result = scan_with(articles_dir, pool_from=2)
    assert len(result.articles) == 12 and "cannot start a reading worker" in caplog.text


def test_a_worker_that_dies_leaves_the_chunk_it_held_to_this_process(articles_dir, monkeypatch, caplog):
    folder_of(articles_dir, 60)
    real_popen = pool.subprocess.Popen

    def dying(args, **kwargs):
        # A worker that dies with a chunk read but not sent back (as when the kernel kills it for memory).
        code = "import os, feedsvc.reading.pool as p; p.pickle.dump = lambda *a, **k: os._exit(9); p.work()"
        return real_popen([sys.executable, "-c", code], **kwargs)

    monkeypatch.setattr(pool.subprocess, "Popen", dying)
    with caplog.at_level("WARNING"):
        result = scan_with(articles_dir, pool_from=2)
    assert len(result.articles) == 60
    assert "a reading worker failed" in caplog.text and "exited with 9" in caplog.text


def test_what_a_worker_prints_goes_to_stderr_and_leaves_its_results_whole(articles_dir, monkeypatch, caplog, capfd):
    folder_of(articles_dir, 30)
    # A library that prints while a file is read (print() and C code's own writes to file descriptor 1) would break
    # the stream of results on the worker's standard output: the caller read the worker's whole share again.
    noisy = ("import os, feedsvc.reading.pool as p; read = p.read_one; print('said at import, kept in a buffer')\n"
             "def read_one(*args, **kwargs):\n"
             "    print('a library says hello'); os.write(1, b'and so does C code\\n'); return read(*args, **kwargs)\n"
             "p.read_one = read_one; p.work()")
    monkeypatch.setattr(pool, "WORKER", noisy)
    monkeypatch.setattr(pool, "processes", lambda: 2)  # on a one-core machine too
    # Standard output block-buffered, as it is unless PYTHONUNBUFFERED is set (it is here): what was printed before
    # work() is still in the buffer when the worker starts, and goes to standard error with the rest.
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    with caplog.at_level("INFO", logger="feedsvc.reading.pool"):
        result = scan_with(articles_dir, pool_from=2)
    assert len(result.articles) == 30
    assert "read 31 files in 2 worker processes (0 here)" in caplog.text and "failed" not in caplog.text
    said = capfd.readouterr().err
    assert "a library says hello" in said and "said at import" in said


def test_a_worker_is_handed_its_next_chunk_before_it_sends_a_result_back(articles_dir, monkeypatch):
    # Two chunks a worker at once: its next chunk waits in its pipe, not for the feeding thread to get the GIL.
    import threading

    folder_of(articles_dir, 30)
    held, most = {}, {}  # by feeding thread: the chunks handed to its worker, and the most a result came back with
    take_any, give_back, put_done = pool._Shared.take_any, pool._Shared.give_back, pool._Shared.put_done

    def taking(self, whole=True):
        chunk = take_any(self, whole)
        if chunk is not None:
            held[threading.get_ident()] = held.get(threading.get_ident(), 0) + 1
        return chunk

    def giving_back(self, chunk):  # taken, but not handed to the worker
        held[threading.get_ident()] -= 1
        give_back(self, chunk)

    def done(self, results):
        me = threading.get_ident()
        most[me] = max(most.get(me, 0), held[me])
        held[me] -= 1
        put_done(self, results)

    monkeypatch.setattr(pool._Shared, "take_any", taking)
    monkeypatch.setattr(pool._Shared, "give_back", giving_back)
    monkeypatch.setattr(pool._Shared, "put_done", done)
    result = scan_with(articles_dir, pool_from=2)
    assert len(result.articles) == 30
    assert max(most.values()) == 2 and not any(held.values())  # 1 when each waits for the last result
    # Placements (3 ms a chunk of 50) four times as many; never more than the worker's input pipe holds, so that this
    # thread never waits to write while the worker waits for its results to be read.
    sources = sorted(p.name for p in articles_dir.iterdir())
    message = len(pickle.dumps(("read", False, [(s, False, None) for s in sources[:2]]), protocol=pickle.HIGHEST_PROTOCOL))
    for room, ahead in ((1 << 20, pool.AHEAD * pool.PLACEMENTS_A_CHUNK), (3 * message, 3), (1, 1)):
        monkeypatch.setattr(pool, "pipe_size", lambda pipe, r=room: r)
        most.clear()
        shared = pool._Shared([([(s, False, None) for s in sources[i:i + 2]], False) for i in range(0, len(sources), 2)])
        pool._feed(articles_dir, OPTIONS, shared, whole=False)  # one worker, fed from this thread alone
        placed = [result for done in shared.wait_done(0) for _, result in done if isinstance(result, Article)]
        assert len(placed) == 30 and all(is_placed(a) for a in placed)
        assert max(most.values()) == ahead and not any(held.values()), room


def test_one_worker_reads_a_placement_batchs_files_in_full_and_the_next_small_batch_in_full(articles_dir, monkeypatch):
    # A file read in full may load the language model: in a cold start's placement pass one worker reads them all, and
    # the first pages' last files after it go to that worker too, so the model is loaded once, not by every worker.
    import threading

    from feedsvc.reading.folder import Folder

    folder_of(articles_dir, 40)
    names = sorted(p.name for p in articles_dir.iterdir())
    taken: dict[int, list[bool]] = {}
    take_any = pool._Shared.take_any

    def taking(self, whole=True):
        chunk = take_any(self, whole)
        if chunk is not None:
            taken.setdefault(threading.get_ident(), []).append(chunk[1])
        return chunk

    monkeypatch.setattr(pool._Shared, "take_any", taking)
    pool.prestart()
    try:
        batch = [(n, False, None) for n in names]
        results = dict(pool.read_files(articles_dir, OPTIONS, batch, Folder(articles_dir), pool_from=2, full=False,
                                       first=frozenset(names[:10])))
        assert {n for n, r in results.items() if isinstance(r, Article) and not is_placed(r)} == set(names[:10])
        readers = [ident for ident, kinds in taken.items() if any(kinds)]
        assert len(readers) == 1 and sum(taken[readers[0]]) == 5  # the 10 files in 5 chunks of 2, all by one worker
        assert len(taken) == 2 and not any(any(kinds) for ident, kinds in taken.items() if ident != readers[0])
        kept = list(pool._prestarted)
        full_readers = [worker for worker in kept if pool.read_in_full(worker)]
        assert len(kept) == 2 and len(full_readers) == 1
        dict(pool.read_files(articles_dir, OPTIONS, batch[10:12], Folder(articles_dir), pool_from=2))  # one chunk
        assert [worker for worker in kept if pool.read_in_full(worker)] == full_readers  # read by that worker again
    finally:
        pool.release()


def test_a_placement_batch_is_read_here_too_but_not_beside_a_worker_that_reads_first_pages(articles_dir, caplog, monkeypatch):
    """A placement batch is read by this process beside one worker fewer than the cores; a cold start's, whose first
    pages one worker reads in full first, by a worker a core while this process only takes their results in
    (reading beside them, three processes shared two cores)."""
    import logging

    from feedsvc.reading.folder import Folder

    folder_of(articles_dir, 60)
    names = sorted(p.name for p in articles_dir.iterdir())
    batch = [(n, False, None) for n in names]
    monkeypatch.setattr(pool, "cores", lambda: 2)  # two cores, as on the machines measured, wherever it runs
    with caplog.at_level(logging.INFO, logger="feedsvc.reading.pool"):
        dict(pool.read_files(articles_dir, OPTIONS, batch, Folder(articles_dir), pool_from=2, full=False,
                             first=frozenset(names[:10])))
        assert f"read {len(names)} files for placement (10 of them in full) in 2 worker processes (0 here)" in caplog.text
        caplog.clear()
        for _ in range(5):  # this process takes a share as soon as it looks; a worker may start first
            dict(pool.read_files(articles_dir, OPTIONS, batch, Folder(articles_dir), pool_from=2, full=False))
        lines = [line for line in caplog.text.splitlines() if "for placement (0 of them in full) in 1 worker processes" in line]
        assert len(lines) == 5 and any("(0 here)" not in line for line in lines)


def test_another_process_reading_the_folder_with_workers_does_not_make_this_one_read_in_process(articles_dir, caplog, monkeypatch):
    """`feedsvc build` beside `serve`, or a second deployment, reading the same folder: each reads with its own
    workers, so neither loads the language model for good (a builder read in-process beside another once peaked at
    186-197 MiB instead of 142)."""
    import subprocess

    from feedsvc.reading import text

    folder_of(articles_dir, 12)
    # A real reader in another process, stopped in the middle of a batch its workers read (its generator suspended).
    other = subprocess.Popen([sys.executable, "-c", """
import sys
from pathlib import Path
from feedsvc.reading import pool
from feedsvc.reading.articles import Options
from feedsvc.reading.folder import Folder
pool.CHUNK = 2
root = Path(sys.argv[1])
batch = [(p.name, False, None) for p in sorted(root.iterdir())]
results = pool.read_files(root, Options(site_url="http://127.0.0.1:8000"), batch, Folder(root), pool_from=2)
next(results)
print("reading", flush=True)
sys.stdin.read()
""", str(articles_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    monkeypatch.setattr(text, "_classify", None)  # as in a builder: not loaded
    try:
        assert other.stdout.readline() == "reading\n"
        with caplog.at_level("INFO", logger="feedsvc.reading.pool"):
            assert len(scan_with(articles_dir, pool_from=2).articles) == 12
        assert "read 13 files in 2 worker processes (0 here)" in caplog.text
        assert text._classify is None  # the language model stayed in the workers
    finally:
        other.stdin.close()
        other.wait(10)


def test_a_thread_waits_for_the_claim_another_thread_of_this_process_holds(articles_dir, caplog):
    """A builder's refresh while its background reads a step: the refresh's batch waits for the reading workers
    (which keep the language model out of the builder) instead of being read here."""
    import threading
    import time

    from feedsvc.reading.folder import Folder

    folder_of(articles_dir, 12)
    taken = threading.Event()

    def background_step() -> None:
        with pool._claim(Folder(articles_dir)):
            taken.set()
            time.sleep(0.3)

    step = threading.Thread(target=background_step)
    step.start()
    assert taken.wait(10)
    assert pool._claim(Folder(articles_dir)) is None  # not waited for: wait=0
    started = time.monotonic()
    with caplog.at_level("INFO", logger="feedsvc.reading.pool"):
        assert len(scan_with(articles_dir, pool_from=2).articles) == 12
    assert "read 13 files in 2 worker processes (0 here)" in caplog.text and time.monotonic() - started >= 0.3
    step.join(10)
    claim = pool._claim(Folder(articles_dir))  # released by the scan: free again
    assert claim is not None
    claim.close()


def test_a_worker_holds_back_a_file_that_is_not_as_it_was_listed(articles_dir):
    """The check that a file was not written to since it was listed, or while it was read, is made by the process
    that reads it, on the open file (Folder.read's expect): the one that listed them stats none of them again."""
    import os

    from feedsvc.reading.folder import Folder

    folder_of(articles_dir, 6)
    names = sorted(p.name for p in articles_dir.iterdir() if p.name != "empty.txt")
    listed = {n: (st.st_size, st.st_mtime_ns) for n in names for st in [os.stat(articles_dir / n)]}
    moved = names[2]
    batch = [(n, False, listed[n] if n != moved else (listed[n][0] + 1, listed[n][1])) for n in names]
    results = dict(pool.read_files(articles_dir, OPTIONS, batch, Folder(articles_dir), pool_from=2))
    assert results[moved] is None  # held back: the next look reads it
    assert all(isinstance(results[n], Article) for n in names if n != moved)


def test_a_worker_sends_a_chunk_of_long_articles_without_waiting_for_this_process_to_read(articles_dir):
    # Full articles' results outgrow a default pipe (64 KiB): the worker's write would wait until this process's
    # thread, which needs the GIL, read it piece by piece. A widened pipe takes the whole chunk at once.
    import fcntl
    import pickle
    import termios
    import time
    from pathlib import Path
    from feedsvc.reading.folder import Folder

    paragraph = "فقرة طويلة عن الأخبار في المدينة وما جرى فيها اليوم. " * 40
    for i in range(20):
        write(articles_dir, f"long{i:02}.txt", "أخبار\n" + f"خبر طويل {i}\n" + (paragraph + "\n") * 4)
    worker = pool.start_worker()
    try:
        chunk = [(source, False, None) for source, _, _ in Folder(Path(articles_dir)).walk()[0]]
        pickle.dump(("open", str(articles_dir), OPTIONS), worker.stdin)
        pickle.dump(("read", True, chunk), worker.stdin)
        worker.stdin.flush()
        waiting, last, deadline = bytearray(4), 0, time.monotonic() + 60
        while time.monotonic() < deadline:  # until the worker, once it began, wrote no more for a while: all it could
            time.sleep(0.2)
            fcntl.ioctl(worker.stdout.fileno(), termios.FIONREAD, waiting)
            now = int.from_bytes(waiting, sys.byteorder)
            if now and now == last:  # (nothing yet is a worker still starting on a busy machine, not a full pipe)
                break
            last = now
        assert last > 1 << 16  # the whole chunk's results, not a default pipe's 64 KiB
        results = pickle.load(worker.stdout)
        assert len(results) == 20 and all(isinstance(r, Article) for _, r in results)
        assert len(pickle.dumps(results)) <= last  # nothing of it was still to be written
    finally:
        pool.close_worker(worker)


FORKED = """
import fcntl, os, sys, threading
from pathlib import Path
from feedsvc.children import Forked
from feedsvc.model import Article
from feedsvc.reading import pool
from feedsvc.reading.articles import Options
from feedsvc.reading.folder import Folder
root, lock_path = Path(sys.argv[1]), sys.argv[2]
lock = os.open(lock_path, os.O_RDWR | os.O_CREAT)
fcntl.flock(lock, fcntl.LOCK_EX)  # as the builder holds the build lock when it starts its workers
assert threading.active_count() == 1
pool.prestart()
workers = list(pool._prestarted)
assert len(workers) == 2 and all(isinstance(w, Forked) for w in workers), workers
names = sorted(p.name for p in root.iterdir())
results = dict(pool.read_files(root, Options(site_url="http://127.0.0.1:8000"), [(n, False, None) for n in names], Folder(root)))
assert sorted(r.title for r in results.values() if isinstance(r, Article)) == sorted(f"Story {i}" for i in range(120)), results
assert {Path(f"/proc/{w.pid}/comm").read_text().strip() for w in workers} == {"feedsvc-reader"}
os.close(lock)
again = os.open(lock_path, os.O_RDWR)
fcntl.flock(again, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: no worker kept the descriptor it inherited
pool.release()
assert [w.wait(timeout=10) for w in workers] == [-15, -15]  # idle, stopped by release()
print("ok")
"""


@pytest.mark.skipif(pool.processes() < 2 or not hasattr(__import__("os"), "fork"), reason="workers need two cores and fork")
def test_workers_started_before_any_thread_are_forks_that_read_the_same_and_keep_no_descriptor_of_the_caller(tmp_path):
    import subprocess
    from pathlib import Path

    root = tmp_path / "articles"
    for i in range(120):
        write(root, f"a{i:03}.txt", f"News\nStory {i}\nThe council met on Tuesday to discuss story number {i}.\n")
    done = subprocess.run([sys.executable, "-c", FORKED, str(root), str(tmp_path / "lock")], capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


_LONG_PATHS = """
import sys, time
from pathlib import Path
from feedsvc.config import load_settings
from feedsvc.reading import pool
from feedsvc.reading.articles import Options
from feedsvc.reading.folder import Folder
root = Path(sys.argv[1])
options, folder = Options.from_settings(load_settings({"ARTICLES_DIR": str(root)})), Folder(root)
files, _ = folder.walk()
batch = [(s, False, (size, mtime)) for s, size, mtime in files]
first = frozenset(sorted(s for s, _, _ in files)[:10])  # a cold start's: a few first pages in full, the rest placed
print(sum(1 for _ in pool.read_files(root, options, batch, folder, 1, False, first)))
"""


def test_workers_read_files_of_paths_near_the_limit_without_waiting_on_each_other(tmp_path):
    # 50 paths of 4,000 bytes are a 200 KB chunk to send, and 50 titles of 3,000 characters 560 KB of placements back:
    # a feeding thread that wrote chunks past what the worker's input pipe holds waited for the worker, which waited
    # for its results to be read (found in review). A process of its own, ended if it hangs.
    import os
    import subprocess

    deep = tmp_path.joinpath(*["d" * 199] * 19)  # 3,800 bytes of folders
    deep.mkdir(parents=True)
    for i in range(600):
        write(deep, f"{i:04d}.txt", f"News\n{'T' * 3000} {i}\nBody of story {i}.\n")
    run = subprocess.run([sys.executable, "-c", _LONG_PATHS, str(tmp_path)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["600"]

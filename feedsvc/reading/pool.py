"""Reading many article files on every core: in a big scan (the first one, or a folder copied in) one
worker process per core takes chunks of files from one list until it is empty, and sends the Articles back.

The rule, safe under `feedsvc serve`, gunicorn and tests alike: a worker is a fresh interpreter started
with `python -c "from feedsvc.reading.pool import work; work()"` (subprocess: fork and exec at once), never a fork
of the caller, which by then runs threads (the scheduler, the watcher, the event loop) whose locks a fork
would copy mid-use; and never multiprocessing's spawn, which imports the caller's `__main__` again (a
script that builds the app at its top level would build it twice). Workers get the caller's sys.path, so
they import the same feedsvc, and live for one scan. A chunk a worker fails on goes back to the list.
The one exception is prestart(), called by the builder before it starts any thread: its workers are forks of it.

The builder starts its workers as it starts (prestart()), so a cold start's first scan finds them ready; a
placement scan (full=False: articles.parse_article) is also read by this process, since it loads no language model,
unless a worker reads first pages in full first (a cold start's): then a worker a core reads, and this process takes
their results in.
"""
from __future__ import annotations

import contextlib
import fcntl
import gc
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from .. import allocator
from ..children import Forked, as_worker, ctrl_c_held_back, fork
from ..model import Article
from .articles import Options, read_or_skip
from .folder import FileBusyError, Folder, Skipped
from .progress import reading

log = logging.getLogger(__name__)

POOL_FROM = 300  # files to read: below this, a worker's start (an interpreter and imports, ~0.4 s) does not pay
MAX_PROCESSES = 2
CHUNK = 50  # files per hand-out: small enough to share the end of the list, large enough to cost no round trips
# Chunks a worker holds at once: the next is already in its pipe when it sends a result back, so it never waits for
# the feeding thread, which needs the GIL this process's own work holds (up to sys.getswitchinterval(), 5 ms, and
# longer with more threads waiting). Two chunks read in full (about 15 ms each); placements (3 ms a chunk) count a
# quarter of one: with two, a cold start's builder, busy with each result it takes, left its reading workers waiting
# (100,000 files placed in 5.2-5.6 s; 4.0-4.9 s with eight, as with four or sixteen). Never more than its input pipe
# holds (_feed), so that the feeding thread never waits to write while the worker waits to write its results.
AHEAD = 2
PLACEMENTS_A_CHUNK = 4
SMALLEST_PIPE = 4096  # bytes a pipe holds where the kernel does not say (F_GETPIPE_SZ): Linux's least, one page
# Blocks of this size and more (a chunk's pickled results) each a mapping of their own, given back once freed
# (allocator.mmap_from): glibc would otherwise raise its threshold past them and keep them in the heap.
MMAP_THRESHOLD = 128 << 10
PIPE_SIZE = 1 << 20  # bytes of a worker's results pipe: two chunks of full articles' results (widen)
# Seconds a thread waits for another thread of this process to be done with the folder's reading workers (_claim): a
# background step's read takes a quarter of a second; past this, the batch is read here.
CLAIM_WAIT = 5.0

Result = Article | Skipped | None  # None: held back, open for writing (busy) or not as listed (expect): read_one
# (source, whether a file still open for writing is held back, the (size, mtime_ns) it was listed with or None)
Item = tuple[str, bool, tuple[int, int] | None]
WORKER = "from feedsvc.reading.pool import work; work()"  # run by `python -c` (the interpreter running this one)
_prestarted: list[subprocess.Popen] = []  # idle workers started ahead (prestart), taken by the next big scan
_prestarted_lock = threading.Lock()
_keeping = False  # between prestart() and release(): a worker done with a scan waits for the next one
_HERE: dict[str, list] = {}  # folder's real path → [lock, holding thread's ident]: its claim inside this process (_claim)
_HERE_LOCK = threading.Lock()


def processes() -> int:
    """How many worker processes read a big batch: the cores this process may run on, at most MAX_PROCESSES."""
    return min(MAX_PROCESSES, cores())


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def prestart() -> None:
    """Start the reading workers now, to be taken by the next big scans until release() (the builder calls it
    first thing): a cold start's placement, its first pages and its background reading all find them ready,
    instead of each starting interpreters that import again. Called before any thread, the workers are forks of
    this process (fork_worker), which has imported what they run: ready at once, where an interpreter started anew
    took 0.15 s on an idle machine and 0.25 s in a cold start (three processes importing on two cores) before it
    read a file; called from a thread (a restart's background reading), they are started anew."""
    global _keeping
    with _prestarted_lock:
        _keeping = True
        for _ in range(processes() - len(_prestarted) if processes() > 1 else 0):
            try:
                _prestarted.append(fork_worker() if threading.active_count() == 1 and hasattr(os, "fork") else start_worker())
            except OSError as exc:
                log.warning("cannot start a reading worker (%s)", exc)
                return


def release() -> None:
    """End the idle workers kept since prestart(); from now on workers live for one scan. An idle worker holds
    no work, and one may still be starting: it is stopped at once (SIGTERM), not waited for."""
    global _keeping
    with _prestarted_lock:
        _keeping = False
        workers, _prestarted[:] = list(_prestarted), []
    for worker in workers:
        worker.terminate()
        close_worker(worker)


def read_files(root: Path, options: Options, batch: list[Item], folder: Folder,
               pool_from: int = POOL_FROM, full: bool = True, first: frozenset[str] = frozenset()) -> Iterator[tuple[str, Result]]:
    """Read (source, busy, expect) items (Item): each file's result, in the order they are done.

    A batch of pool_from files or more is read by worker processes, one per core, while this process only
    collects (it keeps its memory for what it serves: the language model is loaded by a worker);
    a smaller batch, any on a one-core machine, and the chunks of a worker that failed are read here.
    full=False: placements only (articles.parse_article); this process reads chunks too (no model to load),
    beside one worker fewer. first: of those, files read in full all the same, by one worker, before it places
    (a cold start's likely first pages, read while the other workers place the rest); then every worker starts,
    and this process reads none.
    Workers started ahead (prestart) read a batch of any size: they cost nothing more to use.
    """
    count = processes()
    ready = len(batch) >= pool_from or (_prestarted and len(batch) > 1)
    claim = _claim(folder, CLAIM_WAIT) if ready and count > 1 else None
    if claim is None:
        for source, busy, expect in batch:
            yield source, read_one(root, options, folder, source, busy, full or source in first, expect)
        return
    with claim:
        # A placement batch is read here too, beside one worker fewer; but with first pages to read in full it is read
        # by a worker a core, and this process only takes their results in: reading beside them, three processes
        # shared two cores (a 10,000-file cold start's feeds answered 0.02-0.2 s sooner without, in five pairs).
        here = not full and not first
        # Each result named by the caller's own string, not the worker's copy (unpickled): a builder keeps the sources
        # it adopts in its maps (scan.py _slim), 7 MB of second copies at 100,000 articles.
        own = {item[0]: item[0] for item in batch}
        for source, result in _read_in_workers(root, options, batch, folder, count - 1 if here else count, full, first, here):
            yield own.get(source, source), result


def _read_in_workers(root: Path, options: Options, batch: list[Item], folder: Folder, count: int,
                     full: bool, first: frozenset[str] = frozenset(), here_too: bool = False) -> Iterator[tuple[str, Result]]:
    started = time.perf_counter()
    whole = [item for item in batch if item[0] in first]  # read in full, first, by the workers only
    rest = [item for item in batch if item[0] not in first] if whole else batch
    shared = _Shared([(whole[i:i + CHUNK], True) for i in range(0, len(whole), CHUNK)]
                     + [(rest[i:i + CHUNK], full) for i in range(0, len(rest), CHUNK)])
    # In a placement batch one worker takes the files read in full (then placements), the others placements only: a
    # file read in full may need the language model, which only that worker then loads (about 10 ms, and the pages of
    # its tables that worker's texts touch: text.py maps them).
    # No more workers than chunks: the 42 files of a cold start's last first pages go to the one that has the model.
    count = max(1, min(count, len(shared)))
    feeders = [threading.Thread(target=_feed, args=(root, options, shared, full or not n), name="read-worker", daemon=True)
               for n in range(count)]
    for feeder in feeders:
        feeder.start()
    here = 0
    while any(feeder.is_alive() for feeder in feeders):
        for results in shared.wait_done(0 if not full else 0.1):
            yield from results
        if here_too and (chunk := shared.take(placements=True)) is not None:  # placements: a share read here too
            here += len(chunk)
            yield from ((source, read_one(root, options, folder, source, busy, full, expect)) for source, busy, expect in chunk)
        elif not full:
            for results in shared.wait_done(0.05):
                yield from results
    for results in shared.wait_done(0):
        yield from results
    while (taken := shared.take_any()) is not None:  # left by workers that failed
        chunk, whole_chunk = taken
        here += len(chunk)
        yield from ((source, read_one(root, options, folder, source, busy, whole_chunk, expect))
                    for source, busy, expect in chunk)
    log.info("read %d files%s in %d worker processes (%d here) in %.0f ms", len(batch),
             "" if full else f" for placement ({len(whole)} of them in full)", count, here, (time.perf_counter() - started) * 1000)


def _claim(folder: Folder, wait: float = 0.0) -> contextlib.AbstractContextManager | None:
    """This process's reading workers for this folder (a context to hold it in), or None while another thread of this
    process has had them for `wait` seconds.

    A builder's refresh while its background reads a step (a quarter of a second) waits for the workers, which keep the
    language model (about 35 MiB, for good) out of the builder, rather than read in-process. Another process reading the
    same folder (`feedsvc build` or `check` beside `serve`, a second deployment) is no reason to read in-process: since
    serving processes stopped reading, each reader is a builder or a command whose own workers keep its memory down, and
    the cores are shared all the same. (An flock on the folder once made the second reader read in-process: beside a
    second 10,000-article builder, a builder peaked at 186-197 MiB instead of 142.)
    """
    with _HERE_LOCK:
        here = _HERE.setdefault(folder.real, [threading.Lock(), None])
    if here[1] == threading.get_ident():  # this thread holds it already (a batch read inside another): no wait
        return None
    if not (here[0].acquire(timeout=wait) if wait > 0 else here[0].acquire(blocking=False)):
        return None
    here[1] = threading.get_ident()
    return _Claim(here)


class _Claim(contextlib.AbstractContextManager):
    """A folder's reading claim held in this process: closing it (or leaving its `with`) releases it."""

    def __init__(self, here: list):
        self.here = here

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.here[1] = None
        self.here[0].release()


def read_one(root: Path, options: Options, folder: Folder, source: str, busy: bool, full: bool = True,
             expect: tuple[int, int] | None = None) -> Result:
    """One file: an Article, Skipped, or None when busy is set and another process has it open for writing, or when
    expect is given and the file is not as listed (changed since, or while it was read: read again at the next look)."""
    try:
        with reading(source):  # /healthz names the file a stuck refresh is on (feedsvc/reading/progress.py); not in a worker
            return read_or_skip(None, root, options, folder, busy, full, source, expect)
    except FileBusyError:
        return None


class _Shared:
    """The chunks still to read — those read in full first, for the worker that takes them (in a placement batch,
    one), then the placements, which this process takes too — and the results workers sent back."""

    def __init__(self, chunks: list[tuple[list[Item], bool]]):
        self._whole = deque(chunk for chunk in chunks if chunk[1])
        self._todo = deque(chunk for chunk in chunks if not chunk[1])
        self._done: list[list[tuple[str, Result]]] = []
        self._changed = threading.Condition()

    def __len__(self) -> int:
        """The chunks still to hand out."""
        with self._changed:
            return len(self._whole) + len(self._todo)

    def take(self, placements: bool = False) -> list[Item] | None:
        """The next chunk of placements (this process's share), or of a batch read in full (placements=False)."""
        with self._changed:
            queue = self._todo if placements or not self._whole else self._whole
            return queue.popleft()[0] if queue else None

    def take_any(self, whole: bool = True) -> tuple[list[Item], bool] | None:
        """The next chunk, those read in full first (none when whole is false), and whether it is read in full."""
        with self._changed:
            queue = (self._whole or self._todo) if whole else self._todo
            return queue.popleft() if queue else None

    def give_back(self, chunk: tuple[list[Item], bool]) -> None:
        with self._changed:
            (self._whole if chunk[1] else self._todo).appendleft(chunk)

    def put_done(self, results: list[tuple[str, Result]]) -> None:
        with self._changed:
            self._done.append(results)
            self._changed.notify()

    def wait_done(self, timeout: float) -> list[list[tuple[str, Result]]]:
        """What workers sent back since the last call, waiting up to timeout seconds for something."""
        with self._changed:
            if not self._done and timeout:
                self._changed.wait(timeout)
            done, self._done = self._done, []
            return done


def _kept(worker: subprocess.Popen) -> bool:
    """Keep a worker done with its job for the next scan, between prestart() and release(); False: the caller ends it."""
    with _prestarted_lock:
        if _keeping:
            _prestarted.append(worker)
        return _keeping


def read_in_full(worker: subprocess.Popen) -> bool:
    """Whether a worker has read files in full (and so may hold the language model)."""
    return getattr(worker, "read_in_full", False)


def start_worker() -> subprocess.Popen:
    """A fresh reading worker (WORKER), its pipes widened (widen)."""
    worker = started(WORKER)
    widen(worker.stdout), widen(worker.stdin)
    return worker


def started(code: str) -> subprocess.Popen:
    """A worker started anew, running `code` with this process's sys.path (worker_env), on pipes for its input and
    results; a Ctrl-C held back from it until it ignores one (children.ctrl_c_held_back)."""
    with ctrl_c_held_back():
        return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                env=worker_env(), close_fds=True)


def fork_worker(loop: Callable[[BinaryIO, BinaryIO], None] | None = None, name: str = "feedsvc-reader") -> Forked:
    """A reading worker (or one running `loop`, another kind of worker's, on its input and results' pipes) forked from
    this process, which must run no other thread (a fork copies only the calling one, and the locks others hold, held
    for ever): its input and results' pipes are the handle's stdin and stdout, as a started worker's, both widened
    (widen).

    In the copy every other descriptor but standard error is closed, as subprocess's close_fds does: the build lock
    this process holds (a worker must not keep it when the builder dies), and the pipes of the workers forked before
    it (which would never see the end of their input). gc.freeze() first: the objects the copy inherited are never
    collected there, so none closes a descriptor number the copy has since opened again for an article file.
    """
    into, feed = os.pipe()
    results, out = os.pipe()

    def run() -> None:
        gc.freeze()
        low, high = sorted((into, out))
        os.closerange(3, low)
        os.closerange(low + 1, high)
        os.closerange(high + 1, os.sysconf("SC_OPEN_MAX"))
        (loop or work)(os.fdopen(into, "rb"), os.fdopen(out, "wb"))

    try:
        worker = fork(run, name)
    except BaseException:
        os.close(feed)  # and its own ends, which no worker holds (the fork failed: EAGAIN, ENOMEM)
        os.close(results)
        raise
    finally:
        os.close(into)
        os.close(out)
    worker.stdin, worker.stdout = os.fdopen(feed, "wb"), os.fdopen(results, "rb")
    widen(worker.stdout), widen(worker.stdin)
    return worker


def widen(pipe: BinaryIO, size: int = PIPE_SIZE) -> bool:
    """Give a pipe a buffer of `size` bytes (Linux's F_SETPIPE_SZ; at most /proc/sys/fs/pipe-max-size, 1 MiB by default):
    a chunk's results (50 articles read in full, about 550 KB) then go into it at once. With the default 64 KiB, a
    worker's write waited for this process's thread to read it piece by piece, each piece after the GIL came back to
    that thread (up to sys.getswitchinterval() while this process works): the worker sat idle meanwhile. Whether the
    pipe took it: where it does not (not Linux, a smaller pipe-max-size, the user's pipe buffers used up) the worker
    reads as well, only waiting more."""
    setting = getattr(fcntl, "F_SETPIPE_SZ", None)
    try:
        return setting is not None and fcntl.fcntl(pipe.fileno(), setting, size) >= size
    except OSError:
        return False


def pipe_size(pipe: BinaryIO) -> int:
    """The bytes a pipe holds (Linux's F_GETPIPE_SZ), or SMALLEST_PIPE where the kernel does not say."""
    getting = getattr(fcntl, "F_GETPIPE_SZ", None)
    try:
        return fcntl.fcntl(pipe.fileno(), getting) if getting is not None else SMALLEST_PIPE
    except OSError:
        return SMALLEST_PIPE


def worker_env() -> dict:
    """A worker's environment: this one's, with this process's sys.path, so it imports the same feedsvc."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # the same feedsvc as here


def close_worker(worker: subprocess.Popen) -> None:
    """End a worker: close its input (it exits at the end of it), wait, kill it if it does not go."""
    try:
        worker.stdin.close()
        worker.wait(timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        pass
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait()
        try:
            worker.stdout.close()
        except OSError:
            pass


def _feed(root: Path, options: Options, shared: _Shared, whole: bool = True) -> None:
    """Run one worker process: keep AHEAD chunks handed to it until none is left (of placements only, unless whole);
    those it held when it failed go back."""
    held: deque[tuple[list[Item], bool]] = deque()  # handed out, results not yet back: oldest first
    with _prestarted_lock:  # one that read in full before (it may hold the model) for a feeder that reads in full
        worker = max(_prestarted, key=lambda w: read_in_full(w) == whole, default=None)
        if worker is not None:
            _prestarted.remove(worker)
    try:
        if worker is None:
            worker = start_worker()
    except OSError as exc:
        log.warning("cannot start a reading worker (%s); reading its share here", exc)
        return
    sizes: deque[int] = deque()  # the bytes of each held chunk's message: at most what the worker has not read yet
    room = pipe_size(worker.stdin)
    try:
        pickle.dump(("open", str(root), options), worker.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        while True:
            while sum(1 if full else 1 / PLACEMENTS_A_CHUNK for _, full in held) < AHEAD and (chunk := shared.take_any(whole)) is not None:
                message = pickle.dumps(("read", chunk[1], chunk[0]), protocol=pickle.HIGHEST_PROTOCOL)
                # A write that did not fit would wait for the worker, which may wait for its results to be read
                # (long paths: 50 of 4,000 bytes are 200 KB a chunk). Alone, it always goes: the worker has nothing
                # left to send, and reads it.
                if held and sum(sizes) + len(message) > room:
                    shared.give_back(chunk)
                    break
                worker.stdin.write(message)
                held.append(chunk)
                sizes.append(len(message))
                if chunk[1]:
                    worker.read_in_full = True  # noted on the process itself: it goes with it
            if not held:
                break
            worker.stdin.flush()
            results = pickle.load(worker.stdout)
            held.popleft()
            sizes.popleft()
            shared.put_done(results)
        if _kept(worker):
            return
    except Exception as exc:  # noqa: BLE001 - a worker that died, a pipe that broke: its chunks are read here
        while held:
            shared.give_back(held.pop())  # the newest first: the oldest ends at the front, as they were handed
        if not was_stopped(worker):
            log.warning("a reading worker failed (%s: %s); reading its share here", type(exc).__name__, exc)
    close_worker(worker)
    if worker.returncode and not was_stopped(worker):
        log.warning("a reading worker exited with %s", worker.returncode)


def was_stopped(worker: subprocess.Popen | Forked) -> bool:
    """Whether a worker whose pipe broke was stopped with everything else (a SIGTERM or SIGINT to the process group: a
    Ctrl-C, a service stopped), not failed: then no warning, which would tell of a failure that is none."""
    try:
        code = worker.wait(timeout=1)  # its pipe closed: it is ending, if it has not ended yet
    except subprocess.TimeoutExpired:
        return False
    return code in (-signal.SIGTERM, -signal.SIGINT)


def results_channel() -> BinaryIO:
    """A worker's channel for its results: standard output as the worker was started with it, which is standard
    error's from now on for everything else. A print() of any library (or a warning of C code) in the middle of a
    pickle would break the stream, and the caller would read the worker's whole share again itself."""
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout.flush()  # what was printed before (an import's print, buffered): to standard error too, not the channel
    sys.stdout = sys.stderr
    return channel


def end_worker(channel: BinaryIO) -> None:
    """End a worker at the end of its input, its results flushed: at once, without the interpreter freeing what it read
    and rendered object by object (0.1 s of an export worker's end, which the build waited for), memory the OS takes
    back whole. A worker holds nothing else to close: its files are written and closed, its store connection reads."""
    channel.flush()
    sys.stderr.flush()
    os._exit(0)


def work(source: BinaryIO | None = None, out: BinaryIO | None = None) -> None:
    """The worker: from stdin ("open", root, options) for a folder, then ("read", full, chunk of Items),
    each chunk's results to stdout; until the end of its input. The language model loads with the first text
    that needs it (text.py): Arabic and plain English prose never do, and a worker that loaded it for nothing
    would spend time and memory on it during a cold start. source, out: a forked worker's pipes (fork_worker)."""
    as_worker()  # a Ctrl-C, and a builder killed while this worker writes to it, are no traceback of its own
    root = options = folder = None
    source = source or sys.stdin.buffer
    out = out or results_channel()
    allocator.mmap_from(MMAP_THRESHOLD)
    while True:
        try:
            message = pickle.load(source)
        except EOFError:
            end_worker(out)
        if message[0] == "open":
            root, options = Path(message[1]), message[2]
            folder = Folder(root)
            continue
        _, full, chunk = message
        results = [(source, read_one(root, options, folder, source, busy, full, expect)) for source, busy, expect in chunk]
        pickle.dump(results, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

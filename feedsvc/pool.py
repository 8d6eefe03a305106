"""Reading many article files on every core: a big scan (the first one, or a folder copied in) hands its
files to worker processes that parse them and send the Articles back.

The rule, safe under `feedsvc serve`, gunicorn and tests alike: a worker is a fresh interpreter started
with `python -m feedsvc.pool` (subprocess: fork and exec at once), never a fork of the caller, which by
then runs threads (the scheduler, the watcher, the event loop) whose locks a fork would copy mid-use; and
never multiprocessing's spawn, which imports the caller's `__main__` again (a script that builds the app at
its top level would start a second server). Workers get the caller's sys.path, so they import the same
feedsvc; they live for one batch. A worker that fails leaves its files to be read in-process.
"""
from __future__ import annotations

import logging
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

from .articles import Options, read_or_skip
from .folder import FileBusyError, Folder, Skipped
from .model import Article
from .progress import reading

log = logging.getLogger(__name__)

POOL_FROM = 300  # files to read: below this, a worker's start (an interpreter and imports, ~0.4 s) does not pay
MAX_PROCESSES = 2
CHUNK = 50  # files per message back: the caller sees progress, and a worker's memory stays flat

Result = Article | Skipped | None  # None: another process had the file open for writing (read with busy set)


def processes() -> int:
    """How many worker processes a big read uses: the cores this process may run on, at most MAX_PROCESSES."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return min(MAX_PROCESSES, cores)


def read_files(root: Path, options: Options, batch: list[tuple[str, bool]], folder: Folder,
               pool_from: int = POOL_FROM) -> Iterator[tuple[str, Result]]:
    """Read (source, busy) pairs: each file's result, as workers send them (not in order).

    Read in worker processes when the batch is big enough and there are cores for it; otherwise, and for
    any file a worker did not send back, in this process.
    """
    left = dict(batch)
    count = processes()
    if len(batch) >= pool_from and count > 1:
        started = time.perf_counter()
        try:
            for source, result in _read_in_workers(root, options, batch, count):
                left.pop(source, None)
                yield source, result
            log.info("read %d files in %d worker processes in %.0f ms", len(batch) - len(left), count,
                     (time.perf_counter() - started) * 1000)
        except (OSError, pickle.PickleError, EOFError, ValueError) as exc:  # a worker that could not start or died
            log.warning("reading in %d processes failed (%s); reading the %d files left here", count, exc, len(left))
        if left:
            log.warning("%d files not read by a worker process; reading them here", len(left))
    for source, busy in list(left.items()):
        yield source, read_one(root, options, folder, source, busy)


def read_one(root: Path, options: Options, folder: Folder, source: str, busy: bool) -> Result:
    """One file: an Article, Skipped, or None when busy is set and another process has it open for writing."""
    try:
        with reading(source):  # /healthz names the file a stuck refresh is on (feedsvc/progress.py); not in a worker
            return read_or_skip(root / source, root, options, folder, busy)
    except FileBusyError:
        return None


def _read_in_workers(root: Path, options: Options, batch: list[tuple[str, bool]], count: int) -> Iterator[tuple[str, Result]]:
    """Start `count` workers, each with every count-th file (sorted names spread categories evenly), and
    yield what they send back. Raises when one fails; the caller reads what is left."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # the same feedsvc as here
    workers = [subprocess.Popen([sys.executable, "-c", "from feedsvc.pool import work; work()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                env=env, close_fds=True) for _ in range(count)]
    arrived: queue.Queue = queue.Queue()

    def collect(worker: subprocess.Popen) -> None:
        try:
            while True:
                arrived.put(pickle.load(worker.stdout))
        except EOFError:
            arrived.put(None)  # this worker is done
        except Exception as exc:  # noqa: BLE001 - handed to the caller's thread
            arrived.put(exc)

    try:
        for k, worker in enumerate(workers):
            worker.stdin.write(pickle.dumps((str(root), options, batch[k::count]), protocol=pickle.HIGHEST_PROTOCOL))
            worker.stdin.close()
        readers = [threading.Thread(target=collect, args=(w,), name="read-worker", daemon=True) for w in workers]
        for reader in readers:
            reader.start()
        done = 0
        while done < count:
            message = arrived.get()
            if message is None:
                done += 1
            elif isinstance(message, Exception):
                raise message
            else:
                yield from message
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
            worker.stdout.close()
        failed = [w.returncode for w in workers if w.returncode]
        if failed:
            log.warning("a reading worker exited with %s", failed)


def work() -> None:
    """The worker: read the job from stdin, send results to stdout CHUNK at a time."""
    root, options, batch = pickle.load(sys.stdin.buffer)
    root = Path(root)
    folder = Folder(root)
    out = sys.stdout.buffer
    for start in range(0, len(batch), CHUNK):
        results = [(source, read_one(root, options, folder, source, busy)) for source, busy in batch[start:start + CHUNK]]
        pickle.dump(results, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


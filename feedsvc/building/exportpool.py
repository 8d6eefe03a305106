"""Archive pages rendered and written on every core: with two cores or more, a whole build's export starts one
worker process per core; each renders a stretch of the archive pages from the build store and writes their files
into the export folder, while this process writes the other files.

A stretch of pages per worker, every format of a page in the same one, because a page is put together from its
items' fragments (formats/fragments.py): export.py orders the pages by time (each category's page after the
site-wide page that holds its items), so a worker that takes a stretch of that order reads each article of it
from the store once and renders its items once per format, as one process would. (One format per worker, as
before, read every article once per format: 1.0–1.4 s more CPU at 10,000 articles.)

A page is made as a serving process makes it (serving/variants.py, which building/ may not import): the
listing's stored head and item index, paging.page_feed, the listing's date, the format's fragments; so the
file is what `feedsvc serve` answers at its URL (tests/test_export.py compares them).

As reading/pool.py does, a worker is a fresh interpreter (`python -c`, subprocess: fork and exec at once),
never a fork of this process, which runs threads by then; its start (~0.3 s of imports) overlaps the files
this process writes meanwhile. The exception is fork_ahead(), called by a build from scratch before it opens any
database or runs any thread: its workers are forks of it, which wait for their pages and start on them at once.
A worker reads the store only while this process holds the build lock (no build commits meanwhile), and writes
each file as export.py does: under a temporary name, then renamed over the old one. A worker that fails leaves its
pages to this process.
"""
from __future__ import annotations

import errno
import logging
import os
import pickle
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Mapping

from ..children import as_worker
from ..model import Site
from ..paging import Listing, page_feed
from ..reading.pool import close_worker, cores, end_worker, fork_worker, results_channel, started, was_stopped
from ..store import connect
from .exportfolder import FileTask, etag, mtime_ns, put_file, write_files
from .precompress import SUFFIXES

log = logging.getLogger(__name__)

WORKER = "from feedsvc.building.exportpool import work; work()"
FROM_PAGES = 30
KEEP_ARTICLES = 4000  # articles a worker keeps between pages (a few KiB each)  # archive pages to render: below this, a worker's start and store reads do not pay


@dataclass(frozen=True)
class Job:
    """What a worker needs to make archive pages as a serving process would (feedsvc/__init__.py's Variants)."""

    store: str
    out: str
    site: Site
    size: int  # FEED_MAX_ITEMS
    public: Mapping[str, Any]  # the public feeds' options (full_text, hub)


@dataclass(frozen=True)
class Files:
    """A share of a build's files for a worker to write from the store into the export folder (export._Writer);
    its results are exportfolder.write_files's."""

    store: str
    out: str
    tasks: list[FileTask]


# A page to make: (listing key, format, page, file name, ETag of the file there now or "", whether coded forms
# may be beside it) →
# (file name, ETag, Last-Modified ISO 8601, written) or (file name, None, strerror, False): it cannot be a file.
Task = tuple[str, str, int, str, str, bool]
Result = tuple[str, "str | None", str, bool]


_ahead: list = []  # workers forked ahead (fork_ahead), taken by the next ExportWorkers


def fork_ahead() -> None:
    """Fork the export workers now, one a core (none on one core), for the next ExportWorkers to take: `feedsvc build`
    from scratch, before it runs any thread or opens any database (a fork's copy of SQLite's record of the files it
    has open and locked fails the copy's own connections: "locking protocol"). Its archive pages are handed out seconds
    later (export.EarlyPages), where workers started then imported for 0.25-0.3 s before the first page."""
    if cores() < 2 or threading.active_count() != 1 or not hasattr(os, "fork"):
        return
    from ..formats import ondemand  # noqa: F401 - what a worker renders with (PageMaker), imported once, here
    for _ in range(cores() - len(_ahead)):
        try:
            _ahead.append(fork_worker(work, "feedsvc-export"))
        except OSError as exc:
            log.warning("cannot start an export worker (%s)", exc)
            return


def end_ahead() -> None:
    """End the workers forked ahead that no ExportWorkers took (a build that failed, or had few pages to make)."""
    while _ahead:
        close_worker(_ahead.pop())


class ExportWorkers:
    """Worker processes that render archive pages, one per core; `start` hands the pages out, `collect` waits."""

    def __init__(self, count: int | None = None):
        # One per core; one core: the pages are rendered in this process.
        count = (cores() if cores() > 1 else 0) if count is None else count
        self.workers: list = [_ahead.pop() for _ in range(min(count, len(_ahead)))]
        for _ in range(count - len(self.workers)):
            try:
                self.workers.append(started(WORKER))
            except OSError as exc:
                log.warning("cannot start an export worker (%s); its pages are rendered here", exc)
                break

    def start(self, job: Job, tasks: list[Task]) -> list[tuple[subprocess.Popen, list[Task]]]:
        """Hand the tasks out, a stretch of their order to a worker (stretches()); returns what each worker has, to collect."""
        shares = stretches(tasks, len(self.workers))
        handed = []
        for worker, share in zip(self.workers, shares):
            if not share:
                continue
            try:
                pickle.dump((job, share), worker.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                worker.stdin.flush()
            except OSError as exc:
                if not was_stopped(worker):
                    log.warning("an export worker failed (%s); its pages are rendered here", exc)
                handed.append((None, share))
                continue
            handed.append((worker, share))
        return handed

    @staticmethod
    def collect(handed: list[tuple[subprocess.Popen | None, list[Task]]]) -> Iterator[tuple[Task, Result | None]]:
        """Each task with its result, or None where its worker failed (to be made here); the OSError a worker stopped on
        (a full disk) is raised once every worker's results are read, so that none is left in a pipe to be taken later
        for the answer to another message (a worker that made archive pages ahead is handed files next: export.py)."""
        stopped = None
        for worker, share in handed:
            results = None
            if worker is not None:
                try:
                    results = pickle.load(worker.stdout)
                except Exception as exc:  # noqa: BLE001 - a worker that died: its pages are made here
                    if not was_stopped(worker):
                        log.warning("an export worker failed (%s: %s); its pages are rendered here", type(exc).__name__, exc)
            if isinstance(results, OSError):
                stopped = stopped or results
            elif results is None:
                yield from ((task, None) for task in share)
            else:
                yield from zip(share, results)
        if stopped is not None:
            raise stopped

    def close(self) -> None:
        """End the workers: their input closed, they exit."""
        for worker in self.workers:
            close_worker(worker)
        self.workers = []

    def __enter__(self) -> "ExportWorkers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def stretches(tasks: list[Task], count: int) -> list[list[Task]]:
    """The tasks cut into `count` stretches of their order with about as many tasks each, never between two formats
    of one page (consecutive tasks of the same listing and page); none without a worker."""
    if count < 1:
        return []
    pages: list[list[Task]] = []
    for task in tasks:
        if pages and pages[-1][0][0] == task[0] and pages[-1][0][2] == task[2]:
            pages[-1].append(task)
        else:
            pages.append([task])
    shares: list[list[Task]] = [[] for _ in range(count)]
    done = at = 0
    for page in pages:
        while at < count - 1 and done >= len(tasks) * (at + 1) / count:  # this stretch has its share: the next
            at += 1
        shares[at].extend(page)
        done += len(page)
    return shares


class _Items(Sequence):
    """A listing's items by their stored IDs; only the slices a page takes are loaded, through the maker's
    articles kept."""

    def __init__(self, ids: list[str], maker: "PageMaker"):
        self.ids, self.maker = ids, maker

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(self.maker.articles(self.ids[index]))
        return self.maker.articles([self.ids[index]])[0]


class PageMaker:
    """Archive pages from the build store, as a serving process makes them."""

    def __init__(self, job: Job):
        from ..formats.ondemand import FeedRenderer
        from ..store import StoreReader

        self.job, self.reader = job, StoreReader(job.store)
        self.renderer = FeedRenderer(job.site, variants=1)  # the fragments budget of a builder
        self.listings: dict[str, tuple | None] = {}  # each read once: pages of several listings take turns
        # Articles kept, the most recently used: a category's page follows the site-wide page that holds its
        # items (export.py's order), which loaded them.
        self.kept: OrderedDict[str, Any] = OrderedDict()
        self.folders: set[Path] = set()  # folders made so far

    def make(self, key: str, fmt: str, page: int) -> tuple[bytes, Any] | None:
        """(bytes, Last-Modified) of a page, or None when there is none."""
        if key not in self.listings:
            stored = self.reader.listing(key)
            self.listings[key] = None if stored is None else (stored[0], stored[1].ids(slice(None)))  # every ID, in order
        stored = self.listings[key]
        if stored is None:
            return None
        head, ids = stored
        listing = Listing(head.key, head.title, head.description, head.category, _Items(ids, self), head.page_url,
                          deleted=head.deleted, cuts=head.cuts)
        feed = page_feed(listing, self.job.site, self.job.size, page, **{**self.job.public, "updated": self.reader.page_date(head, page)})
        if feed is None:
            return None
        return self.renderer.fragments.assemble(fmt, feed), feed.updated


    def articles(self, ids: list[str]) -> list:
        """The stored articles with these IDs, in this order; those kept are not read again."""
        kept = self.kept
        missing = [id_ for id_ in ids if id_ not in kept]
        for article in self.reader.articles(missing) if missing else ():
            kept[article.id] = article
        found = []
        for id_ in ids:
            article = kept.get(id_)
            if article is not None:
                kept.move_to_end(id_)
                found.append(article)
        while len(kept) > KEEP_ARTICLES:
            kept.popitem(last=False)
        return found


def make_and_write(maker: PageMaker, out: Path, task: Task) -> Result:
    key, fmt, page, name, had, coded = task
    made = maker.make(key, fmt, page)
    if made is None:
        return name, None, "no such page", False
    body, modified = made
    tag = etag(body)
    if tag == had:  # the same bytes: export.py gives the file its time
        return name, tag, modified.isoformat(), False
    # An archive page has no coded form (precompress.py): those a file there may have are removed.
    _, _, _, left_out = put_file(out, name, body, {}, tuple(SUFFIXES) if coded else (), mtime_ns(modified.isoformat()),
                                 maker.folders)
    if left_out is not None:
        return name, None, left_out, False
    return name, tag, modified.isoformat(), True


def work(source: BinaryIO | None = None, out: BinaryIO | None = None) -> None:
    """The worker: from stdin (Job, [Task]) or Files, their results to stdout as one list (or the OSError that
    stopped it: a full disk); until the end of its input. source, out: a forked worker's pipes (fork_ahead)."""
    as_worker()  # a Ctrl-C, and a build killed while this worker writes to it, are no traceback of its own
    source = source or sys.stdin.buffer
    out = out or results_channel()
    maker = None
    while True:
        try:
            message = pickle.load(source)
        except EOFError:
            end_worker(out)
        if isinstance(message, Files):
            conn = connect(message.store, readonly=True)
            try:
                done: list | OSError = list(write_files(conn, Path(message.out), message.tasks, set()))
            except OSError as exc:
                done = _sent(exc)
            finally:
                conn.close()
            pickle.dump(done, out, protocol=pickle.HIGHEST_PROTOCOL)
            out.flush()
            continue
        job, tasks = message
        if maker is None or maker.job != job:
            maker = PageMaker(job)
        try:
            results: list | OSError = [make_and_write(maker, Path(job.out), task) for task in tasks]
        except OSError as exc:
            results = _sent(exc)
        pickle.dump(results, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


def _sent(exc: OSError) -> OSError:
    """The OSError that stopped a worker (a full disk), as it is sent back: a plain one, which any OSError's subclass
    and arguments may not pickle as."""
    return OSError(exc.errno or errno.EIO, exc.strerror or str(exc), exc.filename)

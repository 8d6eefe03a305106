"""A cold start's background reading: the files its first build only placed (Scanner.placed), read in full beside
the refreshes and committed a chunk at a time, the articles serving processes ask for meanwhile first.
"""
from __future__ import annotations

import logging
import queue as queues
import sqlite3
import threading
import time
from collections import deque
from contextlib import suppress
from typing import TYPE_CHECKING, Mapping

from ..reading.folder import Folder
from ..reading.pool import prestart, release
from ..wanted import POLL_SECONDS as POLL, Wanted
from . import committer

if TYPE_CHECKING:
    from .site import Publisher

log = logging.getLogger(__name__)
FINISH_STEP = 250  # files the reading workers read a step in the background: a quarter of a second of reading


def finish_reading(publisher: Publisher, placed: Mapping[str, tuple[int, int]]) -> None:
    """Read in full, beside the refreshes, the files a cold start only placed (Scanner.placed, live), and
    commit them committer.FIRST_PAGES at a time, each chunk by a refresh that commits its items,
    article pages and parse results; the builder then keeps them as placements (scan.py: slim), so it never
    holds every article's text at once.

    The reading workers read `step` files at a time, a step ahead of the refresh committing the last ones (a
    thread beside this one hands the steps on), so reading and committing overlap. The articles serving
    processes ask for meanwhile (feedsvc/wanted.py: made on demand) go first: before each step, and while a
    commit is under way, that thread looks at the queue and has the files asked for read next, by the same
    workers (which have the language model a file may need; this process does not load it); they are
    committed at once, with what was read so far, and then their wants are answered."""
    started = time.perf_counter()
    # Each file's stat looked up in `placed` (a live view: Scanner.placed) when its step is read, not copied at the
    # start: a dict of 100,000 stats held the whole background (17 MB of the builder's peak at 100,000 articles).
    folder, sources = Folder(publisher.root), sorted(placed)
    wants, step = Wanted(publisher.store.path), FINISH_STEP
    # Committed at most FIRST_PAGES at a time (what the builder holds read in full at once), so each commit renders
    # its article pages itself instead of leaving them to the Committer's background builds, which would hold back a
    # commit asked for.
    chunk = committer.FIRST_PAGES
    # A big backlog is read by the reading workers, kept for every step; a small one here.
    pooled = len(sources) >= publisher.scanner.pool_from
    pool_from = 1 if pooled else len(sources) + 1
    taken: set[str] = set()  # sources read (by the thread below only)
    steps: queues.Queue = queues.Queue(maxsize=1)  # {source: (stat, result)} a step, None at the end, or an error
    urgent: deque = deque()  # (IDs asked for, {source: (stat, result)}): committed before any step
    stop = threading.Event()

    def look() -> tuple[list[str], list[str]]:
        """The IDs asked for now, and the placed files still to read for them."""
        try:
            ids = wants.asked()
        except sqlite3.Error as exc:  # the queue unreadable: the background goes on, requests wait their bound
            log.warning("cannot read the articles asked for (%s)", exc)
            return [], []
        articles = publisher.snapshot.articles
        wanted = sorted({articles[id_].source for id_ in ids if id_ in articles})
        return ids, [source for source in wanted if source not in taken and publisher.scanner.unread(source)]

    def read(batch: list[str]) -> dict:
        taken.update(batch)
        # A file no longer placed (read in full by a refresh since: edited) is not read here; one no longer as it was
        # placed (Scanner.read_placed) is left placed: the refresh that sees it changed reads it once it is complete,
        # and one written back to the same stat (cp -p) is read by the next background run.
        stats = {source: stat for source in batch if (stat := placed.get(source)) is not None}
        found, changed = publisher.scanner.read_placed(stats, folder, pool_from)
        taken.difference_update(changed)
        return found

    def read_asked(answered: set[str], pending: dict | None = None) -> None:
        """Read what is asked for now (not already read for an earlier look) and hand it on at once, with what
        of it the step still being handed on (`pending`) has read already: answered without it, a want would
        find nothing stored and take its article for one that does not exist."""
        ids, wanted = look()
        ids = [id_ for id_ in ids if id_ not in answered]
        if ids:
            if wanted:
                log.info("reading %d placed files asked for first: %s", len(wanted), " ".join(wanted[:3]))
            found = read(wanted)
            if pending:
                articles = publisher.snapshot.articles
                asked = {articles[id_].source for id_ in ids if id_ in articles}
                found.update((source, pending[source]) for source in asked if source in pending)
            urgent.append((ids, found))
            answered.update(ids)  # until the main loop has committed and answered them

    def hand(item, answered: set[str] | None = None) -> None:
        """Put a step for the main loop; while it is still committing the last, keep looking at the queue."""
        while not stop.is_set():
            try:
                return steps.put(item, timeout=POLL)
            except queues.Full:
                if answered is not None:
                    read_asked(answered, item if isinstance(item, dict) else None)

    def behind() -> bool:
        """Whether an observer still has work the last commits left it (Publisher.backlogs), after POLL."""
        return not all(backlog(POLL) for backlog in publisher.backlogs)

    def settle(answered: set[str]) -> None:
        """Wait while an observer is behind, reading what is asked for meanwhile: no step is read ahead of a
        backlog (a thousand articles' text held for seconds after a cold start)."""
        while not stop.is_set() and behind():
            read_asked(answered)

    def reading() -> None:
        answered: set[str] = set()
        try:
            for start in range(0, len(sources), step):
                read_asked(answered)
                settle(answered)
                hand(read([s for s in sources[start:start + step] if s not in taken and publisher.scanner.unread(s)]), answered)
                if stop.is_set():
                    return
                answered.clear()  # the main loop took the last step: what was asked for before is committed
            hand(None)
        except Exception as exc:  # handed on: finish_reading logs it
            hand(exc)

    def commit(done: dict, ids: list[str]) -> None:
        publisher.adopt(done)
        if not publisher.refresh([str(publisher.root / source) for source in done]):  # those files, not a walk of the folder
            return  # not committed: asked for again, they are answered after a refresh that is
        if ids:
            try:
                wants.answer(ids)  # committed now, or nothing to read: an ID no article has, or one committed before
            except sqlite3.Error as exc:
                log.warning("cannot answer the articles asked for (%s)", exc)

    def caught_up() -> bool:
        """Wait while an observer is behind; False if a request asks for an article first."""
        while not urgent:
            if not behind():
                return True
        return False

    if pooled:
        prestart()  # the same reading workers for every step (a no-op when the builder's are still kept)
    reader = threading.Thread(target=reading, name="finish-reading-files", daemon=True)
    reader.start()
    try:
        done: dict = {}
        queued = empty = object()  # a step taken off the queue ahead of its turn (below)
        while True:
            if urgent:  # asked for: committed now, with what was read so far
                ids, found = urgent.popleft()
                if queued is empty:  # a step read before the ask may hold what was asked for: it goes in too
                    with suppress(queues.Empty):  # none read yet
                        queued = steps.get_nowait()
                if isinstance(queued, dict):
                    done.update(queued)
                    queued = empty
                done.update(found)
                commit(done, ids)
                done = {}
                continue
            if queued is not empty:
                item, queued = queued, empty
            else:
                try:
                    item = steps.get(timeout=POLL)
                except queues.Empty:
                    continue
            if item is None:
                break
            if isinstance(item, Exception):
                raise item
            done.update(item)
            if len(done) + step > chunk and caught_up():
                commit(done, [])
                done = {}
        reader.join()
        ids, wanted = look()  # those asked for during the last steps
        for more_ids, found in urgent:
            ids, done = ids + more_ids, {**done, **found}
        if done or ids:
            commit({**done, **read(wanted)}, ids)
    except Exception:  # the edge where work must go on: the next refresh reads what is left (scan.py)
        log.exception("reading the placed articles in full failed")
        return
    finally:
        stop.set()
        reader.join()
        release()
    log.info("read %d placed files in full in %.0f ms", len(sources), (time.perf_counter() - started) * 1000)

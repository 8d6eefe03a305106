"""A server's cold start reads its folder ahead: the walk and the reading workers start with the builder, before the
first scan asks (building/builder.py build_forever), and that scan takes what they read (Scanner.read_ahead).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Iterator

from ..model import Article
from .articles import Options, Skipped
from .folder import Folder
from .pool import POOL_FROM, read_files
from .scan import PLACE_FROM, first_guess, settled

log = logging.getLogger(__name__)


class ReadAhead:
    """A server's cold start: the folder walked and its files read by the reading workers (prestarted) from the
    moment the builder starts, on a thread, while the builder imports what builds (0.2 s at 10,000 articles, with
    both cores free but for the serving worker's own imports); its first scan then takes those results as they come.

    Read as that scan would read them: the files settled by their mtime, an open writer holding one back (busy), each
    checked against the stat it was listed with, the newest read in full (first_guess). The first scan takes its walk
    (walk) and each result it asks for with the same stat and as fully, and reads the rest itself (a file that settled
    only later); so what it finds is what it would have read at the moment of this walk. A file saved since (before
    the watcher was set) is found by the next scan, which walks the folder again (Scanner.rewalk), right after."""

    def __init__(self, root: Path, options: Options, settle: float, place_from: int = PLACE_FROM, pool_from: int = POOL_FROM):
        import queue
        import threading

        self.options, self.folder = options, Folder(root)
        self._walked: tuple[list, dict] | None = None  # this walk (files, passed), for the first scan (walk)
        self.batch: dict[str, tuple[tuple[int, int], bool]] = {}  # source → (stat, busy), as read
        self.first: frozenset[str] = frozenset()  # read in full (all of them when `full`)
        self.full = True
        self._results: queue.SimpleQueue = queue.SimpleQueue()  # (source, result) as read, then None
        try:  # here, not on the thread: the walk is 10,000 stat calls the imports beside it would slow down
            files, passed = self.folder.walk()
        except Exception:  # noqa: BLE001 - the first scan walks again, and says what is wrong
            self._results.put(None)
            return
        now = time.time()
        ready = [(source, (size, mtime_ns)) for source, size, mtime_ns in files if settled(settle, (size, mtime_ns), now)]
        self.batch = {source: (stat, settle > 0) for source, stat in ready}
        self._walked = (files, passed)
        self.full = len(ready) < place_from
        self.first = frozenset() if self.full else first_guess(ready)
        self._pool_from = pool_from
        self._thread = threading.Thread(target=self._read, name="read-ahead", daemon=True)
        self._thread.start()

    def walk(self, folder: Folder) -> tuple[list, dict] | None:
        """This walk of the folder (Folder.walk's), once, for the first scan of the same folder; else None."""
        walked, self._walked = self._walked, None
        return walked if walked is not None and folder.real == self.folder.real else None

    def first_of(self, batch: list[tuple[str, tuple[int, int], bool]]) -> frozenset[str] | None:
        """Its first_guess, for a scan whose batch is the very one read ahead (the same files, stats and check for a
        writer); else None: the scan guesses its own. No second sort of 100,000 files by mtime."""
        mine = self.batch
        if self.full or len(batch) != len(mine):
            return None
        for source, stat, busy in batch:
            if mine.get(source) != (stat, busy):
                return None
        return self.first

    def _read(self) -> None:
        try:
            items = [(source, busy, stat) for source, (stat, busy) in self.batch.items()]
            for found in read_files(Path(self.folder.root), self.options, items, self.folder, self._pool_from, self.full, self.first):
                self._results.put(found)
        except Exception:  # the edge where work must go on: the scan reads what is left itself
            log.exception("reading the folder ahead failed; the first refresh reads it")
        finally:
            self._results.put(None)

    def take(self, options: Options, folder: Folder, batch: list[tuple[str, tuple[int, int], bool]], full: bool,
             first: frozenset[str]) -> Iterator[tuple[str, tuple[int, int], Article | Skipped | None]]:
        """Yield (source, stat, result) for the files of a scan's batch read ahead as it asks for them, as they come;
        return the rest of the batch, for the scan to read."""
        if options != self.options or folder.real != self.folder.real:
            return batch
        left = {source: (stat, busy, full or source in first) for source, stat, busy in batch}
        while (found := self._results.get()) is not None:
            source, result = found
            asked = left.get(source)
            if asked is not None and asked == (*self.batch[source], self.full or source in self.first):
                del left[source]
                yield source, asked[0], result
        self.batch, self.first = {}, frozenset()  # taken: let go of the files' list (30 MB at 100,000 articles)
        return [item for item in batch if item[0] in left]

"""Incremental reading of the articles folder: stat every file, parse only new or changed ones,
and hold back a file that is still being written until it has settled.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from .articles import Options, Skipped, read_or_skip, unique_ids, walk_files
from .model import Article
from .progress import reading

log = logging.getLogger(__name__)

SETTLE_SECONDS = 0.3  # a file changed more recently than this may still be being written


@dataclass(frozen=True)
class ScanResult:
    """What one scan found: the articles read, skipped files, and what moved."""

    articles: tuple[Article, ...]  # in path order; an ID may repeat (see unique_ids)
    skipped: tuple[Skipped, ...]
    changed: frozenset[str] = frozenset()  # sources added, changed or removed since the last scan
    pending: frozenset[str] = frozenset()  # sources still being written: looked at again shortly


@dataclass
class _Entry:
    stat: tuple[int, int]  # (size, mtime_ns) when it was read
    result: Article | Skipped


@dataclass
class Scanner:
    """Remembers every file's stat and parse result between scans of one folder."""

    root: Path
    options: Options
    settle: float = SETTLE_SECONDS
    clock: Callable[[], float] = time.time
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _passed: tuple[Skipped, ...] = ()
    _looks: dict[str, tuple[int, int]] = field(default_factory=dict)  # stats of files not yet settled
    _last: tuple | None = None  # (articles, skipped) of the last scan, reused when nothing changed

    def scan(self, hints: Iterable[str] | None = None) -> ScanResult:
        """Look at the folder; read only files whose size or mtime changed and that have settled.

        hints: absolute paths a file watcher saw change since the last scan. Then only those (and files
        still settling) are looked at, instead of a walk of the whole folder; a folder among them, or
        no earlier scan, means a full walk.
        """
        if not self.root.is_dir():
            raise FileNotFoundError(f"articles folder {self.root} does not exist; set ARTICLES_DIR or create it")
        targets = None if hints is None or self._last is None else self._targets(hints)
        if targets is None:
            files, passed = walk_files(self.root)
            listing = {source: (size, mtime_ns) for source, size, mtime_ns in files}
            gone = [s for s in self._entries if s not in listing]
            self._note_passed(passed)
        else:
            listing, gone = {}, []
            for source in targets | set(self._looks):
                stat = _stat(self.root / source)
                if stat is not None:
                    listing[source] = stat
                elif source in self._entries:
                    gone.append(source)
        now = self.clock()
        changed: set[str] = set(gone)
        pending: set[str] = set()
        for source, stat in listing.items():
            entry = self._entries.get(source)
            if entry is not None and entry.stat == stat:
                continue
            path = self.root / source
            if not self._settled(source, stat, now):
                pending.add(source)  # keep serving the previous version, if any, until it settles
                continue
            with reading(source):  # /healthz names the file a stuck refresh is on (feedsvc/progress.py)
                result = read_or_skip(path, self.root, self.options)
            if _stat(path) != stat:  # written to while we read it
                pending.add(source)
                continue
            if isinstance(result, Skipped):
                log.warning("skipped %s", result)
            self._entries[source] = _Entry(stat, result)
            changed.add(source)
        self._looks = {s: st for s, st in self._looks.items() if s in pending}
        for source in gone:
            del self._entries[source]
        if changed or self._last is None or targets is None:
            # Every article read, in path order, IDs repeated as they are: who owns a repeated ID is the
            # state store's to say (its first owner), so the publisher applies unique_ids().
            results = [self._entries[s].result for s in sorted(self._entries)]
            articles = [r for r in results if isinstance(r, Article)]
            skipped = [r for r in results if isinstance(r, Skipped)]
            self._last = (tuple(articles), tuple(sorted(self._passed + tuple(skipped), key=lambda s: s.source)))
        return ScanResult(*self._last, frozenset(changed), frozenset(pending))

    def modified(self, source: str) -> float | None:
        """The modification time (Unix seconds) a file had when it was read, without another stat."""
        entry = self._entries.get(source)
        return entry.stat[1] / 1e9 if entry is not None else None

    def _targets(self, hints: Iterable[str]) -> set[str] | None:
        """Article sources among the hinted paths; None when a folder changed (walk everything)."""
        targets = set()
        root = os.fspath(self.root)
        for hint in hints:
            rel = os.path.relpath(hint, root)
            if rel == "." or rel.startswith(".." + os.sep) or rel == "..":
                continue
            if os.path.isdir(hint):
                return None
            parts = rel.split(os.sep)
            if any(p.startswith(".") for p in parts) or not parts[-1].lower().endswith((".txt", ".md")):
                continue  # counted as passed over at the next full walk
            targets.add("/".join(parts))
        return targets

    def _note_passed(self, passed: list[Skipped]) -> None:
        for skip in set(passed) - set(self._passed):
            log.info("not an article: %s", skip)
        self._passed = tuple(passed)

    def _settled(self, source: str, stat: tuple[int, int], now: float) -> bool:
        """Old enough to be complete, or unchanged since the previous look (also for clocks that disagree)."""
        if self.settle <= 0 or 0 <= self.settle <= now - stat[1] / 1e9:
            return True
        if self._looks.get(source) == stat:
            return True
        self._looks[source] = stat
        return False


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:  # removed between listing and stat
        return None
    return st.st_size, st.st_mtime_ns

"""Incremental reading of the articles folder: stat every file, parse only new or changed ones,
and hold back a file that is still being written until it has settled.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .articles import Options, Skipped, find_files, read_or_skip, unique_ids
from .model import Article

log = logging.getLogger(__name__)

SETTLE_SECONDS = 0.3  # a file changed more recently than this may still be being written


@dataclass(frozen=True)
class ScanResult:
    """What one scan found: publishable articles (unique IDs), skipped files, and what moved."""

    articles: tuple[Article, ...]
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

    def scan(self) -> ScanResult:
        """Stat the folder; read only files whose size or mtime changed and that have settled."""
        if not self.root.is_dir():
            raise FileNotFoundError(f"articles folder {self.root} does not exist; set ARTICLES_DIR or create it")
        paths, passed = find_files(self.root)
        now = self.clock()
        changed: set[str] = set()
        pending: set[str] = set()
        seen: set[str] = set()
        for path in paths:
            source = path.relative_to(self.root).as_posix()
            seen.add(source)
            stat = _stat(path)
            entry = self._entries.get(source)
            if stat is None or (entry is not None and entry.stat == stat):
                continue
            if not self._settled(source, stat, now):
                pending.add(source)  # keep serving the previous version, if any, until it settles
                continue
            result = read_or_skip(path, self.root, self.options)
            if _stat(path) != stat:  # written to while we read it
                pending.add(source)
                continue
            if isinstance(result, Skipped):
                log.warning("skipped %s", result)
            self._entries[source] = _Entry(stat, result)
            changed.add(source)
        self._looks = {s: st for s, st in self._looks.items() if s in pending}
        for source in [s for s in self._entries if s not in seen]:
            del self._entries[source]
            changed.add(source)
        if passed != self._passed:
            for skip in set(passed) - set(self._passed):
                log.info("not an article: %s", skip)
            self._passed = tuple(passed)
        articles, skipped = unique_ids(self._entries[s].result for s in sorted(self._entries))
        skipped = tuple(passed) + tuple(skipped)
        return ScanResult(tuple(articles), tuple(sorted(skipped, key=lambda s: s.source)), frozenset(changed), frozenset(pending))


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

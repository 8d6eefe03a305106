"""Everything published, rendered once per refresh into an immutable snapshot of bytes, swapped whole.

A request only looks bytes up; it never renders. The same articles give the same bytes, ETags and
compressed bodies in every process, so conditional GET works across workers and restarts.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

from .articles import Options, Skipped
from .feeds import build_feeds, is_published, newest_first, next_release
from .model import Article, Feed, Site
from .render import Rendered, Renderer
from .scan import Scanner
from .state import StateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """All published resources by URL path (no leading slash), plus what /healthz reports."""

    resources: Mapping[str, Rendered] = field(default_factory=dict)
    feeds: tuple[Feed, ...] = ()
    articles: Mapping[str, Article] = field(default_factory=dict)
    skipped: tuple[Skipped, ...] = ()
    built_at: datetime | None = None
    next_release: datetime | None = None


def site_from_settings(settings: Mapping[str, Any]) -> Site:
    """The Site facts out of the settings."""
    return Site(
        title=settings["SITE_TITLE"],
        url=settings["SITE_URL"],
        description=settings["SITE_DESCRIPTION"],
        author=settings["SITE_AUTHOR"],
        language=settings["SITE_LANGUAGE"],
        max_age=settings["REFRESH_SECONDS"],
    )


class Publisher:
    """Holds the current snapshot and brings it up to date with the articles folder on refresh()."""

    def __init__(self, settings: Mapping[str, Any], store: StateStore, clock: Callable[[], datetime] | None = None):
        self.settings = settings
        self.site = site_from_settings(settings)
        self.root = Path(settings["ARTICLES_DIR"])
        self.store = store
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.scanner = Scanner(self.root, Options.from_settings(dict(settings)), settle=settings["SETTLE_MS"] / 1000)  # wall-clock time
        self.renderer = Renderer(self.site)
        self.snapshot = Snapshot()
        self.last_error: str | None = None
        self.last_success: datetime | None = None
        self.pending: frozenset[str] = frozenset()
        self._stamped: dict[str, tuple[Article, Article]] = {}  # id → (as read, as stamped)
        self._lock = threading.Lock()  # one refresh at a time; readers never wait on it

    def refresh(self) -> bool:
        """Bring the snapshot up to date; on failure log it and keep serving the last good one."""
        with self._lock:
            started = time.perf_counter()
            try:
                snapshot, changes = self._build(self.clock())
            except Exception as exc:  # the edge where work must go on: keep the last good feeds
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("refresh failed, still serving the feeds built at %s: %s", self.snapshot.built_at, self.last_error)
                return False
            self.snapshot = snapshot  # one assignment: a request sees the old set or the new, never a mix
            self.last_error = None
            self.last_success = snapshot.built_at
            if changes:
                log.info("refresh: %d articles, %d changed files, %d resources rendered, %d skipped, %.0f ms",
                         len(snapshot.articles), changes, self.renderer.rendered_last, len(snapshot.skipped),
                         (time.perf_counter() - started) * 1000)
            return True

    def build(self, now: datetime) -> Snapshot:
        """Read, stamp, select and render everything for the moment `now` (used by tests and tools)."""
        with self._lock:
            return self._build(now)[0]

    def next_wakeup(self) -> datetime | None:
        """When a refresh is due before the next tick: an embargo ending, or a file settling."""
        times = [t for t in (self.snapshot.next_release,) if t is not None]
        if self.pending:
            times.append(self.clock() + timedelta(seconds=self.scanner.settle))
        return min(times, default=None)

    def _build(self, now: datetime) -> tuple[Snapshot, int]:
        scan = self.scanner.scan()
        self.pending = scan.pending
        old = self.snapshot
        released = old.next_release is not None and old.next_release <= now
        if old.built_at is not None and not scan.changed and not released:
            return replace(old, built_at=now), 0  # nothing to do: same bytes, same ETags
        articles = self._stamp(scan.articles, now)
        feeds = build_feeds(articles, self.site, self.settings["CATEGORY_SLUGS"], self.settings["FEED_MAX_ITEMS"], now)
        live = newest_first(a for a in articles if is_published(a, now))
        resources = self.renderer.render(feeds, live)
        snapshot = Snapshot(
            resources=MappingProxyType(resources),
            feeds=tuple(feeds),
            articles=MappingProxyType({a.id: a for a in live}),
            skipped=scan.skipped,
            built_at=now,
            next_release=next_release(articles, now),
        )
        return snapshot, max(len(scan.changed), 1)

    def _stamp(self, articles: tuple[Article, ...], now: datetime) -> list[Article]:
        """Stamp only articles read anew; the rest keep their stamped objects (cheap to compare)."""
        fresh = [a for a in articles if self._stamped.get(a.id, (None,))[0] is not a]
        stamped = self.store.stamp(fresh, now, appeared=_mtimes(self.root, fresh)) if fresh else []
        by_id = {a.id: a for a in fresh}
        self._stamped = {a.id: (a, self._stamped[a.id][1]) if a.id not in by_id else (a, None) for a in articles}
        for s in stamped:
            self._stamped[s.id] = (by_id[s.id], s)
        return [pair[1] for pair in self._stamped.values()]


def _mtimes(root: Path, articles: list[Article]) -> dict[str, datetime]:
    times = {}
    for a in articles:
        try:
            times[a.id] = datetime.fromtimestamp((root / a.source).stat().st_mtime, timezone.utc)
        except OSError:
            pass
    return times


__all__ = ["Publisher", "Rendered", "Snapshot", "site_from_settings"]

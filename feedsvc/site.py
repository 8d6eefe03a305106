"""Everything published, rendered once per refresh into an immutable snapshot of bytes, swapped whole.

A request only looks bytes up; it never renders. The same articles give the same bytes, ETags and
compressed bodies in every process, so conditional GET works across workers and restarts.
"""
from __future__ import annotations

import gzip
import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from importlib import resources as package_files
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

import brotli

from .articles import Options, Skipped, load_articles
from .feeds import EPOCH, build_feeds, is_published, newest_first, next_release
from .formats import FORMATS
from .formats.opml import MEDIA_TYPE as OPML_TYPE, render_opml
from .pages import render_pages
from .model import Article, Feed, Site
from .state import StateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rendered:
    """One published resource: its bytes, precompressed forms and validators."""

    body: bytes
    media_type: str
    last_modified: datetime
    etag: str = ""
    gzip: bytes = b""
    br: bytes = b""

    @classmethod
    def of(cls, body: bytes, media_type: str, last_modified: datetime) -> "Rendered":
        """Hash and compress once, at render time."""
        return cls(
            body=body,
            media_type=media_type,
            last_modified=last_modified,
            etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            gzip=gzip.compress(body, compresslevel=9, mtime=0),  # mtime=0: same bytes every time
            br=brotli.compress(body, quality=9),
        )


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


def render_feeds(feeds: list[Feed], site: Site) -> dict[str, Rendered]:
    """Every feed in every format, keyed by URL path."""
    resources = {}
    for feed in feeds:
        for fmt in FORMATS.values():
            resources[feed.path(fmt.key)] = Rendered.of(fmt.render(feed, site), fmt.media_type, feed.updated)
    return resources


# Files served as they are; their Last-Modified is fixed so every install agrees.
STATIC = {"style.css": "text/css", "feed.xsl": "text/xsl"}


def render_static() -> dict[str, Rendered]:
    """The stylesheets shipped in feedsvc/static."""
    folder = package_files.files("feedsvc") / "static"
    return {name: Rendered.of((folder / name).read_bytes(), media, EPOCH) for name, media in STATIC.items()}


def render_everything(feeds: list[Feed], live: list[Article], site: Site) -> dict[str, Rendered]:
    """Feeds, pages, the OPML list and the static files, keyed by URL path."""
    resources = render_feeds(feeds, site)
    for path, (body, modified) in render_pages(feeds, live, site).items():
        resources[path] = Rendered.of(body, "text/html", modified)
    resources["feeds.opml"] = Rendered.of(render_opml(feeds, site), OPML_TYPE, feeds[0].updated)
    resources.update(render_static())
    return resources


class Publisher:
    """Holds the current snapshot and rebuilds it from the articles folder on refresh()."""

    def __init__(self, settings: Mapping[str, Any], store: StateStore, clock: Callable[[], datetime] | None = None):
        self.settings = settings
        self.site = site_from_settings(settings)
        self.options = Options.from_settings(dict(settings))
        self.root = Path(settings["ARTICLES_DIR"])
        self.store = store
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.snapshot = Snapshot()
        self.last_error: str | None = None
        self.last_success: datetime | None = None
        self._lock = threading.Lock()  # one refresh at a time; readers never wait on it

    def refresh(self) -> bool:
        """Rebuild and swap in a new snapshot; on failure log it and keep serving the last good one."""
        with self._lock:
            started = time.perf_counter()
            try:
                snapshot = self.build(self.clock())
            except Exception as exc:  # the edge where work must go on: keep the last good feeds
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("refresh failed, still serving the feeds built at %s: %s", self.snapshot.built_at, self.last_error)
                return False
            self.snapshot = snapshot  # one assignment: a request sees the old set or the new, never a mix
            self.last_error = None
            self.last_success = snapshot.built_at
            log.info("refresh: %d articles, %d feeds, %d skipped in %.0f ms", len(snapshot.articles), len(snapshot.feeds),
                     len(snapshot.skipped), (time.perf_counter() - started) * 1000)
            return True

    def build(self, now: datetime) -> Snapshot:
        """Read, stamp, select and render everything for the moment `now`."""
        if not self.root.is_dir():
            raise FileNotFoundError(f"articles folder {self.root} does not exist; set ARTICLES_DIR")
        articles, skipped = load_articles(self.root, self.options)
        articles = self.store.stamp(articles, now, appeared=_mtimes(self.root, articles))
        feeds = build_feeds(articles, self.site, self.settings["CATEGORY_SLUGS"], self.settings["FEED_MAX_ITEMS"], now)
        live = newest_first(a for a in articles if is_published(a, now))
        resources = render_everything(feeds, live, self.site)
        return Snapshot(
            resources=MappingProxyType(resources),
            feeds=tuple(feeds),
            articles=MappingProxyType({a.id: a for a in live}),
            skipped=tuple(skipped),
            built_at=now,
            next_release=next_release(articles, now),
        )


def _mtimes(root: Path, articles: list[Article]) -> dict[str, datetime]:
    times = {}
    for a in articles:
        try:
            times[a.id] = datetime.fromtimestamp((root / a.source).stat().st_mtime, timezone.utc)
        except OSError:
            pass
    return times


__all__ = ["EPOCH", "Publisher", "Rendered", "Snapshot", "render_everything", "render_feeds", "site_from_settings"]

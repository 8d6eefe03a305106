"""Shared fixtures: real article folders in tmp_path, the real Flask app, a fixed clock."""
from __future__ import annotations

import gc
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from feedsvc import create_app
from feedsvc.config import load_settings
from feedsvc.building.site import FeedOptions, Publisher
from feedsvc.building.state import StateStore

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_ARTICLES = ROOT / "articles"
SEED = SAMPLE_ARTICLES / "000_4c2ff0435fbab79d.txt"
FIXED_NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def pytest_configure(config) -> None:
    """feedsvc's bytecode written before any test, as the benchmarks write it (benchmarks/setup.py bytecode): the tests
    run feedsvc from the checkout in hundreds of processes, and where PYTHONDONTWRITEBYTECODE is set (this machine,
    CI) each of them compiled the modules it imports again, a quarter of a second of CPU each."""
    from benchmarks.setup import bytecode

    bytecode(ROOT / "feedsvc")


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto` (the default, pyproject's addopts): one test process more than this machine's cores. A third of the
    suite's time is spent waiting on the real server processes its tests start, and the processes of `-n auto`'s one
    per core left that third of the cores idle (2 cores: 157 s against 222–255 s, in less CPU)."""
    return len(os.sched_getaffinity(0)) + 1


@pytest.fixture(autouse=True, scope="session")
def _cache_folder(tmp_path_factory):
    """The user's cache folder (the language model unpacked on first use: reading/text.py) is one of this run's
    own, for every process the tests start: nothing is written outside the run's temporary folders."""
    import os

    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture(autouse=True)
def _collector_as_it_was():
    """A builder started in the test's process sets the cyclic collector's thresholds (building/builder.collect_less):
    each test begins with them as the run began."""
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def write(folder: Path, name: str, text: str | bytes) -> Path:
    """Write an article file (text as UTF-8) under folder, creating subfolders."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def observed(publisher: Publisher) -> list:
    """What each refresh of the publisher does from now on (Refreshed), as its observers are told."""
    refreshes: list = []
    publisher.observers.append(refreshes.append)
    return refreshes


def built_app(config: dict):
    """create_app(config) as it builds, and what its first refresh did (Refreshed): (app, refreshed)."""
    app = create_app(config, refresh=False)
    refreshes = observed(app.extensions["feedsvc"])
    app.extensions["feedsvc"].refresh()
    return app, refreshes[-1]


def variant(publisher: Publisher, key: str, fmt: str, *, page: int = 1, since: datetime | None = None, partner=None):
    """A feed view (a page, the items since a moment, a partner's licensed view) made from the publisher's own snapshot,
    as a serving process makes it from the build store (serving/variants.py): what tests compare the store's against.
    None if there is none."""
    from dataclasses import replace

    from feedsvc.paging import page_date, page_feed, since_feed

    snapshot = publisher.snapshot
    listing = snapshot.listings.get(key)
    if listing is None:
        return None
    options = dict(publisher.public) if partner is None else partner.feed_options()
    part = partner is not None and partner.leaves_out(key)
    if part:  # the listing cut down to the partner's licensed categories, by count (the frozen pages are the whole one's)
        items = tuple(a for a in listing.items if any(partner.licenses(c) for c in a.categories))
        deleted = tuple(d for d in listing.deleted if any(partner.licenses(c) for c in d.categories))
        listing = replace(listing, items=items, deleted=deleted, cuts=(), since=0, left=(), came=())
    size = publisher.options.max_items
    # An archive page has its own date (serving/variants.py says which); any other view changes with the listing.
    options["updated"] = (page_date(snapshot.changed[key], snapshot.pages.get(key, ()), page)
                          if since is None and not part else snapshot.changed[key])
    if since is not None:
        feed = since_feed(listing, publisher.site, size, since, page, **options)
    else:
        feed = page_feed(listing, publisher.site, size, page, **options)
    return None if feed is None else publisher.renderer.feed(fmt, publisher.in_full(feed))


@pytest.fixture
def articles_dir(tmp_path: Path) -> Path:
    """An empty articles folder."""
    folder = tmp_path / "articles"
    folder.mkdir()
    return folder


@pytest.fixture
def sample_dir(tmp_path: Path) -> Path:
    """A copy of the shipped sample articles."""
    folder = tmp_path / "sample"
    shutil.copytree(SAMPLE_ARTICLES, folder)
    return folder


@pytest.fixture
def make_publisher(tmp_path: Path):
    """Build a Publisher over a folder with a fixed clock; settings may be overridden by name."""

    def make(folder: Path, now: datetime = FIXED_NOW, **overrides) -> Publisher:
        # SETTLE_MS=0: files a test has just written are complete; nothing waits for them to settle.
        settings = load_settings({"ARTICLES_DIR": str(folder), "STATE_PATH": str(tmp_path / "state.sqlite3"), "SETTLE_MS": 0, **overrides},
                                 toml_path=tmp_path / "absent.toml", environ={})
        return Publisher(FeedOptions.from_settings(settings), StateStore(settings["STATE_PATH"]), clock=lambda: now)

    return make


@pytest.fixture
def make_app(tmp_path: Path, monkeypatch):
    """Build the real Flask app over a folder; settings may be overridden by name. Its WebSub thread ends with the test."""
    monkeypatch.chdir(tmp_path)  # no feedsvc.toml from the developer's checkout
    apps = []

    def make(folder: Path, **overrides):
        app = create_app({"ARTICLES_DIR": str(folder), "STATE_PATH": str(tmp_path / "state.sqlite3"), "SETTLE_MS": 0, **overrides})
        apps.append(app)
        return app

    yield make
    for app in apps:
        if "feedsvc.websub" in app.extensions:
            app.extensions["feedsvc.websub"].close()


@pytest.fixture
def client(make_app, sample_dir):
    """A test client of the app serving the sample articles."""
    return make_app(sample_dir).test_client()


@pytest.fixture
def deletions_at_once(monkeypatch):
    """A file the watcher saw go is gone at the next scan, not kept a moment (scan.GONE_AFTER: a tool that deletes and
    writes files anew, git checkout), for tests about what a deletion does rather than when."""
    from feedsvc.reading import scan

    monkeypatch.setattr(scan, "GONE_AFTER", 0)

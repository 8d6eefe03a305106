"""How the dedicated builder starts (feedsvc/building/builder.py build_forever): reading workers ahead for a cold start only."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from feedsvc import create_app
from feedsvc.building import builder
from feedsvc.building.lock import BuildLock, lock_path
from feedsvc.reading import pool
from feedsvc.store import create_schema, has_build
from tests.conftest import ROOT


class _Built(Exception):
    """run_builder reached: build_forever() got as far as building."""


@pytest.fixture
def big_folder(sample_dir, tmp_path):
    """The sample and enough more articles for reading workers to pay (pool.POOL_FROM files), in a subfolder."""
    folder = tmp_path / "articles"
    shutil.copytree(sample_dir, folder)
    (folder / "more").mkdir()
    for n in range(pool.POOL_FROM):
        (folder / "more" / f"{n:04d}.txt").write_text(f"News\nStory {n}\nBody.\n", encoding="utf-8")
    return folder


@pytest.fixture
def start_builder(big_folder, tmp_path, monkeypatch):
    """builder.build_forever() over a big folder up to its first build; returns how many times it started reading
    workers ahead."""
    monkeypatch.chdir(tmp_path)
    config = {"ARTICLES_DIR": str(big_folder), "STATE_PATH": str(tmp_path / "state.sqlite3"), "SETTLE_MS": 0}
    started, aheads = [], []
    monkeypatch.setattr(pool, "prestart", lambda: started.append(1))
    def run_builder(app):
        os.close(app.extensions["feedsvc.lock"].fd)  # the build lock taken, and let go for the next start
        ahead = app.extensions["feedsvc.read_ahead"]
        aheads.append(ahead)
        if ahead is not None:
            ahead._thread.join(60)  # its reading done (by workers of its own here: prestart() started none)
        raise _Built

    monkeypatch.setattr(builder, "run_builder", run_builder)
    handler = signal.getsignal(signal.SIGTERM)

    def start(handed: bool = True) -> int:
        """build_forever as spawn() calls it: with the build lock taken for it (handed), or None (another holds it)."""
        lock = None
        if handed:
            lock = BuildLock(lock_path(config["STATE_PATH"]))
            assert lock.try_acquire()
        try:
            with pytest.raises(_Built):
                builder.build_forever(config, lock)
        finally:
            signal.signal(signal.SIGTERM, handler)
        return len(started)

    start.config, start.aheads = config, aheads
    return start


def test_a_cold_start_starts_reading_workers_ahead_and_a_restart_does_not(start_builder):
    assert start_builder() == 1  # nothing built yet: every file is to read
    ahead = start_builder.aheads[-1]  # and they read from now on (reading/readahead.py), for the first scan
    assert ahead is not None and len(ahead.batch) == pool.POOL_FROM + 11 and ahead.full  # fewer than PLACE_FROM: in full
    create_app(start_builder.config)  # a first build committed to the store
    assert start_builder() == 1  # a restart: the store answers, and only changed files are read
    assert start_builder.aheads[-1] is None


def test_a_builder_that_waits_for_the_build_lock_reads_nothing_ahead(start_builder):
    # Another builder holds the lock (spawn() could not take it): that one reads the folder meanwhile; this one would
    # take the folder's reading claim from it and hold every result until it builds, a restart by then.
    assert start_builder(handed=False) == 1 and start_builder.aheads[-1] is None
    assert start_builder(handed=True) == 2 and start_builder.aheads[-1] is not None


def test_a_cold_start_of_a_small_folder_starts_no_reading_workers(start_builder, big_folder):
    # Fewer files than pay for two interpreters' start: read in the builder itself, sooner than they would start.
    articles = [path for path in big_folder.rglob("*") if path.suffix in (".txt", ".md")]
    for path in sorted((big_folder / "more").iterdir())[:len(articles) - pool.POOL_FROM + 1]:
        path.unlink()  # one article file fewer than POOL_FROM left
    assert start_builder() == 0 and start_builder.aheads[-1] is None
    (big_folder / "more" / "last.txt").write_text("News\nOne more\nBody.\n", encoding="utf-8")
    assert start_builder() == 1 and start_builder.aheads[-1] is not None


def test_a_store_has_a_build_only_once_one_is_committed(tmp_path, sample_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "state.sqlite3"
    assert not has_build(path) and not path.exists()  # asking creates nothing
    create_schema(path)
    assert not has_build(path)
    (tmp_path / "junk.sqlite3").write_bytes(b"not a database")
    assert not has_build(tmp_path / "junk.sqlite3")
    create_app({"ARTICLES_DIR": str(sample_dir), "STATE_PATH": str(path), "SETTLE_MS": 0})
    assert has_build(path)


# As build_forever runs the builder once it holds the build lock: the scripts below run one so, in a process of their own.
_RUN_BUILDER = """
lock = BuildLock(lock_path(app.extensions["feedsvc.state_path"]))
lock.acquire()
app.extensions["feedsvc.lock"] = lock
refresher = run_builder(app)
"""

_FIRST_BUILD = """
import json, sys
import feedsvc.building.builder as builder
import feedsvc.building.committer as committer
import feedsvc.building.site as site
from feedsvc import for_building
from feedsvc.building.builder import run_builder
from feedsvc.building.lock import BuildLock, lock_path

LATER = ("apscheduler", "prometheus_client", "urllib.request")
seen = []
refresh = site.Publisher.refresh
def watched(self, *args, **kwargs):
    seen.append([name in sys.modules for name in LATER])
    try:
        return refresh(self, *args, **kwargs)
    finally:
        seen.append([name in sys.modules for name in LATER])
site.Publisher.refresh = watched
commit = committer.Committer.__call__
def committed(self, *args, **kwargs):
    try:
        return commit(self, *args, **kwargs)
    finally:
        seen.append([name in sys.modules for name in LATER])
committer.Committer.__call__ = committed
app = for_building(json.loads(sys.argv[1]))
""" + _RUN_BUILDER + """metrics = app.extensions["feedsvc.metrics"]._metrics
print(json.dumps({"first build": seen[:3], "then": [name in sys.modules for name in LATER],
                  "ticking": refresher._scheduler is not None and refresher._scheduler.running
                             and refresher._scheduler.get_job("tick") is not None,  # made by the first run's end
                  "watching": refresher.observer is not None and refresher.observer.is_alive(),
                  "figures": [line for line in metrics.exposition().decode().splitlines()
                              if line.startswith(("feedsvc_refreshes_total", "feedsvc_articles_published "))]}))
refresher.stop()
"""


def test_the_builder_builds_first_and_imports_its_schedule_and_metrics_after(sample_dir, tmp_path):
    # A cold start's longest chain is the builder's way to its first build: APScheduler's import (0.05-0.1 s) and
    # prometheus_client's (0.1 s) come after it, while the watcher is on from before it (a file saved meanwhile is
    # not missed), and the first build's figures are counted all the same. Nor is urllib.request (with http.client,
    # email and ssl), which xml.sax.saxutils brought to the sitemaps: 30-50 ms.
    config = {"ARTICLES_DIR": str(sample_dir), "STATE_PATH": str(tmp_path / "state.sqlite3"), "SETTLE_MS": 0}
    env = {name: value for name, value in os.environ.items() if name != "PROMETHEUS_MULTIPROC_DIR"}  # its own registry
    done = subprocess.run([sys.executable, "-c", _FIRST_BUILD, json.dumps(config)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**env, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout.splitlines()[-1])
    # At the first refresh's start, once its build is committed, at its end (the metrics observed), then.
    # urllib.request comes with prometheus_client's exposition.
    assert said == {"first build": [[False, False, False], [False, False, False], [False, True, True]],
                    "then": [True, True, True], "ticking": True, "watching": True,
                    "figures": ['feedsvc_refreshes_total{outcome="changed"} 1.0', "feedsvc_articles_published 11.0"]}


_LATE_FILE = """
import json, sys, time
from pathlib import Path
from feedsvc import for_building
from feedsvc.building.builder import run_builder
from feedsvc.building.lock import BuildLock, lock_path
from feedsvc.reading.articles import Options
from feedsvc.reading.readahead import ReadAhead

config = json.loads(sys.argv[1])
app = for_building(config)
settings = app.extensions["feedsvc.settings"]
root = Path(config["ARTICLES_DIR"])
# As build_forever makes it on a cold start: the folder walked, and its files read, before the watcher is set.
ahead = ReadAhead(root, Options.from_settings(settings), 0)
ahead._thread.join(30)
(root / "late.txt").write_text("News\\nSaved late\\nBetween the walk ahead and the watch.\\n", encoding="utf-8")
app.extensions["feedsvc.read_ahead"] = ahead
""" + _RUN_BUILDER + """publisher = app.extensions["feedsvc"]
first = sorted(publisher.snapshot.articles)
started = time.monotonic()
while "late" not in publisher.snapshot.articles and time.monotonic() - started < 20:
    time.sleep(0.05)
print(json.dumps({"first": first, "then": sorted(publisher.snapshot.articles), "rewalk": publisher.scanner.rewalk}))
refresher.stop()
"""


def test_a_file_saved_between_the_walk_ahead_and_the_watch_is_published_by_the_walk_after_the_first_build(
        sample_dir, tmp_path):
    # The cold start's first scan takes the read-ahead's walk; the watcher is set after it, so it never sees a file
    # saved in between: the next scan, which the first build's end asks for at once, walks the folder again. Not the
    # tick a minute later (REFRESH_SECONDS 60, waited for here up to 20 s).
    config = {"ARTICLES_DIR": str(sample_dir), "STATE_PATH": str(tmp_path / "state.sqlite3"), "SETTLE_MS": 0,
              "REFRESH_SECONDS": 60}
    env = {name: value for name, value in os.environ.items() if name != "PROMETHEUS_MULTIPROC_DIR"}
    done = subprocess.run([sys.executable, "-c", _LATE_FILE, json.dumps(config)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=90, env={**env, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout.splitlines()[-1])
    assert "late" not in said["first"] and len(said["first"]) == 11  # the folder as walked ahead
    assert "late" in said["then"] and not said["rewalk"]


_COLLECTOR = """
import gc, json, sys
import feedsvc.building.site as site
from feedsvc import for_building
from feedsvc.building.builder import run_builder
from feedsvc.building.lock import BuildLock, lock_path

during = []
refresh = site.Publisher.refresh
def watched(self, *args, **kwargs):
    during.append(gc.isenabled())
    return refresh(self, *args, **kwargs)
site.Publisher.refresh = watched
app = for_building(json.loads(sys.argv[1]))
""" + _RUN_BUILDER + """print(json.dumps({"first build": during[:1], "after": gc.isenabled()}))
refresher.stop()
"""


def test_a_deployments_first_build_runs_without_the_cyclic_collector_and_puts_it_back(sample_dir, tmp_path):
    # A cold start's first build keeps what it makes; its collections found next to nothing and took 375 ms of the way
    # to a 100,000-article folder's first feeds. A restart's first build (a build in the store) collects as always.
    config = {"ARTICLES_DIR": str(sample_dir), "STATE_PATH": str(tmp_path / "state.sqlite3"), "SETTLE_MS": 0}
    said = []
    for _ in ("cold start", "restart"):
        done = subprocess.run([sys.executable, "-c", _COLLECTOR, json.dumps(config)], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, done.stderr
        said.append(json.loads(done.stdout.splitlines()[-1]))
    assert said == [{"first build": [False], "after": True}, {"first build": [True], "after": True}]


_WATCH_AFTER = """
import json, os, sys, time
from pathlib import Path
import feedsvc.building.site as site
from feedsvc import for_building
from feedsvc.building.builder import run_builder
from feedsvc.building.lock import BuildLock, lock_path
from feedsvc.reading.articles import Options
from feedsvc.reading.readahead import ReadAhead

config = json.loads(sys.argv[1])
app = for_building(config)
root = Path(config["ARTICLES_DIR"])
watching = []
refresh = site.Publisher.refresh
def watched(self, *args, **kwargs):
    refresher = app.extensions.get("feedsvc.refresher")
    watching.append(refresher is not None and refresher.observer is not None)
    return refresh(self, *args, **kwargs)
site.Publisher.refresh = watched
if sys.argv[2] == "ahead":  # as build_forever makes it on a cold start
    ahead = ReadAhead(root, Options.from_settings(app.extensions["feedsvc.settings"]), 0)
    ahead._thread.join(30)
    app.extensions["feedsvc.read_ahead"] = ahead
""" + _RUN_BUILDER + """publisher = app.extensions["feedsvc"]
watching_after = refresher.observer is not None and refresher.observer.is_alive()
# Saved once the first build is done: the watch (or the walk after the first build) publishes it.
(root / "after.txt").write_text("News\\nSaved after\\nRight after the first build.\\n", encoding="utf-8")
started = time.monotonic()
while "after" not in publisher.snapshot.articles and time.monotonic() - started < 20:
    time.sleep(0.05)
print(json.dumps({"first build watched": watching[0], "watching after": watching_after,
                  "published": "after" in publisher.snapshot.articles}))
refresher.stop()
"""


@pytest.mark.parametrize("walked", ["ahead", "here"])
def test_a_cold_start_walked_ahead_sets_its_watch_as_the_first_build_ends(sample_dir, tmp_path, walked):
    # The watch's own walk (watchdog lists every entry to watch each subfolder: 0.3 s at 100,000 files) comes after a
    # cold start's first feeds when its first scan was walked ahead, since the folder is walked again right after and
    # finds what was saved before the watch; otherwise the watch comes first, so a file saved meanwhile is not missed.
    # Either way a file saved once the first build is done is published.
    root = tmp_path / "articles"
    shutil.copytree(sample_dir, root)
    config = {"ARTICLES_DIR": str(root), "STATE_PATH": str(tmp_path / "state.sqlite3"), "SETTLE_MS": 0,
              "REFRESH_SECONDS": 60}  # not the tick: waited for here up to 20 s
    env = {name: value for name, value in os.environ.items() if name != "PROMETHEUS_MULTIPROC_DIR"}
    done = subprocess.run([sys.executable, "-c", _WATCH_AFTER, json.dumps(config), walked], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, env={**env, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout.splitlines()[-1])
    assert said == {"first build watched": walked == "here", "watching after": True, "published": True}

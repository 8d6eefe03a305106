"""How the dedicated builder starts (feedsvc/building/builder.py main): reading workers ahead for a cold start only."""
from __future__ import annotations

import json
import os
import signal

import pytest

from feedsvc import create_app
from feedsvc.building import builder
from feedsvc.reading import pool
from feedsvc.store import create_schema, has_build


class _Built(Exception):
    """run_builder reached: main() got as far as building."""


@pytest.fixture
def start_builder(sample_dir, tmp_path, monkeypatch):
    """builder.main() over the sample up to its first build; returns how many times it started reading workers ahead."""
    monkeypatch.chdir(tmp_path)
    config = {"ARTICLES_DIR": str(sample_dir), "STATE_PATH": str(tmp_path / "state.sqlite3"), "SETTLE_MS": 0}
    started = []
    monkeypatch.setattr(pool, "prestart", lambda: started.append(1))
    def run_builder(app):
        os.close(app.extensions["feedsvc.lock"].fd)  # the build lock taken, and let go for the next start
        raise _Built

    monkeypatch.setattr(builder, "run_builder", run_builder)
    handler = signal.getsignal(signal.SIGTERM)

    def start() -> int:
        try:
            with pytest.raises(_Built):
                builder.main([json.dumps(config)])
        finally:
            signal.signal(signal.SIGTERM, handler)
        return len(started)

    start.config = config
    return start


def test_a_cold_start_starts_reading_workers_ahead_and_a_restart_does_not(start_builder):
    assert start_builder() == 1  # nothing built yet: every file is to read
    create_app(start_builder.config)  # a first build committed to the store
    assert start_builder() == 1  # a restart: the store answers, and only changed files are read


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

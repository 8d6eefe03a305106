"""Work made ahead by a forked copy (children.Ahead): `feedsvc build` imports and wires itself while the copy walks
the folder and reads the store's rows on the other core; what the build takes is what it would have made itself."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from feedsvc import create_app
from feedsvc.building.committer import Committer
from feedsvc.reading.folder import Folder
from feedsvc.building.storewriter import held_at
from tests.conftest import ROOT, SAMPLE_ARTICLES

_AHEAD = '''
import json, os, sys, threading
from feedsvc.children import Ahead
from feedsvc.reading.folder import Folder
folder, mode = Folder(sys.argv[1]), sys.argv[2]
if mode == "thread":
    threading.Thread(target=threading.Event().wait, args=(5,), daemon=True).start()
def fails():
    raise OSError("no")
ahead = Ahead({"fails": fails, "walk": folder.walk, "pid": os.getpid}, "feedsvc-test")
if mode == "close":  # let go of untaken: the copy ends (its write fails), and is reaped
    ahead.close()
walk, pid, fails, again = ahead.result("walk"), ahead.result("pid"), ahead.result("fails"), ahead.result("walk")
here = folder.walk() if os.path.isdir(sys.argv[1]) else None
show = lambda w: None if w is None else [w[0], sorted(map(str, w[1].values()))]
print(json.dumps({"walk": show(walk), "here": show(here), "again": again, "fails": fails, "by_copy": pid not in (None, os.getpid()),
                  "child": None if ahead._child is None else ahead._child.returncode}))
'''


def _ahead(folder, mode: str = "alone") -> dict:
    """Jobs made ahead in a process of its own (one with no other thread, as `feedsvc build` is; or with one)."""
    done = subprocess.run([sys.executable, "-c", _AHEAD, str(folder), mode], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) | {"stderr": done.stderr}


def _folder(tmp_path):
    root = tmp_path / "articles"
    (root / "news" / ".drafts").mkdir(parents=True)
    (root / "a.txt").write_text("News\nA\nBody.\n", encoding="utf-8")
    (root / "news" / "b.md").write_text("News\nB\nBody.\n", encoding="utf-8")
    (root / "notes.docx").write_bytes(b"PK")
    (root / ".hidden.txt").write_text("x", encoding="utf-8")
    (root / "passwd.txt").symlink_to("/etc/passwd")
    os.mkfifo(root / "pipe.txt")
    return root


def test_a_walk_made_ahead_is_the_walk_made_here_taken_once_and_a_failed_job_gives_none(tmp_path):
    found = _ahead(_folder(tmp_path))
    assert found["walk"] == found["here"] and found["by_copy"] and found["child"] == 0
    assert found["again"] is None and found["fails"] is None and found["stderr"] == ""
    files = [row[0] for row in found["walk"][0]]
    assert files == ["a.txt", "news/b.md"] and any("passwd.txt" in s for s in found["walk"][1])


def test_a_process_with_another_thread_makes_nothing_ahead(tmp_path):
    found = _ahead(_folder(tmp_path), "thread")  # a fork copies the calling thread alone: not from such a process
    assert found["walk"] is None and found["child"] is None and not found["by_copy"]


def test_a_folder_the_copy_cannot_walk_gives_none_quietly(tmp_path):
    found = _ahead(tmp_path / "absent")
    assert found["walk"] is None and found["by_copy"] and found["child"] == 0 and found["stderr"] == ""


def test_results_not_taken_are_let_go_and_the_copy_ends_quietly():
    found = _ahead(SAMPLE_ARTICLES, "close")
    assert found["walk"] is None and found["child"] is not None and found["stderr"] == ""


def test_the_scan_takes_the_walk_made_ahead_once(make_publisher, sample_dir):
    pub = make_publisher(sample_dir)
    files, passed = Folder(sample_dir).walk()
    asked = []
    pub.scanner.ahead = lambda folder: asked.append(folder.real) or (files[1:], passed)  # as if the first were not there
    pub.refresh()
    assert asked == [os.path.realpath(sample_dir)] and pub.scanner.ahead is None
    assert sorted(a.source for a in pub.snapshot.articles.values()) == [row[0] for row in files[1:]]
    pub.refresh()  # later walks are made here
    assert sorted(a.source for a in pub.snapshot.articles.values()) == [row[0] for row in files]


def test_rows_read_ahead_are_compared_only_while_no_build_came_since(make_app, sample_dir, tmp_path):
    app = make_app(sample_dir)  # a first build
    path = app.extensions["feedsvc.state_path"]
    version, rows = held_at(path)
    assert version == 1 and rows == _committer(app).writer.held() and len(rows["resources"]) > 10
    with pytest.raises(sqlite3.Error):
        held_at(tmp_path / "absent.db")
    assert not (tmp_path / "absent.db").exists()  # read-only: no store made where there is none
    nothing = {"resources": {}, "listings": {}, "items": {}}

    def first_build(ahead: tuple) -> list[tuple[int, int]]:
        """Another process's first build on this store, with these rows as read ahead: the builds' changed rows."""
        other = create_app({"ARTICLES_DIR": str(sample_dir), "STATE_PATH": path, "SETTLE_MS": 0}, refresh=False)
        taken = []
        _committer(other).held_ahead = lambda: taken.append(ahead) or ahead
        assert other.extensions["feedsvc"].refresh() and taken and _committer(other).held_ahead is None
        return _changes(path)

    # As of the latest version: compared, so rows said to be none have every row committed anew.
    before = _changes(path)
    after = first_build((version, nothing))
    assert len(after) == len(before) + 1 and after[-1][1] > len(rows["resources"]) // 2
    # As of an older version (a build came since): read again, so nothing is committed anew.
    assert first_build((version, nothing)) == after


def _committer(app) -> Committer:
    return next(o for o in app.extensions["feedsvc"].observers if isinstance(o, Committer))


def _changes(path) -> list[tuple[int, int]]:
    """(version, rows it changed) of each build the store keeps."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT version, COUNT(*) FROM changes GROUP BY version ORDER BY version").fetchall()
    finally:
        conn.close()


def test_feedsvc_build_takes_the_walk_and_the_rows_its_copy_made(tmp_path):
    trace = ("import os, feedsvc.reading.folder as f, feedsvc.building.storewriter as s; walk, held = f.Folder.walk, s.StoreWriter.held\n"
             "def traced(self):\n    print('walked by', os.getpid(), flush=True)\n    return walk(self)\n"
             "def read(self):\n    print('held read by', os.getpid(), flush=True)\n    return held(self)\n"
             "f.Folder.walk, s.StoreWriter.held = traced, read\nprint('build by', os.getpid(), flush=True)")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "FEEDSVC_STATE_PATH": str(tmp_path / "state.db"),
           "FEEDSVC_CONFIG": "", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    code = f"import sys\n{trace}\nfrom feedsvc.cli import run\nsys.argv[0] = 'feedsvc'\nrun()"
    for _ in range(2):  # a first build (no store yet: its rows read here) and a second (read ahead)
        done = subprocess.run([sys.executable, "-c", code, "build", "--out", str(tmp_path / "out"), "--articles",
                               str(SAMPLE_ARTICLES)], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    builder = next(line.split()[-1] for line in lines if line.startswith("build by"))
    walkers = [line.split()[-1] for line in lines if line.startswith("walked by")]
    assert walkers and builder not in walkers  # walked once, by the copy, never again by the build itself
    assert not any(line.startswith("held read by") for line in lines)  # held_at reads with its own connection
    assert "0 files written" in done.stdout

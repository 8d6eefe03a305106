"""The folder walked ahead by a forked copy (reading/folder.py WalkAhead): `feedsvc build` wires itself while the copy
makes the walk's stat calls on the other core; the walk it takes is the one the process would have made."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import pytest

from feedsvc.reading.folder import Folder, FolderError
from tests.conftest import ROOT, SAMPLE_ARTICLES

_AHEAD = '''
import json, os, sys, threading
from feedsvc.reading.folder import Folder, WalkAhead
if sys.argv[2] == "thread":
    threading.Thread(target=threading.Event().wait, args=(5,), daemon=True).start()
ahead = WalkAhead(sys.argv[1])
if sys.argv[2] == "close":  # let go of untaken: the copy ends (its write fails), and is reaped
    ahead.close()
got = ahead.result()
again = ahead.result()
print(json.dumps({"ahead": None if got is None else [got[0], sorted(map(str, got[1].values()))],
                  "again": again, "here": [Folder(sys.argv[1]).walk()[0], sorted(map(str, Folder(sys.argv[1]).walk()[1].values()))]
                          if os.path.isdir(sys.argv[1]) else None,
                  "child": None if ahead._child is None else ahead._child.returncode}))
'''


def _ahead(folder, mode: str = "alone") -> dict:
    """A WalkAhead made in a process of its own (one with no other thread, as `feedsvc build` is; or with one)."""
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


def test_the_walk_made_ahead_is_the_walk_made_here_and_is_taken_once(tmp_path):
    found = _ahead(_folder(tmp_path))
    assert found["ahead"] == found["here"] and found["again"] is None and found["child"] == 0
    files = [row[0] for row in found["ahead"][0]]
    assert files == ["a.txt", "news/b.md"] and any("passwd.txt" in s for s in found["ahead"][1])


def test_a_process_with_another_thread_walks_itself(tmp_path):
    found = _ahead(_folder(tmp_path), "thread")  # a fork copies the calling thread alone: not from such a process
    assert found["ahead"] is None and found["child"] is None


def test_a_folder_the_copy_cannot_walk_gives_nothing_quietly_and_the_walk_here_says_why(tmp_path):
    found = _ahead(tmp_path / "absent")
    assert found["ahead"] is None and found["child"] == 1 and found["stderr"] == ""
    with pytest.raises(FolderError, match="articles folder .*absent.* cannot be read"):
        Folder(tmp_path / "absent").walked(None)


def test_a_walk_not_taken_is_let_go_and_its_copy_ends_quietly():
    found = _ahead(SAMPLE_ARTICLES, "close")
    assert found["ahead"] is None and found["child"] is not None and found["stderr"] == ""


def test_the_walk_of_another_folder_is_not_taken(tmp_path):
    class Made:
        real, calls = os.path.realpath(SAMPLE_ARTICLES), 0

        def result(self):
            Made.calls += 1
            return ["not", "this"]

    root = _folder(tmp_path)
    assert Folder(root).walked(Made())[0] == Folder(root).walk()[0] and Made.calls == 0


def test_feedsvc_build_takes_the_walk_its_copy_made(tmp_path):
    trace = ("import os, feedsvc.reading.folder as f; walk = f.Folder.walk\n"
             "def traced(self):\n    print('walked by', os.getpid(), flush=True)\n    return walk(self)\n"
             "f.Folder.walk = traced\nprint('build by', os.getpid(), flush=True)")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "FEEDSVC_STATE_PATH": str(tmp_path / "state.db"),
           "FEEDSVC_CONFIG": str(tmp_path / "absent.toml"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    code = f"import sys\n{trace}\nfrom feedsvc.cli import run\nsys.argv[0] = 'feedsvc'\nrun()"
    done = subprocess.run([sys.executable, "-c", code, "build", "--out", str(tmp_path / "out"), "--articles", str(SAMPLE_ARTICLES)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    builder = next(line.split()[-1] for line in lines if line.startswith("build by"))
    walkers = [line.split()[-1] for line in lines if line.startswith("walked by")]
    assert walkers and builder not in walkers  # walked once, by the copy, never again by the build itself
    assert (tmp_path / "out" / "feed.rss").is_file()

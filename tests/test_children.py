"""Forked children (feedsvc/children.py): the dedicated builder's start, named, gone with its parent."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from feedsvc.children import fork
from tests.conftest import ROOT


def _sleep_forever() -> None:
    time.sleep(60)


def test_a_forked_child_is_named_and_answers_as_a_popen_does():
    child = fork(_sleep_forever, "feedsvc-builder-and-more")
    try:
        assert Path(f"/proc/{child.pid}/comm").read_text() in ("feedsvc-builder\n", f"{Path(sys.executable).name}\n")
        deadline = time.monotonic() + 5
        while Path(f"/proc/{child.pid}/comm").read_text() != "feedsvc-builder\n":  # named as it starts: at most 15 bytes
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert child.poll() is None
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=0.05)
    finally:
        child.terminate()
    assert child.wait(timeout=5) == -signal.SIGTERM
    child.kill()  # ended already: nothing to signal, no error


def test_a_forked_child_exits_with_its_code_and_never_returns_into_its_parents_code():
    def leaves() -> None:
        raise SystemExit(3)

    def fails() -> None:
        raise RuntimeError("boom")

    def says() -> None:
        raise SystemExit("the state store is locked")

    assert fork(leaves, "t").wait(timeout=5) == 3
    assert fork(says, "t").wait(timeout=5) == 1
    assert fork(fails, "t").wait(timeout=5) == 1
    assert fork(lambda: None, "t").wait(timeout=5) == 0


def test_a_forked_child_reaped_by_another_wait_counts_as_ended():
    child = fork(lambda: None, "t")
    os.waitpid(child.pid, 0)  # as gunicorn's master reaps any child
    assert child.poll() == 0


_PARENT = """
import sys, time
sys.path.insert(0, sys.argv[1])
from feedsvc.children import fork
child = fork(lambda: time.sleep(60), "orphan")
print(child.pid, flush=True)
time.sleep(60)
"""


def test_a_forked_child_goes_when_its_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(Path(__file__).resolve().parents[1])],
                              stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z":
        assert time.monotonic() < deadline, "the forked child outlived its parent"
        time.sleep(0.02)


def test_a_fork_does_not_say_twice_what_its_parent_had_buffered(tmp_path):
    code = ("import sys\nfrom feedsvc.children import fork\nprint('said once', end='')\n"
            "fork(lambda: None, 'feedsvc-test').wait(10)\nprint()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})  # stdout a pipe: block-buffered
    assert out.returncode == 0 and out.stdout.count("said once") == 1, out.stdout + out.stderr

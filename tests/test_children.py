"""Forked children (feedsvc/children.py): the dedicated builder's start, named, gone with its parent."""
from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from feedsvc.children import fork
from feedsvc.reading.pool import start_worker
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
from feedsvc.reading.pool import start_worker
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



def test_a_fork_that_fails_leaves_the_signals_blocked_as_they_were(monkeypatch):
    """SIGINT, blocked while os.fork() ran, stayed blocked in the caller for good when the fork failed (EAGAIN, ENOMEM):
    a Ctrl-C never reached it again."""

    def fails() -> int:
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", fails)
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    try:
        for blocked in (set(), {signal.SIGINT}):  # a caller that had it blocked keeps it so
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            with pytest.raises(BlockingIOError):
                fork(lambda: None, "t")
            assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == blocked
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def test_a_reading_worker_whose_fork_fails_leaves_no_pipe_open(monkeypatch):
    """A fork that failed left the two ends of the worker's pipes this process keeps open, for as long as it ran."""
    from feedsvc.reading.pool import fork_worker

    def fails() -> int:
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    before = set(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "fork", fails)
    with pytest.raises(BlockingIOError):
        fork_worker()
    assert set(os.listdir("/proc/self/fd")) == before


_ENDING = """
import subprocess, sys, time
from feedsvc.children import end_children, fork
children = [fork(lambda: time.sleep(60), "t"), subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])]
time.sleep(0.2)
end_children()
print(*[child.wait(timeout=5) for child in children])
"""


def test_children_ended_are_left_for_their_own_wait_to_tell_they_were_stopped():
    """end_children reaped them itself: a worker's own wait (in another thread) then read 0, a stop taken for a failure
    ("a reading worker failed (EOFError: Ran out of input)" after "build stopped (Ctrl-C)")."""
    out = subprocess.run([sys.executable, "-c", _ENDING], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.split() == [str(-signal.SIGTERM)] * 2, out.stdout + out.stderr


def _export_worker() -> subprocess.Popen:
    from feedsvc.building.exportpool import ExportWorkers

    return ExportWorkers(1).workers[0]


@pytest.mark.parametrize("start", [start_worker, _export_worker], ids=["reading", "export"])
def test_a_worker_started_anew_ignores_a_ctrl_c_from_its_first_instant(capfd, start):
    """A Ctrl-C in a started worker's first 20-30 ms, while its interpreter started, printed a KeyboardInterrupt
    traceback (or killed it): its first line had not run yet to ignore it."""
    for delay in (0, 0.005, 0.01, 0.02, 0.03):
        worker = start()
        time.sleep(delay)
        worker.send_signal(signal.SIGINT)
        worker.stdin.close()  # its input's end: it ends, 0
        assert worker.wait(timeout=30) == 0, (delay, capfd.readouterr().err)
        worker.stdout.close()
    assert "Traceback" not in capfd.readouterr().err

# --- stopping `feedsvc serve` and `feedsvc build` with Ctrl-C or SIGTERM: real processes, signalled as a group ---

_AS_AT_A_TERMINAL = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                     "os.execv(sys.executable, [sys.executable, '-m', 'feedsvc', *sys.argv[1:]])")


def _started(args: list[str], tmp_path: Path, ctrl_c: str = "SIG_DFL") -> subprocess.Popen:
    """`feedsvc ARGS` as a terminal starts it: a process group of its own (the group a Ctrl-C reaches), SIGINT not
    ignored (as it may be in this run, started in the background); or as a script's `&` does (ctrl_c "SIG_IGN")."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FEEDSVC_CONFIG": "", "FEEDSVC_STATE_PATH": str(tmp_path / "state.db")}
    start = _AS_AT_A_TERMINAL.replace("SIG_DFL", ctrl_c)
    return subprocess.Popen([sys.executable, "-c", start, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path, start_new_session=True)


def _group(pgid: int) -> list[str]:
    """The names of the processes of a process group still running (a zombie has ended: only not reaped yet)."""
    names = []
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text() if entry.isdigit() else ""
        except OSError:
            continue
        if stat:
            state, _parent, group = stat[stat.rindex(")") + 2:].split()[:3]
            if int(group) == pgid and state != "Z":
                names.append(stat[stat.index("(") + 1:stat.rindex(")")])
    return names


def _wait_for(proc: subprocess.Popen, ready: Callable[[], bool], what: str = "never ready", within: float = 60) -> None:
    """Wait until ready(), the process still running, for at most `within` seconds."""
    deadline = time.monotonic() + within
    while not ready():
        assert proc.poll() is None and time.monotonic() < deadline, what
        time.sleep(0.02)


def _group_gone(proc: subprocess.Popen, within: float = 5) -> None:
    """Wait until every process of the group has ended: the children end with it, not later and not never."""
    deadline = time.monotonic() + within
    while _group(proc.pid):
        assert time.monotonic() < deadline, _group(proc.pid)
        time.sleep(0.05)


def _stopped(proc: subprocess.Popen, signum: int, when: Callable[[], bool]) -> tuple[int, str]:
    """Signal the process's group once when() is true; its exit code and standard error, after checking that every
    process of the group has ended. The group is killed whatever happens."""
    try:
        _wait_for(proc, when)
        os.killpg(proc.pid, signum)
        _, err = proc.communicate(timeout=30)
        _group_gone(proc)
        return proc.returncode, err
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture
def corpus(tmp_path) -> Path:
    """1,200 articles: a cold start reads them with workers, placing first (1,000 or more)."""
    from benchmarks.gen_corpus import main as generate

    generate(["-n", "1200", "-o", str(tmp_path / "corpus")])
    return tmp_path / "corpus" / "txt"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_build_stopped_by_ctrl_c_or_sigterm_says_so_in_one_line(tmp_path, corpus, signum):
    """Ctrl-C of a build printed a KeyboardInterrupt traceback from it and each of its workers (56 lines) and then
    "Aborted!"; a SIGTERM left workers that died writing to it with BrokenPipeError tracebacks."""
    proc = _started(["build", "--out", str(tmp_path / "out"), "--articles", str(corpus)], tmp_path)
    code, err = _stopped(proc, signum, lambda: {"feedsvc-reader", "feedsvc-export"} <= set(_group(proc.pid)))
    said = [line for line in err.splitlines() if " INFO " not in line]
    assert "Traceback" not in err and code == 128 + signum, err
    name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
    assert said == [f"build stopped ({name}): {tmp_path / 'out'} is left as it was"], err
    assert not list((tmp_path / "out").glob(".feedsvc-export.staging-*"))  # nor the archive pages it made ahead


def test_build_stopped_with_its_output_gone_ends_all_the_same(tmp_path, corpus):
    """A Ctrl-C of `feedsvc build 2>&1 | tee log`, whose reader went with it: the stop's line raised BrokenPipeError
    inside the handler, which surfaced where the build was (an `except OSError` there took it), both signals ignored
    from then on: it ran on (or ended with 1)."""
    proc = _started(["build", "--out", str(tmp_path / "out"), "--articles", str(corpus)], tmp_path)
    try:
        _wait_for(proc, lambda: {"feedsvc-reader", "feedsvc-export"} <= set(_group(proc.pid)))
        proc.stderr.close()  # as tee ends at the Ctrl-C
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 128 + signal.SIGINT
        _group_gone(proc)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_build_stopped_with_its_output_blocked_ends_all_the_same(tmp_path, corpus, signum):
    """Standard error a full pipe nobody reads (a paused `| less`): the stop's flush and line waited for good, with
    both signals ignored by then, so a second SIGTERM did not end it either; only SIGKILL did."""
    from feedsvc.cli import STOP_SECONDS

    read, write = os.pipe()
    os.set_blocking(write, False)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(write, b"x" * 4096)
    os.set_blocking(write, True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FEEDSVC_CONFIG": "", "FEEDSVC_STATE_PATH": str(tmp_path / "state.db")}
    proc = subprocess.Popen([sys.executable, "-c", _AS_AT_A_TERMINAL, "build", "--out", str(tmp_path / "out"),
                             "--articles", str(corpus)], stdout=write, stderr=write, env=env, cwd=tmp_path,
                            start_new_session=True)
    os.close(write)
    try:
        _wait_for(proc, lambda: "feedsvc-reader" in _group(proc.pid))
        time.sleep(0.5)  # its first line of log written, or waiting to be
        os.killpg(proc.pid, signum)
        assert proc.wait(timeout=STOP_SECONDS + 10) == 128 + signum
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        os.close(read)


def test_build_started_with_ctrl_c_ignored_is_not_stopped_by_one(tmp_path, corpus):
    """`feedsvc build … &` in a script (sh starts it with SIGINT ignored): the build set its handler over the ignored
    one, and a Ctrl-C meant for the script stopped it."""
    proc = _started(["build", "--out", str(tmp_path / "out"), "--articles", str(corpus)], tmp_path, ctrl_c="SIG_IGN")
    code, err = _stopped(proc, signal.SIGINT, lambda: {"feedsvc-reader", "feedsvc-export"} <= set(_group(proc.pid)))
    assert code == 0 and "stopped" not in err and "Traceback" not in err, err


def _started_workers(pgid: int) -> int:
    """How many reading workers started anew (`python -c "… reading.pool import work …"`) a process group runs."""
    count = 0
    for entry in os.listdir("/proc"):
        try:
            line = Path(f"/proc/{entry}/cmdline").read_bytes() if entry.isdigit() else b""
            group = os.getpgid(int(entry)) if line else None
        except OSError:
            continue
        count += group == pgid and b"feedsvc.reading.pool import work" in line
    return count


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_build_killed_alone_leaves_no_worker_to_die_with_a_traceback(tmp_path, sample_dir, corpus, signum):
    """SIGKILL or SIGTERM of the build alone (not its group), reading with workers started anew (a build on a kept
    state, many files new): each worker, writing into a pipe nobody read any more, died with a BrokenPipeError
    traceback. They end without a word, and soon."""
    made = _started(["build", "--out", str(tmp_path / "first"), "--articles", str(sample_dir)], tmp_path)
    assert made.wait(timeout=60) == 0, made.stderr.read()
    made.stderr.close()
    proc = _started(["build", "--out", str(tmp_path / "out"), "--articles", str(corpus)], tmp_path)
    try:
        _wait_for(proc, lambda: _started_workers(proc.pid) >= 2, "no reading workers started")
        time.sleep(0.5)  # reading
        os.kill(proc.pid, signum)
        proc.wait(timeout=30)
        _group_gone(proc, within=10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    err = proc.stderr.read()
    assert "Traceback" not in err and " WARNING " not in err, err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("start", ["starting", "cold", "warm"])
def test_serve_stopped_by_ctrl_c_or_sigterm_ends_every_process_without_a_traceback(tmp_path, sample_dir, request, start,
                                                                                   signum):
    """Ctrl-C of `serve` printed the builder's KeyboardInterrupt traceback (at its threading.Event().wait()); in a cold
    start, its reading workers' too, and "a reading worker failed (EOFError: Ran out of input); reading its share here"
    of workers that were only being stopped with it. Before gunicorn ran: click's "Aborted!"."""
    from tests.http_helpers import fetch, free_port, wait_until_up

    port = free_port()  # the kernel's pick: two tests at once took the same first free port of a range
    folder = sample_dir if start == "warm" else request.getfixturevalue("corpus")
    workers = "2" if start == "warm" else "1"  # warm: both booted by the time it has built
    proc = _started(["serve", "--port", str(port), "--workers", workers, "--articles", str(folder)], tmp_path)

    def answers() -> bool:
        try:
            return fetch(f"http://127.0.0.1:{port}", "/healthz").status in (200, 503)
        except OSError:
            return False

    def ready() -> bool:
        if start == "starting":  # the builder forked, gunicorn on its way (it may be there: asserted either way)
            return "feedsvc-builder" in _group(proc.pid)
        if start == "cold":  # serving (its worker booted: one signalled as it boots misses it, gunicorn's own race),
            # most often while the builder's reading workers still read; not required: they may be done 10-20 ms after
            # the first answer, or before it on a busy machine (a Ctrl-C of reading workers: the build tests above)
            return answers()
        wait_until_up(f"http://127.0.0.1:{port}", proc)  # built: the builder waits for its next refresh
        time.sleep(0.5)
        return True

    code, err = _stopped(proc, signum, ready)
    assert "Traceback" not in err and "reading worker" not in err and " WARNING " not in err, err
    said = [line for line in err.splitlines() if "INFO" not in line]
    name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
    if start != "starting" or code == 0:  # gunicorn's arbiter ends with 0 on either (it may have started already)
        assert code == 0 and not said, err
    else:
        assert code == 128 + signum and said == [f"serve stopped ({name})"], err

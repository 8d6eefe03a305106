"""Child processes that go when the process that started them goes, even when it was killed (Linux only).

Neutral: the serving master forks the builder with it (building/builder.py), the tests start servers with it.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import traceback
from typing import Any, Callable, Iterator, Mapping

PR_SET_PDEATHSIG = 1  # prctl's options (linux/prctl.h); man 2 PR_SET_PDEATHSIG, man 2 PR_SET_NAME
PR_SET_NAME = 15
STOPPING = {signal.SIGINT, signal.SIGTERM}  # a Ctrl-C (to the whole process group), a stop


def die_with_parent() -> None:
    """Popen's preexec_fn: the child gets SIGTERM when its parent ends, so a parent that never cleaned up leaks nothing.
    Elsewhere than Linux (no prctl) it does nothing."""
    prctl = getattr(ctypes.CDLL(None), "prctl", None)
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def fork(run: Callable[[], object], name: str) -> "Forked":
    """Run `run` in a forked copy of this process, named `name` (ps, top: at most 15 bytes), that goes when this
    one goes; its handle. The copy starts at once with this process's modules imported, where an interpreter
    started anew would take 0.1-0.15 s to import them again; so only from a process with no other thread yet (a
    fork copies the calling thread alone) and no open database connection its copy would share."""
    parent = os.getpid()
    flush_output()  # else what this process has buffered is in the copy too, and said twice
    # A Ctrl-C or SIGTERM in the instant after the fork would reach the copy with this process's handler still set (a
    # traceback, or a second "build stopped" line): held back until the copy has its own; this process gets them back
    # as the fork returns, or fails (EAGAIN, ENOMEM: else they were held back here for good).
    before = signal.pthread_sigmask(signal.SIG_BLOCK, STOPPING)
    try:
        pid = os.fork()
    finally:
        if os.getpid() == parent:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)
    if pid:
        return Forked(pid)
    code = 1
    try:  # the child never returns into its parent's code (a click command, gunicorn's arbiter)
        as_child(before)
        die_with_parent()
        if os.getppid() != parent:  # it went before the line above could ask to follow it
            return
        prctl = getattr(ctypes.CDLL(None), "prctl", None)
        if prctl is not None:
            prctl(PR_SET_NAME, name.encode()[:15])
        run()
        code = 0
    except SystemExit as exc:  # as the interpreter ends a process: a message goes to stderr, and means 1
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        flush_output()
        os._exit(code)


def as_child(mask: set[signal.Signals] | None = None) -> None:
    """A child's signals: a Ctrl-C (SIGINT to the whole process group) is for the process that started it, which ends
    it (its input closed, or its own end's SIGTERM): ignored here, or each child printed a KeyboardInterrupt traceback.
    A SIGTERM ends it at once, whatever handler its parent had set (`feedsvc build`'s). Then the signals blocked are
    `mask` (its parent's before the fork), or none of STOPPING (a worker started anew: ctrl_c_held_back)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # serve's own word for it (cli._hup_said) is the master's to say
    if mask is None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPPING)
    else:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def as_worker() -> None:
    """A worker's signals (its whole life is to answer on a pipe), as as_child's; and a write into a pipe nobody reads
    any more (its parent killed) ends it without a word, as a shell filter ends, not with a BrokenPipeError traceback."""
    as_child()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)


@contextlib.contextmanager
def ctrl_c_held_back() -> Iterator[None]:
    """Around a Popen of a worker: it starts with SIGINT blocked (a mask goes through exec), until it ignores it
    (as_worker). A Ctrl-C in its first 20-30 ms, while its interpreter started, printed a KeyboardInterrupt traceback
    (its first line had not run yet to ignore it)."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def end_children(within: float = 2.0) -> None:
    """SIGTERM to every child of this process (its reading and export workers, a fork working ahead), then a wait of at
    most `within` seconds for them to end: a process stopping at once leaves none at work behind it. Their own
    bookkeeping is not needed: each ends at its SIGTERM (as_child). Linux's /proc lists them; elsewhere, none."""
    pids = _children()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + within
    for pid in pids:
        while time.monotonic() < deadline:
            try:  # not reaped here (WNOWAIT): its handle's own wait, on another thread, tells it was stopped
                # (pool.was_stopped); reaped here, that wait read 0, and warned of a failed worker
                if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                    break
            except ChildProcessError:  # reaped already (a Popen's own wait)
                break
            time.sleep(0.01)


def _children() -> list[int]:
    """This process's children, as /proc lists each of its threads' (a worker started from a thread is that thread's)."""
    pids: list[int] = []
    with contextlib.suppress(OSError):
        for thread in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError), open(f"/proc/self/task/{thread}/children", encoding="ascii") as listed:
                pids += [int(pid) for pid in listed.read().split()]
    return pids


def flush_output() -> None:
    """Flush standard output and error, where there are any (started with them closed, `>&-`, Python has None)."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()


class Forked:
    """A forked child's handle, as subprocess.Popen's: poll, wait, terminate, kill, returncode."""

    def __init__(self, pid: int):
        self.pid, self.returncode = pid, None

    def poll(self) -> int | None:
        """Its exit code once it has ended, else None."""
        if self.returncode is None:
            try:
                done, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else (gunicorn's master waits for any child): it ended
                self.returncode = 0
            else:
                if done:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Its exit code, waiting at most timeout seconds (subprocess.TimeoutExpired after that)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout)
            time.sleep(0.01)
        return self.returncode

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, number: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, number)
            except ProcessLookupError:
                pass


class Ahead:
    """Jobs a forked copy of this process runs, in order, while this one goes on: `feedsvc build` has the folder
    walked and the store's rows read on the other core while it imports its modules (0.1 s). Each result is taken
    once, in the order given. Forked only from a process with no other thread (fork); a job that fails, or a copy
    not made, gives None, and the caller does that work itself (and says what is wrong)."""

    def __init__(self, jobs: Mapping[str, Callable[[], Any]], name: str):
        read, write = os.pipe()
        self._child = fork(lambda: _run_ahead(jobs, read, write), name) if threading.active_count() == 1 else None
        os.close(write)
        self._pipe = os.fdopen(read, "rb")
        self._results: dict[str, Any] = {}

    def result(self, key: str) -> Any:
        """The job's result, waiting for it; None if the copy could not give it, or it was taken."""
        while key not in self._results and self._pipe is not None:
            try:
                name, value = pickle.load(self._pipe)
            except (EOFError, pickle.UnpicklingError):  # the copy ended (or was never made)
                self.close()
                break
            self._results[name] = value
        return self._results.pop(key, None)

    def close(self) -> None:
        """Let go of the results not taken: the copy, writing into a closed pipe, ends; it is reaped."""
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
            if self._child is not None:
                self._child.wait()


def _run_ahead(jobs: Mapping[str, Callable[[], Any]], unused: int, write: int) -> None:
    """(the forked copy) Each job's result pickled into the pipe as it is made; None for one that failed."""
    os.close(unused)
    try:
        with os.fdopen(write, "wb") as pipe:
            for name, job in jobs.items():
                try:
                    data = pickle.dumps((name, job()), protocol=pickle.HIGHEST_PROTOCOL)
                except Exception:  # the edge where work must go on: the caller does this job itself, and says why
                    data = pickle.dumps((name, None))
                pipe.write(data)
                pipe.flush()
    except OSError:  # the pipe was closed: its results are not wanted any more
        raise SystemExit(1) from None

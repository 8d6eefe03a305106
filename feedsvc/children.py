"""Child processes that go when the process that started them goes, even when it was killed (Linux only).

Neutral: the serving master forks the builder with it (building/builder.py), the tests start servers with it.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
import traceback
from typing import Callable

PR_SET_PDEATHSIG = 1  # prctl's options (linux/prctl.h); man 2 PR_SET_PDEATHSIG, man 2 PR_SET_NAME
PR_SET_NAME = 15


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
    pid = os.fork()
    if pid:
        return Forked(pid)
    code = 1
    try:  # the child never returns into its parent's code (a click command, gunicorn's arbiter)
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
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


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

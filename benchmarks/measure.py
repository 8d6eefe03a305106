"""Run a command as a child process and measure it: wall time and the child's own peak memory."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Run:
    """What one measured child process did."""

    seconds: float  # from just before the fork to its exit
    peak_rss_mb: float  # ru_maxrss of this child alone (os.wait4), in MB
    returncode: int
    stdout: str
    stderr: str
    started: float  # time.monotonic() just before the fork
    timed_out: bool = False

    def check(self, what: str) -> "Run":
        """Raise RuntimeError with the child's last words when it failed."""
        if self.returncode != 0 or self.timed_out:
            tail = "\n".join((self.stderr or self.stdout).strip().splitlines()[-15:])
            why = "timed out" if self.timed_out else f"exited {self.returncode}"
            raise RuntimeError(f"{what} {why}:\n{tail}")
        return self


# Runs argv[2:], waits for it alone, and writes its exit code and ru_maxrss (KiB) into the file argv[1].
# Its child is killed with it (PR_SET_PDEATHSIG), so a timeout that kills the launcher leaves nothing running.
_LAUNCH = """import ctypes, os, signal, subprocess, sys
proc = subprocess.Popen(sys.argv[2:], preexec_fn=lambda: ctypes.CDLL(None).prctl(1, signal.SIGKILL))
_, status, usage = os.wait4(proc.pid, 0)
proc.returncode = 0
open(sys.argv[1], "w").write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def run(cmd: list[str], cwd: str | None = None, env: dict | None = None, timeout: float = 1800, *,
        launched: bool = False) -> Run:
    """Run cmd to its end (killed after timeout seconds); output goes to files, so no pipe can fill up.

    The peak is the child's ru_maxrss, and Linux keeps the memory high-water mark a process had before exec: a child
    of a large process reports that process's peak when it is the larger (a test under pytest, at 380 MB after the
    language-model tests, read 401 MB for a command that peaks at 143 MB). A timed run keeps cmd as the direct child,
    so no interpreter's start is added to its seconds; its peak reads no lower than the harness's own. launched=True
    (a test's memory bound) starts cmd through a small launcher, which reports its own child's peak (13 MB for
    `python -c pass`), at the cost of that launcher's start (0.04 s) in `seconds`."""
    if launched:
        with tempfile.TemporaryDirectory() as folder:
            report = os.path.join(folder, "report")
            done = run([sys.executable, "-c", _LAUNCH, report, *cmd], cwd, env, timeout)
            if done.timed_out or not os.path.exists(report):
                return done
            code, maxrss = map(int, open(report).read().split())
            return replace(done, returncode=code, peak_rss_mb=maxrss / 1024)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(seconds=seconds, peak_rss_mb=usage.ru_maxrss / 1024, returncode=proc.returncode,
                   stdout=out.read(), stderr=err.read(), started=started,
                   timed_out=proc.returncode == -9 and seconds >= timeout)

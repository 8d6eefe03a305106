"""Run a command as a child process and measure it: wall time and the child's own peak memory."""
from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass


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


def run(cmd: list[str], cwd: str | None = None, env: dict | None = None, timeout: float = 1800) -> Run:
    """Run cmd to its end (killed after timeout seconds); output goes to files, so no pipe can fill up."""
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

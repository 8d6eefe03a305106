"""Process trees read from /proc: who is whose child, resident memory (now, peak, proportional) and CPU used."""
from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

KIB_PER_MIB = 1024


@dataclass(frozen=True)
class Proc:
    """One process of a tree, memory in MiB."""

    pid: int
    ppid: int
    title: str  # its command line as it shows itself (a process title set with setproctitle shows here)
    rss_mib: float  # VmRSS: resident now
    hwm_mib: float  # VmHWM: the most it has ever been resident
    pss_mib: float  # Pss: shared pages divided among the processes sharing them (forked workers share a lot)


def _parents() -> dict[int, int]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    found[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    return found


def descendants(root: int) -> list[int]:
    """root and every process below it, parents before children."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents().items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        out.append(pid)
        todo.extend(sorted(children.get(pid, [])))
    return out


def _kib(path: str, *keys: str) -> dict[str, int]:
    values = {}
    try:
        with open(path) as f:
            for line in f:
                name = line.split(":", 1)[0]
                if name in keys:
                    values[name] = int(line.split()[1])
    except OSError:
        pass
    return values


def read(pid: int, pss: bool = True) -> Proc | None:
    """One process's memory and title, or None once it has gone (pss=False skips the costlier PSS)."""
    status = _kib(f"/proc/{pid}/status", "VmRSS", "VmHWM", "PPid")
    if "VmRSS" not in status:
        return None
    pss = _kib(f"/proc/{pid}/smaps_rollup", "Pss").get("Pss", 0) if pss else 0
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            title = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        title = ""
    return Proc(pid, status.get("PPid", 0), title, status["VmRSS"] / KIB_PER_MIB, status["VmHWM"] / KIB_PER_MIB,
                pss / KIB_PER_MIB)


def tree(root: int, pss: bool = True) -> list[Proc]:
    """Every live process of the tree under root (root first)."""
    return [p for p in (read(pid, pss) for pid in descendants(root)) if p is not None]


SQLITE_FILES = (".db", ".db-wal", ".db-shm", ".db-journal", ".sqlite3", ".sqlite3-wal", ".sqlite3-shm")


def lock_holders(folder: Path) -> dict[int, list[str]]:
    """Processes holding a write lock (flock or POSIX) on a file in folder, SQLite's own files left out.

    Every SQLite connection keeps locks on its database's files; a builder elected by a lock holds one on a
    file of its own, which is how the builder is told apart without its help. From /proc/locks:
    `1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF` (waiters, marked `->`, hold nothing).
    """
    files = {}
    for path in folder.rglob("*"):
        try:
            st = path.stat()
        except OSError:
            continue
        if path.is_file() and not path.name.endswith(SQLITE_FILES):
            files[(os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)] = path.name
    holders: dict[int, list[str]] = {}
    try:
        with open("/proc/locks") as locks:
            lines = locks.read().splitlines()
    except OSError:
        return holders
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[1] == "->" or fields[3] != "WRITE":
            continue
        major, minor, inode = fields[5].split(":")
        name = files.get((int(major, 16), int(minor, 16), int(inode)))
        if name:
            holders.setdefault(int(fields[4]), []).append(name)
    return holders


def cpu_ticks(root: int) -> int:
    """CPU ticks (utime + stime, children reaped included) used so far by the tree under root."""
    total = 0
    for pid in descendants(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total


def wait_idle(root: int, timeout: float, quiet_ticks: int = 2, window: float = 0.5) -> float | None:
    """Seconds until the tree used at most quiet_ticks of CPU in one window (all work done), None on timeout."""
    start = time.monotonic()
    last = cpu_ticks(root)
    while time.monotonic() - start < timeout:
        time.sleep(window)
        now = cpu_ticks(root)
        if now - last <= quiet_ticks:
            return time.monotonic() - start - window
        last = now
    return None


def end(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM a child process, SIGKILL it if it has not gone within timeout seconds; reap it either way."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

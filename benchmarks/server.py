"""`feedsvc serve` as a deployment runs it, started and polled as /work/shared/perf/serve_ready.py does.

The server is timed from just before its fork until /feed.rss and every feed that /feeds.opml lists answer 200
(polled every 20 ms); its log (stdout and stderr) goes to a file that callers can read for `refresh:` lines.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

from . import procs
from .corpus import manifest, probe_txt

PROJECT = Path(__file__).resolve().parent.parent
POLL_S = 0.02  # serve_ready.py's pause between rounds of polling
SAMPLE_S = 0.1  # memory is sampled this often, so a process that exits early (a reading worker) still counts
REFRESH_LINE = re.compile(r"refresh:.*?([\d.]+) ?ms\b(?!.*\bms\b)")  # the last "N ms" of a `refresh: … ms` line


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 5) -> tuple[int, dict, bytes]:
    """One GET on loopback: status (0 when nothing answered), headers (lower-case names) and body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    except (OSError, http.client.HTTPException):
        return 0, {}, b""
    finally:
        conn.close()


def visible_ms(port: int, path: str, title: str, write, timeout: float = 60, poll_s: float = 0.01) -> float:
    """Milliseconds from just before write() until GET path carries the title, polling every poll_s (10 ms)."""
    needle = title.encode()
    start = time.monotonic()
    write()
    while time.monotonic() - start < timeout:
        if needle in get(port, path)[2]:
            return (time.monotonic() - start) * 1000
        time.sleep(poll_s)
    raise RuntimeError(f"{title!r} never appeared at {path} within {timeout:.0f} s")


def refresh_ms(log_text: str) -> list[float]:
    """The duration of every `refresh: … ms` line in a piece of the server's log."""
    return [float(m.group(1)) for m in map(REFRESH_LINE.search, log_text.splitlines()) if m]


class Server:
    """One `python -m feedsvc serve` with its state in a folder of its own; use as a context manager."""

    def __init__(self, articles: Path, state: Path, workers: int = 1, fresh: bool = False, env: dict | None = None,
                 moved: bool = False):
        if fresh:
            shutil.rmtree(state, ignore_errors=True)
        state.mkdir(parents=True, exist_ok=True)
        self.articles, self.state, self.workers = articles, state, workers
        self.port = free_port()
        self.log_path = state / "serve.log"
        # The site's URL is the one its state was first made with, whatever port this run has: a deployment keeps
        # its SITE_URL across restarts, and another one changes every article's links, so every parse result
        # (a "restart, nothing changed" would read and parse every file again, in the background).
        # moved: this run's own URL, as serve_ready.py gives each run (the port it found free): a restart of a
        # deployment that moved to another URL since its state was made.
        site = state / "site-url"
        if not site.exists() or moved:
            site.write_text(f"http://127.0.0.1:{self.port}", encoding="utf-8")
        self.site_url = site.read_text(encoding="utf-8")
        self.env = {**os.environ, "PYTHONPATH": str(PROJECT), "FEEDSVC_SITE_URL": self.site_url,
                    "FEEDSVC_STATE_PATH": str(state / "state.db"), "FEEDSVC_INSTANCE_PATH": str(state),
                    # One poller is one client address: the per-address budget would turn polls into 429s.
                    "FEEDSVC_RATE_LIMIT": "0", **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self.peaks: dict[int, float] = {}  # pid → the most it was seen resident (VmHWM), exited processes included
        self.tree_peak_mib = 0.0  # the largest RSS sum of the tree seen
        self._stopping = threading.Event()

    def __enter__(self) -> "Server":
        log = open(self.log_path, "ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "feedsvc", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--articles", str(self.articles), "--workers", str(self.workers)],
            env=self.env, cwd=str(self.state), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        threading.Thread(target=self._sample, name="memory-sampler", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _sample(self) -> None:
        while not self._stopping.wait(SAMPLE_S):
            found = procs.tree(self.proc.pid, pss=False)
            for p in found:
                self.peaks[p.pid] = max(self.peaks.get(p.pid, 0.0), p.hwm_mib)
            self.tree_peak_mib = max(self.tree_peak_mib, sum(p.rss_mib for p in found))

    def stop(self) -> None:
        """TERM the whole process group, KILL it after 20 s."""
        self._stopping.set()
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass

    def wait_feeds(self, timeout: float = 1800) -> tuple[float, int]:
        """Seconds from the fork until /feed.rss and every feed in /feeds.opml answer 200, and how many feeds."""
        while time.monotonic() - self.started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"feedsvc serve exited with {self.proc.returncode} before it was ready; "
                                   f"its log: {self.log_path}\n{self.log_tail()}")
            if get(self.port, "/feed.rss")[0] == 200:
                feeds = self.opml_feeds()
                if feeds and all(get(self.port, path)[0] == 200 for path in feeds):
                    return time.monotonic() - self.started, len(feeds)
            time.sleep(POLL_S)
        raise RuntimeError(f"feedsvc serve never had every feed answering within {timeout:.0f} s; log: {self.log_path}")

    def opml_feeds(self) -> list[str]:
        """The paths of the feeds /feeds.opml lists (empty while it does not answer)."""
        status, _, body = get(self.port, "/feeds.opml")
        if status != 200:
            return []
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return []
        urls = [o.get("xmlUrl") for o in root.iter("outline") if o.get("xmlUrl")]
        if not all(url.startswith(self.site_url + "/") for url in urls):
            return []  # made for another URL (a build before a move): serve_ready.py would find nothing listening there
        return [urlsplit(url).path for url in urls]

    def healthz(self) -> dict:
        """/healthz's JSON body (any status), or {}."""
        try:
            return json.loads(get(self.port, "/healthz")[2] or b"{}")
        except ValueError:
            return {}

    def processes(self) -> dict:
        """The tree's memory: master, builder (when it can be told apart) and the other workers, in MiB."""
        found = procs.tree(self.proc.pid)
        health = self.healthz()
        builder_pid = (health.get("builder") or {}).get("pid") or health.get("builder_pid")
        how = "healthz builder pid" if builder_pid else None
        if not builder_pid:  # the process holding a lock on a file of the state folder: the builder lock
            pids = {p.pid for p in found}
            held = {pid: names for pid, names in procs.lock_holders(self.state).items() if pid in pids}
            if len(held) == 1:
                builder_pid, names = held.popitem()
                how = f"holds a lock on {', '.join(names)}"
        if not builder_pid:  # a builder that names itself in its process title
            titled = [p.pid for p in found if "builder" in p.title.lower() and p.pid != self.proc.pid]
            builder_pid, how = (titled[0], "process title") if titled else (None, None)
        builder_side = set(procs.descendants(builder_pid)) if builder_pid else set()
        children = [p for p in found if p.ppid == self.proc.pid and p.pid not in builder_side]
        return {
            "processes": len(found),
            "rss_total_mib": sum(p.rss_mib for p in found),
            "pss_total_mib": sum(p.pss_mib for p in found),
            "rss_max_mib": max(p.rss_mib for p in found),
            "hwm_max_mib": max(p.hwm_mib for p in found),
            # Sampled every 100 ms since the start: processes that have exited (reading workers) count too.
            "hwm_max_ever_mib": max([*self.peaks.copy().values(), *(p.hwm_mib for p in found)]),
            "tree_rss_peak_mib": max(self.tree_peak_mib, sum(p.rss_mib for p in found)),
            "builder_pid": builder_pid, "builder_found_by": how,
            "builder_rss_mib": sum(p.rss_mib for p in found if p.pid in builder_side) if builder_pid else None,
            "builder_hwm_mib": max((p.hwm_mib for p in found if p.pid in builder_side), default=None),
            "worker_rss_max_mib": max((p.rss_mib for p in children), default=None),
            "worker_hwm_max_mib": max((p.hwm_mib for p in children), default=None),
            "tree": [{"pid": p.pid, "ppid": p.ppid, "title": p.title[:120], "rss_mib": round(p.rss_mib, 1),
                      "hwm_mib": round(p.hwm_mib, 1), "pss_mib": round(p.pss_mib, 1)} for p in found],
        }

    def left_to_read(self) -> int | None:
        """The files the builder has still to read in full (/healthz `left_to_read`); None when it does not say."""
        status, _, body = get(self.port, "/healthz")
        try:
            left = json.loads(body).get("left_to_read") if status else None
        except ValueError:
            return None
        return left if isinstance(left, int) else None

    def wait_settled(self, timeout: float, poll_s: float = 0.5) -> float | None:
        """Seconds until the builder has read every file (left_to_read 0, where /healthz says) and then the tree has
        gone idle (procs.wait_idle); None on timeout. CPU alone is not enough: a 100,000-article cold start's first
        checkpoint of its store (hundreds of MB synced to disk) left the tree without CPU for half a second while its
        background reading waited, which wait_idle took for the end (its peak then missed the background's)."""
        start = time.monotonic()
        while (left := self.left_to_read()) and time.monotonic() - start < timeout:
            time.sleep(poll_s)
        if left and time.monotonic() - start >= timeout:
            return None
        idle = procs.wait_idle(self.proc.pid, timeout=max(timeout - (time.monotonic() - start), 0.5))
        return None if idle is None else time.monotonic() - start

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def log_since(self, offset: int) -> str:
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_since(0).splitlines()[-lines:])


SETTLE_S = 1200  # a 100,000-article cold start's background reading took 183-390 s; 300 s once cut its builder's peak short


def ready(articles: Path, state: Path, fresh: bool, workers: int = 1, settle_timeout: float = SETTLE_S,
          moved: bool = False, lag_runs: int = 0) -> dict:
    """serve_ready.py's run: start, time until every feed answers, read memory, stop.

    Memory is read 0.5 s after ready (as serve_ready.py does), and the peaks again once the tree has gone
    idle (or settle_timeout has passed: the figures then say the tree never went idle, "still busy" nan):
    work a server finishes in the background after it answers still counts against its memory.
    """
    with Server(articles, state, workers, fresh, moved=moved) as server:
        seconds, feeds = server.wait_feeds()
        time.sleep(0.5)
        at_ready = server.processes()
        settled = server.wait_settled(timeout=max(settle_timeout, seconds))
        after = server.processes()
        lags = commit_lags_ms(server, lag_runs) if lag_runs else []
        return {"ready_s": seconds, "feeds": feeds, "fresh": fresh, "workers": workers,
                "rss_total_mib": at_ready["rss_total_mib"], "rss_max_mib": at_ready["rss_max_mib"],
                "idle_after_ready_s": settled, "settled": after,
                "refresh_ms": refresh_ms(server.log_since(0)), "commit_lag_ms": lags}


def commit_lags_ms(server: Server, runs: int, asks: int = 8) -> list[float]:
    """Per saved file: milliseconds from its build's commit, as this process sees it in the store (polled every
    millisecond, so a little after it), until `asks` requests in a row on fresh connections all carry it (issue 10:
    every worker within 50 ms). Which worker answered each is not told apart: the kernel spreads connections, and
    eight asks over four workers may miss one."""
    store = sqlite3.connect(f"file:{server.state / 'state.db'}?mode=ro", uri=True, isolation_level=None)
    # The build that lists the file, not any later one (a periodic refresh, an embargo's release): its feeds and its
    # listing rows are committed at once.
    listed = lambda id_: store.execute("SELECT 1 FROM listing_items WHERE listing = '' AND id = ?", (id_,)).fetchone()
    category = manifest(server.articles.parent)[0]["category"]
    lags, written = [], []
    # Requests all along from another thread, as a polled site has: an idle worker looks on its next request, so
    # without them every lag would be 0 and the figure would time nothing.
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            get(server.port, "/feed.json")  # each answer let go of: this process's peak is what `build` reports

    busy = threading.Thread(target=poll)
    busy.start()
    try:
        for run in range(runs):
            title = f"Benchmark lag probe {run} {time.time_ns():x}"
            path = server.articles / f"zz-bench-lag-{run}.txt"
            written.append(path)
            path.write_text(probe_txt(category, title), encoding="utf-8")
            deadline = time.monotonic() + 60
            while listed(path.stem) is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{path.name} was never committed")
                time.sleep(0.001)
            committed = streak = time.monotonic()
            served = 0
            while served < asks:  # the lag ends where the run of `asks` answers that all carry it began
                asked = time.monotonic()
                if title.encode() in get(server.port, "/feed.json")[2]:
                    streak, served = (asked, 1) if served == 0 else (streak, served + 1)
                else:
                    served = 0
                if asked - committed > 10:
                    raise RuntimeError(f"{path.name}'s build was committed but not served within 10 s")
            lags.append((streak - committed) * 1000)
            time.sleep(1.1)  # the next save in another second: no wait for its Last-Modified
    finally:
        done.set()
        busy.join()
        store.close()
        for path in written:
            path.unlink(missing_ok=True)
    return lags

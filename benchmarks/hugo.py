"""Hugo, the anchor: a timed build of one of the two versioned configurations, and `hugo server`'s watch latency."""
from __future__ import annotations

import shutil
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from . import measure, procs
from .corpus import probe_md
from .server import free_port, get, visible_ms
from .setup import hugo_binary



def build(site: Path, timeout: float = 3600, scratch: Path | None = None) -> dict:
    """`hugo --quiet --source SITE --destination SITE/public` from scratch (no public/, a fresh cache); with
    scratch, the output and the cache go there instead (sitebuild.scratch_folder)."""
    public, cache = (scratch / "public", scratch / ".cache") if scratch is not None else (site / "public", site / ".cache")
    for folder in (public, site / "resources", cache):
        shutil.rmtree(folder, ignore_errors=True)
    done = measure.run([hugo_binary() or "hugo", "--quiet", "--source", str(site), "--destination", str(public),
                        "--cacheDir", str(cache)], timeout=timeout).check("hugo")
    files = sum(1 for p in public.rglob("*") if p.is_file())
    feeds = sum(1 for _ in public.rglob("index.xml"))
    return {"seconds": done.seconds, "peak_rss_mib": done.peak_rss_mb, "files": files, "feeds": feeds}


def watch(site: Path, category: str, runs: int = 5, timeout: float = 60) -> dict:
    """`hugo server` watching the site: write a new post, poll /index.xml every 10 ms until its title is there."""
    port = free_port()
    posts = site / "content" / "posts"
    cache = site / ".cache"
    log = open(site / "server.log", "wb")
    proc = subprocess.Popen([hugo_binary() or "hugo", "server", "--source", str(site), "--bind", "127.0.0.1",
                             "--port", str(port), "--disableLiveReload", "--disableFastRender", "--cacheDir", str(cache)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    written: list[Path] = []
    try:
        start = time.monotonic()
        while get(port, "/index.xml")[0] != 200:
            if proc.poll() is not None or time.monotonic() - start > 600:
                raise RuntimeError(f"hugo server did not start; see {site / 'server.log'}")
            time.sleep(0.1)
        ready_s = time.monotonic() - start
        seen_ms = []
        for run in range(runs):
            title = f"Hugo probe {run} {time.time_ns():x}"
            date = (datetime.now(timezone.utc) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
            path = posts / f"zz-bench-probe-{run}.md"
            written.append(path)
            write = lambda: path.write_text(probe_md(category, title, date), encoding="utf-8")
            seen_ms.append(visible_ms(port, "/index.xml", title, write, timeout))
            time.sleep(0.5)  # let the rebuild's tail settle before the next write
        return {"server_ready_s": ready_s, "visible_ms": seen_ms}
    finally:
        procs.end(proc)
        log.close()
        for path in written:
            path.unlink(missing_ok=True)


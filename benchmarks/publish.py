"""Publish on save: a new article written into the served folder, timed until /feed.json carries its title.

The refresh's own duration comes from the server's `refresh: … ms` log lines; Hugo's figure is `hugo server`
watching the same articles as Markdown, polled the same way at /index.xml.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

from . import hugo, procs, server
from .corpus import hugo_site, manifest, probe_txt

RUNS = 5


def feedsvc(corpus: Path, state: Path, runs: int = RUNS, timeout: float = 60) -> dict:
    """`serve` watching corpus/txt: per run, write a new .txt file and poll /feed.json every 10 ms for its title."""
    category = manifest(corpus)[0]["category"]
    written: list[Path] = []
    with server.Server(corpus / "txt", state) as srv:
        ready_s, _ = srv.wait_feeds()
        srv.wait_settled(timeout=600)  # background work after ready would be timed with the probe
        idle = srv.processes()  # the builder's peak (VmHWM) and what it holds once the cold start's work is done
        visible, refreshes = [], []
        try:
            for run in range(runs):
                title = f"Benchmark probe {run} {time.time_ns():x}"
                path = corpus / "txt" / f"zz-bench-probe-{run}.txt"
                written.append(path)
                offset = srv.log_size()
                write = lambda: path.write_text(probe_txt(category, title), encoding="utf-8")
                visible.append(server.visible_ms(srv.port, "/feed.json", title, write, timeout))
                time.sleep(0.2)  # the log line is written just after the new feeds are swapped in
                refreshes.append(server.refresh_ms(srv.log_since(offset)))
                procs.wait_idle(srv.proc.pid, timeout=60)
                # Saves a second apart: Last-Modified has whole seconds, so a second version within the second
                # of the last is served from the next second on (the refresh waits for it, and says so in its log
                # line); back-to-back saves would time that rule, not what a save costs.
                time.sleep(1.0)
            after = srv.processes()  # and after the saves: what a refresh leaves held
        finally:
            for path in written:
                path.unlink(missing_ok=True)
    # The refresh that published the file: the last `refresh:` line logged by 200 ms after its title was seen
    # (every line is kept in refresh_lines_ms; a refresh that changes nothing logs none).
    refresh = [found[-1] for found in refreshes if found]
    memory = {when: {key: found[key] for key in ("builder_hwm_mib", "builder_rss_mib", "rss_total_mib", "tree")}
              for when, found in (("idle", idle), ("after_saves", after))}
    return {"ready_s": ready_s, "visible_ms": visible, "refresh_lines_ms": refreshes, "memory": memory,
            "visible_median_ms": statistics.median(visible),
            "refresh_median_ms": statistics.median(refresh) if refresh else None}


def hugo_watch(corpus: Path, runs: int = RUNS) -> dict:
    """Hugo's end to end for the same kind of save, on the feeds-only configuration."""
    category = manifest(corpus)[0]["category"]
    result = hugo.watch(hugo_site(corpus, "feeds"), category, runs)
    result["visible_median_ms"] = statistics.median(result["visible_ms"])
    return result


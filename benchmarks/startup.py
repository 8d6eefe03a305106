"""Start-up figures: cold start and restart against their anchors, taken in turns, and `serve --workers 4` memory.

Each round runs: feedsvc cold (fresh state) · Hugo feeds-only · feedsvc restart (the state the cold run left) ·
the floor (the same server restarting on the shipped 11-article articles/ folder) · both again at a URL of their own
(serve_ready.py's way: each run has the port it found free as its site URL, so every feed's links change). Round 0
is the warm-up.
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

from . import hugo, server
from .corpus import hugo_site

SAMPLE = server.PROJECT / "articles"


def say(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def rounds(corpus: Path, work: Path, runs: int, with_hugo: bool = True, once_after_s: float = 600) -> list[dict]:
    """1 warm-up + `runs` counted rounds of cold · Hugo · restart · floor (a round slower than once_after_s is counted and ends it)."""
    site = hugo_site(corpus, "feeds") if with_hugo else None
    state, floor_state, moved_floor = work / "state", work / "floor-state", work / "floor-moved-state"
    done = []
    for run in range(runs + 1):
        record = {"warmup": run == 0}
        record["cold"] = server.ready(corpus / "txt", state, fresh=True)
        if site:
            record["hugo"] = hugo.build(site)
        record["restart"] = server.ready(corpus / "txt", state, fresh=False)
        record["floor"] = server.ready(SAMPLE, floor_state, fresh=False)  # round 0 makes its state
        record["moved"] = server.ready(corpus / "txt", state, fresh=False, moved=True)
        record["moved_floor"] = server.ready(SAMPLE, moved_floor, fresh=False, moved=True)
        done.append(record)
        say(f"  round {run}{' (warm-up)' if not run else ''}: cold {record['cold']['ready_s']:.2f} s, "
            + (f"Hugo feeds-only {record['hugo']['seconds']:.2f} s, " if site else "")
            + f"restart {record['restart']['ready_s']:.2f} s, floor {record['floor']['ready_s']:.2f} s, "
            + f"at a new URL: restart {record['moved']['ready_s']:.2f} s, floor {record['moved_floor']['ready_s']:.2f} s")
        if record["cold"]["ready_s"] + record["restart"]["ready_s"] > once_after_s:
            record["warmup"] = False  # a round this slow is counted, and is the last: caches are not what limits it
            say(f"  (a round over {once_after_s:.0f} s: counted, and no more rounds)")
            break
    return done


def workers(corpus: Path, work: Path, count: int = 4, lag_runs: int = 5) -> dict:
    """`serve --workers COUNT` on a fresh state: time to every feed answering, the tree's memory once idle, then
    how long after a new build's commit every worker serves it."""
    result = server.ready(corpus / "txt", work / f"workers-{count}", fresh=True, workers=count, lag_runs=lag_runs)
    say(f"  --workers {count}: ready {result['ready_s']:.2f} s, tree {result['settled']['rss_total_mib']:.0f} MiB, "
        f"largest worker {result['settled']['worker_rss_max_mib']:.0f} MiB"
        + (f", builder {result['settled']['builder_rss_mib']:.0f} MiB ({result['settled']['builder_found_by']})"
           if result["settled"]["builder_pid"] else
           " (no builder told apart: every worker counted)")
        + f"; commit seen → served {', '.join(f'{v:.0f}' for v in result['commit_lag_ms'])} ms")
    return result


def figures(done: list[dict]) -> dict[str, float]:
    """Medians of the counted rounds and the medians of their per-pair ratios."""
    counted = [r for r in done if not r["warmup"]] or done
    out: dict[str, float] = {}
    ready = lambda r, kind: r[kind]["ready_s"]
    out["cold_s"] = statistics.median(ready(r, "cold") for r in counted)
    out["restart_s"] = statistics.median(ready(r, "restart") for r in counted)
    out["floor_s"] = statistics.median(ready(r, "floor") for r in counted)
    out["restart_ratio"] = statistics.median(ready(r, "restart") / ready(r, "floor") for r in counted)
    out["restart_over_floor_s"] = statistics.median(ready(r, "restart") - ready(r, "floor") for r in counted)
    if all("moved" in r for r in counted):
        out["moved_s"] = statistics.median(ready(r, "moved") for r in counted)
        out["moved_floor_s"] = statistics.median(ready(r, "moved_floor") for r in counted)
        out["moved_ratio"] = statistics.median(ready(r, "moved") / ready(r, "moved_floor") for r in counted)
        out["moved_over_floor_s"] = statistics.median(ready(r, "moved") - ready(r, "moved_floor") for r in counted)
    out["cold_max_process_mib"] = max(r["cold"]["settled"].get("hwm_max_ever_mib", r["cold"]["settled"]["hwm_max_mib"])
                                      for r in counted)
    out["cold_tree_mib"] = max(r["cold"]["rss_total_mib"] for r in counted)
    out["cold_idle_after_s"] = statistics.median(r["cold"]["idle_after_ready_s"] or float("nan") for r in counted)
    out["feeds"] = counted[0]["cold"]["feeds"]
    peak = lambda r, kind: r[kind]["settled"]["builder_hwm_mib"] or r[kind]["settled"]["hwm_max_mib"]
    for kind in ("cold", "restart", "moved"):  # which start the builder's peak is (they differ by tens of MiB at 100k)
        if all(kind in r for r in counted):
            out[f"builder_peak_{kind}_mib"] = max(peak(r, kind) for r in counted)
    out["builder_peak_mib"] = max(peak(r, kind) for r in counted for kind in ("cold", "restart", "moved") if kind in r)
    if all("hugo" in r for r in counted):
        out["hugo_feeds_s"] = statistics.median(r["hugo"]["seconds"] for r in counted)
        out["cold_ratio"] = statistics.median(ready(r, "cold") / r["hugo"]["seconds"] for r in counted)
    return out

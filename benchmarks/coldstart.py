"""The child process of the cold-start figure: import feedsvc, build everything once, then time refreshes.

Run by benchmarks.feedsvc_build as `python -m benchmarks.coldstart ARTICLES STATE`; prints one JSON line.
Times are time.monotonic(), one clock for the whole machine on Linux, so the parent can subtract
its own start time from them and count the interpreter's start-up and imports too.
"""
from __future__ import annotations

import time

STARTED = time.monotonic()  # before any import of ours

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
from pathlib import Path  # noqa: E402


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (VmHWM), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def newest_txt(root: Path) -> Path:
    """The most recent .txt article: it is in the site-wide feed and its category's, the worst case to change."""
    return max(root.rglob("*.txt"), key=lambda p: (p.stat().st_mtime, p.name))


def changed_text(original: str, run: int) -> str:
    """The article with one sentence added to its first paragraph (line 6 in the seed's layout)."""
    lines = original.split("\n")
    lines[5] += f" Update {run}."
    return "\n".join(lines)


def save(path: Path, text: str) -> None:
    """Write the file as an editor would, a second ago: settled, so the next refresh must publish it."""
    path.write_text(text, encoding="utf-8")
    moment = time.time() - 1
    os.utime(path, (moment, moment))


def timed_refreshes(publisher, runs: int, budget: float, before=None, hints=None) -> list[float]:
    """Seconds per refresh(), for `runs` runs or until `budget` seconds are spent (at least one).

    hints: None for a full look at the folder (polling); else the paths a watcher would report.
    """
    times: list[float] = []
    spent_from = time.monotonic()
    for run in range(runs):
        if before:
            before(run)
        start = time.perf_counter()
        ok = publisher.refresh() if hints is None else publisher.refresh(hints)
        times.append(time.perf_counter() - start)
        if not ok:
            raise SystemExit(f"refresh failed: {publisher.last_error}")
        if time.monotonic() - spent_from > budget:
            break
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("articles", type=Path)
    parser.add_argument("state")
    parser.add_argument("--runs", type=int, default=7, help="refreshes per kind")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds at most per kind of refresh")
    args = parser.parse_args()

    from feedsvc.config import load_settings
    from feedsvc.site import Publisher
    from feedsvc.state import StateStore

    imported = time.monotonic()
    settings = load_settings({"ARTICLES_DIR": str(args.articles), "STATE_PATH": args.state},
                             toml_path=os.devnull, environ={})
    publisher = Publisher(settings, StateStore(settings["STATE_PATH"]))
    if not publisher.refresh():
        raise SystemExit(f"cold refresh failed: {publisher.last_error}")
    built = time.monotonic()
    snapshot = publisher.snapshot
    result = {
        "started": STARTED, "imported": imported, "built": built, "peak_rss_cold_mb": peak_rss_mb(),
        "resources": len(snapshot.resources), "feeds": len(snapshot.feeds),
        "articles": len(snapshot.articles), "skipped": len(snapshot.skipped),
        "feed_paths": sorted(p for p in snapshot.resources if p.rsplit("/", 1)[-1] in ("feed.rss", "feed.atom", "feed.json")),
    }
    if args.runs > 0:
        result["refresh_unchanged_s"] = timed_refreshes(publisher, args.runs, args.budget)
        target = newest_txt(args.articles)
        original, stat = target.read_bytes(), target.stat()
        text = original.decode("utf-8")
        try:
            result["refresh_one_changed_s"] = timed_refreshes(
                publisher, args.runs, args.budget,
                before=lambda run: save(target, changed_text(text, run)))
            result["changed_file"] = target.relative_to(args.articles).as_posix()
            result["changed_seen"] = f"Update {len(result['refresh_one_changed_s']) - 1}." in str(
                publisher.snapshot.resources.get("feed.rss").body, "utf-8")
        finally:  # the corpus is cached between runs: leave it as it was
            target.write_bytes(original)
            os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        # As `feedsvc serve` refreshes with the watcher on: only the paths it saw change are looked at.
        result["watched_unchanged_s"] = timed_refreshes(publisher, args.runs, args.budget, hints=[])
        try:
            result["watched_one_changed_s"] = timed_refreshes(
                publisher, args.runs, args.budget, hints=[str(target)],
                before=lambda run: save(target, changed_text(text, run + 100)))
        finally:
            target.write_bytes(original)
            os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        for kind in ("refresh_unchanged", "refresh_one_changed", "watched_unchanged", "watched_one_changed"):
            result[f"{kind}_median_s"] = statistics.median(result[f"{kind}_s"])
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    main()

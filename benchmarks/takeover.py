"""The builder's memory through a whole first build, the background reading included, in a builder that took the lock
over before any build was committed: `build_forever` with no lock handed to it, on an empty state store.

`python -m benchmarks.takeover [N] [--beside K]` runs it on the corpus of N articles (default 100,000) and prints the
builder's peak (`VmHWM`), how long until it went idle (its background reading done), and its resident memory every
ten seconds: where in the background the peak comes. `--beside K` runs K more such builders at once on the same folder, each
on a store of its own: a busy machine, and other readers of the folder. The numbers of issue 10's notes on the
takeover's peak (408 MiB before `builder.map_apart_taken_over`, 398 MiB after) and on the peak beside another builder
(186-196 MiB at 10,000 articles while the folder's reading claim held across processes, 144-148 MiB since) come from
this procedure.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .corpus import ensure_corpus
from .procs import cpu_ticks, descendants, read
from .server import PROJECT

OUT = Path(__file__).resolve().parent / "out"
BUILD = "import json, sys; from feedsvc.building.builder import build_forever; build_forever(json.loads(sys.argv[1]), None)"
QUIET_S = 3  # seconds in a row of (next to) no CPU: the background reading is done
TIMEOUT_S = 1200


def run(articles: Path, beside: int = 0) -> dict:
    """Start 1 + beside builders on fresh stores, follow the first until it is idle, stop them all: its figures."""
    with tempfile.TemporaryDirectory(prefix="feedsvc-takeover-") as tmp:
        env = {**os.environ, "PYTHONPATH": str(PROJECT)}
        builders = []
        for n in range(1 + beside):
            config = {"ARTICLES_DIR": str(articles), "STATE_PATH": f"{tmp}/{n}/state.sqlite3"}
            Path(tmp, str(n)).mkdir()
            builders.append(subprocess.Popen([sys.executable, "-c", BUILD, json.dumps(config)], env=env, cwd=tmp,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        pid, started, samples, quiet = builders[0].pid, time.monotonic(), [], 0
        try:
            last = cpu_ticks(pid)
            while quiet < QUIET_S and time.monotonic() - started < TIMEOUT_S:
                time.sleep(1)
                now = cpu_ticks(pid)
                quiet = quiet + 1 if now - last <= 5 else 0  # 5 ticks of 100: the schedule's and the watcher's own
                last = now
                samples.append((round(time.monotonic() - started), round(read(pid, pss=False).rss_mib)))
            return {"peak_mib": round(read(pid, pss=False).hwm_mib), "idle_after_s": round(time.monotonic() - started - quiet),
                    "timed_out": quiet < QUIET_S, "rss_every_10_s": [rss for at, rss in samples if at % 10 == 0]}
        finally:
            for builder in builders:  # and its reading workers, forks of it
                for pid in reversed(descendants(builder.pid)):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                builder.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.takeover", description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=100_000)
    parser.add_argument("--beside", type=int, default=0, help="more builders at once, each on a store of its own")
    args = parser.parse_args()
    found = run(ensure_corpus(OUT / "corpora", args.n) / "txt", args.beside)
    print(f"takeover first build of {args.n:,} articles{f' beside {args.beside} more' if args.beside else ''}: "
          f"builder peak {found['peak_mib']} MiB, idle after {found['idle_after_s']} s"
          f"{' (timed out)' if found['timed_out'] else ''}")
    print("resident every 10 s (MiB):", " ".join(map(str, found["rss_every_10_s"])))


if __name__ == "__main__":
    main()

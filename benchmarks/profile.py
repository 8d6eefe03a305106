"""Where feedsvc's time goes: pyinstrument over whole CLI runs on the benchmark corpus, imports included.

`python -m benchmarks.profile [N] [--command build|check]` profiles `feedsvc build` (the static site; every
stage from reading to writing) or `feedsvc check` (reading alone) on the corpus of N articles (default 10,000)
and writes benchmarks/out/profile-N-COMMAND.{txt,html}. It goes through the command line, not internals, so it
keeps working while the internals change.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .corpus import ensure_corpus
from .server import PROJECT

OUT = Path(__file__).resolve().parent / "out"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile")
    parser.add_argument("n", type=int, nargs="?", default=10_000)
    parser.add_argument("--command", choices=("build", "check"), default="build")
    args = parser.parse_args()
    articles = ensure_corpus(OUT / "corpora", args.n) / "txt"
    stem = OUT / f"profile-{args.n}-{args.command}"
    with tempfile.TemporaryDirectory(prefix="feedsvc-profile-") as tmp:
        env = {**os.environ, "PYTHONPATH": str(PROJECT), "FEEDSVC_STATE_PATH": f"{tmp}/state.db"}
        command = ["build", "--out", f"{tmp}/site", "--articles", str(articles)] if args.command == "build" else ["check", str(articles)]
        session = f"{stem}.pyisession"  # one profiled run, rendered twice
        # The CLI's main(), not `-m feedsvc`: a build run as its own process ends with os._exit (cli._end_process),
        # before pyinstrument could write its session.
        subprocess.run([sys.executable, "-m", "pyinstrument", "-r", "pyisession", "-o", session, "-c",
                        "import sys; from feedsvc.cli import main; main(sys.argv[1:], standalone_mode=False)", *command],
                       env=env, cwd=tmp, check=False, stdout=subprocess.DEVNULL)
    for renderer, suffix in (("text", ".txt"), ("html", ".html")):
        subprocess.run([sys.executable, "-m", "pyinstrument", "--load", session, "-r", renderer, "-o", f"{stem}{suffix}"],
                       check=True)
    print(Path(f"{stem}.txt").read_text())
    print(f"written {stem}.txt and .html")


if __name__ == "__main__":
    main()

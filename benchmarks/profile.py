"""Where feedsvc's time goes: pyinstrument over the cold start (imports included) and a one-file refresh.

`python -m benchmarks.profile [N]` profiles on the generated corpus of N articles (default 10,000) and
writes text and HTML reports to benchmarks/out/profile-N-*.{txt,html}.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from pyinstrument import Profiler

OUT = Path(__file__).resolve().parent / "out"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=10_000)
    parser.add_argument("--categories", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    from .corpus import ensure_corpus
    from .coldstart import changed_text, newest_txt, save

    articles = ensure_corpus(OUT / "corpora", args.n, args.categories, args.seed) / "articles"
    with tempfile.TemporaryDirectory(prefix="feedsvc-profile-") as tmp:
        cold = Profiler(interval=0.001)
        cold.start()
        from feedsvc.config import load_settings
        from feedsvc.site import Publisher
        from feedsvc.state import StateStore

        settings = load_settings({"ARTICLES_DIR": str(articles), "STATE_PATH": f"{tmp}/state.sqlite3"},
                                 toml_path=os.devnull, environ={})
        publisher = Publisher(settings, StateStore(settings["STATE_PATH"]))
        assert publisher.refresh(), publisher.last_error
        cold.stop()
        publisher.refresh()
        target = newest_txt(articles)
        original, stat = target.read_bytes(), target.stat()
        try:
            save(target, changed_text(original.decode("utf-8"), 0))
            one = Profiler(interval=0.0005)
            one.start()
            assert publisher.refresh(), publisher.last_error
            one.stop()
        finally:
            target.write_bytes(original)
            os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    for name, profiler in (("cold", cold), ("one-changed", one)):
        stem = OUT / f"profile-{args.n}-{name}"
        stem.with_suffix(".txt").write_text(profiler.output_text(unicode=True, show_all=False))
        stem.with_suffix(".html").write_text(profiler.output_html())
        print(profiler.output_text(unicode=True))
        print(f"written {stem}.txt and .html\n")


if __name__ == "__main__":
    main()

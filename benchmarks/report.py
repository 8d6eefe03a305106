"""From raw measurements to issue 10's figures, their targets and the printed table.

FIGURES is the one table of what is reported: key, label, how it is shown, and its target if it has one.
A target holds a value per corpus size (None: every size measured).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Target:
    """A figure's goal from issue 10: at most or at least a value, per corpus size."""

    op: str  # "<=" or ">="
    values: dict  # size (or None for every size) → value

    def at(self, size: int) -> float | None:
        """The value the figure must meet at this size, or None where the target does not apply."""
        return self.values.get(size, self.values.get(None))

    def met(self, size: int, figure: float) -> bool:
        value = self.at(size)
        return figure <= value if self.op == "<=" else figure >= value

    def text(self, fmt: Callable[[float], str]) -> str:
        sign = "≤ " if self.op == "<=" else "≥ "
        by_value: dict[float, list] = {}
        for n, v in self.values.items():
            by_value.setdefault(v, []).append(n)
        return ", ".join(sign + fmt(v) + ("" if None in ns else " at " + ", ".join(f"{n // 1000}k" for n in ns))
                         for v, ns in by_value.items())


sec = lambda v: f"{v:.2f} s"
ms = lambda v: f"{v:.0f} ms"
mib = lambda v: f"{v:.0f} MiB"
times = lambda v: f"{v:.2f}×"
rps = lambda v: f"{v:,.0f}/s"
us = lambda v: f"{v:.0f} µs"
plain = lambda v: f"{v:,.0f}"
plus = lambda v: f"{v:+.2f} s"
K10, K100 = 10_000, 100_000

FIGURES = (
    ("feeds", "feeds listed in /feeds.opml", plain, None),
    ("cold_s", "cold start → every feed answers (serve, fresh state)", sec, None),
    ("hugo_feeds_s", "  Hugo feeds-only build", sec, None),
    ("cold_ratio", "  cold start / Hugo feeds-only", times, Target("<=", {K10: 1.0, K100: 0.3})),
    ("cold_max_process_mib", "  largest single process (peak RSS)", mib, Target("<=", {K10: 160})),
    ("cold_idle_after_s", "  still busy after every feed answered", sec, None),
    ("restart_s", "restart, nothing changed (state kept)", sec, None),
    ("floor_s", "  floor: restart on the 11-article sample", sec, None),
    ("restart_ratio", "  restart / floor", times, Target("<=", {K10: 1.3})),
    ("restart_over_floor_s", "  restart − floor", plus, Target("<=", {K100: 2.0})),
    ("moved_s", "restart at a new site URL (serve_ready.py: the run's port)", sec, None),
    ("moved_floor_s", "  floor: the same on the 11-article sample", sec, None),
    ("moved_ratio", "  restart / floor, new URL", times, Target("<=", {K10: 1.3})),
    ("moved_over_floor_s", "  restart − floor, new URL", plus, Target("<=", {K100: 2.0})),
    ("w4_ready_s", "serve --workers 4 → every feed answers", sec, None),
    ("w4_tree_mib", "  process tree (RSS sum, once idle)", mib, Target("<=", {K10: 400})),
    ("w4_pss_mib", "  process tree (PSS sum: shared pages split)", mib, None),
    ("w4_worker_mib", "  largest worker that does not build", mib, Target("<=", {1_000: 60, K10: 60, K100: 60})),
    ("w4_builder_mib", "  the builder", mib, None),
    ("w4_commit_lag_ms", "  a build's commit seen → served (8 asks in a row)", ms, Target("<=", {None: 50})),
    ("builder_peak_mib", "builder peak RSS (serve, 1 worker)", mib, Target("<=", {K100: 400})),
    ("builder_peak_cold_mib", "  in the cold start", mib, None),
    ("builder_peak_restart_mib", "  in the restart, nothing changed", mib, None),
    ("builder_peak_moved_mib", "  in the restart at a new URL", mib, None),
    ("refresh_ms", "one saved file: refresh inside (log)", ms, Target("<=", {K10: 30, K100: 100})),
    ("visible_ms", "  write → in /feed.json over HTTP", ms, Target("<=", {K10: 250})),
    ("hugo_watch_ms", "  Hugo server: write → in /index.xml", ms, None),
    ("visible_ratio", "  feedsvc / Hugo watch", times, Target("<=", {K10: 0.5})),
    ("build_s", "feedsvc build, whole static site", sec, None),
    ("hugo_site_s", "  Hugo minimal full site", sec, None),
    ("build_ratio", "  feedsvc build / Hugo full site", times, Target("<=", {K10: 1.0})),
    ("build_one_changed_s", "  again with one file changed", sec, Target("<=", {K10: 1.0})),
    ("build_peak_mib", "  feedsvc build peak RSS", mib, None),
    ("feedsvc_200_rps", "serve a hot feed, 200 gzip: feedsvc", rps, None),
    ("flask_200_rps", "  bare Flask anchor", rps, None),
    ("ratio_200", "  feedsvc / bare Flask", times, Target(">=", {None: 1.0})),
    ("feedsvc_304_rps", "serve a hot feed, 304: feedsvc", rps, None),
    ("flask_304_rps", "  bare Flask anchor", rps, None),
    ("ratio_304", "  feedsvc / bare Flask", times, Target(">=", {None: 1.0})),
    ("nginx_200_rps", "  (nginx static, 200 gzip)", rps, None),
    ("nginx_304_rps", "  (nginx static, 304)", rps, None),
    ("feedsvc_200_cpu_us", "server CPU a request, 200: feedsvc", us, None),
    ("flask_200_cpu_us", "  bare Flask anchor", us, None),
    ("feedsvc_304_cpu_us", "server CPU a request, 304: feedsvc", us, None),
    ("flask_304_cpu_us", "  bare Flask anchor", us, None),
)


def serving_figures(serve: dict) -> dict[str, float]:
    """Requests per second (medians of the wrk rounds), feedsvc's ratio to bare Flask, and CPU per request."""
    out = {f"{name}_{kind}_rps": serve[name][kind]["rps"]
           for name in ("feedsvc", "flask", "nginx") if name in serve for kind in ("200", "304")}
    out.update({f"{name}_{kind}_cpu_us": serve[name][kind]["cpu_us"] for name in ("feedsvc", "flask") if name in serve
                for kind in ("200", "304") if serve[name][kind].get("cpu_us") is not None})
    for kind in ("200", "304"):
        if f"flask_{kind}_rps" in out:
            out[f"ratio_{kind}"] = out[f"feedsvc_{kind}_rps"] / out[f"flask_{kind}_rps"]
    return out


def verdicts(by_size: dict[int, dict[str, float]]) -> list[dict]:
    """Every target checked where it applies and was measured."""
    found = []
    for key, label, fmt, target in FIGURES:
        for size, figs in sorted(by_size.items()):
            if target and target.at(size) is not None and figs.get(key) is not None:
                found.append({"figure": key, "label": label.strip(), "size": size, "value": figs[key],
                              "target": fmt(target.at(size)), "op": target.op, "met": target.met(size, figs[key])})
    return found


def table(by_size: dict[int, dict[str, float]]) -> str:
    """A plain-text table: one row per figure, one column per size, each figure against its target with ✓ or ✗."""
    sizes = sorted(by_size)
    rows = [["figure", *[f"N = {n:,}" for n in sizes], "target (issue 10)"]]
    for key, label, fmt, target in FIGURES:
        if not any(by_size[n].get(key) is not None for n in sizes):
            continue
        cells = []
        for n in sizes:
            value = by_size[n].get(key)
            cell = "—" if value is None else fmt(value)
            if value is not None and target and target.at(n) is not None:
                cell += " ✓" if target.met(n, value) else " ✗"
            cells.append(cell)
        rows.append([label, *cells, target.text(fmt) if target else ""])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i in (0, len(r) - 1) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """`python -m benchmarks.report RESULTS.json...`: the table again from saved runs; a later file's figures win."""
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=main.__doc__)
    parser.add_argument("results", nargs="+", type=Path)
    by_size: dict[int, dict[str, float]] = {}
    for path in parser.parse_args(argv).results:
        for size, found in json.loads(path.read_text(encoding="utf-8"))["sizes"].items():
            by_size.setdefault(int(size), {}).update({k: v for k, v in found["figures"].items() if v is not None})
    print(table(by_size))
    met = [v for v in verdicts(by_size) if v["met"]]
    print(f"\n{len(met)} of {len(verdicts(by_size))} targets met.")


if __name__ == "__main__":
    main()

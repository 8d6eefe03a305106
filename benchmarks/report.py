"""From raw measurements to figures, targets and the printed table.

FIGURES is the one table of what is reported: key, label, how it is shown, and the target if there is one.
A target's `sizes` says where it applies (None: every size measured).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Target:
    """A figure's goal from issue 5: at most or at least a value, at some corpus sizes."""

    op: str  # "<=" or ">="
    value: float
    sizes: tuple[int, ...] | None = (10_000,)

    def met(self, figure: float) -> bool:
        """Whether the figure meets the target."""
        return figure <= self.value if self.op == "<=" else figure >= self.value

    def text(self, fmt: Callable[[float], str]) -> str:
        return ("≤ " if self.op == "<=" else "≥ ") + fmt(self.value)


sec = lambda v: f"{v:.2f} s"
ms = lambda v: f"{v:.1f} ms"
mb = lambda v: f"{v:.0f} MB"
times = lambda v: f"{v:.2f}×"
pct = lambda v: f"{v:.0%}"
rps = lambda v: f"{v:,.0f}/s"
plain = lambda v: f"{v:,.0f}"

FIGURES = (
    ("corpus_files", "articles generated", plain, None),
    ("cold_s", "feedsvc cold start → all feeds rendered", sec, None),
    ("startup_imports_s", "  of which interpreter start + imports", sec, None),
    ("first_refresh_s", "  of which first refresh()", sec, None),
    ("feeds_rendered", "  feeds rendered (× 3 formats)", plain, None),
    ("peak_rss_mb", "feedsvc peak RSS after cold start", mb, Target("<=", 160)),
    ("restart_s", "feedsvc restart, state file kept", sec, None),
    ("hugo_s", "Hugo build", sec, None),
    ("pelican_s", "Pelican build", sec, None),
    ("hugo_ratio", "feedsvc time / Hugo time", times, Target("<=", 0.5)),
    ("pelican_speedup", "Pelican time / feedsvc time", times, Target(">=", 20)),
    ("growth", "cold start growth from 10,000", times, Target("<=", 11, (100_000,))),
    ("refresh_unchanged_ms", "refresh, nothing changed (full walk)", ms, Target("<=", 30)),
    ("refresh_one_changed_ms", "refresh, one file changed (full walk)", ms, Target("<=", 60)),
    ("watched_unchanged_ms", "  with the watcher: nothing changed", ms, Target("<=", 30)),
    ("watched_one_changed_ms", "  with the watcher: one file changed", ms, Target("<=", 60)),
    ("feedsvc_200_rps", "serve 200 gzip: feedsvc", rps, None),
    ("feedsvc_200_p99", "  p99", ms, None),
    ("flask_200_rps", "serve 200 gzip: bare Flask", rps, None),
    ("flask_200_p99", "  p99", ms, None),
    ("nginx_200_rps", "serve 200 gzip: nginx static", rps, None),
    ("nginx_200_p99", "  p99", ms, None),
    ("flask_200_ratio", "feedsvc / bare Flask, 200", pct, Target(">=", 0.9, None)),
    ("nginx_200_ratio", "feedsvc / nginx, 200", pct, None),
    ("feedsvc_304_rps", "serve 304: feedsvc", rps, None),
    ("feedsvc_304_p99", "  p99", ms, None),
    ("flask_304_rps", "serve 304: bare Flask", rps, None),
    ("flask_304_p99", "  p99", ms, None),
    ("nginx_304_rps", "serve 304: nginx static", rps, None),
    ("nginx_304_p99", "  p99", ms, None),
    ("flask_304_ratio", "feedsvc / bare Flask, 304", pct, Target(">=", 0.9, None)),
    ("nginx_304_ratio", "feedsvc / nginx, 304", pct, None),
)


def figures(raw: dict, base: dict | None = None) -> dict[str, float]:
    """The flat figures of one size from its raw measurements; base is the 10,000 size's figures."""
    out: dict[str, float] = {}
    cold = raw.get("feedsvc") or []
    if cold:
        out["corpus_files"] = cold[0]["articles"]
        out["cold_s"] = statistics.median(r["seconds"] for r in cold)
        out["startup_imports_s"] = statistics.median(r["startup_imports_s"] for r in cold)
        out["first_refresh_s"] = statistics.median(r["first_refresh_s"] for r in cold)
        out["feeds_rendered"] = cold[0]["feeds"]
        out["peak_rss_mb"] = max(r["peak_rss_cold_mb"] for r in cold)
        restarts = [r["restart_s"] for r in cold if "restart_s" in r]
        if restarts:
            out["restart_s"] = statistics.median(restarts)
        refreshes = [r for r in cold if "refresh_unchanged_median_s" in r]
        if refreshes:
            out["refresh_unchanged_ms"] = refreshes[0]["refresh_unchanged_median_s"] * 1000
            out["refresh_one_changed_ms"] = refreshes[0]["refresh_one_changed_median_s"] * 1000
            out["watched_unchanged_ms"] = refreshes[0]["watched_unchanged_median_s"] * 1000
            out["watched_one_changed_ms"] = refreshes[0]["watched_one_changed_median_s"] * 1000
    for tool in ("hugo", "pelican"):
        done = [r["seconds"] for r in raw.get(tool) or [] if r.get("seconds")]
        if done:
            out[f"{tool}_s"] = statistics.median(done)
    if "cold_s" in out and "hugo_s" in out:
        out["hugo_ratio"] = out["cold_s"] / out["hugo_s"]
    if "cold_s" in out and "pelican_s" in out:
        out["pelican_speedup"] = out["pelican_s"] / out["cold_s"]
    if base and "cold_s" in base and "cold_s" in out:
        out["growth"] = out["cold_s"] / base["cold_s"]
    serve = raw.get("serving") or {}
    for server in ("feedsvc", "flask", "nginx"):
        for kind in ("200", "304"):
            if server in serve:
                out[f"{server}_{kind}_rps"] = serve[server][kind]["rps"]
                out[f"{server}_{kind}_p99"] = serve[server][kind]["p99_ms"]
    for other in ("flask", "nginx"):
        for kind in ("200", "304"):
            if f"{other}_{kind}_rps" in out:
                out[f"{other}_{kind}_ratio"] = out[f"feedsvc_{kind}_rps"] / out[f"{other}_{kind}_rps"]
    return out


def verdicts(by_size: dict[int, dict[str, float]]) -> list[dict]:
    """Every target checked where it applies and was measured."""
    found = []
    for key, label, fmt, target in FIGURES:
        if target is None:
            continue
        for size, figs in by_size.items():
            if (target.sizes is None or size in target.sizes) and key in figs:
                found.append({"figure": key, "label": label.strip(), "size": size, "value": figs[key],
                              "target": target.text(fmt), "met": target.met(figs[key])})
    return found


def table(by_size: dict[int, dict[str, float]]) -> str:
    """A plain-text table: one row per figure, one column per size, targets with ✓ or ✗."""
    sizes = sorted(by_size)
    rows = [["figure", *[f"N = {n:,}" for n in sizes], "target"]]
    for key, label, fmt, target in FIGURES:
        if not any(key in by_size[n] for n in sizes):
            continue
        cells = []
        for n in sizes:
            value = by_size[n].get(key)
            cell = "—" if value is None else fmt(value)
            if value is not None and target and (target.sizes is None or n in target.sizes):
                cell += " ✓" if target.met(value) else " ✗"
            cells.append(cell)
        where = "" if not target else target.text(fmt) + ("" if target.sizes is None else f" at {target.sizes[0]:,}")
        rows.append([label, *cells, where])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)

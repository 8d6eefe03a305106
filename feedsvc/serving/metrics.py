"""Prometheus metrics at /metrics: requests by kind, format and status (so the share of 304s), bytes
sent, refresh duration and outcome, articles published, files skipped, and the subscriber counts that
aggregators report in their User-Agent, per feed.

Several gunicorn workers: each writes its numbers to the folder PROMETHEUS_MULTIPROC_DIR names
(prometheus_client's multiprocess mode, which `feedsvc serve` sets up; it must be set before
prometheus_client is first imported) and /metrics adds them up, so a
scrape that reaches any worker sees the whole server. Without it the numbers are the process's own.
https://prometheus.github.io/client_python/multiprocess/
"""
from __future__ import annotations

import re
import threading
import time
from typing import TYPE_CHECKING, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client import multiprocess

from ..formats import FORMATS
from ..formats.opml import MEDIA_TYPE as OPML_TYPE
from ..urls import HEALTHZ, HTML_TYPE, METRICS, STATIC, is_article

if TYPE_CHECKING:
    from flask import Flask, Response

# The format label: a bounded set, from the media type of what was served (a static file's: its suffix, css, xsl, ico;
# /healthz's JSON is told from a JSON Feed by its kind).
SHORT_TYPES = {**{f.media_type: key for key, f in FORMATS.items()}, OPML_TYPE: "opml", HTML_TYPE: "html",
               **{media: path.rpartition(".")[2] for path, media in STATIC.items()}, "application/json": "json"}
KINDS = {**{f.media_type: "feed" for f in FORMATS.values()}, OPML_TYPE: "opml", **dict.fromkeys(STATIC.values(), "static")}
# Aggregators that fetch a feed once for all their users say how many there are: "Feedly/1.0
# (+http://www.feedly.com/fetcher.html; 42 subscribers)", "NewsBlur Feed Fetcher - 5 subscribers - …",
# "Feedfetcher-Google; (+http://www.google.com/feedfetcher.html; 3 subscribers; feed-id=123)".
_SUBSCRIBERS = re.compile(r"(\d[\d,]{0,12})\s+subscribers?\b", re.IGNORECASE)
_FEED_ID = re.compile(r"feed-?id[=:]\s*([\w-]{1,40})", re.IGNORECASE)
_PRODUCT = re.compile(r"\s*(?:Mozilla/[\d.]+\s*\((?:compatible;\s*)?)?([A-Za-z][\w.+-]*)")
KNOWN_AGGREGATORS = (  # (what the User-Agent says, the name)
    ("feedfetcher-google", "google"), ("theoldreader", "theoldreader"), ("old reader", "theoldreader"),
    ("tiny tiny rss", "tt-rss"), ("feedly", "feedly"), ("inoreader", "inoreader"), ("newsblur", "newsblur"),
    ("feedbin", "feedbin"), ("bloglovin", "bloglovin"), ("feedspot", "feedspot"), ("netvibes", "netvibes"),
    ("bazqux", "bazqux"), ("feedwrangler", "feedwrangler"), ("feedpress", "feedpress"),
)
KNOWN_NAMES = frozenset(name for _, name in KNOWN_AGGREGATORS)
OTHER = "other"  # the one label for every aggregator not in KNOWN_AGGREGATORS: a User-Agent is easy to make up
MAX_OTHERS = 50  # unknown reporters remembered per worker (the most recent), pooled under OTHER
MAX_FEED_IDS = 16  # one aggregator may fetch one URL for several of its feeds: their counts add up
MAX_SUBSCRIBERS = 1_000_000  # a report above this is not believed; no feed of ours has that many through one reader
REPORT_TTL = 3 * 86400  # seconds a report counts; aggregators poll hourly or daily and report each time
REFRESH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """The app's metrics; in multiprocess mode their values live in files and /metrics reads them all."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.multiprocess = multiprocess_mode()
        self.registry = None if self.multiprocess else CollectorRegistry()
        r = self.registry
        self.requests = Counter("feedsvc_http_requests", 'HTTP responses by kind of resource, format and status; '
                                'status="304" over all is the share answered Not Modified',
                                ["kind", "format", "status"], registry=r)
        self.sent = Counter("feedsvc_http_response_bytes", "Body bytes sent (compressed where they were)",
                            ["kind"], registry=r)
        self.refresh_seconds = Histogram("feedsvc_refresh_duration_seconds", "How long a refresh took",
                                         buckets=REFRESH_BUCKETS, registry=r)
        self.refreshes = Counter("feedsvc_refreshes", "Refreshes by outcome: changed, unchanged or failed",
                                 ["outcome"], registry=r)
        # Only the process that builds sets these (observe_refresh): the latest value of a live process is the server's.
        self.articles = Gauge("feedsvc_articles_published", "Articles published now",
                              registry=r, multiprocess_mode="livemostrecent")
        self.skipped = Gauge("feedsvc_files_skipped", "Files in the articles folder left out (feedsvc check lists them)",
                             registry=r, multiprocess_mode="livemostrecent")
        self.last_success = Gauge("feedsvc_last_refresh_success_timestamp_seconds",
                                  "When the last refresh succeeded (Unix time)", registry=r, multiprocess_mode="livemax")
        # The latest report of a live worker wins: reports are kept in memory and age out, so they go with the worker.
        self.subscribers = Gauge("feedsvc_feed_subscribers", "Subscribers an aggregator reported in its User-Agent "
                                 "in the last days (unknown aggregators pooled as \"other\")",
                                 ["feed", "aggregator"], registry=r, multiprocess_mode="livemostrecent")
        self.clock = clock
        # (feed, label) → reporter (a known aggregator's feed id, or an unknown one's name) → (count, when)
        self._reported: dict[tuple[str, str], dict[str, tuple[int, float]]] = {}
        self._children: dict[tuple, tuple] = {}  # (kind, format, status) → the two labelled counters
        self._lock = threading.Lock()

    def observe_request(self, kind: str, fmt: str, status: int, sent: int) -> None:
        """Count one response."""
        # labels() validates and locks on every call; the few label sets there are are looked up once.
        key = (kind, fmt, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self.requests.labels(kind, fmt, str(status)), self.sent.labels(kind))
        children[0].inc()
        if sent:  # a 304 or a HEAD adds nothing (the series exists from labels(), at 0)
            children[1].inc(sent)

    def observe_subscribers(self, feed: str, user_agent: str) -> None:
        """Keep the subscriber count a User-Agent reports for a feed path, if it reports a believable one.

        Only aggregators in KNOWN_AGGREGATORS get a label of their own; any other name is pooled as "other",
        so made-up names neither grow the label set nor crowd a real aggregator out. A report counts for
        REPORT_TTL; a count above MAX_SUBSCRIBERS is dropped; within one label the most recent reports win.
        """
        reported = parse_subscribers(user_agent)
        if reported is None:
            return
        name, count, feed_id = reported
        if count > MAX_SUBSCRIBERS:
            return
        label, reporter, limit = (name, feed_id, MAX_FEED_IDS) if name in KNOWN_NAMES else (OTHER, name, MAX_OTHERS)
        now = self.clock()
        with self._lock:
            reports = self._reported.setdefault((feed, label), {})
            reports[reporter] = (count, now)
            if len(reports) > limit:  # forget the oldest report: the ones still being made come back
                del reports[min(reports, key=lambda r: reports[r][1])]
            total = self._total(reports, now)
        self.subscribers.labels(feed, label).set(total)

    def expire_subscribers(self) -> None:
        """Recount every series without the reports older than REPORT_TTL (run before each scrape)."""
        now = self.clock()
        with self._lock:
            totals = {key: self._total(reports, now) for key, reports in self._reported.items()}
            for key, reports in list(self._reported.items()):
                if not reports:
                    del self._reported[key]
        for (feed, label), total in totals.items():
            self.subscribers.labels(feed, label).set(total)

    @staticmethod
    def _total(reports: dict[str, tuple[int, float]], now: float) -> int:
        """The sum of the reports still fresh, dropping the rest; never above MAX_SUBSCRIBERS."""
        for reporter in [r for r, (_, when) in reports.items() if now - when > REPORT_TTL]:
            del reports[reporter]
        return min(MAX_SUBSCRIBERS, sum(count for count, _ in reports.values()))

    def observe_refresh(self, refreshed) -> None:
        """A Publisher observer (site.Refreshed): the refresh's duration and outcome, and the gauges of its snapshot."""
        self.refresh_seconds.observe(refreshed.seconds)
        self.refreshes.labels("failed" if not refreshed.ok else "changed" if refreshed.changed else "unchanged").inc()
        self.articles.set(len(refreshed.snapshot.articles))
        self.skipped.set(len(refreshed.snapshot.skipped))
        if refreshed.ok and refreshed.snapshot.built_at is not None:
            self.last_success.set(refreshed.snapshot.built_at.timestamp())

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format; in multiprocess mode, all workers' added up."""
        self.expire_subscribers()
        registry = self.registry
        if registry is None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)


def instrument(app: Flask) -> Metrics:
    """Count the app's requests and serve them at /metrics; a building process adds observe_refresh (feedsvc/building/builder.py)."""
    from flask import Response, g, request  # here: the dedicated builder has Metrics, not Flask (feedsvc.for_building)

    metrics = Metrics()
    app.extensions["feedsvc.metrics"] = metrics
    @app.after_request
    def count(response: Response) -> Response:
        path = request.path.lstrip("/")
        found = g.get("feedsvc_found")  # the resource web.py looked up for this request, if any
        media = found.media_type if found is not None else response.mimetype if response.status_code == 200 else None
        kind = kind_of(path, media)
        sent = 0 if request.method == "HEAD" else response.calculate_content_length() or 0
        metrics.observe_request(kind, SHORT_TYPES.get(media, ""), response.status_code, sent)
        if kind == "feed" and found is not None and response.status_code in (200, 304):
            metrics.observe_subscribers("/" + path, request.headers.get("User-Agent", ""))
        return response

    app.add_url_rule("/" + METRICS, "metrics", lambda: Response(metrics.exposition(), content_type=CONTENT_TYPE_LATEST,
                                                             headers={"Cache-Control": "no-store"}))
    return metrics


def kind_of(path: str, media: str | None) -> str:
    """The kind label of a response for a path (without its leading slash) and the media type served."""
    return path if path in (HEALTHZ, METRICS) else KINDS.get(media) or _page_kind(path, media)


def parse_subscribers(user_agent: str) -> tuple[str, int, str] | None:
    """(aggregator name, subscribers, feed id or "") from a User-Agent that reports them, else None."""
    found = _SUBSCRIBERS.search(user_agent)
    if found is None:
        return None
    feed_id = _FEED_ID.search(user_agent)
    return aggregator_name(user_agent), int(found.group(1).replace(",", "")), feed_id.group(1) if feed_id else ""


def aggregator_name(user_agent: str) -> str:
    """A short, stable name for who sent a User-Agent: a known aggregator's, else its first product token."""
    lowered = user_agent.lower()
    # The first one named: Feedly's agent goes on "…; like FeedFetcher-Google".
    known = [(lowered.find(needle), name) for needle, name in KNOWN_AGGREGATORS if needle in lowered]
    if known:
        return min(known)[1]
    product = _PRODUCT.match(user_agent)
    token = product.group(1).lower() if product else ""
    token = re.sub(r"^www\.|\.(com|net|org|io|app)$", "", token)
    return re.sub(r"[^a-z0-9]+", "-", token).strip("-")[:32] or "unknown"


def multiprocess_mode() -> bool:
    """Whether prometheus_client keeps values in PROMETHEUS_MULTIPROC_DIR: it decides once, when imported."""
    return values.ValueClass is not values.MutexValue


def _page_kind(path: str, media: str | None) -> str:
    if media != HTML_TYPE:
        return "other"
    return "article" if is_article(path) else "page"

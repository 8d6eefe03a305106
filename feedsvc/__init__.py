"""feedsvc: publish a folder of articles as RSS 2.0, Atom 1.0 and JSON Feed 1.1.

create_app() only wires the parts together: settings → build store reader → HTTP blueprint, and, in a
process that builds, state store → publisher → build store (feedsvc/building/builder.py). for_building() (the
dedicated builder) and for_export() (`feedsvc build`) wire the same without Flask: they serve no request.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from .config import Settings, load_settings
from .model import Site
from .partners import load_partners
from .serving.ratelimit import RateLimiter

__version__ = "0.1.0"


def create_app(config: Mapping[str, Any] | None = None, *, refresh: bool = True, build: bool = True,
               commit: bool = True) -> "Flask":
    """Build the Flask app; config overrides any setting by name.

    build=True: this process builds (a test, a tool, `feedsvc build`): it has a Publisher whose refreshes
    are committed to the build store (unless commit=False), and refresh=False skips the first build.
    build=False: a serving process that only reads the store (feedsvc/building/builder.py decides who builds, by a lock).
    """
    from flask import Flask  # here, not at the top: `feedsvc serve`'s master imports feedsvc and never serves

    app = Flask(__name__, instance_relative_config=True, static_folder=None)  # static files come from the build store (urls.py STATIC)
    settings = _settings(config)  # kept in extensions (feedsvc.settings), not copied into app.config: read by attribute
    from .serving.web import ServingOptions

    app.extensions.update(_wiring(settings, state_path(settings, app.instance_path)))
    app.extensions.update({
        "feedsvc.serving": ServingOptions(max_age=settings.refresh_seconds, articles_dir=Path(settings.articles_dir),
                                          category_slugs=settings.category_slugs),
        "feedsvc.variants": _variants(settings, app.extensions["feedsvc.store"], app.extensions["feedsvc.state_path"]),
        "feedsvc.partners": load_partners(settings.partners),
        "feedsvc.limits": {"public": RateLimiter(settings.rate_limit, exempt=settings.rate_limit_exempt), "partner": RateLimiter(settings.partner_rate_limit)},
    })
    if settings.proxy_hops:  # the client address for rate limits comes from X-Forwarded-For
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops)
    from .serving import metrics, web  # imported here: prometheus_client must first load in a worker (metrics.py)

    app.register_blueprint(web.bp)
    metrics.instrument(app)
    if build:
        from .building.builder import start_building

        publisher = start_building(app, commit)
        if refresh:
            publisher.refresh()
    return app


class Wiring:
    """What the dedicated builder process takes of create_app's wiring (the same `extensions`), without Flask:
    it serves nothing, so it neither imports Flask nor makes routes (0.1 s of its start, before the first build)."""

    def __init__(self, extensions: dict[str, Any]):
        self.extensions = extensions


class RefreshMetrics:
    """The dedicated builder's metrics: its refreshes' figures (serving/metrics.py Metrics.observe_refresh), which the
    workers' /metrics add up. Made as the first refresh ends, after its commit (observers run in order, the Committer
    first): prometheus_client's import, 0.1 s, is then not on a cold start's way to its first feeds."""

    def __init__(self) -> None:
        self._metrics = None

    def observe_refresh(self, refreshed) -> None:
        """(a Publisher observer) Metrics.observe_refresh, the Metrics made at the first call."""
        if self._metrics is None:
            from .serving.metrics import Metrics

            self._metrics = Metrics()
        self._metrics.observe_refresh(refreshed)


def for_building(config: Mapping[str, Any] | None = None) -> Wiring:
    """create_app(config, build=False)'s settings, stores and observers for a process that only builds."""
    settings = _settings(config)
    extensions = _wiring(settings, state_path(settings))
    extensions["feedsvc.metrics"] = RefreshMetrics()  # its refreshes' figures, read by the workers' /metrics
    return Wiring(extensions)


def for_export(config: Mapping[str, Any] | None = None) -> Wiring:
    """create_app(config, refresh=False)'s wiring for `feedsvc build`, without Flask: a committing Publisher
    (extensions["feedsvc"]), the stores and the pages' variants. A build serves no request, so it neither imports
    Flask nor makes an app and its routes (40 ms of a build that has one file to publish, at 10,000 articles)."""
    from .building.builder import start_building

    settings = _settings(config)
    extensions = _wiring(settings, state_path(settings))
    load_partners(settings.partners)  # a partner key not set fails the build, as it fails create_app
    extensions["feedsvc.variants"] = _variants(settings, extensions["feedsvc.store"], extensions["feedsvc.state_path"])
    wiring = Wiring(extensions)
    start_building(wiring, search=False)
    return wiring


# The settings _variants() makes archive pages, deltas and partners' views with, but SITE_URL (each build's report names
# it already, and rebase.py moves it): recorded with each build, so a static export beside a server writes its pages
# as the server serves them (cli.py _served_variants).
VARIANT_SETTINGS = ("site_title", "site_description", "site_author", "site_language", "refresh_seconds", "feed_max_items",
                    "public_content", "websub_hub", "archive_max_age")


def _variants(settings: Settings, reader, state: str) -> "Variants":
    """Archive pages, deltas and partners' views made from the store (feedsvc/serving/variants.py)."""
    from .formats.pages import keep_compiled
    from .serving.variants import Variants

    keep_compiled(state)  # the pages' templates, compiled once for the deployment

    return Variants(reader, Site.from_settings(settings), settings.feed_max_items,
                    {"full_text": settings.public_content == "full", "hub": settings.websub_hub},
                    settings.archive_max_age)


def _settings(config: Mapping[str, Any] | None) -> Settings:
    settings = load_settings(config)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("feedsvc").setLevel(settings.log_level)
    return settings


def _wiring(settings: Settings, path: str) -> dict[str, Any]:
    """The extensions every process has: settings, the state and build stores, the builder's status, WebSub."""
    from .building.lock import BuilderStatus, status_path
    import sqlite3

    from .building.state import StateError, StateStore, state_problem
    from .store import StoreReader, create_schema

    StateStore(path)  # a state file that cannot be made or opened: one StateError that says so (one it cannot write,
    # SQLite opens read-only without a word: lock.writable finds it, in serve's preflight and in wsgi.py)
    try:
        create_schema(path)
    except (OSError, sqlite3.Error) as exc:  # a full disk as its tables are made: one line too, not a traceback
        raise StateError(state_problem(exc, path)) from None
    extensions = {"feedsvc.settings": settings, "feedsvc.state_path": path, "feedsvc.store": StoreReader(path),
                  "feedsvc.status": BuilderStatus(status_path(path))}
    if settings.websub_hub:  # only then: urllib.request and ssl are 12 ms of every process's start
        from .serving.websub import HubNotifier

        extensions["feedsvc.websub"] = HubNotifier(settings.websub_hub)
    return extensions


def state_path(settings: Settings, instance_path: str | None = None) -> str:
    """The state store's file: STATE_PATH, else feedsvc.sqlite3 in the Flask instance folder."""
    if settings.state_path:
        return settings.state_path
    if instance_path is None:
        from flask import Flask

        instance_path = Flask(__name__, instance_relative_config=True).instance_path
    return str(Path(instance_path) / "feedsvc.sqlite3")

"""feedsvc: publish a folder of articles as RSS 2.0, Atom 1.0 and JSON Feed 1.1.

create_app() only wires the parts together: settings → build store reader → HTTP blueprint, and, in a
process that builds, state store → publisher → build store (feedsvc/building/builder.py).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import load_settings
from .partners import load_partners
from .serving.ratelimit import RateLimiter
from .serving.websub import HubNotifier

__version__ = "0.1.0"


def create_app(config: Mapping[str, Any] | None = None, *, refresh: bool = True, build: bool = True,
               commit: bool = True) -> Flask:
    """Build the Flask app; config overrides any setting by name.

    build=True: this process builds (a test, a tool, `feedsvc build`): it has a Publisher whose refreshes
    are committed to the build store (unless commit=False), and refresh=False skips the first build.
    build=False: a serving process that only reads the store (feedsvc/building/builder.py decides who builds, by a lock).
    """
    app = Flask(__name__, instance_relative_config=True)
    settings = load_settings(config)
    logging.basicConfig(level=settings["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("feedsvc").setLevel(settings["LOG_LEVEL"])
    app.config.update(settings)
    from .building.builder import BuilderStatus, status_path
    from .building.site import site_from_settings
    from .building.state import StateStore
    from .store import StoreReader, create_schema
    from .serving.variants import Variants

    path = state_path(settings, app.instance_path)
    StateStore(path)  # a state file that cannot be written: one StateError that says so
    create_schema(path)
    reader = StoreReader(path)
    app.extensions.update({
        "feedsvc.settings": settings, "feedsvc.state_path": path, "feedsvc.store": reader,
        "feedsvc.status": BuilderStatus(status_path(path)),
        "feedsvc.variants": Variants(reader, site_from_settings(settings), settings["FEED_MAX_ITEMS"],
                                     {"full_text": settings["PUBLIC_CONTENT"] == "full", "hub": settings["WEBSUB_HUB"]},
                                     settings["ARCHIVE_MAX_AGE"]),
        "feedsvc.partners": load_partners(settings["PARTNERS"]),
        "feedsvc.limits": {"public": RateLimiter(settings["RATE_LIMIT"]), "partner": RateLimiter(settings["PARTNER_RATE_LIMIT"])},
    })
    if settings["WEBSUB_HUB"]:
        app.extensions["feedsvc.websub"] = HubNotifier(settings["WEBSUB_HUB"])
    if settings["PROXY_HOPS"]:  # the client address for rate limits comes from X-Forwarded-For
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings["PROXY_HOPS"], x_proto=settings["PROXY_HOPS"])
    from .serving import metrics, web  # imported here: prometheus_client must first load in a worker (metrics.py)

    app.register_blueprint(web.bp)
    metrics.instrument(app)
    if build:
        from .building.builder import start_building

        publisher = start_building(app, commit)
        if refresh:
            publisher.refresh()
    return app


def state_path(settings: Mapping[str, Any], instance_path: str | None = None) -> str:
    """The state store's file: STATE_PATH, else feedsvc.sqlite3 in the Flask instance folder."""
    if settings["STATE_PATH"]:
        return settings["STATE_PATH"]
    if instance_path is None:
        instance_path = Flask(__name__, instance_relative_config=True).instance_path
    return str(Path(instance_path) / "feedsvc.sqlite3")

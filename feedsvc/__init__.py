"""feedsvc: publish a folder of articles as RSS 2.0, Atom 1.0 and JSON Feed 1.1.

create_app() only wires the parts together: settings → build store reader → HTTP blueprint, and, in a
process that builds, state store → publisher → build store (feedsvc/building/builder.py).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from .config import Settings, load_settings
from .model import Site
from .partners import load_partners
from .serving.ratelimit import RateLimiter
from .serving.websub import HubNotifier

__version__ = "0.1.0"


def create_app(config: Mapping[str, Any] | None = None, *, refresh: bool = True, build: bool = True,
               commit: bool = True) -> "Flask":
    """Build the Flask app; config overrides any setting by name.

    build=True: this process builds (a test, a tool, `feedsvc build`): it has a Publisher whose refreshes
    are committed to the build store (unless commit=False), and refresh=False skips the first build.
    build=False: a serving process that only reads the store (feedsvc/building/builder.py decides who builds, by a lock).
    """
    from flask import Flask  # here, not at the top: `feedsvc serve`'s master imports feedsvc and never serves

    app = Flask(__name__, instance_relative_config=True)
    settings = load_settings(config)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("feedsvc").setLevel(settings.log_level)
    app.config.update(settings)
    from .building.builder import BuilderStatus, status_path
    from .building.state import StateStore
    from .store import StoreReader, create_schema
    from .serving.variants import Variants
    from .serving.web import ServingOptions

    path = state_path(settings, app.instance_path)
    StateStore(path)  # a state file that cannot be written: one StateError that says so
    create_schema(path)
    reader = StoreReader(path)
    app.extensions.update({
        "feedsvc.settings": settings, "feedsvc.state_path": path, "feedsvc.store": reader,
        "feedsvc.serving": ServingOptions(max_age=settings.refresh_seconds, articles_dir=Path(settings.articles_dir)),
        "feedsvc.status": BuilderStatus(status_path(path)),
        "feedsvc.variants": Variants(reader, Site.from_settings(settings), settings.feed_max_items,
                                     {"full_text": settings.public_content == "full", "hub": settings.websub_hub},
                                     settings.archive_max_age),
        "feedsvc.partners": load_partners(settings.partners),
        "feedsvc.limits": {"public": RateLimiter(settings.rate_limit), "partner": RateLimiter(settings.partner_rate_limit)},
    })
    if settings.websub_hub:
        app.extensions["feedsvc.websub"] = HubNotifier(settings.websub_hub)
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


def state_path(settings: Settings, instance_path: str | None = None) -> str:
    """The state store's file: STATE_PATH, else feedsvc.sqlite3 in the Flask instance folder."""
    if settings.state_path:
        return settings.state_path
    if instance_path is None:
        from flask import Flask

        instance_path = Flask(__name__, instance_relative_config=True).instance_path
    return str(Path(instance_path) / "feedsvc.sqlite3")

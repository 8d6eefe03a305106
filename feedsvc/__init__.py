"""feedsvc: publish a folder of articles as RSS 2.0, Atom 1.0 and JSON Feed 1.1.

create_app() only wires the parts together: settings → state store → publisher → HTTP blueprint.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import load_settings
from .partners import load_partners
from .ratelimit import RateLimiter
from .site import Publisher
from .state import StateStore
from .websub import HubNotifier

__version__ = "0.1.0"


def create_app(config: Mapping[str, Any] | None = None, *, refresh: bool = True) -> Flask:
    """Build the Flask app; config overrides any setting by name. refresh=False skips the first build."""
    app = Flask(__name__, instance_relative_config=True)
    settings = load_settings(config)
    logging.basicConfig(level=settings["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("feedsvc").setLevel(settings["LOG_LEVEL"])
    app.config.update(settings)
    publisher = Publisher(settings, StateStore(state_path(settings, app.instance_path)))
    app.extensions["feedsvc"] = publisher
    app.extensions["feedsvc.partners"] = load_partners(settings["PARTNERS"])
    app.extensions["feedsvc.limits"] = {"public": RateLimiter(settings["RATE_LIMIT"]),
                                        "partner": RateLimiter(settings["PARTNER_RATE_LIMIT"])}
    if settings["WEBSUB_HUB"]:
        notifier = HubNotifier(settings["WEBSUB_HUB"])
        app.extensions["feedsvc.websub"] = notifier
        publisher.listeners.append(notifier.notify)
    if settings["PROXY_HOPS"]:  # the client address for rate limits comes from X-Forwarded-For
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings["PROXY_HOPS"], x_proto=settings["PROXY_HOPS"])
    from . import metrics, web  # imported here: prometheus_client must first load in a worker (metrics.py)

    app.register_blueprint(web.bp)
    metrics.instrument(app)
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

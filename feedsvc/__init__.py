"""feedsvc: publish a folder of articles as RSS 2.0, Atom 1.0 and JSON Feed 1.1.

create_app() only wires the parts together: settings → state store → publisher → HTTP blueprint.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from flask import Flask

from .config import load_settings
from .site import Publisher
from .state import StateStore

__version__ = "0.1.0"


def create_app(config: Mapping[str, Any] | None = None, *, refresh: bool = True) -> Flask:
    """Build the Flask app; config overrides any setting by name. refresh=False skips the first build."""
    app = Flask(__name__, instance_relative_config=True)
    settings = load_settings(config)
    logging.basicConfig(level=settings["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("feedsvc").setLevel(settings["LOG_LEVEL"])
    app.config.update(settings)
    state_path = settings["STATE_PATH"] or str(Path(app.instance_path) / "feedsvc.sqlite3")
    publisher = Publisher(settings, StateStore(state_path))
    app.extensions["feedsvc"] = publisher
    from . import web

    app.register_blueprint(web.bp)
    if refresh:
        publisher.refresh()
    return app

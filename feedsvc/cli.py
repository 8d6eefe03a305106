"""Command line: `feedsvc serve | check`. It only turns options into settings and calls the app."""
from __future__ import annotations

import atexit
import json
import logging
import sys
from pathlib import Path

import click

from .articles import Options, load_articles
from .config import ConfigError, load_settings


def _overrides(**options) -> dict:
    return {name: value for name, value in options.items() if value is not None}


@click.group()
@click.version_option(package_name="feedsvc")
def main() -> None:
    """Publish a folder of articles as RSS, Atom and JSON Feed."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--articles", "articles_dir", type=click.Path(file_okay=False), help="Articles folder (setting ARTICLES_DIR).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
def serve(host: str, port: int, articles_dir: str | None, workers: int) -> None:
    """Serve the feeds with gunicorn, refreshing on a schedule."""
    from gunicorn.app.base import BaseApplication

    overrides = _overrides(ARTICLES_DIR=articles_dir)
    try:
        load_settings(overrides)  # fail before forking, with the setting's name
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None

    class _Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("accesslog", "-")
            self.cfg.set("worker_exit", _stop_refresher)

        def load(self):
            return serving_app(overrides)

    _Server().run()


def serving_app(overrides: dict):
    """The app as a serving process runs it: built, then kept fresh by a schedule and a file watcher.

    Only here is the scheduler started: never by create_app(), so never under Flask's reloader or in tests.
    """
    from . import create_app
    from .scheduler import Refresher
    from .text import warm_up

    warm_up()
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per job run is noise
    app = create_app(overrides, refresh=False)
    publisher = app.extensions["feedsvc"]
    watch = publisher.root if app.config["WATCH"] else None
    # Watch first, then build: a file saved while the first build runs is not missed.
    refresher = Refresher(publisher.refresh, publisher.next_wakeup, app.config["REFRESH_SECONDS"], watch).start()
    refresher.run()
    app.extensions["feedsvc.refresher"] = refresher
    atexit.register(refresher.stop)
    return app


def _stop_refresher(server, worker) -> None:
    """gunicorn worker_exit hook: stop the worker's scheduler and watcher cleanly."""
    app = getattr(worker, "wsgi", None)
    refresher = getattr(app, "extensions", {}).get("feedsvc.refresher")
    if refresher is not None:
        refresher.stop()


@main.command()
@click.argument("folder", required=False, type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools instead of a table.")
def check(folder: str | None, as_json: bool) -> None:
    """List every file that would be skipped, with its reason and the fix; exit 1 if any."""
    try:
        settings = load_settings(_overrides(ARTICLES_DIR=folder))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    root = Path(settings["ARTICLES_DIR"])
    if not root.is_dir():
        raise click.ClickException(f"articles folder {root} does not exist; pass a folder or set ARTICLES_DIR")
    articles, skipped = load_articles(root, Options.from_settings(settings))
    if as_json:
        report = {
            "folder": str(root),
            "articles": len(articles),
            "skipped": [{"file": s.source, "reason": s.reason, "fix": s.fix} for s in skipped],
        }
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        click.echo(f"{root}: {len(articles)} articles publishable, {len(skipped)} files skipped")
        if skipped:
            width = max(len(s.source) for s in skipped)
            click.echo(f"{'FILE'.ljust(width)}  REASON — FIX")
            for s in skipped:
                click.echo(f"{s.source.ljust(width)}  {s.reason} — {s.fix}")
    sys.exit(1 if skipped else 0)

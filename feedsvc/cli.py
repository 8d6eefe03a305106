"""Command line: `feedsvc serve | build | check`. It only turns options into settings and calls the app."""
from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import click

from .articles import Options
from .config import ConfigError, load_settings
from .formats import FORMATS

PROGRESS_FROM = 500  # resources: a smaller export is written before a bar would be worth showing


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
    _settings(**overrides)  # fail before forking, with the setting's name
    _metrics_folder()

    class _Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("accesslog", "-")
            # %(U)s is the path without the query string: a partner's ?key= never reaches a log.
            self.cfg.set("access_log_format", '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(f)s" "%(a)s"')
            self.cfg.set("worker_exit", _stop_refresher)
            self.cfg.set("child_exit", _worker_exited)

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


def _metrics_folder() -> None:
    """An empty PROMETHEUS_MULTIPROC_DIR for the workers' metrics (feedsvc/metrics.py), set before any import them."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        for stale in Path(folder).glob("*.db"):  # a previous run's numbers would be added to this one's
            stale.unlink()
        return
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="feedsvc-metrics-")
    atexit.register(_remove_folder, folder, os.getpid())


def _remove_folder(folder: str, owner: int) -> None:
    # Workers inherit atexit handlers at fork and run them when they exit: only the master removes it.
    if os.getpid() == owner:
        shutil.rmtree(folder, ignore_errors=True)


def _worker_exited(server, worker) -> None:
    """gunicorn child_exit hook: drop a dead worker's live gauges; its counters still count."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


@main.command()
@click.option("--out", required=True, type=click.Path(), help="Export folder: a link to the newest complete build.")
@click.option("--articles", "articles_dir", type=click.Path(file_okay=False), help="Articles folder (setting ARTICLES_DIR).")
def build(out: str, articles_dir: str | None) -> None:
    """Write every feed, page and stylesheet as files for nginx or a CDN, switched into place at once."""
    from . import create_app
    from .export import ExportError, export_resources, export_snapshot

    app = create_app(_settings(ARTICLES_DIR=articles_dir), refresh=False)
    publisher = app.extensions["feedsvc"]
    publisher.listeners.clear()  # the hub hears of a change once it is exported, not while it is built
    if not publisher.refresh():
        raise click.ClickException(f"build failed, {out} is left as it was: {publisher.last_error}")
    resources = export_resources(publisher)
    bar = click.progressbar(length=len(resources), label="Writing", file=sys.stderr) if _show_progress(len(resources)) else None
    try:
        with bar or contextlib.nullcontext():
            result = export_snapshot(resources, Path(out), advance=bar.update if bar else None)
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{out} → {result.folder.name}: {len(resources)} resources, {result.written} files written, "
               f"{result.kept} unchanged, {len(result.left_out)} left out")
    if publisher.snapshot.skipped:
        click.echo(f"{len(publisher.snapshot.skipped)} files skipped; `feedsvc check` lists them", err=True)
    if app.config["WEBSUB_HUB"]:
        _ping_hub(app.config["WEBSUB_HUB"], publisher, set(result.changed))


def _ping_hub(hub: str, publisher, changed: set[str]) -> None:
    """Tell the WebSub hub of each public feed whose file changed; a refused ping is a warning."""
    from .feeds import feed_url
    from .websub import post_publish

    for feed in publisher.snapshot.feeds:
        for fmt in FORMATS:
            if feed.path(fmt) in changed:
                try:
                    post_publish(hub, feed_url(publisher.site, feed, fmt), 10.0)
                except (OSError, ValueError) as exc:
                    click.echo(f"WebSub hub {hub} did not take {feed.path(fmt)}: {exc}", err=True)


def _show_progress(resources: int) -> bool:
    return resources >= PROGRESS_FROM and sys.stderr.isatty()


@main.command()
@click.argument("folder", required=False, type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools instead of a table.")
def check(folder: str | None, as_json: bool) -> None:
    """List every skipped file with its reason and fix, and articles that look wrong; exit 1 if any is skipped."""
    from .audit import check_folder

    settings = _settings(ARTICLES_DIR=folder)
    root = Path(settings["ARTICLES_DIR"])
    if not root.is_dir():
        raise click.ClickException(f"articles folder {root} does not exist; pass a folder or set ARTICLES_DIR")
    report = check_folder(root, Options.from_settings(settings))
    if as_json:
        click.echo(json.dumps({"folder": str(root), "articles": report.articles, "drafts": report.drafts,
                               "embargoed": [t.isoformat() for t in report.embargoed], "skipped": _rows(report.skipped),
                               "warnings": _rows(report.findings)}, ensure_ascii=False, indent=2))
    else:
        click.echo(f"{root}: {report.headline()}, {len(report.skipped)} files skipped, "
                   f"{len(report.findings)} warnings")
        _table("Skipped, not published:", "REASON", report.skipped)
        _table("Warnings, published but worth a look:", "WARNING", report.findings)
    sys.exit(1 if report.skipped else 0)


def _table(title: str, what: str, rows: tuple) -> None:
    """Rows of (source, reason, fix) under a title, the file names in one column; nothing if none."""
    if not rows:
        return
    width = max(len("FILE"), *(len(r.source) for r in rows))
    click.echo(f"\n{title}\n{'FILE'.ljust(width)}  {what} — FIX")
    for r in rows:
        click.echo(f"{r.source.ljust(width)}  {r.reason} — {r.fix}")


def _rows(items: tuple) -> list[dict]:
    return [{"file": i.source, "reason": i.reason, "fix": i.fix} for i in items]


def _settings(**options) -> dict:
    """Settings with the command's options on top; a bad setting is a one-line error naming it."""
    try:
        return load_settings(_overrides(**options))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None

"""Command line: `feedsvc serve | build | check`. It only turns options into settings and calls the app."""
from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click

from .config import ConfigError, Settings, explicit_settings, load_settings
from .formats import FORMATS
from .reading.articles import Options

PROGRESS_FROM = 500  # resources: a smaller export is written before a bar would be worth showing


def _overrides(**options) -> dict:
    return {name: value for name, value in options.items() if value is not None}


@click.group()
@click.version_option(package_name="feedsvc")
def main() -> None:
    """Publish a folder of articles as RSS, Atom and JSON Feed."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--articles", "articles_dir", type=click.Path(file_okay=False), help="Articles folder (setting ARTICLES_DIR).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
def serve(host: str, port: int, articles_dir: str | None, workers: int) -> None:
    """Serve the feeds with gunicorn, refreshing on a schedule."""
    from gunicorn.app.base import BaseApplication

    from .server import ServeError, asgi_app, check_port, gunicorn_settings, preflight, site_url_for, site_url_warning, with_builder

    overrides = _overrides(ARTICLES_DIR=articles_dir)
    if "SITE_URL" not in explicit_settings():  # links follow the address served, unless told otherwise
        overrides["SITE_URL"] = site_url_for(host, port)
        if host in ("0.0.0.0", "::"):
            click.echo(f"links point at {overrides['SITE_URL']}; set SITE_URL to the address readers use", err=True)
    settings = _settings(**overrides)  # fail before forking, with the setting's name
    try:
        preflight(settings)
        check_port(host, port)
    except ServeError as exc:
        raise click.ClickException(str(exc)) from None
    warning = site_url_warning(settings.site_url, host, port)
    if warning:
        click.echo(warning, err=True)

    class _Server(BaseApplication):
        def load_config(self):
            for name, value in {**gunicorn_settings(), **with_builder(overrides)}.items():
                self.cfg.set(name, value)
            self.cfg.set("bind", f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}")
            self.cfg.set("workers", workers)

        def load(self):
            return asgi_app(overrides)

    _Server().run()


@main.command()
@click.option("--out", required=True, type=click.Path(), help="Export folder: a link to the newest complete build.")
@click.option("--articles", "articles_dir", type=click.Path(file_okay=False), help="Articles folder (setting ARTICLES_DIR).")
def build(out: str, articles_dir: str | None) -> None:
    """Write every feed, page and stylesheet as files for nginx or a CDN, switched into place at once."""
    from . import create_app
    from .building.export import ExportError, export_resources, export_snapshot
    from .building.state import StateError

    try:
        # The export is written from this process's snapshot: nothing goes to the build store.
        app = create_app(_settings(ARTICLES_DIR=articles_dir), refresh=False, commit=False)
    except (ConfigError, StateError) as exc:  # a partner key not set, a state file that cannot be written
        raise click.ClickException(f"build failed, {out} is left as it was: {exc}") from None
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
    except OSError as exc:  # a full disk, a read-only folder: the export's switch never happened
        raise click.ClickException(f"build failed, {out} is left as it was: cannot write {exc.filename or 'the export'}: "
                                   f"{exc.strerror or exc}") from None
    click.echo(f"{out} → {result.folder.name}: {len(resources)} resources, {result.written} files written, "
               f"{result.kept} unchanged, {len(result.left_out)} left out")
    if publisher.snapshot.skipped:
        click.echo(f"{len(publisher.snapshot.skipped)} files skipped; `feedsvc check` lists them", err=True)
    hub = app.extensions["feedsvc.settings"].websub_hub
    if hub:
        _ping_hub(hub, publisher, set(result.changed))


def _ping_hub(hub: str, publisher, changed: set[str]) -> None:
    """Tell the WebSub hub of each public feed whose file changed; a refused ping is a warning."""
    from .urls import feed_url
    from .serving.websub import post_publish

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
    from .reading.audit import check_folder

    settings = _settings(ARTICLES_DIR=folder)
    root = Path(settings.articles_dir)
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


def _settings(**options) -> Settings:
    """Settings with the command's options on top; a bad setting is a one-line error naming it."""
    try:
        return load_settings(_overrides(**options))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None

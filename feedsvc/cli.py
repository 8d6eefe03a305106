"""Command line: `feedsvc serve | build | check`. It only turns options into settings and calls the app."""
from __future__ import annotations

import gc
import json
import logging
import os
import signal
import sys
import time
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Callable, Iterator

import click

from .config import ConfigError, Settings, explicit_settings, folder_problem, load_settings
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
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--articles", "articles_dir", type=click.Path(readable=False), help="Articles folder (setting ARTICLES_DIR).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
def serve(host: str, port: int, articles_dir: str | None, workers: int) -> None:
    """Serve the feeds with gunicorn, refreshing on a schedule."""
    with _hup_said(), _stoppable("serve"):  # until gunicorn's arbiter, which sets its own handlers (and exits 0 on either)
        _serve(host, port, articles_dir, workers)


HUP_SAID = ("SIGHUP: feedsvc serve does not reload its settings (its builder would go on with the old ones); restart it "
            "to apply them")


@contextmanager
def _hup_said() -> Iterator[None]:
    """SIGHUP before gunicorn's arbiter runs, as after (_Arbiter.handle_hup): said, and serving goes on. It ended `serve`
    silently (exit 129) in its first tenths of a second, SIGHUP's default (found in review)."""
    def said(_signum: int, _frame) -> None:
        with suppress(OSError):
            os.write(2, f"{HUP_SAID}\n".encode())

    previous = signal.signal(signal.SIGHUP, said) if signal.getsignal(signal.SIGHUP) != signal.SIG_IGN else None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGHUP, previous)


def _serve(host: str, port: int, articles_dir: str | None, workers: int) -> None:
    """The checks, the builder, then gunicorn's arbiter and its workers."""
    from .server import ServeError, check_port, preflight, site_url_for, site_url_warning, start_builder

    overrides = _overrides(ARTICLES_DIR=articles_dir)
    try:
        explicit = explicit_settings()  # reads feedsvc.toml and FEEDSVC_*: an unknown name or a bad value stops here
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if "SITE_URL" not in explicit:  # links follow the address served, unless told otherwise
        overrides["SITE_URL"] = site_url_for(host, port)
        if host in ("0.0.0.0", "::", "[::]"):
            click.echo(f"links point at {overrides['SITE_URL']}; set SITE_URL to the address readers use", err=True)
    settings = _settings(**overrides)  # fail before forking, with the setting's name
    try:
        preflight(settings)
        check_port(host, port)
    except ServeError as exc:
        raise click.ClickException(str(exc)) from None
    warning = site_url_warning(settings.site_url, host, port, proxied=settings.proxy_hops > 0)
    if warning:
        click.echo(warning, err=True)
    _run_gunicorn(host, port, workers, overrides, start_builder(overrides))  # the builder first: a cold start's longest chain


def _run_gunicorn(host: str, port: int, workers: int, overrides: dict, builder) -> None:
    """gunicorn's arbiter, the builder started, the workers to come."""
    from .server import asgi_app, gunicorn_settings, with_builder
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):
        def load_config(self):
            for name, value in {**gunicorn_settings(), **with_builder(builder)}.items():
                self.cfg.set(name, value)
            self.cfg.set("bind", f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}")
            self.cfg.set("workers", workers)

        def load(self):
            return asgi_app(overrides)

        def run(self):
            from gunicorn.arbiter import Arbiter

            class _Arbiter(Arbiter):
                def handle_hup(self):
                    # gunicorn's reload makes new workers with the settings as they are now, while the dedicated builder
                    # goes on with those it started with: feeds and their archive pages cut two ways, unsaid.
                    self.log.warning(HUP_SAID)

            try:
                _Arbiter(self).run()
            except RuntimeError as exc:
                raise click.ClickException(str(exc)) from None

    _Server().run()


OWN_PROCESS = "own process"  # the context's obj when run() runs a command, not a test's CliRunner


def run() -> None:
    """The `feedsvc` command (the console script, `python -m feedsvc`): main() as its process's own (OWN_PROCESS)."""
    main(obj=OWN_PROCESS)


@main.command()
@click.option("--out", required=True, type=click.Path(), help="Export folder: written in place, only what changed.")
@click.option("--articles", "articles_dir", type=click.Path(readable=False), help="Articles folder (setting ARTICLES_DIR).")
@click.pass_obj
def build(obj, out: str, articles_dir: str | None) -> None:
    """Build into the store, then write every feed, page and stylesheet that changed as files for nginx or a CDN."""
    with _collecting_less(), _stoppable("build", _export_told(out)) if obj is OWN_PROCESS else nullcontext():
        _build(out, articles_dir)
    if obj is OWN_PROCESS:
        _end_process()


STOPPED_BY = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
STOP_SECONDS = 3  # the most a stop takes: its children's end (end_children: 2 s at most), then its line


@contextmanager
def _stoppable(command: str, told: Callable[[], str] = lambda: "") -> Iterator[None]:
    """A command stopped by SIGINT or SIGTERM ends at once, as a killed one would (every file of an export whole, every
    commit to the store a transaction), its children with it, in one line (`build stopped (Ctrl-C): ` + told()) and
    with 128 + the signal's number (130, 143) as a shell reports it: not a KeyboardInterrupt traceback from it and
    each of its workers, then click's "Aborted!". (gunicorn's arbiter sets its own handlers once it runs.)"""

    def stop(signum: int, _frame) -> None:
        # Whatever fails here, the process ends: an exception raised from a handler surfaces wherever the main thread
        # was, and an `except OSError` there took the BrokenPipeError of a Ctrl-C of `feedsvc build 2>&1 | tee log`
        # (tee ended by the same Ctrl-C): the build ran on, both signals ignored by then.
        def now(*_) -> None:
            os._exit(128 + signum)

        try:
            # A second Ctrl-C or SIGTERM ends it at once, without its line, and so does the alarm: output that cannot be
            # written (standard error a full pipe nobody reads: a paused `| less`) held the stop for good, deaf to both.
            for number in (*STOPPED_BY, signal.SIGALRM):
                signal.signal(number, now)
            signal.alarm(STOP_SECONDS)
            from .children import end_children, flush_output

            end_children()  # before the line: no worker writes into an export after it is said
            line = f"{command} stopped ({STOPPED_BY[signum]})" + (f": {tail}" if (tail := told()) else "")
            with suppress(RuntimeError, OSError, ValueError):  # stopped in the middle of a write; an output gone
                logging.shutdown()
                flush_output()
            os.write(2, f"{line}\n".encode(errors="surrogateescape"))
        finally:  # the line may be lost (stderr gone too: `2>&1 | tee log`), the stop is not
            os._exit(128 + signum)

    # One ignored as it started stays so: `feedsvc build &` in a script ignores a Ctrl-C (sh's rule: it is the script's)
    previous = {number: signal.signal(number, stop)
                for number in STOPPED_BY if signal.getsignal(number) != signal.SIG_IGN}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _export_told(out: str) -> Callable[[], str]:
    """What a stopped build tells of its export folder: as it was, partly updated, or holding this build. Its staging
    folder (archive pages made ahead, hidden from nginx) goes first: a folder "left as it was" holds nothing of it."""
    from .building.exportfolder import STAGING, WRITING, export_folder, remove_staging

    before = _manifest_seen(out)

    def told() -> str:
        with suppress(OSError):
            remove_staging(export_folder(out) / f"{STAGING}{os.getpid()}")
        if (export_folder(out) / WRITING).exists():  # noted before it changed any file, removed once it wrote them all
            return f"{out} may be partly updated (every file whole; the next build finishes it)"
        return f"{out} holds this build's export" if _manifest_seen(out) != before else f"{out} is left as it was"

    return told


def _manifest_seen(out: str) -> tuple | None:
    """Which manifest the export folder holds (written whole, renamed into place: a new one is a new file), or None."""
    from .building.exportfolder import MANIFEST, export_folder

    try:
        seen = (export_folder(out) / MANIFEST).stat()
    except OSError:
        return None
    return seen.st_ino, seen.st_mtime_ns


def _end_process() -> None:
    """End a finished build's process at once, its output flushed. The interpreter's own end would free the build's
    objects one by one (10,000 articles' placements, stamps and rows: 0.05 s of a one-file build), memory the OS takes
    back whole; by now the store is committed and checkpointed (_build) and every exported file renamed into place."""
    logging.shutdown()
    from .children import flush_output

    flush_output()  # where there is an output: started with it closed (`>&-`), Python has None
    os._exit(0)


@contextmanager
def _collecting_less() -> Iterator[None]:
    """The collector at building.builder.ARCHIVE_GC_THRESHOLDS for a build, and as it was after it (a test runs many
    in one process)."""
    from .building.builder import ARCHIVE_GC_THRESHOLDS

    before = gc.get_threshold()
    gc.set_threshold(*ARCHIVE_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def _apart(out: Path, articles: Path) -> None:
    """Refuse an export folder inside the articles folder (its robots.txt and pages would be read as articles at the
    next build) or around it (the export removes files it did not write)."""
    out_real, articles_real = out.resolve(), articles.resolve()
    if out_real == articles_real or articles_real in out_real.parents:
        raise click.ClickException(f"--out {out} is inside the articles folder {articles}: the next build would read the "
                                   "export's files as articles; choose a folder outside it")
    if out_real in articles_real.parents:
        raise click.ClickException(f"--out {out} holds the articles folder {articles}: the export removes files it did not "
                                   "write; choose a folder beside it")


WHOLE_WAIT = 600.0  # seconds `build` waits for a server's build to be whole: a 100,000-article cold start's reading is 4 min


def _wait_whole(reader, out: str, wait: float = WHOLE_WAIT) -> None:
    """Wait until the server's latest build is whole: none yet, or a cold start's first build (its feeds first, its pages
    and the articles it has only placed still to come), would export feeds whose items link to pages not written."""
    deadline, told = time.monotonic() + wait, False
    while True:
        latest = reader.build()
        report = latest[2] if latest else {}
        left = report.get("pages_pending", 0) + report.get("placed", 0)
        if latest is not None and not report.get("partial") and not left:
            return
        if time.monotonic() >= deadline:
            raise click.ClickException(f"build failed, {out} is left as it was: the server's build is not whole after "
                                       f"{wait:.0f} s ({left} articles and pages still to make); run `feedsvc build` again "
                                       "once its /healthz says left_to_read 0")
        if not told:
            click.echo("the server's build is not whole yet (a cold start finishing its pages and articles): waiting for it",
                       err=True)
            told = True
        time.sleep(0.25)


def _served_variants(app, settings):
    """The archive pages of the build a server made, with the settings it made it with (its SITE_URL, FEED_MAX_ITEMS,
    PUBLIC_CONTENT, …): its first pages link them there, and this command's own (SITE_URL unset: 127.0.0.1:8000;
    another FEED_MAX_ITEMS) gave an export with two sites' links, or archive pages cut for another first page."""
    from . import VARIANT_SETTINGS, _variants
    from .config import replaced

    latest = app.extensions["feedsvc.store"].build()
    report = latest[2] if latest else {}
    # A build from before its report named its settings: its site URL alone.
    served = {**{name: value for name, value in report.get("variants", {}).items() if name in VARIANT_SETTINGS},
              "site_url": report.get("site_url") or settings.site_url}
    differ = [name.upper() for name, value in served.items() if getattr(settings, name) != value]
    if not differ:
        return app.extensions["feedsvc.variants"]
    click.echo(f"the server's build is for {served['site_url']}, made with other settings than this command's "
               f"({', '.join(differ)}): its archive pages are written with the server's", err=True)
    try:
        theirs = replaced(settings, **served)
    except ConfigError as exc:  # a report no build of this version writes (edited by hand)
        raise click.ClickException(f"the server's build records settings this command cannot use ({exc}); "
                                   "stop the server and build again") from None
    return _variants(theirs, app.extensions["feedsvc.store"], app.extensions["feedsvc.state_path"])


def _build(out: str, articles_dir: str | None) -> None:
    from . import for_export, state_path
    from .building.committer import Committer
    from .building.exportpool import end_ahead, fork_ahead
    from .building.lock import BuildLock, lock_path, writable
    from .building.state import StateError
    from .children import Ahead
    from .reading.folder import Folder
    from .reading.pool import POOL_FROM, prestart, release
    from .store import has_build
    from .building.storewriter import held_at

    settings = _settings(ARTICLES_DIR=articles_dir)
    problem = folder_problem(settings.articles_dir)
    if problem is not None:  # before anything is built or written: one line, as `serve` and `check` say it
        raise click.ClickException(problem)
    _apart(Path(out), Path(settings.articles_dir))
    folder, store = Folder(settings.articles_dir), state_path(settings)
    from_scratch = not has_build(store) and folder.holds_at_least(POOL_FROM)
    ahead = lock = None
    building, early, served = False, [], None  # early: archive pages made ahead, while the build commits its article pages
    try:  # whatever fails from the first fork on, every process started ahead is ended with the build
        if from_scratch:
            # A build from scratch reads every file: its reading workers start now, forks of this process before it runs
            # any thread, as a server's builder starts them (building/builder.py build_forever), where interpreters
            # started anew imported for about 0.1 s each before they read a file (10,000 articles: files read 0.2 s sooner).
            prestart()
        # On the other core while the build imports and wires itself: the folder's walk, then the rows its first
        # comparison reads (building/committer.py Committer._held).
        ahead = Ahead({"walk": folder.walk, "held": lambda: held_at(store)}, "feedsvc-ahead")
        if from_scratch:  # and its export's workers, for the archive pages it hands out seconds later
            fork_ahead()
        try:
            app = for_export(settings)
        except (ConfigError, StateError) as exc:  # a partner key not set, a state file that cannot be written
            raise click.ClickException(f"build failed, {out} is left as it was: {exc}") from None
        gc.freeze()  # the modules and the wiring live as long as the build: no collection needs to look at them
        publisher, state = app.extensions["feedsvc"], app.extensions["feedsvc.state_path"]
        publisher.listeners.clear()  # the hub hears of a change once it is exported, not while it is built
        publisher.scanner.ahead = lambda walked: ahead.result("walk") if walked.real == folder.real else None
        for observer in publisher.observers:
            if isinstance(observer, Committer):
                observer.held_ahead = lambda: ahead.result("held")
        # The same build a server's builder makes, committed to the same store; a server running on this store
        # holds the build lock and keeps it current itself, so its latest build is exported as it is.
        if (why := writable(state)) is not None:  # a read-only or full state folder: SQLite opened it read-only, quietly
            raise click.ClickException(f"build failed, {out} is left as it was: {why}")
        lock = BuildLock(lock_path(state))
        building = lock.try_acquire()
        if building:
            pages = _build_into_store(publisher, out, lambda: early.append(_early_pages(app, state, out)))
        else:
            click.echo(f"another process builds into {state} (a server, or a build running now): exporting its latest build", err=True)
            _wait_whole(app.extensions["feedsvc.store"], out)
            served = _served_variants(app, settings)
            pages = served.get
        result = _export(app, state, out, pages, building, early[0] if early else None, served)
    finally:
        release()  # the reading workers started ahead, if the build did not end them (it failed, or a server builds)
        end_ahead()  # and the export's, if it took none
        for pages_ahead in early:
            pages_ahead.close()
        if ahead is not None:
            ahead.close()  # what the build did not take (it failed first, or a server builds)
        if lock is not None and lock.fd is not None:  # the export is written: a server may build now
            os.close(lock.fd)
        if building:  # the store's log moved into its file (storewriter.Checkpoints), as a close would before the process ends
            for observer in publisher.observers:
                if isinstance(observer, Committer):
                    observer.writer.checkpoints.wait()
    click.echo(f"{out}: build {result.version}{' (written whole)' if result.full else ''}, {result.resources} resources, "
               f"{result.written} files written, {result.unchanged} unchanged, {result.removed} removed, "
               f"{len(result.left_out)} left out")
    if building and publisher.snapshot.skipped:
        click.echo(f"{_count(len(publisher.snapshot.skipped), 'file')} skipped; `feedsvc check` lists them", err=True)
    hub = app.extensions["feedsvc.settings"].websub_hub
    if hub and building:
        _ping_hub(hub, publisher, set(result.changed), state)


def _build_into_store(publisher, out: str, committed):
    """Refresh and commit to the build store as a server's builder does; the maker of archive pages.
    committed() is called once the build's listings and items are in the store, while its article pages are
    still to commit (a whole build's: seconds on one core)."""
    from .building.committer import Committer
    from .building.export import archive_page
    from .resource import code_beside

    publisher.read_in_full()  # the export writes every page at once: no placement pass (building/site.py)
    # Every coding is committed with the build (committer.Committer): the changed feeds' made on the second core while the
    # render goes on to the sitemaps and pages, and the commit compares the rest (0.08 s of a one-file build).
    publisher.renderer.code_fresh = code_beside
    if not publisher.refresh():
        raise click.ClickException(f"build failed, {out} is left as it was: {publisher.last_error}")
    if not publisher.last_error and any(isinstance(o, Committer) and not o.wait(0) for o in publisher.observers):
        committed()
    for observer in publisher.observers:
        if isinstance(observer, Committer):
            observer.wait()  # the article pages a first build commits in the background
    if publisher.last_error:  # the commit to the store failed
        raise click.ClickException(f"build failed, {out} is left as it was: {publisher.last_error}")
    return archive_page(publisher)


def _early_pages(app, state: str, out: str):
    """Archive pages rendered by worker processes while the build commits its article pages (export.EarlyPages)."""
    from .building.export import EarlyPages, archive_shape
    from .building.exportpool import Job

    variants = app.extensions["feedsvc.variants"]
    return EarlyPages(state, out, Job("", "", variants.site, variants.size, variants.public), variants.size,
                      archive_shape(variants.site, variants.public))


def _export(app, state: str, out: str, pages, building: bool, early=None, variants=None):
    """Write the store's latest build into the export folder, with a progress bar on a terminal."""
    import sqlite3

    from .building.export import ExportError, ExportWriteError, archive_shape, export_store
    from .building.exportpool import Job

    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None and _show_progress(total):
            bar = click.progressbar(length=total, label="Writing", file=sys.stderr)
        if bar is not None:
            bar.update(1)

    try:
        variants = variants or app.extensions["feedsvc.variants"]  # a server's, when it builds (_served_variants)
        # Archive pages made by worker processes from the store, only while this build holds the store (job).
        job = Job("", "", variants.site, variants.size, variants.public) if building else None
        return export_store(state, Path(out), pages, variants.size, archive_shape(variants.site, variants.public), progress,
                            job, early)
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    except sqlite3.OperationalError as exc:  # the state store's disk full as the export records what it wrote
        raise click.ClickException(f"build failed, {out} may be partly updated (every file whole; the next build finishes it): "
                                   f"the state store {state} cannot be written ({exc}); free space on its disk") from None
    except OSError as exc:  # a full disk, a read-only folder: the files written are whole, the rest as they were
        state = ("is partly updated (every file whole; the next build finishes it)" if isinstance(exc, ExportWriteError) and exc.partly
                 else "is left as it was")
        raise click.ClickException(f"build failed, {out} {state}: cannot write {exc.filename or 'the export'}: "
                                   f"{exc.strerror or exc}") from None
    finally:
        if bar is not None:
            bar.render_finish()


BUILD_PING_SECONDS = 60.0  # what `feedsvc build` gives the hub in all; the rest is kept for the next build or server


def _ping_hub(hub: str, publisher, changed: set[str], state: str) -> None:
    """Tell the WebSub hub of each public feed whose file changed, and of those a build or server before left unsent,
    SENDERS at a time; what it does not take is kept in the state file for the next build or server to send."""
    from concurrent.futures import ThreadPoolExecutor

    from .urls import feed_url
    from .serving.websub import SENDERS, HubRefused, Unsent, post_publish

    keep = Unsent(state)
    urls = [feed_url(publisher.site, feed, fmt) for feed in publisher.snapshot.feeds for fmt in FORMATS
            if feed.path(fmt) in changed]
    kept = keep.add(urls)
    urls += sorted(set(keep.all()) - set(urls))  # this build's changes first, then what builds before left

    ends = time.monotonic() + BUILD_PING_SECONDS  # a hub that takes none (thousands kept) never holds the build long

    def send(url: str) -> Exception | None:
        if time.monotonic() > ends:
            return OSError(f"not sent within the build's {BUILD_PING_SECONDS:.0f} s for the hub")
        try:
            post_publish(hub, url, min(10.0, max(0.1, ends - time.monotonic())))  # none runs past the budget
        except (OSError, ValueError) as exc:
            return exc
        return None

    with ThreadPoolExecutor(SENDERS) as pool:
        failed = {url: exc for url, exc in zip(urls, pool.map(send, urls)) if exc is not None}
    refused = [url for url, exc in failed.items() if isinstance(exc, HubRefused)]  # for good: not kept to send again
    keep.remove([url for url in urls if url not in failed] + refused)
    if failed:
        first = next(iter(failed.values()))
        later = len(failed) - len(refused)
        click.echo(f"WebSub hub {hub} did not take {len(failed)} of {len(urls)} feeds ({first})"
                   + (f"; {len(refused)} refused for good, not sent again" if refused else "")
                   + ((f"; kept in {state}: the next build, or `serve`, tells it" if kept else
                       f"; {state} could not keep them: they are lost") if later else ""), err=True)


def _show_progress(resources: int) -> bool:
    return resources >= PROGRESS_FROM and sys.stderr.isatty()


@main.command()
@click.argument("folder", required=False, type=click.Path(readable=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools instead of a table.")
def check(folder: str | None, as_json: bool) -> None:
    """List every skipped file with its reason and fix, and articles that look wrong; exit 1 if any is skipped."""
    from .reading.audit import check_folder

    try:
        settings = _settings(ARTICLES_DIR=folder)
    except click.ClickException as exc:  # a setting to fix (feedsvc.toml, FEEDSVC_*): no file was looked at
        if as_json:  # a tool reads standard output as JSON whatever happens
            click.echo(json.dumps({"folder": folder, "error": exc.message}, ensure_ascii=False, indent=2))
        exc.exit_code = 2  # as a folder that is not there: 1 says files were skipped
        raise
    root = Path(settings.articles_dir)
    said = folder_problem(root, named_by="pass a folder")
    if said is not None:
        if as_json:  # a tool reads standard output as JSON whatever happens
            click.echo(json.dumps({"folder": str(root), "error": said}, ensure_ascii=False, indent=2))
        error = click.ClickException(said)
        error.exit_code = 2  # as click's own usage errors: 1 says files were skipped
        raise error
    from .reading.articles import Options

    report = check_folder(root, Options.from_settings(settings), slugs=settings.category_slugs)
    if as_json:
        click.echo(json.dumps({"folder": str(root), "articles": report.articles, "drafts": report.drafts,
                               "embargoed": [t.isoformat() for t in report.embargoed], "skipped": _rows(report.skipped),
                               "warnings": _rows(report.findings)}, ensure_ascii=False, indent=2))
    else:
        click.echo(f"{root}: {report.headline()}, {_count(len(report.skipped), 'file')} skipped, "
                   f"{_count(len(report.findings), 'warning')}")
        _table("Skipped, not published:", "REASON", report.skipped)
        _table("Warnings, published but worth a look:", "WARNING", report.findings)
    sys.exit(1 if report.skipped else 0)


def _count(n: int, noun: str) -> str:
    """"1 file", "2 files": a count with its noun."""
    return f"{n} {noun}{'s' * (n != 1)}"


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

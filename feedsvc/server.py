"""The serving process: gunicorn's asyncio worker in front of the WSGI app, its settings and hooks, and the
checks made before any worker starts.

Workers are gunicorn's `asgi` worker: a connection costs a coroutine until its whole request has arrived,
so a slow client never holds a worker; the Flask app then runs on one of a few threads (feedsvc/serving/asgi.py).
"""
from __future__ import annotations

import atexit
import errno
import ipaddress
import logging
import os
import re
import shutil
import socket
import time
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from . import allocator
from .children import Forked
from .config import Settings

# Per worker: lookups hold the GIL, so more threads only queue behind it (and raise p99); fewer would let one
# slow render (a ?since= delta) hold up the rest.
APP_THREADS = 4
METRICS_PREFIX = "feedsvc-metrics-"  # + the serving process's PID + "-": a folder of a dead PID is stale
_METRICS_FOLDER = re.compile(re.escape(METRICS_PREFIX) + r"(\d+)-")
LOOPBACK_NAMES = ("localhost",)

log = logging.getLogger(__name__)


class ServeError(Exception):
    """`feedsvc serve` cannot start; the message is one line that names the cause and the fix."""


# --- gunicorn settings, shared by `feedsvc serve` and `gunicorn -c python:feedsvc.gunicorn_conf` ---

def gunicorn_settings(checks: bool = False) -> dict[str, Any]:
    """gunicorn's settings by name: the asyncio worker, the access log, no control socket, the hooks.

    checks: run preflight() in the master before any worker starts (`feedsvc serve` runs it itself, first).
    """
    # Here, not at the top: gunicorn's logger (10-20 ms of imports) comes after the builder's fork (start_builder).
    from .serving.accesslog import ACCESS_LOG_FORMAT, AccessLog

    return {
        "worker_class": "asgi",
        "accesslog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "logger_class": AccessLog,  # feedsvc/serving/accesslog.py
        # gunicorn 23+ opens a control socket, by default one shared path in the home folder: two servers
        # would fight over it, and nothing here uses it.
        "control_socket_disable": True,
        "graceful_timeout": 5,  # a request takes milliseconds: a stop waits no longer for clients that never finish
        "on_starting": on_starting_checked if checks else on_starting,
        "post_worker_init": asgi_only,
        "worker_exit": worker_exit,
        "child_exit": child_exit,
    }


WSGI_NAMED = ("feedsvc: these gunicorn settings run its asyncio worker, which calls an ASGI app: name wsgi:asgi, not the "
              "Flask app (wsgi:app is for gunicorn's sync workers, without -c python:feedsvc.gunicorn_conf)")


def asgi_only(worker) -> None:
    """gunicorn hook, in a worker once its app is loaded: the Flask app named to the asyncio worker (`gunicorn -c
    python:feedsvc.gunicorn_conf wsgi:app`) started, built, then answered every request 500 (a TypeError each: the
    worker calls app(scope, receive, send)). Said in one line; exit code 3 (WORKER_BOOT_ERROR) stops the master."""
    from flask import Flask

    if isinstance(getattr(worker, "asgi", None), Flask):  # the asgi worker keeps its app as `asgi`
        worker.log.error(WSGI_NAMED)
        sys.exit(3)


def serving_app(overrides: Mapping[str, Any]):
    """The Flask app as a serving process runs it: answering from the build store at once, and building too
    if it wins the build lock (now, or when the builder it was waiting on dies; feedsvc/building/builder.py).

    Only here (and in the dedicated builder process) is a scheduler started: never by create_app(), so never
    under Flask's reloader or in tests.
    """
    from . import create_app
    from .building.lock import contend

    # Blocks of 64 KiB and more (feeds of hundreds of KB read from the build store and let go) a mapping of their
    # own: the heap kept the largest feeds' high-water mark (about 10 MiB more at 2,000 articles than at 100).
    allocator.mmap_from(64 * 1024)
    app = create_app(dict(overrides), refresh=False, build=False)
    contend(app)
    return app


PRELOADED = ("feedsvc: gunicorn --preload is not supported: its master would build, and its workers would be copies of "
             "its threads and store connections; run gunicorn without --preload (each worker makes its own app)")


def gunicorn_preloading() -> bool:
    """Whether gunicorn's master is making the app before it forks its workers (--preload: its Arbiter.setup loads it)."""
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "setup" and Path(code.co_filename).parts[-2:] == ("gunicorn", "arbiter.py"):
            return True
        frame = frame.f_back
    return False


def asgi_app(overrides: Mapping[str, Any]):
    """serving_app() for gunicorn's asgi worker (feedsvc/serving/asgi.py)."""
    return on_threads(serving_app(overrides))


def on_threads(app):
    """The Flask app as gunicorn's asgi worker runs it: on APP_THREADS threads, with hot resources answered
    on the event loop before any thread or Flask sees the request (feedsvc/serving/front.py)."""
    from .serving.asgi import WSGIOnThreads
    from .serving.front import Front

    _name_every_status()
    return WSGIOnThreads(app, APP_THREADS, front=Front(app))


def _name_every_status() -> None:
    """gunicorn's asgi worker writes the status line from a table of its own that leaves out some statuses feedsvc
    sends: "HTTP/1.1 412 Unknown" for a failed If-Match. Its missing rows filled from RFC 9110's names (http.HTTPStatus);
    nothing where the table is not there (another gunicorn)."""
    from http import HTTPStatus

    try:
        from gunicorn.asgi import protocol
    except ImportError:
        return
    table = getattr(protocol, "_REASON_PHRASES", None)
    if isinstance(table, dict):
        for status in HTTPStatus:
            table.setdefault(status.value, status.phrase)


def on_starting(server) -> None:
    """gunicorn hook, in the master before any worker: the shared metrics folder."""
    metrics_folder()


def on_starting_checked(server) -> None:
    """gunicorn hook for gunicorn's own command: preflight() with the settings, then the metrics folder."""
    from .config import ConfigError, load_settings

    if getattr(server.app, "app_uri", None) == "wsgi:app":  # the Flask app, named to the asyncio worker: before any fork
        raise RuntimeError(WSGI_NAMED)  # (asgi_only says it from each worker for any other name of it)
    try:
        preflight(load_settings())
    except (ServeError, ConfigError) as exc:
        raise RuntimeError(str(exc)) from None  # gunicorn prints "Error: …" and exits 1
    metrics_folder()


def start_builder(overrides: Mapping[str, Any]) -> Forked:
    """`feedsvc serve`: the metrics folder, then the dedicated builder, forked before gunicorn is even imported.

    The builder is a cold start's longest chain (its reading workers, the placement pass, the first build): it
    starts on the other core while this master imports gunicorn and sets up its listener, not after that, from
    on_starting (its exec 0.70-0.92 s after the master's under strace, against 0.44-0.54 s so), and before any
    thread of gunicorn's. It inherits the metrics folder, where it counts its refreshes.
    """
    from .building.builder import spawn

    metrics_folder()
    return spawn(overrides)


def with_builder(builder: Forked) -> dict[str, Any]:
    """gunicorn hooks for `feedsvc serve`, whose builder start_builder() started: stopped with the master (the
    workers stay thin; one takes over if it dies). The metrics folder is made already: no on_starting, which would
    empty it of the builder's numbers."""

    def stop(server) -> None:
        if builder.poll() is None:
            builder.terminate()
            try:
                builder.wait(timeout=10)
            except subprocess.TimeoutExpired:
                builder.kill()

    return {"on_starting": _started, "on_exit": stop}


def _started(server) -> None:
    """gunicorn hook for `feedsvc serve`: nothing left to do before the workers (start_builder did it)."""


def worker_exit(server, worker) -> None:
    """gunicorn hook: stop the worker's scheduler and watcher cleanly, if it was building."""
    from .building.builder import REFRESHERS

    for refresher in REFRESHERS:
        refresher.stop()


def child_exit(server, worker) -> None:
    """gunicorn hook, in the master: drop a dead worker's live gauges; its counters still count."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


# --- checks before any worker starts ---

def preflight(settings: Settings) -> None:
    """What every worker would trip over, found once in the master: the folder, partner keys, the state store."""
    from . import state_path
    from .config import ConfigError, folder_problem
    from .partners import load_partners
    import sqlite3

    from .building.lock import writable
    from .building.state import StateError, StateStore
    from .store import create_schema

    root = Path(settings.articles_dir)
    problem = folder_problem(root)
    if problem is not None:
        raise ServeError(problem)
    try:
        load_partners(settings.partners)
        StateStore(state_path(settings))
        create_schema(state_path(settings))  # the build store's tables exist before any worker reads them
    except (ConfigError, StateError) as exc:
        raise ServeError(str(exc)) from None
    except sqlite3.Error as exc:  # a full disk as the build store's tables are made
        raise ServeError(f"the state store {state_path(settings)} cannot be written ({exc}); free space on its disk or "
                         "set STATE_PATH to a file in a folder that has some") from None
    if (why := writable(state_path(settings))) is not None:  # SQLite opens a read-only file quietly, read-only
        raise ServeError(why)
    _no_other_deployment(settings)


OTHER_STATUS_WAIT = 5.0  # seconds a builder that holds the lock has to say whose it is (its status file)


def _no_other_deployment(settings: Settings) -> None:
    """Refuse to serve at one URL, or from one folder, a state store another live deployment builds at another URL or
    from another folder: each would serve the other's links or articles, and publish its own when the other's builder
    stops (its folder's articles withdrawn, announced as deleted)."""
    from . import state_path
    from .building.lock import HEARTBEAT_SECONDS, BuilderStatus, BuildLock, folder_key, lock_path, status_path

    path = state_path(settings)
    lock = BuildLock(lock_path(path))
    try:
        if lock.try_acquire():  # nobody builds there now: a deployment stopped, or one restarted at another URL
            return
    except OSError:
        return  # the builder's own start says what is wrong with the folder
    finally:
        lock.release()
    # Held: its builder writes its status within tenths of a second of taking the lock (builder._run_builder), and one
    # started a moment before this one had written none yet (or only a past run's): both served, each the other's
    # links (found in review, 0.1-0.3 s apart). Waited for, a few seconds at most.
    deadline = time.monotonic() + OTHER_STATUS_WAIT
    while True:
        status = BuilderStatus(status_path(path)).read()
        if status and status["heard"] < 20 * HEARTBEAT_SECONDS:
            break
        if time.monotonic() >= deadline:
            return
        time.sleep(HEARTBEAT_SECONDS / 5)
    other = status.get("site_url")
    if other and other != settings.site_url:
        raise ServeError(f"another feedsvc (process {status['pid']}) builds {path} for {other}; give this one "
                         f"(SITE_URL {settings.site_url}) a state file of its own with STATE_PATH, or stop that one first")
    if status.get("articles", folder_key(settings.articles_dir)) != folder_key(settings.articles_dir):
        raise ServeError(f"another feedsvc (process {status['pid']}) builds {path} from another articles folder; give "
                         f"this one (ARTICLES_DIR {settings.articles_dir}) a state file of its own with STATE_PATH, or "
                         "stop that one first")


def check_port(host: str, port: int) -> None:
    """Fail at once, in one line, when the address cannot be listened on (gunicorn would retry for 5 s)."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host  # [::1] as in a URL: getaddrinfo wants ::1
    try:
        infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {host}: {exc.strerror}; pass --host with an address of this machine") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does: TIME_WAIT is free
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ServeError(f"port {port} is in use; pass --port or stop the other server") from None
            raise ServeError(f"cannot listen on {host}:{port} ({exc.strerror}); pass another --host or --port") from None


def site_url_for(host: str, port: int) -> str:
    """The SITE_URL a server on host:port has when none is set; any-address binds give 127.0.0.1."""
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def site_url_warning(site_url: str, host: str, port: int, proxied: bool = False) -> str | None:
    """One line when a set SITE_URL cannot be this server (loopback or this host, another port), else None.
    proxied (PROXY_HOPS set): readers reach it through a proxy, at the proxy's address (deploy/nginx.conf's search)."""
    if proxied:
        return None
    url = urlsplit(site_url)
    named = (url.hostname or "").lower()
    named_port = url.port or (443 if url.scheme == "https" else 80)
    bound = host.strip("[]").lower()
    here = _is_loopback(named) or named == bound
    if here and named_port != port:
        return (f"warning: SITE_URL is {site_url} but this server listens on port {port}: links, the OPML and "
                "the stylesheet will point elsewhere; unset SITE_URL or set it to the address readers use")
    if _is_loopback(named) and bound not in ("", "0.0.0.0", "::") and not _is_loopback(bound):
        return (f"warning: SITE_URL is {site_url} but this server listens on {host} only: links will not reach "
                "it; unset SITE_URL or set it to the address readers use")
    return None


def _is_loopback(name: str) -> bool:
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


# --- the metrics folder ---

def metrics_folder() -> str:
    """An empty PROMETHEUS_MULTIPROC_DIR for the workers' metrics (feedsvc/serving/metrics.py), set before any worker imports it.

    Folders that servers killed with SIGKILL left behind (their PID is gone) are removed first.
    """
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        for stale in Path(folder).glob("*.db"):  # a previous run's numbers would be added to this one's
            stale.unlink()
        return folder
    remove_stale_metrics_folders()
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-")
    atexit.register(_remove_folder, folder, os.getpid())
    return folder


def remove_stale_metrics_folders(parent: str | None = None) -> list[Path]:
    """Remove metrics folders whose server process no longer exists; returns them."""
    removed = []
    for folder in Path(parent or tempfile.gettempdir()).glob(METRICS_PREFIX + "*"):
        match = _METRICS_FOLDER.match(folder.name)
        if match and folder.is_dir() and not folder.is_symlink() and not _alive(int(match[1])):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _remove_folder(folder: str, owner: int) -> None:
    # Workers inherit atexit handlers at fork and run them when they exit: only the master removes it.
    if os.getpid() == owner:
        shutil.rmtree(folder, ignore_errors=True)


__all__ = ["ServeError", "WSGI_NAMED", "asgi_app", "asgi_only", "check_port", "gunicorn_settings", "metrics_folder", "on_threads", "preflight",
           "remove_stale_metrics_folders", "serving_app", "site_url_for", "site_url_warning", "start_builder",
           "with_builder"]

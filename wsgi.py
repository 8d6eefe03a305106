"""WSGI and ASGI entry points; each worker answers from the build store, and the one that holds the build lock
builds the feeds and keeps them fresh (feedsvc/building/builder.py).

    gunicorn -c python:feedsvc.gunicorn_conf -w 2 wsgi:asgi   # as `feedsvc serve` runs it: slow clients cost nothing
    gunicorn -w 2 wsgi:app                                    # sync workers: only behind a proxy that buffers requests

gunicorn's --preload is refused: the master would build, and its workers would be copies of its threads and its
store connections, which hold none of its locks. For Flask's development server use `flask --app feedsvc run`,
which never starts a builder.
"""
import os
import sys

from feedsvc import state_path
from feedsvc.building.lock import writable
from feedsvc.building.state import StateError
from feedsvc.config import ConfigError, load_settings
from feedsvc.server import PRELOADED, gunicorn_preloading, on_threads, serving_app


def _refuse_unwritable_state() -> None:
    """Raise StateError when the state store is there but this process could not build into it (lock.writable)."""
    # serve's preflight check, which plain gunicorn runs no hook for: SQLite opens a file it cannot write read-only
    # without a word, and the workers served the old build while every refresh failed. Asked before serving_app, whose
    # contender would take the lock and fail at once; a store not there yet is made, or refused, by serving_app itself
    # (its folder too: asked first, a folder to be made was refused as one that cannot be written).
    path = state_path(load_settings({}))
    if os.path.exists(path) and (why := writable(path)) is not None:
        raise StateError(why)


if gunicorn_preloading():  # said by the master, before it builds or forks anything
    raise SystemExit(PRELOADED)
try:
    _refuse_unwritable_state()
    app = serving_app({})
except (ConfigError, StateError) as exc:  # a setting or state file to fix: one line, not a traceback in each worker
    print(f"feedsvc: {exc}", file=sys.stderr)
    raise SystemExit(3) from None  # gunicorn's "worker failed to boot": its master stops, and says so
asgi = on_threads(app)

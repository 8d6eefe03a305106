"""WSGI and ASGI entry points; each worker answers from the build store, and the one that holds the build lock
builds the feeds and keeps them fresh (feedsvc/building/builder.py).

    gunicorn -c python:feedsvc.gunicorn_conf -w 2 wsgi:asgi   # as `feedsvc serve` runs it: slow clients cost nothing
    gunicorn -w 2 wsgi:app                                    # sync workers: only behind a proxy that buffers requests

gunicorn's --preload is refused: the master would build, and its workers would be copies of its threads and its
store connections, which hold none of its locks. For Flask's development server use `flask --app feedsvc run`,
which never starts a builder.
"""
import sys

from feedsvc.building.state import StateError
from feedsvc.config import ConfigError
from feedsvc.server import PRELOADED, gunicorn_preloading, on_threads, serving_app

if gunicorn_preloading():  # said by the master, before it builds or forks anything
    raise SystemExit(PRELOADED)
try:
    app = serving_app({})
except (ConfigError, StateError) as exc:  # a setting to fix: said in one line, not a traceback in each worker
    print(f"feedsvc: {exc}", file=sys.stderr)
    raise SystemExit(3) from None  # gunicorn's "worker failed to boot": its master stops, and says so
asgi = on_threads(app)

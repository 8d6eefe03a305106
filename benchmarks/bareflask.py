"""The baseline for serving: a bare Flask app that returns fixed bytes, under the same gunicorn settings
as `feedsvc serve` (bind, workers, access log to stdout, and the same worker class: when `feedsvc serve` runs
gunicorn's asyncio worker with its WSGI app on a few threads, so does the anchor, through feedsvc's own adapter),
so that the two differ only in the app.

`python -m benchmarks.bareflask --port P --workers N --body FILE --etag ETAG --content-type TYPE`
"""
from __future__ import annotations

import argparse
from pathlib import Path

from typing import Callable

from flask import Flask, Response, request


def serving_like_feedsvc() -> tuple[str, Callable]:
    """(gunicorn worker class, how the WSGI app is wrapped for it) as `feedsvc serve` runs; sync when it cannot tell."""
    try:
        from feedsvc import server

        worker_class = server.gunicorn_settings().get("worker_class", "sync")
        if worker_class == "asgi":
            from feedsvc.serving.asgi import WSGIOnThreads

            return worker_class, lambda app: WSGIOnThreads(app, server.APP_THREADS)
        return worker_class, lambda app: app
    except (ImportError, AttributeError):  # before feedsvc chose its worker: gunicorn's default
        return "sync", lambda app: app


def make_app(body: bytes, etag: str, content_type: str) -> Flask:
    """One route answering every path with the body, or 304 when If-None-Match carries the ETag."""
    app = Flask(__name__)
    headers = {"ETag": etag, "Vary": "Accept-Encoding", "Content-Encoding": "gzip"}

    @app.get("/<path:path>")
    def fixed(path: str) -> Response:
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers=headers)
        return Response(body, headers=headers, content_type=content_type)

    return app


def main() -> None:
    from gunicorn.app.base import BaseApplication

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--body", type=Path, required=True, help="the gzip-coded body to send")
    parser.add_argument("--etag", required=True)
    parser.add_argument("--content-type", required=True)
    args = parser.parse_args()
    worker_class, wrap = serving_like_feedsvc()
    app = wrap(make_app(args.body.read_bytes(), args.etag, args.content_type))

    class _Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"127.0.0.1:{args.port}")
            self.cfg.set("workers", args.workers)
            self.cfg.set("accesslog", "-")
            self.cfg.set("worker_class", worker_class)

        def load(self):
            return app

    _Server().run()


if __name__ == "__main__":
    main()

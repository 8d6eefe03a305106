"""gunicorn settings for running feedsvc with gunicorn's own command, the same `feedsvc serve` uses:

    gunicorn -c python:feedsvc.gunicorn_conf -b 127.0.0.1:8000 -w 2 wsgi:asgi

(the asyncio worker, which buffers each request before a worker thread sees it; the access log without
keys and with readable paths; no control socket; the checks `feedsvc serve` makes before any worker
starts; the metrics folder and the workers' exit hooks).
"""
from feedsvc.server import gunicorn_settings

globals().update(gunicorn_settings(checks=True))

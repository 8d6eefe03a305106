"""Serving: the store → HTTP. Owns the requests: the routes and their headers (web.py), feeds asked for by query
rendered from the stored listings (variants.py), partners' and public rate limits (ratelimit.py), WebSub
(websub.py), metrics (metrics.py), the access log (accesslog.py), the ASGI adapter for gunicorn (asgi.py) and
the hot resources it answers on its event loop, before any thread or Flask (front.py).
It may import only the neutral modules (config, model, paging, urls, resource, store, partners, preview,
formats/); never reading/ or building/: a serving process answers from what the builder stored.
"""

"""HTTP: look prepared bytes up in the current snapshot and answer with the right headers.

Conditional GET per RFC 9110 §13: If-None-Match decides when present, else If-Modified-Since.
https://www.rfc-editor.org/rfc/rfc9110#section-13.2.2
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

from urllib.parse import quote

from flask import Blueprint, Response, current_app, redirect, request
from werkzeug.http import http_date, parse_date, parse_etags

from .site import Publisher, Rendered

bp = Blueprint("feedsvc", __name__)

# Pages need nothing but their own stylesheet and images; no script runs anywhere.
HTML_POLICY = "default-src 'none'; style-src 'self'; img-src 'self' https: http: data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
CORS_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json", "text/x-opml", "text/xsl")
ENCODINGS = (("br", "br"), ("gzip", "gzip"))  # preferred first


def publisher() -> Publisher:
    """The app's Publisher."""
    return current_app.extensions["feedsvc"]


@bp.get("/healthz")
def healthz() -> Response:
    """Articles published, files skipped and the time of the last successful refresh."""
    pub = publisher()
    snap = pub.snapshot
    age = (now_utc() - pub.last_success).total_seconds() if pub.last_success else None
    # Stale: three refresh intervals without a successful refresh (RFC-less, but what load balancers act on).
    stale = age is None or age > 3 * pub.site.max_age
    body = {
        "status": "stale" if stale else "ok",
        "articles": len(snap.articles),
        "feeds": len(snap.feeds),
        "skipped": len(snap.skipped),
        "last_refresh": pub.last_success.isoformat() if pub.last_success else None,
        "age_seconds": round(age, 3) if age is not None else None,
        "last_error": pub.last_error,
    }
    status = 503 if stale else 200
    return Response(json.dumps(body, ensure_ascii=False) + "\n", status=status, mimetype="application/json",
                    headers={"Cache-Control": "no-store"})


@bp.get("/", defaults={"path": ""})
@bp.get("/<path:path>")
def resource(path: str) -> Response:
    """Any published resource by its path; anything else is a 404 that says what exists."""
    resources = publisher().snapshot.resources
    found = resources.get(path)
    if found is None:
        if path + "/" in resources:  # /category/x → /category/x/
            return redirect(request.root_path + "/" + quote(path, safe="/") + "/", code=301)
        return _not_found(path)
    return respond(found, publisher().site.max_age)


def respond(res: Rendered, max_age: int) -> Response:
    """A 200 or 304 for a rendered resource, with validators, caching and content coding."""
    coding = _pick_encoding()
    etag = res.etag if coding is None else res.etag[:-1] + "-" + coding + '"'
    headers = {
        "ETag": etag,
        "Last-Modified": http_date(res.last_modified),
        "Cache-Control": f"public, max-age={max_age}",
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if res.media_type in CORS_TYPES:
        headers["Access-Control-Allow-Origin"] = "*"
    if res.media_type == "text/html":
        headers["Content-Security-Policy"] = HTML_POLICY
    if _not_modified(res):
        return Response(status=304, headers=headers)
    body = res.body
    if coding:
        body = res.coded(coding)
        headers["Content-Encoding"] = coding
    return Response(body, status=200, headers=headers, content_type=f"{res.media_type}; charset=utf-8")


def _pick_encoding() -> str | None:
    accepted = request.accept_encodings
    best, best_q = None, 0.0
    for name, attr in ENCODINGS:
        q = accepted[name] if name in accepted else 0.0
        if q > best_q:
            best, best_q = attr, q
    return best


def _not_modified(res: Rendered) -> bool:
    if "If-None-Match" in request.headers:
        tags = parse_etags(request.headers["If-None-Match"])
        if tags.star_tag:
            return True
        # Weak comparison (RFC 9110 §8.8.3.2); our per-coding tags share one base hash.
        base = res.etag.strip('"')
        return any(tag.split("-")[0] == base for tag in tags.as_set(include_weak=True))
    since = parse_date(request.headers.get("If-Modified-Since"))
    if since is None:
        return False
    return res.last_modified.replace(microsecond=0) <= since.astimezone(timezone.utc)


def _not_found(path: str) -> Response:
    text = (f"Not found: /{path}\n"
            "The site-wide feeds are /feed.rss, /feed.atom and /feed.json; each category's are "
            "/category/<slug>/feed.rss, .atom and .json; /feeds.opml lists them all and / links every category.\n")
    return Response(text, status=404, content_type="text/plain; charset=utf-8",
                    headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


def now_utc() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(timezone.utc)

"""The access log: one line per request, its path readable UTF-8, nothing in it that can carry a key."""
from __future__ import annotations

import re
from typing import Any, Mapping
from urllib.parse import unquote_to_bytes, urlsplit

from gunicorn.glogging import Logger

# Apache's combined format, with %(U)s (the path, no query) in place of the request line.
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(f)s" "%(a)s"'

# What would let a request write into the log or be misread in it: controls (new lines, terminal escapes),
# the backslash that starts our escapes, the bidi controls that reorder what a terminal shows, and bytes
# that were not UTF-8 (kept as surrogate escapes).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\\\\\udc80-\udcff]")
_SECRET_HEADERS = ("{authorization}i", "{proxy-authorization}i", "{cookie}i")


class AccessLog(Logger):
    """gunicorn's logger, with paths decoded to readable UTF-8 and nothing secret in any field.

    A partner key can arrive in the query (?key=), the Authorization header (Bearer or a Basic user name) and
    the Referer of a page a partner's reader came from: the log keeps paths without queries, no user, the
    Referer without its query, and no request header that carries credentials.
    """

    def atoms(self, resp, req, environ, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        path = readable_path(environ)
        referer = public_referer(environ.get("HTTP_REFERER"))
        atoms.update({"u": "-", "U": path, "q": "-", "f": referer, "{referer}i": referer,
                      "r": f"{environ.get('REQUEST_METHOD', '-')} {path} {environ.get('SERVER_PROTOCOL', '-')}"})
        for key in list(atoms):
            if key in _SECRET_HEADERS or key.endswith("}e"):  # environ atoms hold the raw query and headers
                del atoms[key]
        return {key: escape(value) if isinstance(value, str) else value for key, value in atoms.items()}


def readable_path(environ: Mapping[str, Any]) -> str:
    """The request's path, percent-decoded as UTF-8, without its query; bytes that are not UTF-8 kept as surrogates."""
    raw = environ.get("RAW_URI") or environ.get("PATH_INFO") or "/"
    raw = raw.split("?", 1)[0].split("#", 1)[0]
    try:  # WSGI carries bytes as latin-1 text (PEP 3333); some servers already give real text
        data = raw.encode("latin-1")
    except UnicodeEncodeError:
        data = raw.encode("utf-8")
    return unquote_to_bytes(data).decode("utf-8", "surrogateescape")  # escape() shows stray bytes as \xNN


def public_referer(referer: str | None) -> str:
    """A Referer without user, query or fragment: what a key could hide in never reaches the log."""
    if not referer:
        return "-"
    url = urlsplit(referer)
    if not url.scheme or not url.netloc:
        return url.path.split("?", 1)[0] or "-"
    host = url.hostname or ""
    if url.port:
        host = f"{host}:{url.port}"
    return f"{url.scheme}://{host}{url.path}"


def escape(text: str) -> str:
    """Controls, bidi controls, backslashes and stray bytes as \\xNN or \\uNNNN: one request is one readable log line."""
    return _UNSAFE.sub(_escaped, text)


def _escaped(match: re.Match) -> str:
    code = ord(match[0])
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

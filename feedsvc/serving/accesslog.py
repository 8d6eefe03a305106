"""The access log: one line per request, its path readable UTF-8, nothing in it that can carry a key."""
from __future__ import annotations

import logging
import re
import time
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

    _now: tuple[int, str] = (0, "")  # (Unix second, its %(t)s), swapped whole: safe across threads
    _plain: logging.Handler | None = None  # the access handler last found to be gunicorn's own plain one

    def access(self, resp, req, environ, request_time) -> None:
        """One line per request; written straight to gunicorn's own handler when that is all there is to it."""
        handler = self._plain_handler()
        if handler is None:  # syslog, a logging config, another format: through logging, as gunicorn does
            return super().access(resp, req, environ, request_time)
        # What logging makes of it: the format filled in as gunicorn's SafeAtoms does ('"' escaped), then
        # "%(message)s" and the handler's terminator.
        atoms = {key: value.replace('"', '\\"') if isinstance(value, str) else value
                 for key, value in self.format_atoms(resp, environ).items()}
        line = ACCESS_LOG_FORMAT % atoms + handler.terminator
        with handler.lock:
            try:
                handler.stream.write(line)
                handler.stream.flush()
            except Exception:  # as logging does: a log that cannot be written never fails the request
                handler.handleError(logging.makeLogRecord({"msg": line}))

    def _plain_handler(self) -> logging.StreamHandler | None:
        """gunicorn's stream or file handler of the access log, if it is the only one and nothing filters or reformats."""
        log = self.access_log
        handlers = log.handlers
        if len(handlers) != 1 or not self.access_log_enabled or self.cfg.access_log_format != ACCESS_LOG_FORMAT:
            return None
        handler = handlers[0]
        if handler is self._plain:
            return handler if log.isEnabledFor(logging.INFO) else None  # logging.disable() still applies
        if (type(handler) in (logging.StreamHandler, logging.FileHandler) and getattr(handler, "_gunicorn", False)
                and type(handler.formatter) is logging.Formatter and handler.formatter._fmt == self.access_fmt
                and not handler.filters and not log.filters and handler.level <= logging.INFO
                and getattr(handler, "stream", None) is not None):
            self._plain = handler
            return handler if log.isEnabledFor(logging.INFO) else None
        return None

    def atoms(self, resp, req, environ, request_time) -> dict:
        if self.cfg.access_log_format == ACCESS_LOG_FORMAT:  # feedsvc's own format: only the atoms it names
            return self.format_atoms(resp, environ)
        atoms = super().atoms(resp, req, environ, request_time)
        path = readable_path(environ)
        referer = public_referer(as_sent(environ.get("HTTP_REFERER")))
        for key, value in atoms.items():  # the request's headers, as WSGI carries them (latin-1 text)
            if (key == "a" or key.endswith("}i")) and isinstance(value, str):
                atoms[key] = as_sent(value)
        atoms.update({"u": "-", "U": path, "q": "-", "f": referer, "{referer}i": referer,
                      "r": f"{environ.get('REQUEST_METHOD', '-')} {path} {environ.get('SERVER_PROTOCOL', '-')}"})
        for key in list(atoms):
            if key in _SECRET_HEADERS or key.endswith("}e"):  # environ atoms hold the raw query and headers
                del atoms[key]
        return {key: escape(value) if isinstance(value, str) else value for key, value in atoms.items()}

    def format_atoms(self, resp, environ) -> dict:
        """The atoms ACCESS_LOG_FORMAT names, as atoms() gives them for it: a request's line costs no more than it shows."""
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        sent = getattr(resp, "sent", None)
        atoms = {"h": environ.get("REMOTE_ADDR", "-"), "l": "-", "u": "-", "t": self.now(), "m": environ.get("REQUEST_METHOD"),
                 "U": readable_path(environ), "H": environ.get("SERVER_PROTOCOL"), "s": status,
                 "b": sent is not None and str(sent) or "-", "f": public_referer(as_sent(environ.get("HTTP_REFERER"))),
                 "a": as_sent(environ.get("HTTP_USER_AGENT", "-"))}
        return {key: escape(value) if isinstance(value, str) else value for key, value in atoms.items()}

    def now(self) -> str:
        """gunicorn's [day/month/year:time zone], made once a second."""
        second = int(time.time())
        if self._now[0] != second:
            self._now = (second, time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(second)))
        return self._now[1]


def readable_path(environ: Mapping[str, Any]) -> str:
    """The request's path, percent-decoded as UTF-8, without its query; bytes that are not UTF-8 kept as surrogates."""
    raw = environ.get("RAW_URI") or environ.get("PATH_INFO") or "/"
    raw = raw.split("?", 1)[0].split("#", 1)[0]
    try:  # WSGI carries bytes as latin-1 text (PEP 3333); some servers already give real text
        data = raw.encode("latin-1")
    except UnicodeEncodeError:
        data = raw.encode("utf-8")
    return unquote_to_bytes(data).decode("utf-8", "surrogateescape")  # escape() shows stray bytes as \xNN


def as_sent(value: str | None) -> str | None:
    """A header's value as its bytes read as UTF-8, bytes that are not kept as surrogates (escape() shows them as \\xNN):
    WSGI carries a header's bytes as latin-1 text (PEP 3333), which an Arabic User-Agent shows as mojibake."""
    if not value or value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a server that gave real text
        return value


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
    if text.isprintable() and "\\" not in text:  # every character _UNSAFE matches but "\\" is unprintable (Cc, Cf, Cs)
        return text
    return _UNSAFE.sub(_escaped, text)


def _escaped(match: re.Match) -> str:
    code = ord(match[0])
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

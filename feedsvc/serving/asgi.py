"""The WSGI app under gunicorn's asyncio (`asgi`) worker: each request is read whole by the event loop, then
handed to a thread with one hop, and its response, buffered, is sent by the loop.

Why not a general adapter (a2wsgi): those stream each chunk back to the loop with a round trip per message,
which cost two thirds of the throughput here; feedsvc's responses are prepared bytes, so one hop suffices.
ASGI 3.0 http scope → PEP 3333 environ: https://asgi.readthedocs.io/en/latest/specs/www.html#wsgi-compatibility
"""
from __future__ import annotations

import asyncio
import io
import sys
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Awaitable, Callable, Iterable
from email.utils import formatdate
from urllib.parse import unquote_to_bytes

MAX_BODY = 64 * 1024  # feedsvc takes GET and HEAD; a larger body is refused before the app sees it
_date: tuple[int, bytes] = (0, b"")  # (Unix second, its HTTP-date), swapped whole: safe across threads


def date_now() -> bytes:
    """The Date header for a response made now (RFC 9110 §6.6.1).

    gunicorn's own Date is cached for up to a second, so it can name the second before a Last-Modified
    recorded a moment ago; RFC 9110 §8.8.2.1 lets no Last-Modified be later than Date.
    """
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, formatdate(now, usegmt=True).encode("latin-1"))
    return _date[1]


class WSGIOnThreads:
    """An ASGI app that runs a WSGI app on a few threads, one hop per request.

    front: called on the loop first, with the scope and the executor; an answer it gives, (status, headers,
    body), is sent as it is, and the WSGI app never sees the request (feedsvc/serving/front.py); None goes on to the app.
    """

    def __init__(self, app: Callable, threads: int, front: Callable[[dict, Executor], Awaitable[tuple | None]] | None = None):
        self.app = app
        self.front = front
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wsgi")

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":  # nothing to start: the app is built when gunicorn loads it
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        # A declared length past the limit is refused before any of it is read: the body was waited for, which a client
        # may never send. One the client stopped sending never reaches the app (it was called with the part that came);
        # the 400 goes nowhere, and gunicorn logs the request as a 500, its status for an answer it could not send.
        body = None if _declared_length(scope) > MAX_BODY else await _read_body(receive)
        if body is None or body is _CUT:
            await _refuse(send, *((413, b"Request body too large.\n") if body is None else
                                  (400, b"Request body incomplete: the client stopped sending it.\n")))
            return
        if self.front is not None:
            answer = await self.front(scope, self.executor)
            if answer is not None:
                await _send(send, *answer)
                return
        environ = wsgi_environ(scope, body)
        status, headers, content = await asyncio.get_running_loop().run_in_executor(self.executor, self._run, environ)
        await _send(send, status, headers, content)

    def _run(self, environ: dict) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Call the app on this thread and collect its whole response."""
        started: list = []
        written: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info=None) -> Callable[[bytes], None]:
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return written.append

        result: Iterable[bytes] = self.app(environ, start_response)
        try:
            written.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started
        coded = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        if not any(name == b"date" for name, _ in coded):
            coded.append((b"date", date_now()))
        return int(status.split(" ", 1)[0]), coded, b"".join(written)


def wsgi_environ(scope: dict, body: bytes) -> dict[str, Any]:
    """The PEP 3333 environ of an ASGI http request; PATH_INFO from the raw path, as a WSGI server makes it."""
    root = scope.get("root_path", "").encode("utf-8").decode("latin-1")
    path = path_info(scope)
    server = scope.get("server") or ("localhost", 80)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root,
        "PATH_INFO": path,
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] or 0),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = str(client[0]), str(client[1])
    for name, value in scope.get("headers", ()):
        key = name.decode("latin-1").upper().replace("-", "_")
        key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key
        text = value.decode("latin-1")
        environ[key] = f"{environ[key]},{text}" if key in environ else text  # RFC 9110 §5.3: repeated fields join
    return environ


def path_info(scope: dict) -> str:
    """PEP 3333's PATH_INFO of an ASGI request: its raw path percent-decoded, as latin-1, without the root path."""
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
    path = unquote_to_bytes(raw_path.split(b"?", 1)[0]).decode("latin-1")
    root = scope.get("root_path", "").encode("utf-8").decode("latin-1")
    if root and path.startswith(root):
        path = path[len(root):]
    return path


_CUT = object()  # _read_body's answer for a body the client stopped sending


def _declared_length(scope: dict) -> int:
    """The request's Content-Length, 0 when it has none (or one gunicorn let through that is no number)."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            return int(value) if value.strip().isdigit() else 0
    return 0


async def _read_body(receive: Callable) -> bytes | object | None:
    """The whole request body, None past MAX_BODY, or _CUT when the client went before its end."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return _CUT
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _refuse(send: Callable, status: int, message: bytes) -> None:
    """A plain-text refusal the app never sees (a body too large or cut short)."""
    await _send(send, status, [(b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store"),
                               (b"x-content-type-options", b"nosniff")], message)


async def _send(send: Callable, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

"""The HTTP contract feed readers rely on, checked against a real server: media types, validators, 304s, HEAD, compression.

Our own checks, written for the tests (RFC 9110 conditional requests, RFC 9111 caching). `contract_problems`
returns every broken rule as a sentence, so one assertion shows them all.
"""
from __future__ import annotations

import email.utils
import gzip
import http.client
import re
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import Message
from urllib.parse import urlsplit

import brotli

MEDIA_TYPES = {"rss": "application/rss+xml", "atom": "application/atom+xml", "json": "application/feed+json"}
ETAG = re.compile(r'^(W/)?"[\x21\x23-\x7e\x80-\xff]*"$')  # RFC 9110 §8.8.3
IMF_FIXDATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                         r"\d{4} \d{2}:\d{2}:\d{2} GMT$")  # RFC 9110 §5.6.7
READER_ACCEPT = "application/atom+xml, application/rss+xml, application/feed+json, application/xml;q=0.8, */*;q=0.1"


@dataclass
class Answer:
    """One response, read whole; header names in lower case."""

    status: int
    headers: dict[str, str]
    body: bytes

    def get(self, name: str) -> str | None:
        return self.headers.get(name)


def ask(base: str, path: str, method: str = "GET", **headers: str) -> Answer:
    """One request on a fresh connection, as a feed reader sends it (identity unless Accept-Encoding is given)."""
    url = urlsplit(base)
    sent = {"Accept": READER_ACCEPT, "Accept-Encoding": "identity", "User-Agent": "feedsvc-tests"}
    sent.update({name.replace("_", "-"): value for name, value in headers.items()})
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request(method, path, headers=sent)
        res = conn.getresponse()
        return Answer(res.status, {k.lower(): v for k, v in res.getheaders()}, res.read())
    finally:
        conn.close()


def bytes_after_head(base: str, path: str) -> int:
    """How many body bytes the server sends after the headers of a HEAD response (must be 0)."""
    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: {url.netloc}\r\nConnection: close\r\n\r\n".encode("latin-1"))
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    return len(raw.partition(b"\r\n\r\n")[2])


def document_kind(body: bytes) -> str:
    """rss, atom or json, from the document's first element or character."""
    head = body[:2048].lstrip()
    if head.startswith(b"{"):
        return "json"
    head = re.sub(rb"<\?.*?\?>|<!--.*?-->", b"", head, flags=re.S).lstrip()
    return "rss" if head.startswith(b"<rss") else "atom" if head.startswith(b"<feed") else "unknown"


def contract_problems(base: str, path: str) -> list[str]:
    """Every rule of the HTTP contract that the feed at base+path breaks."""
    plain = ask(base, path)
    if plain.status != 200:
        return [f"GET {path} answered {plain.status}, not 200"]
    found = _representation_problems(plain)
    etag, modified = plain.get("etag"), plain.get("last-modified")
    again = ask(base, path)
    if (again.get("etag"), again.get("last-modified"), again.body) != (etag, modified, plain.body):
        found.append("two identical GETs gave different validators or bytes (readers would never get a 304)")
    found += _conditional_problems(base, path, etag, modified)
    found += _head_problems(base, path, plain)
    found += _compression_problems(base, path, plain)
    return found


def _representation_problems(plain: Answer) -> list[str]:
    found = []
    kind = document_kind(plain.body)
    message = Message()
    message["content-type"] = plain.get("content-type") or ""
    media_type, charset = message.get_content_type(), message.get_param("charset")
    if kind not in MEDIA_TYPES:
        found.append("the body is not RSS, Atom or JSON Feed")
    elif media_type != MEDIA_TYPES[kind]:
        found.append(f"Content-Type {plain.get('content-type')!r} is not {MEDIA_TYPES[kind]} for a {kind} document")
    if str(charset).lower() != "utf-8":
        found.append(f"Content-Type names charset {charset!r}, not utf-8")
    declared = re.match(rb'<\?xml[^>]*encoding=["\']([A-Za-z0-9._-]+)', plain.body)
    if declared and declared.group(1).decode().lower() != str(charset).lower():
        found.append(f"the XML declaration says {declared.group(1).decode()}, Content-Type says {charset}")
    if plain.get("content-encoding") not in (None, "identity"):
        found.append(f"Content-Encoding {plain.get('content-encoding')} sent to a client that asked for identity")
    if plain.get("content-length") != str(len(plain.body)):
        found.append(f"Content-Length {plain.get('content-length')} for {len(plain.body)} bytes")
    if not plain.get("date"):
        found.append("no Date header (RFC 9110 §6.6.1: a server with a clock sends one)")
    etag, modified = plain.get("etag"), plain.get("last-modified")
    if not etag or not ETAG.match(etag):
        found.append(f"ETag {etag!r} is not a quoted entity tag")
    if not modified or not IMF_FIXDATE.match(modified):
        found.append(f"Last-Modified {modified!r} is not an IMF-fixdate")
    elif email.utils.parsedate_to_datetime(modified) > datetime.now(timezone.utc) + timedelta(seconds=60):
        found.append(f"Last-Modified {modified} is in the future")
    return found


def _conditional_problems(base: str, path: str, etag: str | None, modified: str | None) -> list[str]:
    """RFC 9110 §13: If-None-Match (strong, weak and lists) and If-Modified-Since, and which one decides."""
    if not etag or not modified:
        return []
    found = []
    earlier = email.utils.format_datetime(email.utils.parsedate_to_datetime(modified) - timedelta(days=1), usegmt=True)
    unchanged = {
        "If-None-Match with the ETag": {"If_None_Match": etag},
        "If-None-Match with a list holding the ETag": {"If_None_Match": f'"x-other", {etag}'},
        "If-None-Match with the ETag made weak (weak comparison, §13.1.2)": {"If_None_Match": f"W/{etag.removeprefix('W/')}"},
        "If-Modified-Since with Last-Modified": {"If_Modified_Since": modified},
        "both validators, as readers send them": {"If_None_Match": etag, "If_Modified_Since": modified},
    }
    for label, headers in unchanged.items():
        res = ask(base, path, **headers)
        if res.status != 304 or res.body:
            found.append(f"{label}: {res.status} with {len(res.body)} bytes, not an empty 304")
        elif res.get("etag") != etag:
            found.append(f"{label}: the 304 carries ETag {res.get('etag')!r}, not {etag} (§15.4.5)")
    changed = {
        "If-None-Match with another ETag": {"If_None_Match": '"x-not-the-etag"'},
        "If-Modified-Since a day before Last-Modified": {"If_Modified_Since": earlier},
        "another ETag with a matching If-Modified-Since (If-None-Match decides, §13.2.2)":
            {"If_None_Match": '"x-not-the-etag"', "If_Modified_Since": modified},
    }
    for label, headers in changed.items():
        res = ask(base, path, **headers)
        if res.status != 200 or not res.body:
            found.append(f"{label}: {res.status} with {len(res.body)} bytes, not the feed")
    return found


def _head_problems(base: str, path: str, plain: Answer) -> list[str]:
    head = ask(base, path, method="HEAD")
    found = [] if head.status == 200 else [f"HEAD answered {head.status}"]
    for name in ("content-type", "etag", "last-modified", "content-length"):
        if head.get(name) != plain.get(name):
            found.append(f"HEAD's {name} {head.get(name)!r} differs from GET's {plain.get(name)!r}")
    if extra := bytes_after_head(base, path):
        found.append(f"HEAD sent {extra} body bytes")
    return found


def _compression_problems(base: str, path: str, plain: Answer) -> list[str]:
    """Each coding decodes to the same bytes, has its own ETag (§8.8.3) and says Vary: Accept-Encoding."""
    found = []
    for coding, decode in (("gzip", gzip.decompress), ("br", brotli.decompress)):
        coded = ask(base, path, Accept_Encoding=coding)
        if coded.get("content-encoding") != coding:
            found.append(f"Accept-Encoding: {coding} got Content-Encoding {coded.get('content-encoding')!r}")
            continue
        try:
            if decode(coded.body) != plain.body:
                found.append(f"the {coding} body does not decode to the plain body")
        except Exception as exc:  # noqa: BLE001 - any decoder error is the finding
            found.append(f"the {coding} body does not decode: {exc}")
        if coded.get("content-length") != str(len(coded.body)):
            found.append(f"{coding}: Content-Length {coded.get('content-length')} for {len(coded.body)} bytes")
        if "accept-encoding" not in (coded.get("vary") or "").lower():
            found.append(f"{coding}: no Vary: Accept-Encoding (a shared cache could hand it to any client)")
        if coded.get("etag") in (None, plain.get("etag")):
            found.append(f"{coding}: ETag {coded.get('etag')!r} is the plain body's (a strong ETag names one representation)")
        elif (res := ask(base, path, Accept_Encoding=coding, If_None_Match=coded.get("etag"))).status != 304:
            found.append(f"{coding}: If-None-Match with its own ETag gave {res.status}, not 304")
    return found

"""feedsvc/server.py's and accesslog.py's rules, one by one (the served behaviour is in test_serve_start.py and test_http_attacks.py)."""
from __future__ import annotations

import os

import pytest

from feedsvc.serving.accesslog import as_sent, escape, public_referer, readable_path
from feedsvc.server import remove_stale_metrics_folders, site_url_for, site_url_warning


@pytest.mark.parametrize("host, url", [
    ("127.0.0.1", "http://127.0.0.1:9101"), ("0.0.0.0", "http://127.0.0.1:9101"), ("::", "http://127.0.0.1:9101"),
    ("::1", "http://[::1]:9101"), ("news.example", "http://news.example:9101"),
])
def test_site_url_follows_host_and_port(host, url):
    assert site_url_for(host, 9101) == url


@pytest.mark.parametrize("site_url, host, warned", [
    ("http://127.0.0.1:8000", "127.0.0.1", True),  # the default, served on another port
    ("http://localhost:8000", "0.0.0.0", True),
    ("http://[::1]:8000", "::", True),
    ("http://127.0.0.1:9101", "127.0.0.1", False),
    ("http://127.0.0.1:9101", "192.0.2.7", True),  # loopback, but the server listens elsewhere only
    ("https://news.example", "127.0.0.1", False),  # a proxy's name: it may well reach this server
    ("http://192.0.2.7", "192.0.2.7", True),  # port 80 is not 9101
])
def test_a_site_url_that_cannot_be_this_server_is_warned_of(site_url, host, warned):
    warning = site_url_warning(site_url, host, 9101)
    assert (warning is not None) == warned
    assert warning is None or (warning.startswith("warning: SITE_URL is " + site_url) and "\n" not in warning)
    # Behind a proxy (PROXY_HOPS), SITE_URL is the proxy's address: the README's nginx in front of a search server on
    # this machine, at another port, was warned that its links "will point elsewhere".
    assert site_url_warning(site_url, host, 9101, proxied=True) is None


@pytest.mark.parametrize("raw, shown", [
    ("/category/%D8%B3%D9%8A%D8%A7%D8%B3%D8%A9/feed.rss?key=secret", "/category/سياسة/feed.rss"),
    ("/category/" + "سياسة".encode().decode("latin-1") + "/", "/category/سياسة/"),  # unencoded bytes, as WSGI has them
    ("/a%0Ab%1B[2J%E2%80%AEc", "/a\\x0ab\\x1b[2J\\u202ec"),
    ("/bad%FF", "/bad\\xff"),
    ("/back\\slash", "/back\\x5cslash"),
])
def test_logged_paths_are_readable_utf8_with_anything_unsafe_escaped(raw, shown):
    assert escape(readable_path({"RAW_URI": raw})) == shown


@pytest.mark.parametrize("sent, shown", [
    ("Reader/1.0", "Reader/1.0"),
    ("قارئ/1.0".encode().decode("latin-1"), "قارئ/1.0"),  # UTF-8, as WSGI carries it
    ("x\xff\xfe", "x\\xff\\xfe"),  # bytes that are not UTF-8
    ("abc\u202edef".encode().decode("latin-1"), "abc\\u202edef"),  # a bidi control, sent as UTF-8
])
def test_logged_headers_are_their_bytes_read_as_utf8_with_anything_unsafe_escaped(sent, shown):
    """A User-Agent or Referer was escaped as latin-1 text: an Arabic one logged as mojibake ("Ø³Ù"), its stray bytes
    as characters, and a bidi control as three characters, not \\u202e (found in review)."""
    assert escape(as_sent(sent)) == shown


def test_a_real_unicode_path_is_taken_as_it_is():
    assert readable_path({"PATH_INFO": "/category/سياسة/feed.rss"}) == "/category/سياسة/feed.rss"


@pytest.mark.parametrize("referer, kept", [
    ("https://reader.example/partners/feed.rss?key=secret#frag", "https://reader.example/partners/feed.rss"),
    ("https://user:secret@reader.example:8443/x", "https://reader.example:8443/x"),
    ("/relative?key=secret", "/relative"),
    (None, "-"),
])
def test_referers_lose_what_could_carry_a_key(referer, kept):
    assert public_referer(referer) == kept


def test_only_metrics_folders_of_dead_processes_are_removed(tmp_path):
    dead = tmp_path / "feedsvc-metrics-999999999-abc"  # no PID is that large
    live = tmp_path / f"feedsvc-metrics-{os.getpid()}-abc"
    other = tmp_path / "feedsvc-metrics-made-by-hand"
    for folder in (dead, live, other):
        folder.mkdir()
    assert remove_stale_metrics_folders(str(tmp_path)) == [dead]
    assert live.exists() and other.exists() and not dead.exists()

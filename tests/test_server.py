"""End to end: `feedsvc serve` as a real gunicorn process on a loopback port."""
from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.feed_rules import feed_problems
from tests.http_contract import contract_problems
from feedsvc.server import PRELOADED
from tests.http_helpers import MEDIA_TYPES, Server, check_feed_http, check_not_found, fetch

pytestmark = pytest.mark.e2e

POLITICS = quote("سياسة")
SEED_PAGE = "/articles/000_4c2ff0435fbab79d"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.conftest import SAMPLE_ARTICLES

    folder = tmp_path_factory.mktemp("served")
    srv = Server(SAMPLE_ARTICLES, folder / "state.sqlite3")
    yield srv
    srv.stop()


FEED_PATHS = [
    ("/feed.rss", "rss"), ("/feed.atom", "atom"), ("/feed.json", "json"),
    (f"/category/{POLITICS}/feed.rss", "rss"), (f"/category/{POLITICS}/feed.atom", "atom"),
    (f"/category/{POLITICS}/feed.json", "json"), ("/category/technology/feed.atom", "atom"),
    ("/feeds.opml", "opml"),
]


@pytest.mark.parametrize("path, fmt", FEED_PATHS)
def test_every_feed_follows_the_http_rules(server, path, fmt):
    check_feed_http(server.base, path, MEDIA_TYPES[fmt])


@pytest.mark.parametrize("path", ["/", f"/category/{POLITICS}/", SEED_PAGE])
def test_pages_are_html_with_a_content_security_policy(server, path):
    res = fetch(server.base, path)
    assert res.status == 200
    assert res.header("content-type") == MEDIA_TYPES["html"]
    assert "default-src 'none'" in res.header("content-security-policy")
    assert res.header("x-content-type-options") == "nosniff"


def test_home_page_links_every_category_and_the_site_feeds(server):
    html = fetch(server.base, "/").body.decode("utf-8")
    for fmt, media in (("rss", "application/rss+xml"), ("atom", "application/atom+xml"), ("json", "application/feed+json")):
        assert f'<link rel="alternate" type="{media}"' in html and f"{server.base}/feed.{fmt}" in html
    assert f"{server.base}/feeds.opml" in html
    assert f"/category/{POLITICS}/" in html and "سياسة" in html and "(5)" in html


def test_arabic_article_page_is_right_to_left_with_its_category_feeds(server):
    html = fetch(server.base, SEED_PAGE).body.decode("utf-8")
    assert '<html lang="ar" dir="rtl">' in html
    assert "زيارة مسؤول أمني روسي لطهران" in html
    assert f"/category/{POLITICS}/feed.atom" in html
    assert "تابعونا على" not in html


def test_feeds_carry_a_stylesheet_that_is_served(server):
    for path in ("/feed.rss", "/feed.atom"):
        assert b'<?xml-stylesheet type="text/xsl" href="' in fetch(server.base, path).body
    xsl = fetch(server.base, "/feed.xsl")
    assert xsl.status == 200 and b"xsl:stylesheet" in xsl.body


def test_healthz_is_json(server):
    body = json.loads(fetch(server.base, "/healthz").body)
    assert body["articles"] == 11 and body["skipped"] == 0 and body["last_refresh"]


@pytest.mark.parametrize("path", [
    "/category/nope/", "/category/nope/feed.rss", "/feed.xml", "/articles/nope",
    "/../pyproject.toml", "/%2e%2e/pyproject.toml", "/articles/%2e%2e%2f%2e%2e%2fwsgi.py",
    "/category/..%2f..%2fwsgi.py", "/category/..%5c..%5cwsgi.py", "/static/../../README.md",
])
def test_unknown_and_traversing_paths_are_404(server, path):
    check_not_found(server.base, path)


def test_other_methods_are_405(server):
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert fetch(server.base, "/feed.rss", method=method).status == 405


def test_two_servers_and_a_restart_give_the_same_bytes_and_etags(server):
    from tests.conftest import SAMPLE_ARTICLES

    state_path = server.state  # shared, as by workers behind one load balancer
    other = Server(SAMPLE_ARTICLES, state_path, workers=2, env={"FEEDSVC_SITE_URL": server.base})
    try:
        for path in ("/feed.rss", f"/category/{POLITICS}/feed.json", "/feeds.opml", "/"):
            first, second = fetch(server.base, path), fetch(other.base, path)
            assert first.header("etag") == second.header("etag"), path
            assert first.body == second.body
    finally:
        other.stop()
    again = Server(SAMPLE_ARTICLES, state_path, env={"FEEDSVC_SITE_URL": server.base})
    try:
        assert fetch(again.base, "/feed.atom").header("etag") == fetch(server.base, "/feed.atom").header("etag")
    finally:
        again.stop()


@pytest.mark.parametrize("path", [p for p, fmt in FEED_PATHS if fmt != "opml"])
def test_every_served_feed_keeps_the_http_contract_feed_readers_rely_on(server, path):
    assert contract_problems(server.base, path) == []


@pytest.mark.parametrize("path", [p for p, fmt in FEED_PATHS if fmt != "opml"])
def test_every_served_feed_breaks_no_rule_a_feed_reader_relies_on(server, path):
    body = fetch(server.base, path).body
    assert feed_problems(path, body, feed_url=server.base + path if path.endswith(".json") else None) == []


def test_gunicorn_runs_the_wsgi_module_too(tmp_path):
    import sys

    from tests.conftest import SAMPLE_ARTICLES

    command = [sys.executable, "-m", "gunicorn", "--chdir", "{checkout}", "-b", "127.0.0.1:{port}", "-w", "2", "wsgi:app"]
    srv = Server(SAMPLE_ARTICLES, tmp_path / "state.sqlite3", env={"FEEDSVC_ARTICLES_DIR": str(SAMPLE_ARTICLES)}, command=command)
    try:
        check_feed_http(srv.base, "/feed.atom", MEDIA_TYPES["atom"])
    finally:
        srv.stop()


def test_gunicorn_preload_is_refused_in_one_line(tmp_path):
    """With --preload, gunicorn's master made the app, won the build lock and built; its workers were copies holding
    none of its SQLite locks (writes lost once the write-ahead log was deleted under them), with no contender thread,
    and the lock's descriptor, so a takeover never came. Refused in one line, before anything is built."""
    import subprocess
    import sys

    from tests.conftest import SAMPLE_ARTICLES
    from tests.http_helpers import ROOT, free_port

    state = tmp_path / "state.sqlite3"
    run = subprocess.run([sys.executable, "-m", "gunicorn", "--preload", "-b", f"127.0.0.1:{free_port()}", "-w", "2", "wsgi:app"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "FEEDSVC_ARTICLES_DIR": str(SAMPLE_ARTICLES), "FEEDSVC_STATE_PATH": str(state)})
    assert run.returncode == 1 and run.stderr == PRELOADED + "\n" and not state.exists()


def test_the_flask_app_named_to_feedsvcs_gunicorn_settings_is_refused_in_one_line(tmp_path):
    """`gunicorn -c python:feedsvc.gunicorn_conf wsgi:app`: the asyncio worker calls an ASGI app; handed the Flask app it
    started, built, then answered every request, /healthz too, 500 with a TypeError (found in review). Each worker
    says so in one line and the master stops (WORKER_BOOT_ERROR)."""
    import subprocess
    import sys

    from feedsvc.server import WSGI_NAMED
    from tests.conftest import SAMPLE_ARTICLES
    from tests.http_helpers import ROOT, free_port

    run = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "python:feedsvc.gunicorn_conf", "-b", f"127.0.0.1:{free_port()}",
                          "-w", "2", "wsgi:app"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "FEEDSVC_ARTICLES_DIR": str(SAMPLE_ARTICLES), "FEEDSVC_STATE_PATH": str(tmp_path / "state.sqlite3"),
                              "FEEDSVC_CONFIG": ""})
    # Refused by the master before any worker (exit 1, gunicorn's "Error: …"): a worker's own refusal raced the master's
    # spawning, which then printed its HaltServer traceback (seen in .ci/run's clean clone)
    assert run.returncode == 1 and WSGI_NAMED in run.stderr and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert not (tmp_path / "state.sqlite3").exists()  # nothing built


def test_sighup_in_serves_first_moments_is_said_and_serving_goes_on(tmp_path, sample_dir):
    """SIGHUP before gunicorn's arbiter had set its handlers (the first tenths of a second, longer on a cold start) ended
    `serve` silently with exit code 129 (found in review). Sent as soon as serve handles its signals (SIGTERM caught: set
    after SIGHUP's), and every 50 ms after, it is said and serving goes on."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from tests.http_helpers import ROOT, fetch, free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "feedsvc", "serve", "--port", str(port), "--articles", str(sample_dir)],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "FEEDSVC_STATE_PATH": str(tmp_path / "state.sqlite3"),
                                 "FEEDSVC_CONFIG": ""})
    try:
        deadline = time.monotonic() + 30
        caught = 0
        while not caught & (1 << (signal.SIGTERM - 1)) and time.monotonic() < deadline and proc.poll() is None:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("SigCgt:"):
                    caught = int(line.split()[1], 16)
        for _ in range(30):
            if proc.poll() is not None:
                break
            os.kill(proc.pid, signal.SIGHUP)
            time.sleep(0.05)
        until = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < until:
            try:
                if fetch(f"http://127.0.0.1:{port}", "/feed.rss").status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        assert proc.poll() is None, (proc.returncode, proc.stderr.read())
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        said = proc.communicate(timeout=30)[1]
    assert "SIGHUP: feedsvc serve does not reload its settings" in said and "Traceback" not in said, said[-2000:]


def test_a_killed_test_run_leaves_no_server_behind(tmp_path):
    """A test process killed mid-test (its teardown never runs) takes its server, and the server's builder, with it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import SAMPLE_ARTICLES
    from tests.http_helpers import ROOT

    stand_in = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from tests.http_helpers import Server; "
         f"s = Server(Path({str(SAMPLE_ARTICLES)!r}), Path({str(tmp_path / 'state.sqlite3')!r})); "
         "print(s.proc.pid, flush=True); time.sleep(600)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        master = int(stand_in.stdout.readline())
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        assert children, "serve started no process of its own"
    finally:
        stand_in.send_signal(signal.SIGKILL)
        stand_in.wait()
    deadline = time.monotonic() + 30

    def alive(pid: int) -> bool:
        try:
            return "zombie" not in Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return False

    while time.monotonic() < deadline and any(alive(pid) for pid in [master, *children]):
        time.sleep(0.05)
    assert not [pid for pid in [master, *children] if alive(pid)]


@pytest.mark.parametrize("headers", [{"If-Match": '"nope"'}, {"If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}])
def test_a_failed_precondition_is_named_in_the_status_line(server, headers):
    # gunicorn's asgi worker names statuses from a table of its own, without 412: "HTTP/1.1 412 Unknown".
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", int(server.base.rsplit(":", 1)[1]), timeout=10)
    try:
        conn.request("GET", "/feed.rss", headers=headers)
        res = conn.getresponse()
        assert (res.status, res.reason) == (412, "Precondition Failed")
    finally:
        conn.close()


def test_sighup_is_refused_in_one_line_not_a_reload_on_two_settings(sample_dir, tmp_path):
    """gunicorn's reload made new workers with the new feedsvc.toml while the dedicated builder went on with the old
    settings: first pages cut at 11 items, archive pages at 3, unsaid. `serve` says it does not reload and serves on."""
    import os
    import signal
    import subprocess
    import time

    config = tmp_path / "feedsvc.toml"
    config.write_text("feed_max_items = 50\n", encoding="utf-8")
    server = Server(sample_dir, tmp_path / "state.sqlite3", workers=2, env={"FEEDSVC_CONFIG": str(config)})
    try:
        before = fetch(server.base, "/feed.rss")
        assert before.body.count(b"<item>") == 11
        workers = set(subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout.split())
        config.write_text("feed_max_items = 3\n", encoding="utf-8")  # read by any process started from now on
        os.kill(server.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "does not reload" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "SIGHUP: feedsvc serve does not reload its settings" in server.output()
        time.sleep(1.5)
        after = fetch(server.base, "/feed.rss")
        assert after.status == 200 and after.body == before.body and server.proc.poll() is None
        assert fetch(server.base, "/feed.rss?page=2").status == 404  # no worker cuts pages of 3 beside pages of 11
        now = set(subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout.split())
        assert now == workers  # the same workers (and builder): none started anew with the new settings
    finally:
        server.stop()

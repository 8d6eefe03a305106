"""Starting and failing clearly: `feedsvc serve` and `feedsvc build` as real processes."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from feedsvc.building.lock import BuildLock, lock_path
from tests.conftest import SAMPLE_ARTICLES
from tests.http_helpers import ROOT, Server, fetch, free_port, run_feedsvc

pytestmark = pytest.mark.e2e

UNSET_KEY = "FEEDSVC_TEST_KEY_THAT_IS_NOT_SET"
PARTNER_WITHOUT_KEY = json.dumps([{"name": "Agency", "key_env": UNSET_KEY, "categories": "all"}])


def one_line_failure(result) -> str:
    """The error line of a command that failed cleanly: a non-zero exit, no traceback, one `Error:` line last."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and result.stderr.rstrip().endswith(errors[0]), result.stderr
    return errors[0]


def serve(tmp_path: Path, *args: str, env: dict | None = None):
    """`feedsvc serve` that is expected to stop by itself."""
    base_env = {"FEEDSVC_STATE_PATH": str(tmp_path / "state.sqlite3"), UNSET_KEY: None}
    started = time.monotonic()
    result = run_feedsvc("serve", "--port", str(free_port()), *args, env={**base_env, **(env or {})}, cwd=tmp_path, timeout=30)
    return result, time.monotonic() - started


def test_serve_with_a_missing_articles_folder_stops_at_once_naming_it(tmp_path):
    result, took = serve(tmp_path, "--articles", "/no/such/folder")
    line = one_line_failure(result)
    assert "/no/such/folder" in line and "--articles" in line
    assert "Booting worker" not in result.stderr and took < 10


@pytest.mark.parametrize("env, named", [
    ({"FEEDSVC_REFRESH_SECOND": "5"}, "FEEDSVC_REFRESH_SECOND"),  # a misspelt name
    ({"FEEDSVC_REFRESH_SECONDS": "abc"}, "REFRESH_SECONDS"),  # a value that is not one
])
def test_serve_with_a_bad_setting_stops_in_one_line_naming_it(tmp_path, env, named):
    # The settings were read once for the site URL before the check that turns a bad one into a line: a traceback.
    result, _ = serve(tmp_path, "--articles", str(SAMPLE_ARTICLES), env=env)
    assert named in one_line_failure(result)
    assert "Booting worker" not in result.stderr


def test_serve_with_an_unknown_key_in_feedsvc_toml_stops_in_one_line_naming_it(tmp_path):
    (tmp_path / "feedsvc.toml").write_text('refresh_secnds = 5\n', encoding="utf-8")
    result, _ = serve(tmp_path, "--articles", str(SAMPLE_ARTICLES))
    assert "refresh_secnds" in one_line_failure(result).lower()


def test_serve_with_a_partner_key_not_set_stops_before_any_worker(tmp_path):
    result, _ = serve(tmp_path, "--articles", str(SAMPLE_ARTICLES), env={"FEEDSVC_PARTNERS": PARTNER_WITHOUT_KEY})
    line = one_line_failure(result)
    assert UNSET_KEY in line and "Agency" in line
    assert "Booting worker" not in result.stderr


def test_serve_with_a_state_path_that_cannot_be_written_stops_before_any_worker(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    result, _ = serve(tmp_path, "--articles", str(SAMPLE_ARTICLES), env={"FEEDSVC_STATE_PATH": str(blocker / "state.sqlite3")})
    line = one_line_failure(result)
    assert "a-file/state.sqlite3" in line and "STATE_PATH" in line
    assert "Booting worker" not in result.stderr


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = run_feedsvc("serve", "--port", str(port), "--articles", str(SAMPLE_ARTICLES), cwd=tmp_path,
                             env={"FEEDSVC_STATE_PATH": str(tmp_path / "state.sqlite3")}, timeout=30)
        took = time.monotonic() - started
    assert one_line_failure(result) == f"Error: port {port} is in use; pass --port or stop the other server"
    assert took < 10  # gunicorn alone retries for five seconds, then prints a traceback-like stack


def _ipv6_loopback() -> bool:
    """Whether this machine can listen on ::1."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_serve_takes_an_ipv6_host_in_brackets_as_a_url_writes_it(tmp_path):
    # `--host '[::1]'` was "cannot listen on [::1]: Name or service not known": the brackets went to getaddrinfo.
    with socket.socket(socket.AF_INET6) as taken:
        taken.bind(("::1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_feedsvc("serve", "--host", "[::1]", "--port", str(port), "--articles", str(SAMPLE_ARTICLES), cwd=tmp_path,
                             env={"FEEDSVC_STATE_PATH": str(tmp_path / "state.sqlite3")}, timeout=30)
    assert one_line_failure(result) == f"Error: port {port} is in use; pass --port or stop the other server"


def test_serve_starts_its_builder_before_gunicorn_is_set_up(tmp_path):
    # The builder is a cold start's longest chain: started from gunicorn's on_starting hook, it began after the
    # master had imported gunicorn's arbiter and application and opened its listener (0.2-0.4 s later under strace, on the sample).
    code = ("import sys\nimport feedsvc.server\n"
            "def started(overrides):\n"
            "    print('arbiter loaded' if 'gunicorn.arbiter' in sys.modules else 'before gunicorn', flush=True)\n"
            "    raise SystemExit(0)\n"
            "feedsvc.server.start_builder = started\n"
            "from feedsvc.cli import main\n"
            f"main(['serve', '--port', '{free_port()}', '--articles', {str(SAMPLE_ARTICLES)!r}])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "FEEDSVC_STATE_PATH": str(tmp_path / "state.sqlite3")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "before gunicorn"


def test_site_url_follows_the_port_when_not_set(tmp_path):
    server = Server(SAMPLE_ARTICLES, tmp_path / "state.sqlite3", env={"FEEDSVC_SITE_URL": None})
    try:
        home = fetch(server.base, "/").body.decode()
        stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', home)[1]
        assert stylesheet.startswith(server.base + "/")  # the same origin as the page: the CSP's 'self' lets it load
        css = fetch(server.base, stylesheet[len(server.base):])
        assert css.status == 200 and css.header("content-type").startswith("text/css")
        assert f'xmlUrl="{server.base}/feed.rss"' in fetch(server.base, "/feeds.opml").body.decode()
        assert f"<link>{server.base}/</link>" in fetch(server.base, "/feed.rss").body.decode()
        assert "warning: SITE_URL" not in server.output()
    finally:
        server.stop()


def test_a_site_url_that_cannot_be_this_server_is_named_in_one_warning(tmp_path):
    server = Server(SAMPLE_ARTICLES, tmp_path / "state.sqlite3", env={"FEEDSVC_SITE_URL": "http://127.0.0.1:1"})
    try:
        warnings = [line for line in server.output().splitlines() if line.startswith("warning: SITE_URL")]
        assert len(warnings) == 1 and f"listens on port {server.port}" in warnings[0]
        assert "http://127.0.0.1:1/feed.rss" in fetch(server.base, "/feeds.opml").body.decode()  # as set
    finally:
        server.stop()


def test_serve_opens_no_control_socket_in_the_home_folder(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    server = Server(SAMPLE_ARTICLES, tmp_path / "state.sqlite3", env={"HOME": str(home), "XDG_RUNTIME_DIR": None})
    try:
        assert fetch(server.base, "/feed.rss").status == 200
        assert not list(home.rglob("*")), list(home.rglob("*"))
    finally:
        server.stop()


def metrics_folders(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("feedsvc-metrics-*"))


def test_metrics_folders_left_by_a_killed_server_are_removed_at_the_next_start(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    alive = tmp / f"feedsvc-metrics-{os.getpid()}-kept"  # a running server's (this process is alive)
    alive.mkdir()
    first = Server(SAMPLE_ARTICLES, tmp_path / "state.sqlite3", env={"TMPDIR": str(tmp)})
    killed = [f for f in metrics_folders(tmp) if f != alive]
    assert len(killed) == 1
    os.kill(first.proc.pid, signal.SIGKILL)  # the master: no atexit, no clean-up
    first.proc.wait()
    first.stop()
    assert killed[0].exists()
    # Its builder is told by the kernel (children.py: PR_SET_PDEATHSIG) and ends once what it builds has landed; until
    # then it builds for its SITE_URL, and a server at another URL (this test's next port) is refused (server.py).
    lock, deadline = BuildLock(lock_path(str(tmp_path / "state.sqlite3"))), time.monotonic() + 30
    while not lock.try_acquire():
        assert time.monotonic() < deadline, "the killed server's builder never ended"
        time.sleep(0.05)
    lock.release()
    second = Server(SAMPLE_ARTICLES, tmp_path / "state.sqlite3", env={"TMPDIR": str(tmp)})
    try:
        assert not killed[0].exists() and alive.exists()
        assert len(metrics_folders(tmp)) == 2  # the live one and the new server's
    finally:
        second.stop()
    shutil.rmtree(alive)


def test_build_with_a_partner_key_not_set_fails_in_one_line(tmp_path):
    result = run_feedsvc("build", "--out", str(tmp_path / "out"), "--articles", str(SAMPLE_ARTICLES), cwd=tmp_path,
                         env={"FEEDSVC_PARTNERS": PARTNER_WITHOUT_KEY, UNSET_KEY: None,
                              "FEEDSVC_STATE_PATH": str(tmp_path / "state.sqlite3")})
    line = one_line_failure(result)
    assert UNSET_KEY in line and "Agency" in line
    assert not (tmp_path / "out").exists()


def test_build_with_a_state_path_that_cannot_be_written_fails_in_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    result = run_feedsvc("build", "--out", str(tmp_path / "out"), "--articles", str(SAMPLE_ARTICLES), cwd=tmp_path,
                         env={"FEEDSVC_STATE_PATH": str(blocker / "state.sqlite3")})
    line = one_line_failure(result)
    assert "a-file/state.sqlite3" in line and "STATE_PATH" in line


def test_build_into_a_full_disk_fails_in_one_line(tmp_path):
    """A 64 KiB tmpfs, mounted in a private mount namespace (util-linux's unshare; gone with the process)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    script = (f"mount -t tmpfs -o size=64k tmpfs {disk} && "
              f"exec {sys.executable} -m feedsvc build --out {disk}/out --articles {SAMPLE_ARTICLES}")
    result = subprocess.run(["unshare", "--mount", "--map-root-user", "sh", "-c", script], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT),
                                                            "FEEDSVC_STATE_PATH": str(tmp_path / "state.sqlite3")})
    line = one_line_failure(result)
    assert "No space left on device" in line and f"{disk}/out is left as it was" in line


GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "python:feedsvc.gunicorn_conf", "--chdir", "{checkout}",
            "-b", "127.0.0.1:{port}", "-w", "2", "wsgi:asgi"]


def test_gunicorns_own_command_with_feedsvcs_config_serves_the_same_way(tmp_path):
    server = Server(SAMPLE_ARTICLES, tmp_path / "state.sqlite3", command=GUNICORN, env={
        "FEEDSVC_ARTICLES_DIR": str(SAMPLE_ARTICLES), "HOME": str(tmp_path), "XDG_RUNTIME_DIR": None})
    try:
        assert fetch(server.base, "/category/" + "%D8%B3%D9%8A%D8%A7%D8%B3%D8%A9" + "/feed.rss").status == 200
        assert "feedsvc_http_requests_total" in fetch(server.base, "/metrics").body.decode()
        deadline = time.monotonic() + 5
        while '"GET /category/سياسة/feed.rss HTTP/1.1" 200' not in server.output():
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        assert "Using worker: asgi" in server.output() and not (tmp_path / ".gunicorn").exists()
    finally:
        server.stop()


def test_gunicorns_own_command_with_feedsvcs_config_checks_before_any_worker(tmp_path):
    command = [part.format(checkout=ROOT, port=free_port()) for part in GUNICORN]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=tmp_path, env={
        **os.environ, "PYTHONPATH": str(ROOT), "FEEDSVC_ARTICLES_DIR": str(tmp_path / "missing"),
        "FEEDSVC_STATE_PATH": str(tmp_path / "state.sqlite3")})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"Error: articles folder {tmp_path / 'missing'} does not exist" in result.stderr
    assert "Booting worker" not in result.stderr


def test_two_deployments_started_a_moment_apart_on_one_store_are_told_apart(tmp_path):
    """`serve` refuses a state file another live deployment builds at another URL, by the builder's status file; a
    second started 0.1-0.3 s after the first found no status yet (its builder writes it a moment after taking the lock)
    and both ran, the second serving the first's links (found in review). It waits for the status of the lock's holder."""
    state = str(tmp_path / "state.sqlite3")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FEEDSVC_STATE_PATH": state, "FEEDSVC_CONFIG": ""}
    procs = []
    try:
        for gap in (0.0, 0.2):
            time.sleep(gap)
            procs.append(subprocess.Popen([sys.executable, "-m", "feedsvc", "serve", "--port", str(free_port()), "--articles",
                                           str(SAMPLE_ARTICLES)], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, text=True, start_new_session=True))
        second = procs[1]
        said = second.communicate(timeout=60)[1]
        assert second.returncode == 1 and "builds " + state + " for http://127.0.0.1:" in said, said[-2000:]
        assert procs[0].poll() is None  # the first serves on
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.communicate(timeout=30)

"""The state store's files as a deployment leaves them (feedsvc/building/lock.py writable): a lock file that opens only
read-only will do, a store file that cannot be written is named, and only a folder that cannot be written is blamed.
Real permissions: as root, each check runs without the capabilities that let root write anywhere."""
from __future__ import annotations

import os
import pwd
import subprocess
import sys

import pytest

from feedsvc.building.state import StateStore
from tests.http_helpers import ROOT, Server, fetch, free_port, run_feedsvc, until

DROP = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"] if os.getuid() == 0 else []


def why(state) -> str:
    """writable(state) as a process without root's override of file permissions says it."""
    run = subprocess.run([*DROP, sys.executable, "-c", "import sys; from feedsvc.building.lock import writable; "
                          "print(writable(sys.argv[1]))", str(state)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def left(path, how: str) -> None:
    """The file as a slip leaves it: read-only (mode 444), or another user's (mode 644, owned by nobody)."""
    if how == "another user's":
        if os.getuid() != 0:
            pytest.skip("only root can give a file to another user")
        os.chown(path, pwd.getpwnam("nobody").pw_uid, -1)
        os.chmod(path, 0o644)
    else:
        os.chmod(path, 0o444)


def a_store(folder):
    """A state store as a stopped server leaves it: the file, its write-ahead log and index, the lock file."""
    state = folder / "state.db"
    StateStore(state)
    for end in ("-wal", "-shm", ".build-lock"):
        (folder / f"state.db{end}").touch()
    return state


@pytest.mark.parametrize("how", ["read-only", "another user's"])
def test_a_lock_file_that_opens_only_read_only_is_no_reason_to_refuse(tmp_path, how):
    """A lock file left read-only stopped serve and build with "the state folder … cannot be written", the folder
    writable: BuildLock locks such a file opened read-only (the same flock), and writable() now takes it so too."""
    state = a_store(tmp_path)
    left(tmp_path / "state.db.build-lock", how)
    assert why(state) == "None"


@pytest.mark.parametrize("how", ["read-only", "another user's"])
@pytest.mark.parametrize("end", ["", "-wal", "-shm"])
def test_a_store_file_that_cannot_be_written_is_named_with_its_fix_not_the_folder(tmp_path, end, how):
    """Every state file chowned to another user (the lock file too): the folder was blamed, writable as it was, because
    the lock file was tried first, to write. The store's own file is named, with chown or chmod as the fix."""
    state = a_store(tmp_path)
    left(tmp_path / "state.db.build-lock", how)
    left(tmp_path / f"state.db{end}", how)
    said = why(state)
    assert said.startswith(f"the state store {tmp_path / f'state.db{end}'} cannot be written (Permission denied)"), said
    assert "chown or chmod" in said and "STATE_PATH" in said


def test_a_lock_file_that_cannot_be_opened_at_all_is_named_not_the_folder(tmp_path):
    state = a_store(tmp_path)
    os.chmod(tmp_path / "state.db.build-lock", 0)  # not even to read: no flock to take through it
    said = why(state)
    lock = tmp_path / "state.db.build-lock"
    assert said.startswith(f"the build lock {lock} cannot be opened (Permission denied)"), said
    assert "chown or chmod" in said


def test_only_a_folder_that_cannot_be_written_is_blamed_on_the_folder(tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    StateStore(folder / "state.db")  # no lock file, no write-ahead log: both must be made there
    os.chmod(folder, 0o555)
    try:
        assert why(folder / "state.db").startswith(f"the state folder {folder} cannot be written (Permission denied)")
    finally:
        os.chmod(folder, 0o755)


def test_serve_and_build_run_with_a_lock_file_left_read_only(tmp_path, sample_dir):
    """The reproduction: a lock file left mode 444 in a folder where feedsvc ran before; serve and build both stopped
    with exit 1, blaming the folder. Both run now (the lock opened read-only), and the server builds."""
    state = tmp_path / "state" / "state.db"
    state.parent.mkdir()
    env = {"FEEDSVC_STATE_PATH": str(state), "FEEDSVC_CONFIG": ""}
    made = run_feedsvc("build", "--out", str(tmp_path / "first"), "--articles", str(sample_dir), env=env, timeout=120)
    assert made.returncode == 0, made.stderr
    os.chmod(f"{state}.build-lock", 0o444)
    run = subprocess.run([*DROP, sys.executable, "-m", "feedsvc", "build", "--out", str(tmp_path / "site"),
                          "--articles", str(sample_dir)], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert (tmp_path / "site" / "feed.atom").exists()
    (sample_dir / "new.txt").write_text("News\nA new title\n" + "Body. " * 50 + "\n", encoding="utf-8")
    serve = [*DROP, sys.executable, "-m", "feedsvc", "serve", "--port", "{port}", "--articles", "{articles}"]
    server = Server(sample_dir, state, env={"FEEDSVC_CONFIG": ""}, command=serve)
    try:
        until(lambda: b"A new title" in fetch(server.base, "/feed.atom").body, 30, "the server never built the article")
        assert '"last_error": null' in fetch(server.base, "/healthz").body.decode()
    finally:
        server.stop()
    assert "Traceback" not in server.output(), server.output()


def test_plain_gunicorn_refuses_a_state_file_it_cannot_write_in_one_line_per_worker(tmp_path, sample_dir):
    """`gunicorn wsgi:app` with the state file left read-only started, served the old build with /healthz "ok", and
    failed every refresh ("attempt to write a readonly database"), where `feedsvc serve` refused the file before it
    started. Each worker says it in one line, as it says a setting to fix, and the master stops. One worker: with
    more, gunicorn's master sometimes prints a HaltServer traceback as it reaps the second (a bad setting's too)."""
    state = tmp_path / "state.db"
    env = {"FEEDSVC_STATE_PATH": str(state), "FEEDSVC_CONFIG": "", "FEEDSVC_ARTICLES_DIR": str(sample_dir)}
    made = run_feedsvc("build", "--out", str(tmp_path / "first"), "--articles", str(sample_dir), env=env, timeout=120)
    assert made.returncode == 0, made.stderr
    os.chmod(state, 0o444)
    try:
        run = subprocess.run([*DROP, sys.executable, "-m", "gunicorn", "--pythonpath", str(ROOT), "--no-control-socket",
                              "-b", f"127.0.0.1:{free_port()}", "-w", "1", "wsgi:app"],
                             capture_output=True, text=True, timeout=60, cwd=tmp_path, env={**os.environ, **env})
    finally:
        os.chmod(state, 0o644)
    said = [line for line in run.stderr.splitlines() if line.startswith("feedsvc: ")]
    fix = (f"feedsvc: the state store {state} cannot be written (Permission denied); give the user feedsvc runs as "
           "write access to it (chown or chmod), or set STATE_PATH to another file")
    assert run.returncode != 0 and "Traceback" not in run.stderr and "Worker failed to boot" in run.stderr, run.stderr
    assert said == [fix], run.stderr
    assert "holds the build lock" not in run.stderr and "refresh failed" not in run.stderr, run.stderr

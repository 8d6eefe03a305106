"""The command line: `feedsvc check` lists skipped files and sets the exit code."""
from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from feedsvc.cli import main
from tests.conftest import write


def test_check_on_the_sample_folder_finds_nothing_to_skip(sample_dir):
    result = CliRunner().invoke(main, ["check", str(sample_dir)])
    assert result.exit_code == 0, result.output
    assert "0 files skipped" in result.output


def test_check_lists_each_bad_file_with_reason_and_fix_and_exits_1(articles_dir):
    write(articles_dir, "ok.txt", "News\nTitle\nBody.\n")
    write(articles_dir, "empty.txt", "  \n\n")
    write(articles_dir, "notes.docx", "x")
    result = CliRunner().invoke(main, ["check", str(articles_dir)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any(line.startswith("empty.txt") and "empty" in line for line in lines)
    assert any(line.startswith("notes.docx") and ".txt and .md" in line for line in lines)


def test_check_counts_one_file_and_one_warning_in_the_singular(articles_dir):
    write(articles_dir, "empty.txt", "")
    write(articles_dir, "short.md", "---\ntitle: Short\ncategory: News\ndate: 2026-11-01 10:00\n---\nA short body.\n")
    result = CliRunner().invoke(main, ["check", str(articles_dir)])
    assert ", 1 file skipped, 1 warning" in result.output.splitlines()[0], result.output


def test_check_json_is_machine_readable(articles_dir):
    write(articles_dir, "solo.txt", "Category only\n")
    result = CliRunner().invoke(main, ["check", "--json", str(articles_dir)])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["articles"] == 0
    assert report["skipped"][0]["file"] == "solo.txt"
    assert "title" in report["skipped"][0]["reason"]


def test_check_names_a_missing_folder(tmp_path):
    result = CliRunner().invoke(main, ["check", str(tmp_path / "nope")])
    assert result.exit_code == 2  # not 1, which says files were skipped
    assert "does not exist" in result.output


def test_check_json_says_a_missing_folder_in_json_with_its_own_exit_code(tmp_path):
    import inspect

    apart = {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner).parameters else {}  # click < 8.2 mixes them
    result = CliRunner(**apart).invoke(main, ["check", "--json"], env={"FEEDSVC_ARTICLES_DIR": str(tmp_path / "nope"), "FEEDSVC_CONFIG": ""})
    assert result.exit_code == 2
    assert "does not exist" in json.loads(result.stdout)["error"] and "does not exist" in result.stderr


LONG = "A full paragraph of the article, long enough to be read as real text by anyone. " * 3


def warnings_of(folder) -> dict[str, list[str]]:
    result = CliRunner().invoke(main, ["check", "--json", str(folder)])
    assert result.exit_code == 0, result.output  # warnings alone never fail a check
    found: dict[str, list[str]] = {}
    for w in json.loads(result.output)["warnings"]:
        found.setdefault(w["file"], []).append(w["reason"])
    return found


def test_check_warns_of_articles_without_a_date_and_still_exits_0(sample_dir):
    result = CliRunner().invoke(main, ["check", str(sample_dir)])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert any(line.startswith("000_4c2ff0435fbab79d.txt") and "no date" in line and "date:" in line for line in lines)
    assert not any(line.startswith("economy/2026-11-20-rates-unchanged.md") for line in lines)  # it has a date


def test_check_names_a_front_matter_key_that_means_one_feedsvc_reads(articles_dir):
    write(articles_dir, "a.md", "---\ntitle: T\ncategory: News\ndate: 2026-11-01\ntag: rates\nauthors: [Sara Ali]\n"
                                "layout: post\n---\n" + "Body. " * 50 + "\n")
    found = warnings_of(articles_dir)
    assert "front matter key `tag` is not read, so its value is not published" in found["a.md"]
    assert "front matter key `authors` is not read, so its value is not published" in found["a.md"]
    assert not any("layout" in reason for reason in found["a.md"])  # another tool's key: left alone


def test_check_says_when_updated_is_not_used_as_written(articles_dir):
    """`updated:` before `date:` is published as `date:`, and without `date:` not at all: both silently before."""
    body = "Body. " * 50
    write(articles_dir, "early.md", f"---\ntitle: T\ncategory: News\ndate: 2026-12-01 08:00\nupdated: 2026-11-30 08:00\n---\n{body}\n")
    write(articles_dir, "alone.md", f"---\ntitle: T\ncategory: News\nupdated: 2026-12-05 10:00\n---\n{body}\n")
    write(articles_dir, "fine.md", f"---\ntitle: T\ncategory: News\ndate: 2026-12-01 08:00\nupdated: 2026-12-02 08:00\n---\n{body}\n")
    write(articles_dir, "later.md", f"---\ntitle: T\ncategory: News\ndate: 2026-12-01 08:00\nupdated: 2099-01-01 08:00\n---\n{body}\n")
    found = warnings_of(articles_dir)
    assert any("is in the future" in reason for reason in found["later.md"])  # capped, without a word before
    assert any("is before `date:`" in reason for reason in found["early.md"])
    assert any("`updated:` without `date:` is not used" in reason for reason in found["alone.md"])
    assert "fine.md" not in found


def test_check_warns_of_a_short_body(articles_dir):
    write(articles_dir, "stub.md", "---\ntitle: Stub\ncategory: News\ndate: 2026-11-01\n---\nOne line.\n")
    write(articles_dir, "one.txt", "News\nOne letter\nA\n")
    found = warnings_of(articles_dir)
    assert "short body (9 characters)" in found["stub.md"]
    assert "short body (1 character)" in found["one.txt"]  # not "1 characters"


def test_check_warns_of_site_chrome_left_inside_the_body(articles_dir):
    write(articles_dir, "kept.txt", f"News\nTitle\n{LONG}\nتابعونا على\n{LONG}\n")
    write(articles_dir, "joined.txt", f"News\nTitle\n{LONG}\nThe talks resume on Monday. Follow us on Facebook\n{LONG}\n")
    write(articles_dir, "clean.txt", f"News\nTitle\n{LONG}\nThe figures show more growth this year than last.\n")
    found = warnings_of(articles_dir)
    assert any("site chrome" in r and "تابعونا على" in r for r in found["kept.txt"])
    assert any("site chrome" in r and "Follow us on Facebook" in r for r in found["joined.txt"])
    assert not any("site chrome" in r for r in found["clean.txt"])


def test_check_warns_of_a_legacy_encoding_among_utf8_files(articles_dir):
    write(articles_dir, "utf8.txt", f"أخبار\nعنوان\n{LONG}\n")
    write(articles_dir, "legacy.txt", f"أخبار\nعنوان الخبر\nوصل الأمين العام لمجلس الأمن إلى طهران يوم الاثنين في زيارة رسمية.\n{LONG}\n".encode("cp1256"))
    found = warnings_of(articles_dir)
    assert any("not UTF-8 like the other files" in r for r in found["legacy.txt"])
    assert not any("UTF-8" in r for r in found.get("utf8.txt", []))


def test_check_names_the_encoding_the_file_is_published_in(articles_dir):
    # Latin-1 text: `check` named cp1250 (a guess of its own), where the feed shows the text read as cp1252; converting
    # the file from cp1250 as told would have turned "naïve" into "naďve".
    write(articles_dir, "latin.txt", "News\nCafé culture\nA naïve crème brûlée review from the café on the corner.\n".encode("latin-1"))
    found = warnings_of(articles_dir)["latin.txt"]
    named = [r for r in found if r.startswith("saved as ")]
    assert named, found
    encoding = named[0].removeprefix("saved as ").split(",")[0]
    text = (articles_dir / "latin.txt").read_bytes().decode(encoding)
    assert "naïve crème brûlée" in text and "café" in text, (encoding, text)


def test_check_names_where_a_utf8_article_has_a_stray_byte_and_it_is_still_published(articles_dir):
    good = f"أخبار\nعنوان الخبر\nوصل الأمين العام لمجلس الأمن إلى طهران يوم الاثنين في زيارة رسمية.\n{LONG}\n".encode("utf-8")
    at = good.index(b"\n") + 1
    write(articles_dir, "stray.txt", good[:at] + b"\xa0" + good[at:])
    result = CliRunner().invoke(main, ["check", "--json", str(articles_dir)])
    report = json.loads(result.output)
    assert report["skipped"] == []
    (finding,) = [w for w in report["warnings"] if w["file"] == "stray.txt" and "not UTF-8" in w["reason"]]
    assert finding["reason"] == f"1 byte is not UTF-8, the first at byte {at}, published as �" and "UTF-8" in finding["fix"]
    # and not also as text decoded with the wrong encoding, which it was not (found in review)
    assert not [w for w in report["warnings"] if w["file"] == "stray.txt" and "garbled" in w["reason"]], report["warnings"]


def test_check_json_of_a_file_or_under_a_setting_to_fix_is_json_and_exits_2(tmp_path, monkeypatch):
    """`check --json FILE` printed click's three-line usage error and no JSON, and `build --articles FILE` the same
    (click's own check of a folder); `check --json` under a feedsvc.toml with a misspelt setting no JSON, with exit 1,
    which says files were skipped (found in review)."""
    article = write(tmp_path, "a.txt", "News\nTitle\nBody.\n")
    result = CliRunner().invoke(main, ["check", "--json", str(article)], env={"FEEDSVC_CONFIG": ""})
    assert result.exit_code == 2 and json.loads(result.stdout)["error"].endswith("is a file, not a folder; pass a folder or set ARTICLES_DIR")
    result = CliRunner().invoke(main, ["build", "--out", str(tmp_path / "out"), "--articles", str(article)],
                               env={"FEEDSVC_CONFIG": "", "FEEDSVC_STATE_PATH": str(tmp_path / "s.db")})
    assert result.exit_code == 1 and result.output.strip().splitlines() == [
        f"Error: articles folder {article} is a file, not a folder; pass --articles DIR or set ARTICLES_DIR"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "feedsvc.toml").write_text("refresh_second = 5\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["check", "--json", str(tmp_path)], env={"FEEDSVC_CONFIG": None})
    assert result.exit_code == 2 and "unknown setting 'refresh_second'" in json.loads(result.stdout)["error"], result.output


def test_check_does_not_ask_a_draft_for_a_date(articles_dir):
    # A draft is never published, so the time it is first seen is nobody's date: "no date" under "published but worth
    # a look" was a warning about something that is not published.
    write(articles_dir, "draft.md", f"---\ntitle: Draft\ncategory: News\ndraft: true\n---\n{LONG}\n")
    write(articles_dir, "undated.md", f"---\ntitle: Undated\ncategory: News\n---\n{LONG}\n")
    found = warnings_of(articles_dir)
    assert not any("no date" in r for r in found.get("draft.md", [])) and any("no date" in r for r in found["undated.md"])


def test_check_warns_of_garbled_text(articles_dir):
    garbled = "وصل الأمين العام إلى طهران".encode("utf-8").decode("cp1252", "replace")
    write(articles_dir, "mojibake.txt", f"News\nTitle\n{garbled}\n{LONG}\n")
    assert any(r.startswith("garbled text") for r in warnings_of(articles_dir)["mojibake.txt"])


def test_check_json_lists_skipped_files_and_warnings_apart(articles_dir):
    write(articles_dir, "empty.txt", "")
    write(articles_dir, "stub.txt", "News\nTitle\nShort.\n")
    result = CliRunner().invoke(main, ["check", "--json", str(articles_dir)])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert [s["file"] for s in report["skipped"]] == ["empty.txt"]
    assert {w["file"] for w in report["warnings"]} == {"stub.txt"}
    assert all(set(w) == {"file", "reason", "fix"} for w in report["warnings"])


def test_a_state_folder_that_cannot_be_written_is_one_line_naming_the_fix_for_build_and_serve(tmp_path, sample_dir):
    """A read-only (or full) state folder holding a store: SQLite opens it read-only without a word, and the build lock
    could not be made (a traceback). Root writes anywhere, so the commands run without the capabilities that let it."""
    import os
    import socket
    import subprocess
    import sys

    from tests.conftest import ROOT

    state = tmp_path / "state"
    state.mkdir()
    made = subprocess.run([sys.executable, "-m", "feedsvc", "check", str(sample_dir)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "FEEDSVC_STATE_PATH": str(state / "state.db")})
    assert made.returncode == 0, made.stderr
    from feedsvc.building.state import StateStore
    StateStore(state / "state.db")  # a store there, as a deployment leaves it: the build lock's file too
    (state / "state.db.build-lock").touch()
    os.chmod(state, 0o555)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    drop = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"] if os.getuid() == 0 else []
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FEEDSVC_STATE_PATH": str(state / "state.db")}
    try:
        for command in (["build", "--out", str(tmp_path / "site"), "--articles", str(sample_dir)],
                        ["serve", "--port", str(port), "--articles", str(sample_dir)]):
            run = subprocess.run([*drop, sys.executable, "-m", "feedsvc", *command], capture_output=True, text=True,
                                 timeout=60, env=env, cwd=tmp_path)
            lines = [line for line in run.stderr.splitlines() if line.strip()]
            assert run.returncode != 0 and "Traceback" not in run.stderr, (command[0], run.stderr)
            assert any("cannot be written" in line and "STATE_PATH" in line for line in lines), (command[0], run.stderr)
    finally:
        os.chmod(state, 0o755)
    assert not (tmp_path / "site").exists()


def test_a_state_path_that_is_a_link_is_judged_by_the_folder_sqlite_writes_in(tmp_path):
    """SQLite follows a link and makes the write-ahead log and its index beside the file it names: a link in a read-only
    folder to a store in a writable one was refused ("the state folder … cannot be written"), and a link to a store in
    a read-only folder was not named as such."""
    from feedsvc.building.state import StateStore
    from tests.test_state_files import why

    links, files = tmp_path / "links", tmp_path / "files"
    links.mkdir()
    files.mkdir()
    StateStore(files / "state.db")
    (links / "state.db").symlink_to(files / "state.db")
    (links / "state.db.build-lock").touch()  # as every run leaves it
    try:
        os.chmod(links, 0o555)
        assert why(links / "state.db") == "None"
        os.chmod(links, 0o755)
        os.chmod(files, 0o555)
        assert why(links / "state.db").startswith(f"the state folder {files} cannot be written")
    finally:
        os.chmod(links, 0o755)
        os.chmod(files, 0o755)


def test_a_builder_status_that_cannot_be_written_is_said_once_until_it_can(tmp_path, caplog):
    import types

    from feedsvc.building.lock import BuilderStatus

    publisher = types.SimpleNamespace(progress=types.SimpleNamespace(now=lambda: None), site=types.SimpleNamespace(url="http://x"),
                                      root=".", last_success=None, last_error=None, observer_error=None)
    status = BuilderStatus(str(tmp_path / "gone" / "state.db.builder"))
    with caplog.at_level("WARNING", logger="feedsvc.building.lock"):
        assert not status.written(publisher) and not status.written(publisher, finished=True)
        (tmp_path / "gone").mkdir()
        assert status.written(publisher)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and "cannot write the builder status" in said[0] and "written again" in said[1]


def test_an_articles_folder_that_is_a_file_is_told_as_one(tmp_path):
    article = write(tmp_path, "a.txt", "News\nTitle\nBody.\n")
    result = CliRunner().invoke(main, ["check"], env={"FEEDSVC_ARTICLES_DIR": str(article), "FEEDSVC_CONFIG": ""})
    assert result.exit_code == 2 and "is a file, not a folder" in result.output  # (click says so of --articles itself)


def test_an_articles_folder_that_cannot_be_read_is_said_in_one_line_by_check_build_and_serve(tmp_path, sample_dir):
    """A folder its user may not read: click's own check printed a three-line usage error ("Invalid value for
    '[FOLDER]': Directory … is not readable"), `check --json` no JSON, and `serve` with ARTICLES_DIR set started its
    workers and logged refresh failures (found in review). Each says it in one line, with the fix, before anything."""
    import json
    import shutil
    import socket
    import subprocess
    import sys

    from tests.conftest import ROOT

    folder = tmp_path / "locked"
    shutil.copytree(sample_dir, folder)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    drop = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"] if os.getuid() == 0 else []
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FEEDSVC_STATE_PATH": str(tmp_path / "state.db"), "FEEDSVC_CONFIG": ""}
    said = f"articles folder {folder} cannot be read (Permission denied); give the user feedsvc runs as read and search (x)"
    os.chmod(folder, 0)
    try:
        for command in (["check", str(folder)], ["check", "--json", str(folder)],
                        ["build", "--out", str(tmp_path / "site"), "--articles", str(folder)],
                        ["serve", "--port", str(port), "--articles", str(folder)], ["serve", "--port", str(port)]):
            run = subprocess.run([*drop, sys.executable, "-m", "feedsvc", *command], capture_output=True, text=True,
                                 timeout=60, env={**env, "FEEDSVC_ARTICLES_DIR": str(folder)}, cwd=tmp_path)
            lines = [line for line in run.stderr.splitlines() if line.strip()]
            assert run.returncode in (1, 2) and len(lines) == 1 and lines[0].startswith("Error: " + said), (command, run.stderr)
            if "--json" in command:
                assert json.loads(run.stdout)["error"].startswith(said)
    finally:
        os.chmod(folder, 0o755)
    assert not (tmp_path / "site").exists()


def test_a_full_disk_as_a_new_stores_tables_are_made_is_said_in_one_line(tmp_path, sample_dir):
    """`feedsvc build` on a fresh store with less than 3 MB free printed a traceback (create_schema's disk I/O error,
    found in review): the empty schema alone is 2.75 MB. Made to fail for real: at most 2 MB may be written."""
    import resource
    import subprocess
    import sys

    from tests.conftest import ROOT

    def small_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    run = subprocess.run([sys.executable, "-m", "feedsvc", "build", "--out", str(tmp_path / "site"), "--articles", str(sample_dir)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path, preexec_fn=small_disk,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "FEEDSVC_STATE_PATH": str(tmp_path / "state.db"), "FEEDSVC_CONFIG": ""})
    lines = [line for line in run.stderr.splitlines() if line.strip() and " INFO " not in line]
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert len(lines) == 1 and f"state file {tmp_path / 'state.db'} cannot be written" in lines[0] and "free space" in lines[0], lines


def test_build_waits_for_a_servers_build_to_be_whole_before_exporting_it():
    """A server's cold start commits its feeds first, their article pages a moment later: exported then, its feeds
    linked 1,650 pages that were never written (nginx 404), with exit 0."""
    import click
    import pytest

    from feedsvc import cli

    class Reader:  # the build store's latest reports, as a cold start commits them
        def __init__(self, reports):
            self.reports = list(reports)

        def build(self):
            report = self.reports.pop(0) if len(self.reports) > 1 else self.reports[0]
            return None if report is None else (1, "", report)

    reader = Reader([None, {"partial": True}, {"pages_pending": 1650, "placed": 691}, {"placed": 3}, {"articles": 1900}])
    cli._wait_whole(reader, "out")
    assert reader.reports == [{"articles": 1900}]
    with pytest.raises(click.ClickException) as info:
        cli._wait_whole(Reader([{"pages_pending": 10}]), "out", wait=0.3)
    assert "out is left as it was" in info.value.message and "10 articles and pages" in info.value.message


def test_check_keeps_the_published_file_of_an_id_a_draft_has_too(articles_dir):
    body = "Body. " * 50
    write(articles_dir, "a-draft.md", f"---\ntitle: Draft\ncategory: News\nid: world/summit\ndraft: true\n---\n{body}\n")
    write(articles_dir, "b-live.md", f"---\ntitle: Live\ncategory: News\nid: world/summit\ndate: 2026-11-01\n---\n{body}\n")
    result = CliRunner().invoke(main, ["check", "--json", str(articles_dir)])
    report = json.loads(result.output)
    assert result.exit_code == 0 and report["skipped"] == [] and report["articles"] == 1 and report["drafts"] == 1


def test_a_state_path_with_uri_characters_builds_and_serves(sample_dir, tmp_path):
    """`state#1.sqlite3`: SQLite's read-only URI cut the path at `#` (no such table) and read `%41` as `A`."""
    from feedsvc import create_app

    for name in ("state#1.sqlite3", "news%41?x.sqlite3"):
        app = create_app({"ARTICLES_DIR": str(sample_dir), "STATE_PATH": str(tmp_path / name), "SETTLE_MS": 0})
        assert app.test_client().get("/feed.rss").status_code == 200, name
        assert (tmp_path / name).is_file()
    assert {"state", "news", "x.sqlite3"}.isdisjoint(p.name for p in tmp_path.iterdir())  # no stray file cut from the path


def test_build_with_standard_output_closed_runs(sample_dir, tmp_path):
    """`feedsvc build >&-` (a cron line, a service without stdout): the fork of its helpers flushed a stdout that is None."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    run = subprocess.run(["bash", "-c", f'"{sys.executable}" -m feedsvc build --out "{tmp_path / "out"}" --articles "{sample_dir}" >&-'],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "FEEDSVC_CONFIG": "", "FEEDSVC_STATE_PATH": str(tmp_path / "s.db")})
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert (tmp_path / "out" / "feed.rss").is_file()


def test_plain_gunicorn_says_a_settings_mistake_in_one_line(tmp_path):
    """`gunicorn wsgi:app` with a misspelt setting: a traceback in each worker, 116 lines, the fix buried among them."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    (tmp_path / "feedsvc.toml").write_text("refresh_secs = 10\n", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "gunicorn", "--pythonpath", str(ROOT), "-b", "127.0.0.1:0", "-w", "1", "wsgi:app"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path,
                         env={**os.environ, "FEEDSVC_CONFIG": str(tmp_path / "feedsvc.toml")})
    assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr
    assert "feedsvc: " in run.stderr and "did you mean 'refresh_seconds'" in run.stderr
    run = subprocess.run([sys.executable, "-m", "gunicorn", "--pythonpath", str(ROOT), "-b", "127.0.0.1:0", "-w", "1", "wsgi:app"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path,
                         env={**os.environ, "FEEDSVC_CONFIG": "", "FEEDSVC_STATE_PATH": "/proc/nope/state.sqlite3"})
    assert run.returncode != 0 and "Traceback" not in run.stderr and "feedsvc: state file /proc/nope" in run.stderr, run.stderr


def test_a_state_file_that_cannot_be_written_stops_serve_and_build_in_one_line(sample_dir, tmp_path):
    """A state file left read-only (owned by root, mode 444) in a writable folder: SQLite opened it read-only without a
    word, `serve` started and answered stale for ever, `build` printed a traceback. Real permissions, capabilities dropped."""
    import socket
    import subprocess
    import sys

    from tests.conftest import ROOT

    state = tmp_path / "state.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FEEDSVC_STATE_PATH": str(state), "FEEDSVC_CONFIG": ""}
    made = subprocess.run([sys.executable, "-m", "feedsvc", "build", "--out", str(tmp_path / "first"), "--articles", str(sample_dir)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert made.returncode == 0, made.stderr
    os.chmod(state, 0o444)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    drop = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"] if os.getuid() == 0 else []
    try:
        for command in (["build", "--out", str(tmp_path / "site"), "--articles", str(sample_dir)],
                        ["serve", "--port", str(port), "--articles", str(sample_dir)]):
            run = subprocess.run([*drop, sys.executable, "-m", "feedsvc", *command], capture_output=True, text=True,
                                 timeout=60, env=env, cwd=tmp_path)
            assert run.returncode != 0 and "Traceback" not in run.stderr, (command[0], run.stderr)
            assert f"the state store {state} cannot be written" in run.stderr and "chown or chmod" in run.stderr, run.stderr
    finally:
        os.chmod(state, 0o644)


def test_check_reads_category_slugs_from_the_settings(articles_dir, tmp_path):
    crumb = "Politics and Government > International Relations > Middle East and North Africa > Analysis"
    write(articles_dir, "a.txt", f"{crumb}\nA title\n" + "A paragraph of the story. " * 20 + "\n")
    (tmp_path / "feedsvc.toml").write_text(f'[category_slugs]\n"{crumb}" = "mena"\n', encoding="utf-8")
    with_slug = CliRunner().invoke(main, ["check", "--json", str(articles_dir)], env={"FEEDSVC_CONFIG": str(tmp_path / "feedsvc.toml")})
    without = CliRunner().invoke(main, ["check", "--json", str(articles_dir)], env={"FEEDSVC_CONFIG": ""})
    cut = lambda result: [w for w in json.loads(result.output)["warnings"] if "its URL cut" in w["fix"]]
    assert cut(without) and not cut(with_slug)


def test_check_says_how_a_local_time_the_clocks_skip_or_pass_twice_was_read(articles_dir, monkeypatch):
    """In Europe/Berlin 02:30 on 29 March 2026 does not exist and 02:30 on 25 October happens twice: each was read one
    way without a word, an embargo possibly an hour early."""
    monkeypatch.setenv("FEEDSVC_TIME_ZONE", "Europe/Berlin")
    body = "Body. " * 50
    write(articles_dir, "gap.md", f"---\ntitle: T\ncategory: News\ndate: 2026-03-29 02:30\n---\n{body}\n")
    write(articles_dir, "twice.md", f"---\ntitle: T\ncategory: News\ndate: 2026-10-25 02:30\n---\n{body}\n")
    write(articles_dir, "chosen.md", f"---\ntitle: T\ncategory: News\ndate: 2026-10-25 02:30 +01:00\n---\n{body}\n")
    found = warnings_of(articles_dir)
    assert any("Europe/Berlin's clocks skip: read as 2026-03-29 01:30 UTC" in reason for reason in found["gap.md"])
    assert any("happens twice in Europe/Berlin: read as the first, 2026-10-25 00:30 UTC" in reason for reason in found["twice.md"])
    assert "chosen.md" not in found


def test_check_says_it_of_a_date_written_unquoted_with_seconds_too(articles_dir, monkeypatch):
    """YAML reads `2026-03-29 02:30:00` unquoted as a timestamp, not text: the note missed it."""
    monkeypatch.setenv("FEEDSVC_TIME_ZONE", "Europe/Berlin")
    write(articles_dir, "gap.md", "---\ntitle: T\ncategory: News\ndate: 2026-03-29 02:30:00\n---\n" + "Body. " * 50 + "\n")
    write(articles_dir, "day.md", "---\ntitle: T\ncategory: News\ndate: '2026-03-29'\n---\n" + "Body. " * 50 + "\n")
    found = warnings_of(articles_dir)
    assert any("clocks skip" in reason for reason in found["gap.md"]) and "day.md" not in found


@pytest.mark.parametrize("made", ["unreadable", "folder", "broken link", "named folder"])
def test_a_settings_file_that_cannot_be_read_stops_build_in_one_line_naming_it(tmp_path, sample_dir, made):
    """feedsvc.toml that cannot be read: a 15-line traceback ending PermissionError, or (a folder, a broken link in the
    working folder) every default used without a word. Real permissions: root runs the build without the capabilities
    that read any file."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    toml = tmp_path / "feedsvc.toml"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FEEDSVC_STATE_PATH": str(tmp_path / "state.db")}
    env.pop("FEEDSVC_CONFIG", None)
    drop = []
    if made == "unreadable":
        toml.write_text('site_url = "https://news.example"\n', encoding="utf-8")
        toml.chmod(0)
        drop = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"] if os.getuid() == 0 else []
    elif made == "broken link":
        toml.symlink_to(tmp_path / "settings" / "feedsvc.toml")
    else:
        toml.mkdir()
        if made == "named folder":
            env["FEEDSVC_CONFIG"] = str(toml)
    run = subprocess.run([*drop, sys.executable, "-m", "feedsvc", "build", "--out", str(tmp_path / "site"), "--articles",
                          str(sample_dir)], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 1 and len(lines) == 1 and "feedsvc.toml" in lines[0], run.stderr
    assert {"unreadable": "cannot be read (Permission denied); make it readable", "folder": "is a folder, not a file;",
            "broken link": "which is not there; make it your settings file, or remove it",
            "named folder": "which is not a file; point it at"}[made] in lines[0], lines[0]
    assert not (tmp_path / "site").exists()

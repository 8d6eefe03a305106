"""Attacks through the articles folder, performed against the real `feedsvc check`, a real Publisher and a
real `feedsvc serve`: nothing outside the folder is published, nothing hangs, nothing takes the site down."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import feedparser
import pytest

from benchmarks import measure
from tests.conftest import ROOT, write
from tests.http_helpers import Server, fetch
from tests.test_folder import too_long_folder

GOOD = "News\nAn ordinary article\nIt was saved while the attack went on.\n"
SECRET = "root:x:0:0:root:/root:/bin/bash"
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def billion_laughs() -> str:
    """A 600-byte Markdown file whose front matter nests aliases nine deep, under a key feedsvc never reads."""
    levels = ['  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"  a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "---\ntitle: Laughs\ncategory: News\nextra:\n" + "\n".join(levels) + "\n---\nBody.\n"


def run_cli(*args: str, folder: Path) -> tuple[int, str, str, float, int]:
    """`python -m feedsvc ARGS` as a process: exit code, stdout, stderr, seconds, its own peak memory in MB
    (through measure.run's launcher: a child forked from pytest would report pytest's peak as its own)."""
    done = measure.run([sys.executable, "-m", "feedsvc", *args], cwd=str(folder.parent),
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120, launched=True)
    return done.returncode, done.stdout, done.stderr, done.seconds, int(done.peak_rss_mb)


def test_a_billion_laughs_file_is_skipped_by_check_fast_with_bounded_memory(articles_dir):
    write(articles_dir, "bomb.md", billion_laughs())
    write(articles_dir, "good.txt", GOOD)
    assert len((articles_dir / "bomb.md").read_bytes()) < 700
    code, out, err, seconds, megabytes = run_cli("check", "--json", str(articles_dir), folder=articles_dir)
    assert code == 1, err
    report = json.loads(out)
    assert report["articles"] == 1
    (skip,) = report["skipped"]
    assert skip["file"] == "bomb.md" and "alias" in skip["reason"] and "&name" in skip["fix"]
    assert seconds < 15 and megabytes < 400, (seconds, megabytes)  # was 80 s and 3.8 GB


def test_a_billion_laughs_file_is_skipped_by_a_refresh_and_the_rest_published(articles_dir, make_publisher, caplog):
    write(articles_dir, "bomb.md", billion_laughs())
    write(articles_dir, "good.txt", GOOD)
    publisher = make_publisher(articles_dir)
    started = time.perf_counter()
    with caplog.at_level("WARNING"):
        assert publisher.refresh()
    assert time.perf_counter() - started < 5
    assert list(publisher.snapshot.articles) == ["good"]
    (line,) = [r.getMessage() for r in caplog.records if "bomb.md" in r.getMessage()]
    assert "alias" in line and "\n" not in line
    feed = feedparser.parse(publisher.snapshot.resources["feed.rss"].body)
    assert [e.title for e in feed.entries] == ["An ordinary article"]


def test_check_survives_a_hostile_folder_and_prints_one_line_per_file(articles_dir, tmp_path):
    write(tmp_path, "secret.txt", f"News\n{SECRET}\n{SECRET}\n")
    (articles_dir / "passwd.txt").symlink_to(tmp_path / "secret.txt")
    (articles_dir / "etcdir").symlink_to(tmp_path)
    (articles_dir / "a.txt").symlink_to("b.txt")
    (articles_dir / "b.txt").symlink_to("a.txt")
    (articles_dir / "d").mkdir()
    (articles_dir / "d" / "up").symlink_to("..")
    os.mkfifo(articles_dir / "fifo.txt")
    too_long_folder(articles_dir)
    write(articles_dir, "evil\n\x1b[2J\x1b[31mname.txt", "")
    write(articles_dir, "dots.md", "---\nid: ../feed.rss\ntitle: T\ncategory: News\n---\nBody.\n")
    write(articles_dir, "good.txt", GOOD)
    code, out, err, seconds, _ = run_cli("check", str(articles_dir), folder=articles_dir)
    assert code == 1 and "Traceback" not in err, err
    assert f"{articles_dir}: 1 article publishable now, 9 files skipped" in out
    assert not CONTROLS.search(out)
    rows = [line for line in out.splitlines() if line.startswith(("passwd", "etcdir", "a.txt", "b.txt", "d/up", "fifo", "nnn", "evil", "dots"))]
    assert len(rows) == 9, out
    assert any(line.startswith("evil\\n\\x1b[2J\\x1b[31mname.txt ") and "empty" in line for line in rows)
    assert any(line.startswith("dots.md ") and "'../feed.rss'" in line for line in rows)
    code, out, err, _, _ = run_cli("check", "--json", str(articles_dir), folder=articles_dir)
    assert not CONTROLS.search(out.replace("\n", " ")) and "\\u001b" not in out  # escaped before JSON
    files = [s["file"] for s in json.loads(out)["skipped"]]
    assert "evil\\n\\x1b[2J\\x1b[31mname.txt" in files and SECRET not in out


def test_check_counts_drafts_and_embargoed_articles_apart(articles_dir):
    write(articles_dir, "now.txt", GOOD)
    write(articles_dir, "draft.md", "---\ntitle: D\ncategory: News\ndraft: true\n---\nBody.\n")
    write(articles_dir, "later.md", "---\ntitle: L\ncategory: News\ndate: 2999-01-01 09:00\n---\nBody.\n")
    code, out, _, _, _ = run_cli("check", str(articles_dir), folder=articles_dir)
    assert code == 0
    assert out.splitlines()[0] == f"{articles_dir}: 1 article publishable now, 1 draft, 1 embargoed until 2999-01-01 09:00 UTC, 0 files skipped, 4 warnings"  # none of them "no date" for the draft
    code, out, _, _, _ = run_cli("check", "--json", str(articles_dir), folder=articles_dir)
    report = json.loads(out)
    assert (report["articles"], report["drafts"], report["embargoed"]) == (1, 1, ["2999-01-01T09:00:00+00:00"])


def test_check_warns_of_a_long_category_line_and_publishes_it(articles_dir):
    category = "World › Middle East › " * 10 + "Analysis"
    write(articles_dir, "long.txt", f"{category}\nA title\nA paragraph.\n")
    code, out, _, _, _ = run_cli("check", "--json", str(articles_dir), folder=articles_dir)
    report = json.loads(out)
    assert code == 0 and report["articles"] == 1
    assert any(w["reason"].startswith(f"category is {len(category)} characters long") for w in report["warnings"])


def test_check_warns_of_every_category_whose_url_is_cut():
    """A 91-character breadcrumb had its URL cut at 80 with a hash, which check said only of lines over 100."""
    from feedsvc.reading.audit import check_article
    from feedsvc.reading.articles import Options, parse_article

    crumb = "Politics and Government > International Relations > Middle East and North Africa > Analysis"
    article = parse_article(f"{crumb}\nعنوان\nفقرة.\n".encode(), "a.txt", Options(site_url="http://x"))
    assert len(crumb) <= 100 and any("its URL cut to 80 characters" in f.fix for f in check_article(article, Options(site_url="http://x")))


@pytest.mark.e2e
def test_serve_publishes_only_the_folder_and_stays_healthy_under_attack(articles_dir, tmp_path):
    write(tmp_path, "outside/secret.txt", f"News\n{SECRET}\n{SECRET}\n")
    (articles_dir / "passwd.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    (articles_dir / "etcdir").symlink_to(tmp_path / "outside")
    (articles_dir / "status.txt").symlink_to("/proc/self/status")
    (articles_dir / "a.txt").symlink_to("b.txt")
    (articles_dir / "b.txt").symlink_to("a.txt")
    (articles_dir / "d").mkdir()
    (articles_dir / "d" / "up").symlink_to("..")
    too_long_folder(articles_dir)
    write(articles_dir, "bomb.md", billion_laughs())
    write(articles_dir, "dots.md", "---\nid: ../feed.rss\ntitle: Escape\ncategory: News\n---\nBody.\n")
    write(articles_dir, "first.txt", "News\nThe first article\nBody.\n")
    server = Server(articles_dir, tmp_path / "state.sqlite3", env={"FEEDSVC_REFRESH_SECONDS": "600"})
    try:
        rss = fetch(server.base, "/feed.rss")
        assert rss.status == 200 and SECRET.encode() not in rss.body
        assert [e.title for e in feedparser.parse(rss.body).entries] == ["The first article"]
        assert json.loads(fetch(server.base, "/healthz").body)["skipped"] >= 9
        # While serving: a FIFO, an endless device, an editor's lock file, then an ordinary article.
        os.mkfifo(articles_dir / "x.txt")
        (articles_dir / "y.txt").symlink_to("/dev/zero")
        write(articles_dir, "~$x.txt", "News\nLock file\nBody.\n")
        write(articles_dir, "evil\n\x1b[2Jname.txt", "")
        time.sleep(0.5)
        write(articles_dir, "second.txt", GOOD)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            titles = [e.title for e in feedparser.parse(fetch(server.base, "/feed.rss").body).entries]
            if "An ordinary article" in titles:
                break
            time.sleep(0.1)
        assert sorted(titles) == ["An ordinary article", "The first article"]
        health = fetch(server.base, "/healthz")
        assert health.status == 200 and json.loads(health.body)["last_error"] is None
    finally:
        server.stop()
    log = server.output()
    assert "Traceback" not in log and SECRET not in log
    assert "evil\\n\\x1b[2Jname.txt" in log and "\x1b" not in log


def test_check_on_an_articles_folder_it_cannot_read_says_so_in_one_line(articles_dir):
    write(articles_dir, "good.txt", GOOD)
    os.chmod(articles_dir, 0)
    try:
        # Root reads every folder: as root, run without the capabilities that bypass permissions.
        drop = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"] if os.getuid() == 0 else []
        run = subprocess.run([*drop, sys.executable, "-m", "feedsvc", "check", str(articles_dir)], capture_output=True,
                             text=True, timeout=60, cwd=articles_dir.parent, env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        os.chmod(articles_dir, 0o755)
    assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr
    (said,) = run.stderr.strip().splitlines()
    assert said.startswith(f"Error: articles folder {articles_dir} cannot be read (Permission denied); give the user"), said


def test_check_folder_reports_an_articles_folder_gone_mid_check_as_one_skip(tmp_path):
    from feedsvc.reading.articles import Options
    from feedsvc.reading.audit import check_folder

    report = check_folder(tmp_path / "gone", Options(site_url="http://127.0.0.1:8000"))
    (skip,) = report.skipped
    assert (skip.source, report.articles) == (".", 0) and "gone cannot be read (No such file or directory)" in skip.reason


def test_check_says_nothing_of_a_long_category_given_its_own_slug():
    from feedsvc.reading.audit import check_article
    from feedsvc.reading.articles import Options, parse_article

    crumb = "Politics and Government > International Relations > Middle East and North Africa > Analysis"
    options = Options(site_url="http://x")
    article = parse_article(f"{crumb}\nA title\nA paragraph.\n".encode(), "a.txt", options)
    assert not any("its URL cut" in f.fix for f in check_article(article, options, {crumb: "mena"}))

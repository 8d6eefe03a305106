"""The benchmark harness measures what issue 10 defines: its corpus, its anchors, its procedures and its verdicts."""
from __future__ import annotations

import filecmp
import os
import subprocess
import sys
import time

import pytest

from benchmarks import corpus, procs, publish, report, server, startup
from tests.conftest import ROOT


def generate(folder, n):
    subprocess.run([sys.executable, str(corpus.GENERATOR), "-n", str(n), "-k", "20", "-o", str(folder), "--md", "--manifest"],
                   check=True, capture_output=True)
    return folder


def test_the_corpus_is_the_same_every_time_and_a_small_one_is_the_start_of_a_large_one(tmp_path):
    small, again, large = generate(tmp_path / "a", 4), generate(tmp_path / "b", 4), generate(tmp_path / "c", 7)
    for sub in ("txt", "md"):
        names = sorted(p.name for p in (small / sub).iterdir())
        assert len(names) == 4
        assert filecmp.cmpfiles(small / sub, again / sub, names, shallow=False)[0] == names
        assert filecmp.cmpfiles(small / sub, large / sub, names, shallow=False)[0] == names
        # A .txt or .md file's modification time is its article's date: feedsvc reads it from there.
        assert [(small / sub / n).stat().st_mtime for n in names] == [(again / sub / n).stat().st_mtime for n in names]


def test_a_corpus_is_made_once_and_hugo_gets_the_versioned_configuration_and_every_article(tmp_path):
    folder = corpus.ensure_corpus(tmp_path, 6)
    made = (folder / "txt").stat().st_mtime_ns
    assert corpus.ensure_corpus(tmp_path, 6) == folder and (folder / "txt").stat().st_mtime_ns == made
    for variant, config in corpus.HUGO_CONFIGS.items():
        site = corpus.hugo_site(folder, variant)
        assert (site / "hugo.toml").read_bytes() == (config / "hugo.toml").read_bytes()
        assert sorted(p.name for p in (site / "content" / "posts").glob("*.md")) == sorted(p.name for p in (folder / "md").iterdir())
    assert (corpus.hugo_site(folder, "site") / "layouts" / "single.html").is_file()
    assert len(corpus.manifest(folder)) == 6 and corpus.newest(folder)["file"].endswith(".txt")


@pytest.mark.parametrize("line, expected", [
    ("INFO feedsvc.building.site: refresh: 10000 articles, 1 changed files, 6 resources rendered, 0 skipped, 175 ms", [175.0]),
    ("refresh: built 3 feeds in 12.5 ms", [12.5]),
    ("INFO feedsvc.building.site: refresh: 10000 articles, 1 changed files, 6 resources rendered, 0 skipped, "
     "waited 412 ms for the next second, 31 ms", [31.0]),  # the work, not the wait for the next second
    ("refresh: 3 ms reading, 9 ms total, 2 feeds", [9.0]),
    ('127.0.0.1 - - "GET /feed.json HTTP/1.1" 200 512', []),
])
def test_the_refresh_duration_is_the_last_milliseconds_of_a_refresh_line(line, expected):
    assert server.refresh_ms(line) == expected


def test_targets_are_judged_at_their_own_sizes_and_marked_in_the_table():
    by_size = {1_000: {"cold_ratio": 2.0, "w4_worker_mib": 50.0, "ratio_200": 0.8},
               10_000: {"cold_ratio": 0.9, "w4_worker_mib": 70.0, "ratio_200": 1.1}}
    verdicts = {(v["figure"], v["size"]): v["met"] for v in report.verdicts(by_size)}
    assert ("cold_ratio", 1_000) not in verdicts  # ≤ 1.0× is a target at 10k only
    assert verdicts == {("cold_ratio", 10_000): True, ("w4_worker_mib", 1_000): True,
                        ("w4_worker_mib", 10_000): False, ("ratio_200", 1_000): False, ("ratio_200", 10_000): True}
    row = lambda label: next(line for line in report.table(by_size).splitlines() if label in line)
    assert "2.00× " in row("cold start / Hugo feeds-only") and "0.90× ✓" in row("cold start / Hugo feeds-only")
    assert "50 MiB ✓" in row("largest worker that does not build") and "70 MiB ✗" in row("largest worker that does not build")


def test_start_up_ratios_are_medians_of_pairs_taken_in_the_same_round():
    def run(cold, hugo, restart, floor, warmup=False):
        ready = lambda s, builder=None: {"ready_s": s, "feeds": 3, "rss_total_mib": 100, "idle_after_ready_s": 0.0,
                                         "settled": {"hwm_max_mib": 90, "builder_hwm_mib": builder}}
        return {"warmup": warmup, "cold": ready(cold, 100 * cold), "hugo": {"seconds": hugo}, "restart": ready(restart),
                "floor": ready(floor), "moved": ready(restart * 3, 200 * restart), "moved_floor": ready(floor * 2)}

    figures = startup.figures([run(100, 1, 100, 1, warmup=True), run(4, 2, 3, 1), run(9, 3, 4, 2), run(4, 1, 2, 1)])
    assert figures["cold_ratio"] == 3.0  # of 2, 3 and 4: not median(cold) / median(Hugo), and the warm-up left out
    assert figures["restart_ratio"] == 2.0 and figures["restart_over_floor_s"] == 2.0
    assert figures["moved_ratio"] == 3.0 and figures["moved_over_floor_s"] == 7.0  # pairs (9, 2), (12, 4), (6, 2)
    assert figures["cold_s"] == 4 and figures["hugo_feeds_s"] == 2
    # The builder's peak, and in which start (the largest of the counted rounds: the warm-up's 100 * 100 left out).
    assert (figures["builder_peak_cold_mib"], figures["builder_peak_restart_mib"], figures["builder_peak_moved_mib"]) == (900, 90, 800)
    assert figures["builder_peak_mib"] == 900


def test_a_process_tree_counts_its_children_and_goes_idle_when_they_sleep():
    child = subprocess.Popen([sys.executable, "-c", "import time; sum(range(10**7)); time.sleep(30)"])
    try:
        deadline = time.monotonic() + 20
        while (procs.read(child.pid).rss_mib < 5) and time.monotonic() < deadline:  # until the interpreter is loaded
            time.sleep(0.05)
        shell = procs.read(child.pid)
        assert shell.rss_mib >= 5 and shell.hwm_mib >= shell.rss_mib and "time.sleep(30)" in shell.title
        assert child.pid in procs.descendants(procs.read(child.pid).ppid)
        assert procs.wait_idle(child.pid, timeout=20) is not None
    finally:
        child.kill()
        child.wait()


@pytest.mark.e2e
def test_serve_is_timed_until_every_feed_in_the_opml_answers_and_its_memory_is_read(tmp_path):
    result = server.ready(ROOT / "articles", tmp_path / "state", fresh=True)
    assert result["feeds"] >= 3 and 0 < result["ready_s"] < 120
    assert result["settled"]["processes"] == 3  # gunicorn's master, the dedicated builder and one worker
    before = (tmp_path / "state" / "site-url").read_text()
    moved = server.ready(ROOT / "articles", tmp_path / "state", fresh=False, moved=True)  # serve_ready.py's new port
    assert (tmp_path / "state" / "site-url").read_text() != before and moved["feeds"] == result["feeds"]
    assert result["settled"]["worker_rss_max_mib"] > 10 and result["settled"]["hwm_max_mib"] >= result["settled"]["rss_max_mib"]
    # Sampled all along: a process that has exited (a reading worker) would still be in it.
    assert result["settled"]["hwm_max_ever_mib"] >= result["settled"]["hwm_max_mib"]
    assert result["settled"]["tree_rss_peak_mib"] >= result["settled"]["worker_rss_max_mib"]
    again = server.ready(ROOT / "articles", tmp_path / "state", fresh=False)
    assert (tmp_path / "state" / "state.db").exists() and again["feeds"] == result["feeds"]


def test_a_feed_list_made_for_another_url_is_not_ready(tmp_path):
    """serve_ready.py fetches each xmlUrl as written: one that names another port finds nothing listening."""
    found = server.Server(ROOT / "articles", tmp_path / "state")
    opml = lambda base: (200, {}, f'<opml version="2.0"><body><outline xmlUrl="{base}/feed.rss"/></body></opml>'.encode())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(server, "get", lambda port, path: opml(found.site_url))
        assert found.opml_feeds() == ["/feed.rss"]
        patch.setattr(server, "get", lambda port, path: opml("http://127.0.0.1:1"))
        assert found.opml_feeds() == []


@pytest.mark.e2e
def test_a_saved_file_is_timed_until_its_title_is_in_the_json_feed_and_leaves_the_corpus_as_it_was(tmp_path):
    folder = corpus.ensure_corpus(tmp_path / "corpora", 5)
    before = sorted(p.name for p in (folder / "txt").iterdir())
    started = time.monotonic()
    result = publish.feedsvc(folder, tmp_path / "state", runs=2)
    assert len(result["visible_ms"]) == 2
    assert all(0 < ms < (time.monotonic() - started) * 1000 for ms in result["visible_ms"])
    assert result["refresh_median_ms"] is not None  # read from the server's own `refresh: … ms` line
    for when in ("idle", "after_saves"):  # the builder's memory, told apart from the serving process's
        assert result["memory"][when]["builder_hwm_mib"] >= result["memory"][when]["builder_rss_mib"] > 10
    assert sorted(p.name for p in (folder / "txt").iterdir()) == before


def test_saved_runs_print_as_one_table_the_later_run_winning(tmp_path, capsys):
    first, second = tmp_path / "all.json", tmp_path / "build.json"
    first.write_text('{"sizes": {"10000": {"figures": {"build_s": 40.0, "cold_ratio": 3.9}}}}')
    second.write_text('{"sizes": {"10000": {"figures": {"build_s": 50.0, "build_ratio": 5.0}}}}')
    report.main([str(first), str(second)])
    printed = capsys.readouterr().out
    assert "50.00 s" in printed and "40.00 s" not in printed and "3.92×" not in printed and "3.90× ✗" in printed
    assert "0 of 2 targets met." in printed


def test_a_shared_definition_that_moved_away_from_the_vendored_copy_is_named(tmp_path):
    perf = tmp_path / "shared/perf"
    for ours in [corpus.GENERATOR, *(p for c in corpus.HUGO_CONFIGS.values() for p in c.rglob("*") if p.is_file())]:
        copy = perf / ours.relative_to(corpus.HERE)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(ours.read_bytes())
    assert corpus.drift(tmp_path / "repo" / "benchmarks") == {"originals": str(perf), "differs": []}
    (perf / "hugo-feeds" / "hugo.toml").write_text("baseURL = 'https://example.org/'\n")
    assert corpus.drift(tmp_path / "repo" / "benchmarks")["differs"] == ["hugo-feeds/hugo.toml"]


@pytest.mark.parametrize("how", ["flock", "lockf"])
def test_the_process_holding_a_lock_in_the_state_folder_is_told_apart_from_sqlites_own(tmp_path, how):
    (tmp_path / "state.db").write_bytes(b"")
    holder = subprocess.Popen([sys.executable, "-c", f"""
import fcntl, sys, time
lock = open({str(tmp_path / "builder.lock")!r}, "w")
db = open({str(tmp_path / "state.db")!r}, "r+")
fcntl.{how}(lock, fcntl.LOCK_EX)
fcntl.{how}(db, fcntl.LOCK_EX)  # SQLite's files are locked by every connection: never the builder's mark
print("locked", flush=True)
time.sleep(30)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert procs.lock_holders(tmp_path) == {holder.pid: ["builder.lock"]}
    finally:
        holder.kill()
        holder.wait()
    assert procs.lock_holders(tmp_path) == {}


def test_both_builds_write_to_memory_when_it_has_room_else_to_the_work_folder(tmp_path, monkeypatch):
    from benchmarks import sitebuild

    monkeypatch.setattr(sitebuild, "SHM", tmp_path / "shm")
    assert sitebuild.scratch_folder(tmp_path / "work") == tmp_path / "work"  # no such folder
    (tmp_path / "shm").mkdir()
    monkeypatch.setattr(sitebuild, "SCRATCH_BYTES", 1 << 60)
    assert sitebuild.scratch_folder(tmp_path / "work") == tmp_path / "work"  # not room enough
    monkeypatch.setattr(sitebuild, "SCRATCH_BYTES", 1)
    assert sitebuild.scratch_folder(tmp_path / "work").parent == tmp_path / "shm"


def test_a_server_is_settled_only_once_its_builder_has_read_every_file(monkeypatch):
    """server.Server.wait_settled: while /healthz says files are left to read, an idle tree is not the end (a
    100,000-article cold start's first checkpoint paused its background without CPU for half a second)."""
    import http.server
    import json
    import os
    import threading
    import types

    left = [3]

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"left_to_read": left[0]}).encode()
            left[0] = max(left[0] - 1, 0)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            """No access log on the test's output."""

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        srv = server.Server.__new__(server.Server)  # its /healthz is the one above; its tree's CPU is wait_idle's, noted
        srv.port, srv.proc = httpd.server_address[1], types.SimpleNamespace(pid=os.getpid())
        idle_at = []
        monkeypatch.setattr(procs, "wait_idle", lambda pid, timeout: (idle_at.append(left[0]), 0.0)[1])
        assert srv.wait_settled(timeout=20, poll_s=0.01) is not None
        assert idle_at == [0]  # idleness asked for only once nothing was left to read
        left[0] = 5
        assert srv.wait_settled(timeout=0.05, poll_s=0.2) is None  # still reading when the time is up
    finally:
        httpd.shutdown()


@pytest.mark.e2e
def test_the_takeover_procedure_follows_a_builder_to_the_end_of_its_background_and_stops_every_one(tmp_path):
    from benchmarks import takeover

    articles = generate(tmp_path / "corpus", 40) / "txt"
    found = takeover.run(articles, beside=1)
    assert not found["timed_out"] and 0 < found["idle_after_s"] < 60
    assert found["peak_mib"] > 0 and all(found["peak_mib"] >= rss for rss in found["rss_every_10_s"])
    # Both builders stopped, their reading workers with them: no live process still names this corpus.
    alive = (procs.read(int(pid), pss=False) for pid in filter(str.isdigit, os.listdir("/proc")))
    assert [p.pid for p in alive if p is not None and str(articles) in p.title] == []

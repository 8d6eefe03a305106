"""Archive pages rendered and written by worker processes (feedsvc/building/exportpool.py): the same files as
those made in the build's own process, what serve answers, only those whose bytes moved, and a worker that
fails leaves its pages to the build."""
from __future__ import annotations

import logging

import pytest

from feedsvc import create_app
from feedsvc.building import committer, export, exportpool
from feedsvc.building.export import MANIFEST, export_store, read_manifest
from feedsvc.building.exportfolder import LOCK
from tests.test_export import assert_served_alike, contents, corpus, entries, files, run_build, served, write

pytestmark = pytest.mark.e2e


@pytest.fixture
def handed(monkeypatch):
    """The archive pages handed to workers, by format, build after build."""
    seen: list[dict[str, int]] = []
    start = exportpool.ExportWorkers.start

    def spy(self, job, tasks):
        counts: dict[str, int] = {}
        for task in tasks:
            counts[task[1]] = counts.get(task[1], 0) + 1
        seen.append(counts)
        return start(self, job, tasks)
    monkeypatch.setattr(exportpool.ExportWorkers, "start", spy)
    monkeypatch.setattr(exportpool, "cores", lambda: 2)  # on a one-core machine too
    return seen


def test_workers_write_the_archive_pages_this_process_would(articles_dir, tmp_path, handed):
    corpus(articles_dir, 60)
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    assert handed and set(handed[0]) == {"rss", "atom", "json"} and sum(handed[0].values()) >= export.FROM_PAGES
    assert assert_served_alike(out, served(state, articles_dir, FEED_MAX_ITEMS=5)) == len(entries(out))
    # The same store exported here, by the app's own maker of archive pages: the same files, the same manifest.
    variants = create_app({"ARTICLES_DIR": str(articles_dir), "STATE_PATH": str(state), "FEED_MAX_ITEMS": 5},
                          build=False).extensions["feedsvc.variants"]
    here = tmp_path / "here"
    export_store(state, here, variants.get, variants.size, export.archive_shape(variants.site, variants.public))
    assert len(handed) == 1 and contents(here) == contents(out)
    assert read_manifest(here)["files"] == read_manifest(out)["files"]
    assert not list(out.glob(".feedsvc-export.staging-*"))  # the pages made ahead were all taken, the folder removed
    assert not list(tmp_path.glob(".export*"))  # nothing beside the folder: its parent may not be the deployer's to write
    write(out, ".feedsvc-export.staging-99999/feed.rss.page-2", "a killed build's page")
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)  # no page made ahead: the killed build's are removed too
    assert not list(out.glob(".feedsvc-export.staging-*"))


def test_pages_made_ahead_are_taken_only_where_they_are_the_pages_needed(articles_dir, tmp_path, handed, monkeypatch):
    """The build's archive pages are rendered while it commits its article pages (export.EarlyPages); a page
    made ahead that is not the one the export needs (here: every one, its date moved) is made again."""
    monkeypatch.setattr(committer, "FIRST_PAGES", 5)  # article pages committed in the background, as at 10,000
    wait = committer.Committer.wait  # and still to commit when the build looks (its few here may be done by then)
    monkeypatch.setattr(committer.Committer, "wait", lambda self, timeout=None: wait(self, timeout) and timeout != 0)
    corpus(articles_dir, 60)
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    write(out, ".feedsvc-export.staging-99999/feed.rss.page-2", "a killed build's page")  # the folder holds nothing else
    taken = []
    staged = export._Writer._staged
    monkeypatch.setattr(export._Writer, "_staged", lambda self, *a: taken.append(staged(self, *a)) or taken[-1])
    there = []  # the export's files when it first waits for the pages made ahead
    made_ahead = export.EarlyPages.collect
    monkeypatch.setattr(export.EarlyPages, "collect",
                        lambda self: there.append({n for n in files(out) if n[0] != "."}) or made_ahead(self))
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    assert taken and all(taken) and len(handed) == 1  # all made ahead, none by the export's own workers
    # Every other file was written before the export waited for them: this process does not idle meanwhile.
    archive = {name for name, entry in entries(out).items() if "?page=" in entry[0]}
    assert there[0] == set(files(out)) - archive and len(there[0]) > 60
    assert not list(out.glob(".feedsvc-export.staging-*"))
    assert assert_served_alike(out, served(state, articles_dir, FEED_MAX_ITEMS=5)) == len(entries(out))
    collect = export.EarlyPages.collect

    def moved(self):  # as if the listings' date had moved between the pages made ahead and the export
        return {name: (task, key, (result[0], result[1], "2000-01-01T00:00:00+00:00", result[3]), path)
                for name, (task, key, result, path) in collect(self).items()}
    monkeypatch.setattr(export.EarlyPages, "collect", moved)
    taken.clear()
    write(articles_dir, "a010.md", (articles_dir / "a010.md").read_text(encoding="utf-8").replace("Body", "Edited"))
    for i in range(60, 70):  # new article pages to commit in the background
        write(articles_dir, f"a{i:03}.md", (articles_dir / "a001.md").read_text(encoding="utf-8").replace("Story 1", f"New {i}"))
    export_dir = tmp_path / "other"  # the same store into an empty folder: every archive page to make
    run_build(articles_dir, export_dir, state, FEED_MAX_ITEMS=5)
    assert taken and not any(taken) and len(handed) == 3  # made ahead, not taken: made again by the export's workers
    assert assert_served_alike(export_dir, served(state, articles_dir, FEED_MAX_ITEMS=5)) == len(entries(export_dir))


def test_a_build_on_one_core_renders_its_archive_pages_itself(articles_dir, tmp_path, monkeypatch):
    """No worker to make pages ahead while the article pages are committed in the background: the export makes them
    (a one-core machine's `feedsvc build` of a big folder stopped on an empty share list)."""
    monkeypatch.setattr(exportpool, "cores", lambda: 1)
    monkeypatch.setattr(committer, "FIRST_PAGES", 5)  # article pages committed in the background, as at 10,000
    wait = committer.Committer.wait
    monkeypatch.setattr(committer.Committer, "wait", lambda self, timeout=None: wait(self, timeout) and timeout != 0)
    corpus(articles_dir, 60)
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    assert assert_served_alike(out, served(state, articles_dir, FEED_MAX_ITEMS=5)) == len(entries(out))


def test_workers_take_stretches_of_the_order_with_every_format_of_a_page():
    formats = ("rss", "atom", "json")
    tasks = [(key, fmt, page, f"{key}{page}.{fmt}", "", False) for key, page in
             [("", 2), ("c1", 2), ("", 3), ("", 4), ("c2", 2), ("", 5), ("c1", 3)] for fmt in formats]
    for count in (1, 2, 3, 4):
        shares = exportpool.stretches(tasks, count)
        assert len(shares) == count and [task for share in shares for task in share] == tasks  # the order kept, cut
        for share in shares:
            assert len(share) % 3 == 0 and all({t[1] for t in share[i:i + 3]} == set(formats) for i in range(0, len(share), 3))
        assert max(map(len, shares)) - min(map(len, shares)) <= 3  # a page at most between two workers' shares
    assert exportpool.stretches(tasks, 0) == []


def test_a_worker_reads_each_article_of_its_stretch_once(articles_dir, tmp_path):
    """Every format of a page in one worker: its articles are read from the store once, not once per format."""
    from feedsvc.store import StoreReader

    corpus(articles_dir, 60)
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    variants = create_app({"ARTICLES_DIR": str(articles_dir), "STATE_PATH": str(state), "FEED_MAX_ITEMS": 5},
                          build=False).extensions["feedsvc.variants"]
    conn = export.connect(state, readonly=True)
    conn.execute("BEGIN")
    writer = export._Writer(tmp_path / "none", {}, conn, variants.get, variants.size,
                            export.archive_shape(variants.site, variants.public))
    writer._plan_archives()
    conn.execute("COMMIT")
    tasks = [(key, fmt, page, f"p{n}", "", False) for n, (key, fmt, page, *_) in enumerate(writer.archives)]
    maker = exportpool.PageMaker(exportpool.Job(str(state), str(tmp_path / "pages"), variants.site, variants.size, variants.public))
    read: list[str] = []
    articles = StoreReader.articles
    maker.reader.articles = lambda ids: (read.extend(ids), articles(maker.reader, ids))[1]
    for task in tasks:
        assert exportpool.make_and_write(maker, tmp_path / "pages", task)[1] is not None
    # Each article on an archive page (all but the site-wide first page's five) read once, for every page and format.
    assert len(read) == len(set(read)) == 55


def test_workers_rewrite_only_the_pages_whose_bytes_moved(articles_dir, tmp_path, handed, monkeypatch):
    monkeypatch.setattr(export, "FROM_PAGES", 1)  # every page to render goes to the workers
    corpus(articles_dir, 40)
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    had, before = entries(out), files(out)
    write(articles_dir, "a003.md", (articles_dir / "a003.md").read_text(encoding="utf-8").replace("Body 3,", "Edited 3,"))
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    assert len(handed) == 2 and 0 < sum(handed[1].values()) < sum(handed[0].values())
    now, after = entries(out), files(out)
    moved = {name for name in now if now[name][1] != had[name][1]}
    rewritten = {p for p in after if after[p].st_ino != before[p].st_ino}
    assert rewritten == {name + suffix for name in moved for suffix in ("", *(".gz" if c == "gzip" else ".br" for c in now[name][4]))}
    assert {"feed.rss.page-2", "feed.atom.page-2", "feed.json.page-2", "category/c3/feed.rss.page-2"} <= moved
    assert assert_served_alike(out, served(state, articles_dir, FEED_MAX_ITEMS=5)) == len(now)
    assert "0 files written" in run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)


def test_a_worker_that_fails_leaves_its_pages_to_the_build(articles_dir, tmp_path, handed, monkeypatch, caplog):
    monkeypatch.setattr(exportpool, "WORKER", "import sys; sys.exit(3)")  # a worker that dies at once
    corpus(articles_dir, 60)
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    with caplog.at_level(logging.WARNING, logger="feedsvc.building.exportpool"):
        run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    assert handed and "an export worker failed" in caplog.text
    assert assert_served_alike(out, served(state, articles_dir, FEED_MAX_ITEMS=5)) == len(entries(out))
    assert not [p for p in out.rglob(".*") if p.name not in (MANIFEST, LOCK)]  # no temporary file left


def test_what_a_worker_prints_leaves_its_pages_whole(articles_dir, tmp_path, handed, monkeypatch, caplog):
    # A print() or a C library's write in the worker goes to its standard error, not into its stream of results.
    noisy = ("import os, feedsvc.building.exportpool as p; make = p.make_and_write\n"
             "def make_and_write(*args):\n"
             "    print('a library says hello'); os.write(1, b'and so does C code\\n'); return make(*args)\n"
             "p.make_and_write = make_and_write; p.work()")
    monkeypatch.setattr(exportpool, "WORKER", noisy)
    corpus(articles_dir, 60)
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    with caplog.at_level(logging.WARNING, logger="feedsvc.building.exportpool"):
        run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    assert handed and "an export worker failed" not in caplog.text
    assert assert_served_alike(out, served(state, articles_dir, FEED_MAX_ITEMS=5)) == len(entries(out))


def test_a_build_compares_only_the_rows_changed_since_the_folders_build(articles_dir, tmp_path, monkeypatch):
    """The store names the paths each build changed (store.py `changes`): a build after the folder's reads only
    those rows, and gets the files a comparison of every row gets, a deleted article's removed."""
    corpus(articles_dir, 12)
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    write(articles_dir, "a003.md", (articles_dir / "a003.md").read_text(encoding="utf-8").replace("Body 3,", "Edited 3,"))
    (articles_dir / "a007.md").unlink()
    whole = tmp_path / "whole"  # the same folder, brought up to date by comparing every row
    whole.mkdir()
    for path, data in contents(out).items():
        (whole / path).parent.mkdir(parents=True, exist_ok=True)
        (whole / path).write_bytes(data)
    (whole / MANIFEST).write_bytes((out / MANIFEST).read_bytes())
    compared = []
    changed_since = export._Writer._changed_since
    monkeypatch.setattr(export._Writer, "_changed_since", lambda self: compared.append(changed_since(self)) or compared[-1])
    run_build(articles_dir, out, state, FEED_MAX_ITEMS=5)
    assert compared[-1] is not None and "articles/a003" in compared[-1] and len(compared[-1]) < len(entries(out)) / 2
    variants = create_app({"ARTICLES_DIR": str(articles_dir), "STATE_PATH": str(state), "FEED_MAX_ITEMS": 5},
                          build=False).extensions["feedsvc.variants"]
    monkeypatch.setattr(export._Writer, "_changed_since", lambda self: compared.append(None))
    export_store(state, whole, variants.get, variants.size, export.archive_shape(variants.site, variants.public))
    assert compared[-1] is None and entries(whole) == entries(out) and contents(whole) == contents(out)
    assert "articles/a007.html" not in contents(out)
    assert assert_served_alike(out, served(state, articles_dir, FEED_MAX_ITEMS=5)) == len(entries(out))

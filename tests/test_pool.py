"""Big scans read files in worker processes: the same Articles as read in-process, and a failed worker
costs nothing but time."""
from __future__ import annotations

import sys

from feedsvc import pool
from feedsvc.articles import Options
from feedsvc.scan import Scanner
from tests.conftest import write

OPTIONS = Options(site_url="http://127.0.0.1:8000")


def folder_of(articles_dir, count: int):
    for i in range(count):
        if i % 3 == 0:
            text = f"أخبار\nخبر رقم {i}\nفقرة عن الخبر رقم {i} في المدينة.\n"
        elif i % 3 == 1:
            text = f"---\ntitle: Story {i}\ncategory: World\n---\nA *Markdown* story, number {i}.\n"
        else:
            text = f"News\nStory {i}\nThe council met on Tuesday to discuss story number {i} and its budget.\n"
        write(articles_dir, f"a{i:03}.{'md' if i % 3 == 1 else 'txt'}", text)
    write(articles_dir, "empty.txt", "")


def scan_with(articles_dir, pool_from: int):
    return Scanner(articles_dir, OPTIONS, settle=0.3, pool_from=pool_from).scan()


def test_worker_processes_read_the_same_articles_as_this_process(articles_dir, monkeypatch):
    folder_of(articles_dir, 30)
    started = []
    real = pool._read_in_workers
    monkeypatch.setattr(pool, "_read_in_workers", lambda *args: started.append(args[3]) or real(*args))
    here = scan_with(articles_dir, pool_from=10**9)
    assert not started
    there = scan_with(articles_dir, pool_from=2)
    assert started == [pool.processes()] and started[0] == 2  # the machines feedsvc runs on have two cores or more
    assert there.articles == here.articles and len(there.articles) == 30
    assert there.skipped == here.skipped and [s.source for s in there.skipped] == ["empty.txt"]
    assert {a.lang for a in there.articles} == {"ar", "en"}


def test_a_worker_that_cannot_start_leaves_its_files_to_this_process(articles_dir, monkeypatch, caplog):
    folder_of(articles_dir, 12)
    monkeypatch.setattr(pool.sys, "executable", "/nonexistent/python")
    with caplog.at_level("WARNING"):
        result = scan_with(articles_dir, pool_from=2)
    assert len(result.articles) == 12 and "reading in 2 processes failed" in caplog.text


def test_a_worker_that_dies_midway_leaves_the_rest_to_this_process(articles_dir, monkeypatch, caplog):
    folder_of(articles_dir, 200)
    # A worker that sends one chunk back, then dies (as when the kernel kills it for memory).
    monkeypatch.setattr(pool, "CHUNK", 10)
    real_popen = pool.subprocess.Popen

    def dying(args, **kwargs):
        code = "import os, sys; import feedsvc.pool as p; p.sys.stdout.buffer.flush(); " \
               "orig = p.pickle.dump; n = [0]\n" \
               "def once(*a, **k):\n    n[0] += 1\n    orig(*a, **k)\n    if n[0] == 1:\n        a[1].flush(); os._exit(9)\n" \
               "p.pickle.dump = once; p.CHUNK = 10; p.work()"
        return real_popen([sys.executable, "-c", code], **kwargs)

    monkeypatch.setattr(pool.subprocess, "Popen", dying)
    with caplog.at_level("WARNING"):
        result = scan_with(articles_dir, pool_from=2)
    assert len(result.articles) == 200
    assert "not read by a worker process" in caplog.text and "exited with [9, 9]" in caplog.text

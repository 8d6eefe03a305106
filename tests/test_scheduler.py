"""The refresher: a periodic tick, one exact-time wake-up, and debounced file events (no sleeping)."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from feedsvc.building.scheduler import Refresher


@pytest.fixture
def refresher():
    calls = []
    wake = {"at": None}
    # Started, so job ids behave as in service; long debounce and tick, so nothing runs by itself here.
    r = Refresher(lambda: calls.append(1), lambda: wake["at"], seconds=3600, debounce=3600).start()
    r.calls, r.wake = calls, wake
    yield r
    r.stop()


def test_the_wake_up_job_follows_the_next_embargo(refresher):
    at = datetime.now(timezone.utc) + timedelta(hours=1)
    refresher.wake["at"] = at
    refresher.plan()
    assert refresher.scheduler.get_job("wakeup").trigger.run_date == at
    later = at + timedelta(minutes=5)
    refresher.wake["at"] = later
    refresher.plan()
    assert refresher.scheduler.get_job("wakeup").trigger.run_date == later
    refresher.wake["at"] = None
    refresher.plan()
    assert refresher.scheduler.get_job("wakeup") is None


def test_a_burst_of_file_events_becomes_one_refresh(refresher):
    for _ in range(500):
        refresher.poke()
    pokes = [job for job in refresher.scheduler.get_jobs() if job.id == "poke"]
    assert len(pokes) == 1


def test_each_run_refreshes_then_plans_the_next_wake_up(refresher):
    refresher.wake["at"] = datetime.now(timezone.utc) + timedelta(seconds=30)
    refresher.run()
    assert refresher.calls == [1]
    assert refresher.scheduler.get_job("wakeup") is not None


def test_a_refresh_that_raises_still_plans_the_next_wake_up(refresher):
    def boom():
        raise RuntimeError("refresh failed")

    refresher.refresh = boom
    refresher.wake["at"] = datetime.now(timezone.utc) + timedelta(seconds=30)
    with pytest.raises(RuntimeError):
        refresher.run()
    assert refresher.scheduler.get_job("wakeup") is not None


def test_start_and_stop_leave_no_running_scheduler_or_watcher(tmp_path):
    r = Refresher(lambda: None, lambda: None, seconds=60, watch=tmp_path).start()
    assert r.scheduler.running and r.observer.is_alive()
    r.stop()
    r.observer.join(timeout=5)
    assert not r.scheduler.running and not r.observer.is_alive()


def test_a_folder_that_cannot_be_watched_leaves_the_schedule_running(tmp_path, caplog):
    r = Refresher(lambda *a: None, lambda: None, seconds=3600, watch=tmp_path / "missing")
    with caplog.at_level("ERROR"):
        r.start()
    try:
        r.run()  # the first build: its end starts the schedule, watched or not
        assert r._scheduler is not None and r._scheduler.running and r.observer is None
        assert "cannot watch" in caplog.text
        # The fix for a folder that is not there, not the inotify limit's (raise max_user_watches) as it was.
        assert "set ARTICLES_DIR to the articles folder, or create it" in caplog.text and "max_user_watches" not in caplog.text
    finally:
        r.stop()


def test_a_file_saved_at_the_top_of_an_articles_folder_reached_by_a_link_is_seen(tmp_path):
    """inotify is asked not to follow links: watching the link, nothing saved at the folder's top was seen (sub-folders
    were), and such saves waited for the scheduled walk, up to REFRESH_SECONDS."""
    import time

    from feedsvc.reading.folder import Folder

    real = tmp_path / "releases" / "v1"
    real.mkdir(parents=True)
    (tmp_path / "articles").symlink_to(real)
    seen = []
    r = Refresher(lambda *a, **k: None, lambda: None, seconds=3600, watch=tmp_path / "articles", debounce=3600)
    r.saw = lambda paths, kind="changed": seen.extend(paths.keys() if isinstance(paths, dict) else paths)
    r.start()
    try:
        time.sleep(0.2)
        (real / "top.txt").write_text("News\nTop\nBody.\n", encoding="utf-8")
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen and {Folder(tmp_path / "articles").source_of(path) for path in seen} == {"top.txt"}
        # A name that starts with two dots is a file of the folder, under its real path as under its link.
        assert Folder(tmp_path / "articles").source_of(str(real / "..draft.md")) == "..draft.md"
    finally:
        r.stop()


def test_a_path_reported_during_a_refresh_gets_a_refresh_right_after(tmp_path):
    calls = []

    def refresh(seen=None):
        calls.append(set(seen))
        if len(calls) == 1:  # the watcher reports a path while this refresh runs
            r.saw([str(tmp_path / "late.txt")])

    r = Refresher(refresh, lambda: None, seconds=3600, watch=tmp_path, debounce=0).start()
    r.scheduler.pause()  # the test calls the job itself
    try:
        r.saw([str(tmp_path / "first.txt")])
        r.run()  # what the poke job does
        assert calls == [{str(tmp_path / "first.txt")}, {str(tmp_path / "late.txt")}]
    finally:
        r.stop()


def test_a_run_asked_for_during_a_refresh_is_done_by_the_refresh_under_way(refresher):
    def refresh():
        refresher.calls.append(1)
        if len(refresher.calls) == 1:
            refresher.run()  # a wake-up job firing meanwhile: it must not refresh beside this one, nor be lost

    refresher.refresh = refresh
    refresher.debounce = 0
    refresher.run()
    assert refresher.calls == [1, 1]


def test_a_refresh_that_raises_leaves_reported_paths_for_a_poke(tmp_path):
    def refresh(seen=None):
        r.saw([str(tmp_path / "late.txt")])
        raise RuntimeError("refresh failed")

    r = Refresher(refresh, lambda: None, seconds=3600, watch=tmp_path, debounce=3600).start()
    try:
        with pytest.raises(RuntimeError):
            r.run()
        assert set(r._seen) == {str(tmp_path / "late.txt")} and r.scheduler.get_job("poke") is not None
    finally:
        r.stop()


def test_a_refresh_that_fails_keeps_what_the_watcher_saw_for_the_next_one_without_retrying_at_once(tmp_path):
    """A refresh that fails (returns False: a state file that cannot be written) took none of the paths the watcher
    reported; they were dropped, and a file saved then waited for the next full walk. They are kept now for the next
    planned refresh, which is not run at once (a lasting failure would spin)."""
    calls = []

    def refresh(seen=None):
        calls.append(dict(seen or {}))
        return len(calls) > 1  # the first fails, the next succeeds

    r = Refresher(refresh, lambda: None, seconds=3600, watch=tmp_path, debounce=3600).start()  # nothing runs by itself
    try:
        r.saw([str(tmp_path / "new.txt")])
        r.run()
        assert len(calls) == 1 and set(r._seen) == {str(tmp_path / "new.txt")}  # kept, not retried at once
        r.run()  # the next planned refresh
        assert set(calls[1]) == {str(tmp_path / "new.txt")} and not r._seen
    finally:
        r.stop()


@pytest.mark.e2e
def test_a_file_deleted_while_a_watched_refresh_runs_leaves_the_feed_at_once(make_publisher, articles_dir):
    import threading
    import time

    from tests.conftest import write

    write(articles_dir, "a.txt", "News\nStays\nBody.\n")
    doomed = write(articles_dir, "b.txt", "News\nDeleted during a refresh\nBody.\n")
    pub = make_publisher(articles_dir)
    pub.refresh()
    first = threading.Event()
    real_refresh = pub.refresh

    def slow_refresh(hints=None):
        if not first.is_set():  # the first watched refresh: delete a file and let the watcher report it
            first.set()
            doomed.unlink()
            deadline = time.monotonic() + 5
            while not r._seen and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.3)  # a refresh of a large folder: still running when the poke for the deletion is due
        return real_refresh(hints)

    r = Refresher(slow_refresh, pub.next_wakeup, seconds=3600, watch=articles_dir, debounce=0.05).start()
    try:
        write(articles_dir, "c.txt", "News\nSaved\nBody.\n")  # the watcher's event starts the first refresh
        deadline = time.monotonic() + 5
        while "b" in pub.snapshot.articles and time.monotonic() < deadline:
            time.sleep(0.02)
        assert first.is_set() and "b" not in pub.snapshot.articles
        assert b"Deleted during a refresh" not in pub.snapshot.resources["feed.rss"].body
    finally:
        r.stop()


def test_the_watcher_hands_each_path_with_what_it_saw_last(tmp_path):
    from watchdog.events import FileClosedEvent, FileModifiedEvent, FileMovedEvent

    from feedsvc.building.scheduler import CHANGED, CLOSED, MOVED, RENAMED, _Poke

    seen = []
    poke = _Poke(lambda paths, kind=CHANGED: seen.extend([(paths, kind)] if isinstance(paths, list) else [([p], k) for p, k in paths.items()]))
    for event in (FileModifiedEvent("/a/x.txt"), FileClosedEvent("/a/x.txt"), FileMovedEvent("/a/.x.tmp", "/a/z.txt"),
                  FileMovedEvent("/a/y.txt", "/a/y.txt~")):
        poke.dispatch(event)
    assert seen == [(["/a/x.txt"], CHANGED), (["/a/x.txt"], CLOSED), (["/a/.x.tmp"], RENAMED), (["/a/z.txt"], MOVED),
                    # renamed to an editor's backup name, to be written anew: maybe back in a moment (scan.GONE_AFTER)
                    (["/a/y.txt"], CHANGED), (["/a/y.txt~"], MOVED)]


def test_the_watcher_is_not_told_of_files_only_read(tmp_path):
    """The kernel is asked for writes, not reads: a cold start reading 10,000 files raises no 20,000 events here."""
    import time

    from feedsvc.building.scheduler import CLOSED

    (tmp_path / "a.txt").write_text("News\nTitle\nBody.\n", encoding="utf-8")
    seen = []
    r = Refresher(lambda *a, **k: None, lambda: None, seconds=3600, watch=tmp_path, debounce=3600)
    r.saw = lambda paths, kind="changed": seen.append((list(paths), kind))
    r.start()
    try:
        for _ in range(50):
            (tmp_path / "a.txt").read_bytes()
        time.sleep(0.3)
        assert seen == []
        (tmp_path / "b.txt").write_text("News\nSaved\nBody.\n", encoding="utf-8")
        deadline = time.monotonic() + 5
        while (([str(tmp_path / "b.txt")], CLOSED) not in seen) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ([str(tmp_path / "b.txt")], CLOSED) in seen
        assert all(paths != [str(tmp_path / "a.txt")] for paths, _ in seen)
    finally:
        r.stop()


def test_a_file_closed_after_writing_is_refreshed_at_once_and_a_later_write_reopens_it(tmp_path):
    from feedsvc.building.scheduler import CHANGED, CLOSED

    seen = []
    r = Refresher(lambda hints=None: seen.append(dict(hints)), lambda: None, seconds=3600, watch=tmp_path, debounce=3600).start()
    r.scheduler.pause()  # the test calls the job itself
    try:
        r.saw(["/a/x.txt"])  # a write: debounced (an hour, here)
        due = r.scheduler.get_job("poke").next_run_time
        r.saw(["/a/x.txt"], CLOSED)  # the close: brought forward to now
        assert r.scheduler.get_job("poke").next_run_time < due
        r.saw(["/a/y.txt"], CLOSED)
        r.saw(["/a/y.txt"], CHANGED)  # written again after its close: may be mid-write
        r.run()
        assert seen == [{"/a/x.txt": CLOSED, "/a/y.txt": CHANGED}]
    finally:
        r.stop()


def test_a_schedule_left_to_the_first_run_starts_as_it_ends_and_a_path_seen_before_is_refreshed(tmp_path):
    from feedsvc.building.scheduler import CLOSED

    seen = []
    r = Refresher(lambda hints=None: seen.append(dict(hints or {})), lambda: None, seconds=3600, watch=tmp_path,
                  debounce=3600).start()
    try:
        assert r._scheduler is None and r.observer.is_alive()  # watching, not scheduling yet
        r.run()  # the first build
        assert r._scheduler is not None and r.scheduler.running and r.scheduler.get_job("tick") is not None
        r.scheduler.pause()  # the test calls the job itself
        r.saw([str(tmp_path / "late.txt")], CLOSED)  # a file closed after writing: a refresh due at once
        assert r.scheduler.get_job("poke") is not None
        r.run()
        assert seen[-1] == {str(tmp_path / "late.txt"): CLOSED}
    finally:
        r.stop()


def test_a_refresher_stopped_before_its_first_run_ends_starts_no_schedule_after_it(tmp_path):
    # A worker that became the builder is stopped (gunicorn's worker_exit) while its first build runs: the run's end
    # must not start a schedule in a process on its way out.
    r = Refresher(lambda hints=None: None, lambda: datetime.now(timezone.utc) + timedelta(hours=1), seconds=3600,
                  watch=tmp_path, debounce=3600).start()
    r.stop()
    r.run()
    assert not r.scheduler.running
    r.poke(0)
    assert not r.scheduler.running


@pytest.mark.parametrize("how", ["made again", "link pointed elsewhere"])
def test_a_replaced_articles_folder_is_walked_and_watched_anew_within_a_second_or_two(tmp_path, how):
    """inotify follows the folder it was given: a folder deleted and made again (or a link pointed elsewhere) went
    unwatched for good, every save waiting for the next tick (found in review); then until the next tick, up to
    REFRESH_SECONDS (found in review again: a deploy's atomic switch of a link). The folder's identity is looked at
    every second: a new one is watched, and walked whole at once."""
    import time

    from feedsvc.building.scheduler import CLOSED

    real = tmp_path / "real"
    real.mkdir()
    folder = tmp_path / "articles"
    if how == "made again":
        folder.mkdir()
    else:
        folder.symlink_to(real)
    seen, walks = [], []
    r = Refresher(lambda *a, **k: walks.append(a), lambda: None, seconds=3600, watch=folder, debounce=3600)
    r.saw = lambda paths, kind="changed": seen.append((list(paths), kind))
    r.start()
    try:
        if how == "made again":
            folder.rename(tmp_path / "old")
            folder.mkdir()
        else:
            (tmp_path / "new").mkdir()
            (tmp_path / "link.tmp").symlink_to(tmp_path / "new")
            os.rename(tmp_path / "link.tmp", folder)
        deadline = time.monotonic() + 5
        while () not in walks and time.monotonic() < deadline:  # a walk of the whole folder: refresh() with no paths
            time.sleep(0.02)
        assert () in walks
        (folder / "b.txt").write_text("News\nSaved\nBody.\n", encoding="utf-8")
        deadline = time.monotonic() + 5
        saved = ([os.path.join(os.path.realpath(folder), "b.txt")], CLOSED)  # the folder watched is the link's target
        while saved not in seen and time.monotonic() < deadline:
            time.sleep(0.02)
        assert saved in seen
    finally:
        r.stop()


def test_a_file_saved_or_deleted_in_a_sub_folder_is_handed_alone_not_its_folder(tmp_path):
    """The kernel also says a folder changed when a file in it comes or goes: handed on, every save in a sub-folder walked
    the whole articles folder (0.5 s at 100,000 files), and a file deleted and written anew there (git checkout) was
    withdrawn and announced deleted, the walk knowing nothing of the 0.25 s a file the watcher saw go is kept."""
    import time

    (tmp_path / "news").mkdir()
    (tmp_path / "news" / "a.txt").write_text("News\nTitle\nBody.\n", encoding="utf-8")
    seen = []
    r = Refresher(lambda *a, **k: None, lambda: None, seconds=3600, watch=tmp_path, debounce=3600)
    r.saw = lambda paths, kind="changed": seen.extend(paths.keys() if isinstance(paths, dict) else paths)
    r.start()
    try:
        time.sleep(0.2)
        (tmp_path / "news" / "a.txt").unlink()
        (tmp_path / "news" / "a.txt").write_text("News\nTitle\nBody again.\n", encoding="utf-8")
        (tmp_path / "sport").mkdir()  # a folder made: a walk finds what it holds
        deadline = time.monotonic() + 5
        while str(tmp_path / "sport") not in seen and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        assert str(tmp_path / "news" / "a.txt") in seen and str(tmp_path / "sport") in seen
        assert str(tmp_path / "news") not in seen
    finally:
        r.stop()

"""The refresher: a periodic tick, one exact-time wake-up, and debounced file events (no sleeping)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from feedsvc.scheduler import Refresher


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
        assert r.scheduler.running and r.observer is None
        assert "cannot watch" in caplog.text
    finally:
        r.stop()

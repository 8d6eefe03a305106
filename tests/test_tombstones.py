"""Tombstones (RFC 6721): an article that goes is announced, for TOMBSTONE_DAYS, by the Atom and JSON feeds that
carried it — public and partner, first pages and deltas — from the state store, so across restarts too."""
from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import feedparser
import pytest
from lxml import etree

from feedsvc.formats.atom import TOMBSTONES_NS
from tests.conftest import FIXED_NOW, write
from tests.feed_rules import json_feed_validator
from tests.http_helpers import Server, fetch
from tests.test_export import run_build

AT = f"{{{TOMBSTONES_NS}}}deleted-entry"
POLITICS = "سياسة"
PARTNER_KEY = "agency-key-0123456789abcdef"


def story(folder: Path, name: str, title: str, category: str, hours_ago: int, extra: str = "") -> Path:
    when = (FIXED_NOW - timedelta(hours=hours_ago)).isoformat()
    return write(folder, name, f"---\ntitle: {title}\ncategory: {category}\ndate: {when}\n{extra}---\nBody of {title}.\n")


@pytest.fixture
def desk(articles_dir):
    """Two political stories and a sport one."""
    story(articles_dir, "vote.md", "Vote count", POLITICS, 5)
    story(articles_dir, "budget.md", "Budget passes", POLITICS, 4)
    story(articles_dir, "match.md", "Match report", "Sport", 3)
    return articles_dir


class Clock:
    """A publisher whose clock the test moves."""

    def __init__(self, make_publisher, folder: Path, **settings):
        self.now = FIXED_NOW
        self.make, self.folder, self.settings = make_publisher, folder, settings
        self.pub = self.start()

    def start(self):
        pub = self.make(self.folder, **self.settings)
        pub.clock = lambda: self.now
        assert pub.refresh()
        return pub

    def later(self, **delta) -> None:
        self.now += timedelta(**delta)
        assert self.pub.refresh()

    def body(self, path: str) -> bytes:
        return self.pub.snapshot.resources[path].body


def tombstones(atom: bytes) -> dict[str, str]:
    """ref → when of every at:deleted-entry in an Atom document."""
    return {node.get("ref"): node.get("when") for node in etree.fromstring(atom).iter(AT)}


def entry_ids(atom: bytes) -> set[str]:
    return {entry.id for entry in feedparser.parse(atom).entries}


def json_deleted(body: bytes) -> list[dict]:
    document = json.loads(body)
    assert not list(json_feed_validator().iter_errors(document))  # the extension keeps the feed valid JSON Feed 1.1
    return document.get("_feedsvc", {}).get("deleted", [])


def test_a_deleted_article_is_announced_by_every_atom_and_json_feed_that_carried_it(make_publisher, desk):
    site = Clock(make_publisher, desk)
    ids = entry_ids(site.body(f"category/{POLITICS}/feed.atom"))
    vote = next(e.id for e in feedparser.parse(site.body("feed.atom")).entries if e.title == "Vote count")
    (desk / "vote.md").unlink()
    site.later(minutes=10)
    when = (FIXED_NOW + timedelta(minutes=10)).isoformat()
    for path in ("feed.atom", f"category/{POLITICS}/feed.atom"):
        atom = site.body(path)
        assert tombstones(atom) == {vote: when}, path
        assert vote not in entry_ids(atom) and not feedparser.parse(atom).bozo
    assert vote in ids and tombstones(site.body("category/sport/feed.atom")) == {}  # never carried it
    for path in ("feed.json", f"category/{POLITICS}/feed.json"):
        assert json_deleted(site.body(path)) == [{"id": vote, "when": when.replace("+00:00", "Z")}], path
    assert json_deleted(site.body("category/sport/feed.json")) == []
    assert b"deleted" not in site.body("feed.rss")  # RSS 2.0 has no standard for it


@pytest.mark.parametrize("written, rewritten", [("0A1B2C3D-0000-4000-8000-00000000ABCD", "0a1b2c3d-0000-4000-8000-00000000abcd"),
                                               ("urn:uuid:0a1b2c3d-0000-4000-8000-00000000abcd",
                                                "urn:uuid:0A1B2C3D-0000-4000-8000-00000000ABCD")])
def test_a_uuid_id_written_again_in_another_case_is_no_deletion(make_publisher, desk, written, rewritten):
    """A UUID in any case is one GUID: its case changed, the economy feed announced the article deleted while it was
    still published (Atom readers deleted it and added it back)."""
    story(desk, "vote.md", "Vote count", POLITICS, 5, f"id: {written}\n")
    site = Clock(make_publisher, desk)
    assert len(entry_ids(site.body("feed.atom"))) == 3
    story(desk, "vote.md", "Vote count", POLITICS, 5, f"id: {rewritten}\n")
    site.later(minutes=1)
    for path in ("feed.atom", f"category/{POLITICS}/feed.atom"):
        assert tombstones(site.body(path)) == {}, path
    assert json_deleted(site.body("feed.json")) == []


@pytest.mark.parametrize("change", ["a draft", "embargoed again", "its ID changed"])
def test_a_draft_an_embargo_or_a_new_id_is_a_deletion_too(make_publisher, desk, change):
    site = Clock(make_publisher, desk)
    vote = next(e.id for e in feedparser.parse(site.body("feed.atom")).entries if e.title == "Vote count")
    extra = {"a draft": "draft: true\n", "embargoed again": "", "its ID changed": "id: vote-2026\n"}[change]
    hours = -48 if change == "embargoed again" else 5
    story(desk, "vote.md", "Vote count", POLITICS, hours, extra)
    site.later(minutes=1)
    assert vote in tombstones(site.body("feed.atom")) and vote in tombstones(site.body(f"category/{POLITICS}/feed.atom"))


def test_an_article_that_comes_back_takes_its_tombstone_back(make_publisher, desk):
    site = Clock(make_publisher, desk)
    text = (desk / "budget.md").read_text(encoding="utf-8")
    (desk / "budget.md").unlink()
    site.later(minutes=1)
    assert len(tombstones(site.body("feed.atom"))) == 1
    write(desk, "budget.md", text)
    site.later(minutes=1)
    assert tombstones(site.body("feed.atom")) == {} and tombstones(site.body(f"category/{POLITICS}/feed.atom")) == {}
    assert b'"_feedsvc"' not in site.body("feed.json") and b"tombstones" not in site.body("feed.atom")


def test_an_article_moved_to_another_category_is_not_deleted(make_publisher, desk):
    site = Clock(make_publisher, desk)
    story(desk, "budget.md", "Budget passes", "Economy", 4)
    site.later(minutes=1)
    assert all(tombstones(site.body(path)) == {} for path in site.pub.snapshot.resources if path.endswith(".atom"))


def test_tombstones_survive_a_restart_and_a_deletion_while_stopped_is_found_at_start(make_publisher, desk):
    site = Clock(make_publisher, desk)
    (desk / "vote.md").unlink()
    site.later(minutes=1)
    announced = tombstones(site.body("feed.atom"))
    (desk / "match.md").unlink()  # while no process runs
    site.now += timedelta(hours=1)
    site.pub = site.start()  # a new process on the same state store
    after = tombstones(site.body("feed.atom"))
    assert len(announced) == 1 and announced.items() <= after.items() and len(after) == 2
    assert list(after.values()) == [site.now.isoformat(), *announced.values()]  # found at start; newest first
    assert "category/sport/feed.atom" not in site.pub.snapshot.resources  # its only article went: no feed is left


def test_a_tombstone_expires_after_the_retention_period_at_the_refresh_due_then(make_publisher, desk):
    site = Clock(make_publisher, desk, TOMBSTONE_DAYS=1)
    (desk / "vote.md").unlink()
    site.later(minutes=1)
    gone_at = site.now
    before = site.pub.snapshot.resources["feed.atom"]
    listing_time = site.pub.snapshot.changed[""]
    assert len(tombstones(before.body)) == 1
    assert site.pub.next_wakeup() == gone_at + timedelta(days=1)  # before any article leaves the News sitemap
    site.now = gone_at + timedelta(days=1)
    assert site.pub.refresh()
    after = site.pub.snapshot.resources["feed.atom"]
    assert tombstones(after.body) == {} and after.last_modified > before.last_modified
    assert site.pub.snapshot.changed[""] > listing_time  # its deltas and partners' views are dated anew too
    site.pub = site.start()
    assert tombstones(site.body("feed.atom")) == {}  # and forgotten by the state store


def test_no_tombstones_with_a_retention_of_zero_days(make_publisher, desk):
    site = Clock(make_publisher, desk, TOMBSTONE_DAYS=0)
    (desk / "vote.md").unlink()
    site.later(minutes=1)
    assert tombstones(site.body("feed.atom")) == {}


@pytest.mark.parametrize("unreadable", [b"---\ntitle: Vote count\ncategory: \xff\xfe broken\n", "published: false\n"])
def test_a_file_that_cannot_be_read_holds_its_entry_until_it_is_deleted(make_publisher, desk, unreadable):
    """Not UTF-8 (broken: its last good version stays published, tests/test_last_good.py), or held back by a flag of
    another system (skipped, it leaves its feeds): neither is announced deleted until the file is."""
    site = Clock(make_publisher, desk)
    if isinstance(unreadable, bytes):
        write(desk, "vote.md", unreadable)
    else:
        story(desk, "vote.md", "Vote count", POLITICS, 5, unreadable)
    site.later(minutes=1)
    assert ("vote" in site.pub.snapshot.articles) is isinstance(unreadable, bytes)
    assert [s.source for s in site.pub.snapshot.skipped] == ["vote.md"] and tombstones(site.body("feed.atom")) == {}
    (desk / "vote.md").unlink()
    site.later(minutes=1)
    assert len(tombstones(site.body("feed.atom"))) == 1


def test_a_file_that_takes_over_a_deleted_articles_id_continues_its_entry_without_a_tombstone(make_publisher, desk):
    write(desk, "vote2.md", "---\nid: vote\ntitle: Vote count, corrected\ncategory: سياسة\n"
                                f"date: {(FIXED_NOW - timedelta(hours=5)).isoformat()}\n---\nThe corrected count.\n")
    site = Clock(make_publisher, desk)  # vote.md has the ID first: the copy waits, skipped
    vote = next(e.id for e in feedparser.parse(site.body("feed.atom")).entries if e.title == "Vote count")
    (desk / "vote.md").unlink()
    site.later(minutes=1)
    titles = {e.id: e.title for e in feedparser.parse(site.body("feed.atom")).entries}
    assert titles[vote] == "Vote count, corrected" and tombstones(site.body("feed.atom")) == {}  # the same entry, updated


def test_the_static_export_writes_the_tombstones_with_the_feeds(desk, tmp_path):
    out, state = tmp_path / "export", tmp_path / "state.sqlite3"
    run_build(desk, out, state)
    vote = next(e.id for e in feedparser.parse((out / "feed.atom").read_bytes()).entries if e.title == "Vote count")
    (desk / "vote.md").unlink()
    run_build(desk, out, state)
    assert vote in tombstones((out / "feed.atom").read_bytes())
    assert vote in tombstones((out / "category" / POLITICS / "feed.atom").read_bytes())
    assert [d["id"] for d in json_deleted((out / "feed.json").read_bytes())] == [vote]


@pytest.fixture
def partner_app(make_app, desk, monkeypatch):
    monkeypatch.setenv("AGENCY_KEY", PARTNER_KEY)
    partners = [{"name": "Agency", "key_env": "AGENCY_KEY", "categories": ["Sport"], "full_text": True}]
    return make_app(desk, PARTNERS=partners)


def test_partner_feeds_and_deltas_announce_the_tombstones_of_what_they_were_licensed(partner_app, desk):
    client = partner_app.test_client()
    key = {"Authorization": f"Bearer {PARTNER_KEY}"}
    before = client.get("/feed.atom").data
    match = next(e.id for e in feedparser.parse(before).entries if e.title == "Match report")
    vote = next(e.id for e in feedparser.parse(before).entries if e.title == "Vote count")
    (desk / "vote.md").unlink()
    (desk / "match.md").unlink()
    partner_app.extensions["feedsvc"].refresh()
    assert set(tombstones(client.get("/feed.atom").data)) == {match, vote}
    assert set(tombstones(client.get("/partners/feed.atom", headers=key).data)) == {match}  # Sport only
    assert [d["id"] for d in json_deleted(client.get("/partners/feed.json", headers=key).data)] == [match]
    since = quote((FIXED_NOW - timedelta(days=1)).isoformat().replace("+00:00", "Z"))
    assert set(tombstones(client.get(f"/feed.atom?since={since}").data)) == {match, vote}
    assert [d["id"] for d in json_deleted(client.get(f"/feed.json?since={since}").data)] != []
    later = quote("2099-01-01T00:00:00Z")
    assert tombstones(client.get(f"/feed.atom?since={later}").data) == {}  # nothing went after that


@pytest.mark.e2e
def test_a_real_server_announces_a_deletion_and_still_does_after_a_restart(desk, tmp_path):
    state = tmp_path / "state" / "state.sqlite3"
    state.parent.mkdir()
    env = {"FEEDSVC_SETTLE_MS": "0", "FEEDSVC_CONFIG": ""}
    server = Server(desk, state, env=env)
    try:
        atom = fetch(server.base, "/feed.atom").body
        vote = next(e.id for e in feedparser.parse(atom).entries if e.title == "Vote count")
        (desk / "vote.md").unlink()
        deadline = time.monotonic() + 20
        while vote not in tombstones(fetch(server.base, "/feed.atom").body):  # the watcher publishes the deletion
            assert time.monotonic() < deadline, "no tombstone within 20 s"
            time.sleep(0.1)
    finally:
        server.stop()
    server = Server(desk, state, env=env)
    try:
        for path in ("/feed.atom", f"/category/{quote(POLITICS)}/feed.atom"):
            reply = fetch(server.base, path)
            assert reply.status == 200 and vote in tombstones(reply.body), path
            assert vote not in entry_ids(reply.body)
        assert [d["id"] for d in json.loads(fetch(server.base, "/feed.json").body)["_feedsvc"]["deleted"]] == [vote]
    finally:
        server.stop()


def test_carried_entries_share_their_decoded_lists(tmp_path):
    """A restart reads what 10,000 entries carried: each distinct list of listings or categories is decoded once."""
    from feedsvc.building.state import StateStore

    store = StateStore(tmp_path / "state.sqlite3")
    rows = {f"ref{i}": (f"a{i}.md", ("", "news"), ("News",)) for i in range(3)}
    with store.transaction():
        store.record_carried(rows, (), (), (), FIXED_NOW - timedelta(days=30))
    carried = StateStore(tmp_path / "state.sqlite3").carried()
    assert carried == rows
    assert carried["ref0"][1] is carried["ref2"][1] and carried["ref0"][2] is carried["ref1"][2]


def test_a_clock_stepped_back_never_withdraws_nor_announces_gone_what_was_published(make_publisher, desk):
    """An article dated when it was first seen is not embargoed by a clock that steps back past that moment (a VM
    restored, NTP stepping): it was published, so it stays, with no tombstone; after a restart too (the state store
    recorded how late the clock had been). An author's embargo is released by the latest time the clock showed."""
    site = Clock(make_publisher, desk)
    site.later(minutes=10)
    write(desk, "fresh.txt", f"{POLITICS}\nFresh news\nA paragraph of fresh news.\n")
    story(desk, "soon.md", "Embargoed until later", POLITICS, -1)  # an hour ahead of now
    site.later(seconds=1)
    fresh = next(e.id for e in feedparser.parse(site.body("feed.atom")).entries if e.title == "Fresh news")
    site.now -= timedelta(minutes=2)  # the clock steps back past the moment Fresh news was first seen
    write(desk, "other.txt", f"{POLITICS}\nOther news\nA paragraph.\n")  # a change: the listings are made again
    assert site.pub.refresh()
    for body in (site.body("feed.atom"), site.body(f"category/{POLITICS}/feed.atom")):
        assert fresh in entry_ids(body) and fresh not in tombstones(body)
    assert "Embargoed until later" not in {e.title for e in feedparser.parse(site.body("feed.atom")).entries}
    site.pub = site.start()  # a restart, the clock still behind
    assert fresh in entry_ids(site.body("feed.atom")) and not tombstones(site.body("feed.atom"))


def test_an_embargo_released_stays_released_after_a_restart_with_the_clock_set_back(make_publisher, desk):
    """An embargo released by a refresh in which no content was recorded: after a restart with the clock behind its time,
    the article was held back again, withdrawn and announced deleted (the state store knew only when content was
    recorded, not that the clock had passed the embargo)."""
    site = Clock(make_publisher, desk)
    story(desk, "soon.md", "Embargoed until later", POLITICS, -1)  # an hour ahead of now
    site.later(minutes=1)
    site.later(hours=1)  # its time comes; nothing else changes
    titles = lambda: {e.title for e in feedparser.parse(site.body("feed.atom")).entries}  # noqa: E731
    assert "Embargoed until later" in titles()
    site.now -= timedelta(minutes=30)  # the clock steps back past the embargo
    site.pub = site.start()  # and the service restarts
    assert "Embargoed until later" in titles() and not tombstones(site.body("feed.atom"))


def test_an_embargo_that_ends_while_the_service_is_down_stays_released_after_the_clock_steps_back(make_publisher, desk):
    """Released by a restart's first refresh (a new listing builder, which had held nothing back): not noted either."""
    site = Clock(make_publisher, desk)
    story(desk, "soon.md", "Embargoed until later", POLITICS, -1)  # an hour ahead of now
    site.later(minutes=1)
    site.now += timedelta(hours=1)  # the service is down when its time comes
    site.pub = site.start()
    titles = lambda: {e.title for e in feedparser.parse(site.body("feed.atom")).entries}  # noqa: E731
    assert "Embargoed until later" in titles()
    site.now -= timedelta(minutes=30)  # the clock steps back past the embargo
    site.pub = site.start()
    assert "Embargoed until later" in titles() and not tombstones(site.body("feed.atom"))


def test_a_release_noted_in_a_refresh_that_rolled_back_is_noted_again(make_publisher, desk):
    """The release time noted in memory before the refresh's transaction failed (a full disk) was taken for written:
    no later refresh wrote it, and a restart with the clock set back withdrew the article."""
    import sqlite3

    site = Clock(make_publisher, desk)
    story(desk, "soon.md", "Embargoed until later", POLITICS, -1)
    site.later(minutes=1)
    site.now += timedelta(hours=1, minutes=1)  # the embargo ends
    pub, real = site.pub, site.pub.versions.times

    def failing(*args, **kwargs):  # a write later in the same refresh fails
        with pub.store._writing():
            raise sqlite3.OperationalError("disk I/O error")

    pub.versions.times = failing
    assert not pub.refresh()
    pub.versions.times = real
    assert pub.refresh()
    site.now -= timedelta(minutes=30)  # the clock steps back past the embargo; a restart
    site.pub = site.start()
    assert "Embargoed until later" in {e.title for e in feedparser.parse(site.body("feed.atom")).entries}
    assert not tombstones(site.body("feed.atom"))


@pytest.mark.parametrize("draft_name", ["a-summit-draft.md", "z-summit-draft.md"])
def test_a_draft_claims_no_id_so_the_published_file_with_it_is_published(make_publisher, articles_dir, draft_name):
    """A draft copy kept beside the live file, with its `id:`, saved first (or first in path order): it took the ID
    and the published file was skipped, its page 404, while the draft was published nowhere."""
    story(articles_dir, draft_name, "Summit draft", "World", 2, "id: world/summit\ndraft: true\n")
    site = Clock(make_publisher, articles_dir)
    story(articles_dir, "summit.md", "Summit opens", "World", 1, "id: world/summit\n")
    site.later(minutes=1)
    assert [e.title for e in feedparser.parse(site.body("feed.atom")).entries] == ["Summit opens"]
    assert not site.pub.snapshot.skipped and "articles/world/summit" in site.pub.snapshot.resources
    story(articles_dir, draft_name, "Summit draft", "World", 2, "id: world/summit\ndraft: false\n")  # published at last
    site.later(minutes=1)
    assert [e.title for e in feedparser.parse(site.body("feed.atom")).entries] == ["Summit opens"]  # the ID's owner's
    assert [s.source for s in site.pub.snapshot.skipped] == [draft_name]


@pytest.mark.parametrize("first, then", [("urn:uuid:0a1b2c3d-0000-4000-8000-00000000abcd", "urn:uuid:0A1B2C3D-0000-4000-8000-00000000ABCD"),
                                         ("urn:uuid:0A1B2C3D-0000-4000-8000-00000000ABCD", "urn:uuid:0a1b2c3d-0000-4000-8000-00000000abcd")])
def test_a_uuid_deleted_then_published_again_in_another_case_takes_its_tombstone_back(make_publisher, desk, first, then):
    story(desk, "vote.md", "Vote count", POLITICS, 5, f"id: {first}\n")
    site = Clock(make_publisher, desk)
    (desk / "vote.md").unlink()
    site.later(minutes=1)
    assert first in tombstones(site.body("feed.atom"))
    story(desk, "vote.md", "Vote count", POLITICS, 5, f"id: {then}\n")
    site.later(minutes=1)
    assert then in entry_ids(site.body("feed.atom")) and tombstones(site.body("feed.atom")) == {}

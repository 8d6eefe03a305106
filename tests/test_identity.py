"""Who owns an ID and a category's URL: the first to publish keeps it, across refreshes, restarts and workers."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import feedparser
import pytest

from tests.conftest import FIXED_NOW, write

ORIGINAL = "---\nid: budget\ntitle: The original budget story\ncategory: Economy\n---\nThe real text.\n"
IMPOSTOR = "---\nid: budget\ntitle: An impostor\ncategory: Economy\n---\nReplaced text.\n"


def titles(pub, path: str = "feed.atom") -> list[str]:
    return [e.title for e in feedparser.parse(pub.snapshot.resources[path].body).entries]


# IDs (issue 11 item 6)


def test_a_newer_file_repeating_an_id_is_skipped_and_the_first_owner_keeps_page_guid_and_item(make_publisher, articles_dir, caplog):
    write(articles_dir, "z-original.md", ORIGINAL)
    pub = make_publisher(articles_dir)
    pub.refresh()
    before = pub.snapshot.resources["articles/budget"].body
    write(articles_dir, "a-newcomer.md", IMPOSTOR)  # sorts first: path order must not decide
    with caplog.at_level("WARNING", logger="feedsvc"):
        pub.refresh()
    assert titles(pub) == ["The original budget story"]
    assert pub.snapshot.resources["articles/budget"].body == before
    [skip] = [s for s in pub.snapshot.skipped if s.source == "a-newcomer.md"]
    assert "z-original.md" in skip.reason and "budget" in skip.reason
    logged = [r.getMessage() for r in caplog.records if "a-newcomer.md" in r.getMessage()]
    assert len(logged) == 1 and "z-original.md" in logged[0]
    with caplog.at_level("WARNING", logger="feedsvc"):
        caplog.clear()
        write(articles_dir, "other.md", ORIGINAL.replace("id: budget", "id: other"))
        pub.refresh()
    assert not [r for r in caplog.records if "a-newcomer.md" in r.getMessage()]  # logged once, not every refresh


def test_the_first_owner_keeps_its_id_after_a_restart(make_publisher, articles_dir):
    write(articles_dir, "z-original.md", ORIGINAL)
    make_publisher(articles_dir).refresh()
    write(articles_dir, "a-newcomer.md", IMPOSTOR)
    restarted = make_publisher(articles_dir, now=FIXED_NOW + timedelta(hours=1))  # the same state store
    restarted.refresh()
    assert titles(restarted) == ["The original budget story"]
    assert [s.source for s in restarted.snapshot.skipped] == ["a-newcomer.md"]


def test_when_the_owner_file_is_deleted_the_other_file_takes_the_id_over(make_publisher, articles_dir):
    original = write(articles_dir, "z-original.md", ORIGINAL)
    pub = make_publisher(articles_dir)
    pub.refresh()
    write(articles_dir, "a-newcomer.md", IMPOSTOR)
    pub.refresh()
    original.unlink()
    pub.refresh()
    assert titles(pub) == ["An impostor"] and not pub.snapshot.skipped
    write(articles_dir, "z-original.md", ORIGINAL)  # coming back, it is the newcomer now
    restarted = make_publisher(articles_dir)
    restarted.refresh()
    assert titles(restarted) == ["An impostor"]
    assert [s.source for s in restarted.snapshot.skipped] == ["z-original.md"]


@pytest.mark.parametrize("saved", ["---\ntitle: [half-saved\n---\n", ORIGINAL.replace("---\nThe", "published: false\n---\nThe")])
def test_an_owner_that_cannot_be_read_for_a_moment_keeps_its_id(make_publisher, articles_dir, saved):
    """Invalid while being edited (its last good version stays published meanwhile), or skipped for a flag of another
    system (it leaves its feeds): either way the newcomer does not take its ID."""
    original = write(articles_dir, "z-original.md", ORIGINAL)
    pub = make_publisher(articles_dir)
    pub.refresh()
    original.write_text(saved, encoding="utf-8")
    write(articles_dir, "a-newcomer.md", IMPOSTOR)
    pub.refresh()
    assert titles(pub) == (["The original budget story"] if "half-saved" in saved else [])
    assert sorted(s.source for s in pub.snapshot.skipped) == ["a-newcomer.md", "z-original.md"]
    original.write_text(ORIGINAL, encoding="utf-8")
    pub.refresh()
    assert titles(pub) == ["The original budget story"]


def test_two_files_with_one_id_in_a_first_scan_go_by_path_order(make_publisher, articles_dir):
    write(articles_dir, "a.md", IMPOSTOR)
    write(articles_dir, "b.md", ORIGINAL)
    pub = make_publisher(articles_dir)
    pub.refresh()
    assert titles(pub) == ["An impostor"]
    assert [(s.source, "a.md" in s.reason) for s in pub.snapshot.skipped] == [("b.md", True)]


# Category slugs (issue 11 item 7)

TECH = "Technology\nFibre upgrade finished\nThe real technology desk.\n"


def slug_of(pub, name: str) -> str:
    return next(f.key for f in pub.snapshot.feeds if f.category and f.category.name == name)


def test_a_look_alike_category_never_takes_a_published_categorys_url(make_publisher, articles_dir):
    write(articles_dir, "tech.txt", TECH)
    pub = make_publisher(articles_dir)
    pub.refresh()
    write(articles_dir, "look-alike.md", "---\ntitle: Look-alike\ncategory: technology\n---\nText.\n")
    pub.refresh()
    assert slug_of(pub, "Technology") == "technology"
    assert slug_of(pub, "technology").startswith("technology-")
    assert titles(pub, "category/technology/feed.atom") == ["Fibre upgrade finished"]


def test_an_embargoed_or_draft_article_claims_no_category_url(make_publisher, articles_dir):
    release = FIXED_NOW + timedelta(days=1)
    write(articles_dir, "later.md", f"---\ntitle: Later\ncategory: technology\ndate: {release.isoformat()}\n---\nText.\n")
    write(articles_dir, "draft.md", "---\ntitle: Draft\ncategory: technology\ndraft: true\n---\nText.\n")
    write(articles_dir, "tech.txt", TECH)
    pub = make_publisher(articles_dir)
    pub.refresh()  # the first scan: "technology" would win on name order, but nothing of it is public
    assert slug_of(pub, "Technology") == "technology"
    released = make_publisher(articles_dir, now=release)
    released.refresh()
    assert slug_of(released, "Technology") == "technology"
    assert slug_of(released, "technology").startswith("technology-")


def test_a_published_slug_stays_its_categorys_across_restarts_even_with_nothing_published(make_publisher, articles_dir):
    tech = write(articles_dir, "tech.txt", TECH)
    make_publisher(articles_dir).refresh()
    tech.unlink()
    write(articles_dir, "look-alike.md", "---\ntitle: Look-alike\ncategory: technology\n---\nText.\n")
    restarted = make_publisher(articles_dir, now=FIXED_NOW + timedelta(hours=1))
    restarted.refresh()
    assert slug_of(restarted, "technology").startswith("technology-")
    write(articles_dir, "tech.txt", TECH)
    restarted.refresh()
    assert slug_of(restarted, "Technology") == "technology"


def test_category_slugs_settings_come_first_even_over_a_recorded_slug(make_publisher, articles_dir):
    write(articles_dir, "tech.txt", TECH)
    make_publisher(articles_dir).refresh()
    write(articles_dir, "desk.md", "---\ntitle: Desk news\ncategory: Tech desk\n---\nText.\n")
    configured = make_publisher(articles_dir, CATEGORY_SLUGS={"Tech desk": "technology"})
    configured.refresh()
    assert slug_of(configured, "Tech desk") == "technology"
    assert slug_of(configured, "Technology").startswith("technology-")


@pytest.mark.e2e
def test_a_served_site_keeps_its_ids_and_category_urls_against_newcomers_across_a_restart(articles_dir, tmp_path):
    import time

    from tests.http_helpers import Server, fetch

    write(articles_dir, "z-original.md", ORIGINAL)
    write(articles_dir, "tech.txt", TECH)
    state = tmp_path / "state.sqlite3"
    server = Server(articles_dir, state)
    try:
        release = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
        write(articles_dir, "a-embargoed.md", f"---\ntitle: Not yet\ncategory: technology\ndate: {release}\n---\nText.\n")
        write(articles_dir, "a-newcomer.md", IMPOSTOR)
        deadline = time.monotonic() + 10
        while "a-newcomer.md" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        [line] = [line for line in server.output().splitlines() if "a-newcomer.md" in line]
        assert "z-original.md" in line and "budget" in line  # the log names both files
        assert b"The original budget story" in fetch(server.base, "/articles/budget").body
        assert b"Fibre upgrade finished" in fetch(server.base, "/category/technology/feed.rss").body
        write(articles_dir, "a-look-alike.md", "---\ntitle: Look-alike\ncategory: technology\n---\nText.\n")
        deadline = time.monotonic() + 10
        while b"Look-alike" not in fetch(server.base, "/feed.atom").body and time.monotonic() < deadline:
            time.sleep(0.05)
        assert b"Fibre upgrade finished" in fetch(server.base, "/category/technology/feed.rss").body
        assert b"Look-alike" not in fetch(server.base, "/category/technology/feed.rss").body
    finally:
        server.stop()
    again = Server(articles_dir, state)
    try:
        assert b"The original budget story" in fetch(again.base, "/articles/budget").body
        feed = feedparser.parse(fetch(again.base, "/category/technology/feed.atom").body)
        assert [e.title for e in feed.entries] == ["Fibre upgrade finished"]
        # The restarted site answers from the build store at once; its builder logs the skip as it walks.
        deadline = time.monotonic() + 10
        while not any("a-newcomer.md" in line and "z-original.md" in line for line in again.output().splitlines()):
            assert time.monotonic() < deadline, again.output()
            time.sleep(0.05)
    finally:
        again.stop()

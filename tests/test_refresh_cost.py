"""A one-file refresh costs what changed: one state-store transaction, and its stages look at the articles that
came and went, not at every article; after a failed refresh the next one still publishes exactly what a fresh
publisher would."""
from __future__ import annotations

import sqlite3

import pytest

from feedsvc.building.state import StateStore
from feedsvc.urls import feed_path
from tests.conftest import observed, write


def story(number: int) -> str:
    return f"{['News', 'Sport'][number % 2]}\nStory {number}\nBody {number}.\n"


def traced(monkeypatch) -> list[str]:
    """Every statement the state store's SQLite connections run, as SQLite itself reports them."""
    statements: list[str] = []
    connect = StateStore._connect

    def tracing(self) -> sqlite3.Connection:
        conn = connect(self)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(StateStore, "_connect", tracing)
    return statements


def one_saved_file(make_publisher, folder, count: int, monkeypatch) -> tuple[list[str], int, object]:
    """The statements of a refresh after one new file in a folder of `count`, and how many articles it looked at."""
    folder.mkdir()
    for number in range(count):
        write(folder, f"s{number:04d}.txt", story(number))
    statements = traced(monkeypatch)
    pub = make_publisher(folder)
    refreshes = observed(pub)
    assert pub.refresh()
    statements.clear()
    write(folder, "new.txt", "News\nA new one\nBody.\n")
    assert pub.refresh([str(folder / "new.txt")])
    assert "new" in pub.snapshot.articles and len(pub.snapshot.articles) == count + 1
    return list(statements), refreshes[-1].looked_at, pub



@pytest.mark.parametrize("count", [40, 400])
def test_a_one_file_refresh_writes_the_state_store_in_one_transaction(make_publisher, tmp_path, monkeypatch, count):
    statements, _, pub = one_saved_file(make_publisher, tmp_path / "articles", count, monkeypatch)
    begun = [s for s in statements if s.startswith("BEGIN")]
    committed = [s for s in statements if s in ("COMMIT", "ROLLBACK")]
    # The new article's owner, its stamp and its versions (feeds, pages, sitemaps) and what the feeds carry: one
    # write lock, one commit, on one kept connection (no connection opened for a write).
    assert begun == ["BEGIN IMMEDIATE"] and committed == ["COMMIT"], statements
    writes = [s for s in statements if s.startswith(("INSERT", "DELETE", "UPDATE"))]
    assert any("INTO owners" in s for s in writes) and any("INTO articles" in s for s in writes)
    assert any("INTO versions" in s for s in writes) and any("INTO carried" in s for s in writes)
    assert not any(s.startswith("PRAGMA busy_timeout") for s in statements)  # no new connection
    statements.clear()
    assert pub.refresh([str(tmp_path / "articles" / "new.txt")])  # nothing changed: nothing written, no lock
    assert not [s for s in statements if s.startswith("BEGIN")]


def test_a_one_file_refresh_looks_at_as_many_articles_at_400_as_at_40(make_publisher, tmp_path, monkeypatch):
    looked = []
    for count in (40, 400):
        monkeypatch.undo()
        looked.append(one_saved_file(make_publisher, tmp_path / f"articles{count}", count, monkeypatch)[1])
    assert looked[0] == looked[1] and looked[0] <= 4, looked  # the new article, in Owners.unique() and _stamp()


def test_a_deleted_and_an_edited_file_are_followed_by_what_came_and_went(make_publisher, articles_dir, deletions_at_once):
    for number in range(50):
        write(articles_dir, f"s{number:02d}.txt", story(number))
    pub = make_publisher(articles_dir)
    refreshes = observed(pub)
    assert pub.refresh()
    (articles_dir / "s03.txt").unlink()
    write(articles_dir, "s04.txt", "Sport\nStory 4, edited\nA longer body now.\n")
    assert pub.refresh([str(articles_dir / "s03.txt"), str(articles_dir / "s04.txt")])
    assert refreshes[0].looked_at >= 50 and refreshes[-1].looked_at <= 8  # the first looked at every article
    assert "s03" not in pub.snapshot.articles and pub.snapshot.articles["s04"].title == "Story 4, edited"
    fresh = make_publisher(articles_dir)  # the same folder and state, from nothing
    assert fresh.refresh()
    assert fresh.snapshot.resources["feed.atom"].body == pub.snapshot.resources["feed.atom"].body
    assert dict(fresh.snapshot.articles) == dict(pub.snapshot.articles)


def test_a_repeated_id_makes_the_refresh_look_at_every_article_and_keeps_the_first_owner(make_publisher, articles_dir, deletions_at_once):
    for number in range(20):
        write(articles_dir, f"s{number:02d}.txt", story(number))
    pub = make_publisher(articles_dir)
    refreshes = observed(pub)
    assert pub.refresh()
    write(articles_dir, "a-copy.md", "---\nid: s05\ntitle: A copy\ncategory: News\n---\nCopied.\n")  # sorts first
    assert pub.refresh([str(articles_dir / "a-copy.md")])
    assert pub.snapshot.articles["s05"].source == "s05.txt"
    assert any(s.source == "a-copy.md" for s in pub.snapshot.skipped)
    assert refreshes[-1].looked_at >= 21  # a dispute: every article, as unique_ids() needs
    (articles_dir / "a-copy.md").unlink()
    assert pub.refresh([str(articles_dir / "a-copy.md")])
    assert not pub.snapshot.skipped and pub.snapshot.articles["s05"].source == "s05.txt"


def built(make_publisher, articles_dir, count: int):
    """A publisher that has published `count` stories."""
    for number in range(count):
        write(articles_dir, f"s{number:02d}.txt", story(number))
    pub = make_publisher(articles_dir)
    assert pub.refresh()
    return pub


def test_after_a_failed_refresh_the_next_one_catches_up_with_what_it_missed(make_publisher, articles_dir, monkeypatch, deletions_at_once):
    pub = built(make_publisher, articles_dir, 30)
    render = pub.renderer.render

    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pub.renderer, "render", explode)
    write(articles_dir, "new.txt", "News\nA new one\nBody.\n")
    (articles_dir / "s07.txt").unlink()
    assert not pub.refresh([str(articles_dir / "new.txt"), str(articles_dir / "s07.txt")])  # scanned, stamped, not published
    monkeypatch.setattr(pub.renderer, "render", render)
    write(articles_dir, "s08.txt", "Sport\nStory 8, edited\nA longer body now.\n")
    assert pub.refresh([str(articles_dir / "s08.txt")])  # told of s08 only: new.txt and s07 were in the failed one
    assert "new" in pub.snapshot.articles and "s07" not in pub.snapshot.articles
    assert pub.snapshot.articles["s08"].title == "Story 8, edited"
    fresh = make_publisher(articles_dir)
    assert fresh.refresh()
    for path in ("feed.atom", "feed.json", feed_path("sport", "rss"), "sitemap.xml"):
        assert fresh.snapshot.resources[path].body == pub.snapshot.resources[path].body, path
        assert fresh.snapshot.resources[path].etag == pub.snapshot.resources[path].etag, path


def test_a_failed_write_rolls_the_refresh_back_and_the_next_one_writes_it_again(make_publisher, articles_dir, monkeypatch):
    pub = built(make_publisher, articles_dir, 10)
    record_carried = pub.store.record_carried

    def full_disk(*args, **kwargs):
        with pub.store._writing() as conn:  # a write that fails inside the refresh's transaction
            conn.execute("INSERT INTO no_such_table VALUES (1)")

    monkeypatch.setattr(pub.store, "record_carried", full_disk)
    write(articles_dir, "new.txt", "News\nA new one\nBody.\n")
    assert not pub.refresh([str(articles_dir / "new.txt")])
    assert pub.store.rolled_back and "state file" in pub.last_error
    assert StateStore(pub.store.path)._kept().execute("SELECT COUNT(*) FROM articles WHERE id = 'new'").fetchone() == (0,)
    monkeypatch.setattr(pub.store, "record_carried", record_carried)
    assert pub.refresh([str(articles_dir / "new.txt")])
    conn = StateStore(pub.store.path)._kept()
    assert conn.execute("SELECT COUNT(*) FROM articles WHERE id = 'new'").fetchone() == (1,)
    assert conn.execute("SELECT source FROM owners WHERE id = 'new'").fetchone() == ("new.txt",)
    assert "new" in pub.snapshot.articles

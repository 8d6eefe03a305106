"""What the writer meant is kept: a UUID or URI id is the item's GUID as written in every format, while
its page is named safely; an id that would climb out of /articles/ is refused the same way by serve and build."""
from __future__ import annotations

import json
from datetime import timedelta

import feedparser
import pytest
from click.testing import CliRunner

from feedsvc.cli import main
from feedsvc.model import stable_id
from feedsvc.slugs import SLUG_MAX
from tests.conftest import FIXED_NOW, write

TAG = "tag:news.example,2019:article-4711"
URN_UUID = "urn:uuid:6fa459ea-ee8a-3ca4-894e-db77e160355e"
URL = "https://old.example/news/2019/article-4711"


def md(id_: str, title: str) -> str:
    return f"---\nid: {id_}\ntitle: {title}\ncategory: News\ndate: 2026-11-01 10:00\n---\nBody of {title}.\n"


def test_a_uri_or_uuid_id_is_the_guid_as_written_in_every_format(articles_dir, make_publisher):
    write(articles_dir, "2019/tagged.md", md(TAG, "Tagged"))
    write(articles_dir, "urn.md", md(URN_UUID, "Urn"))
    write(articles_dir, "url.md", md(URL, "Url"))
    write(articles_dir, "bare.md", md("0b9a0e8e-6b1c-4f0b-9d55-2a7c1c1b0c11", "Bare"))
    write(articles_dir, "plain.md", md("economy/rates", "Plain"))
    publisher = make_publisher(articles_dir)
    assert publisher.refresh()
    expected = {"Tagged": TAG, "Urn": URN_UUID, "Url": URL, "Bare": "urn:uuid:0b9a0e8e-6b1c-4f0b-9d55-2a7c1c1b0c11",
                "Plain": stable_id("economy/rates")}
    resources = publisher.snapshot.resources
    for fmt in ("rss", "atom"):
        entries = feedparser.parse(resources[f"feed.{fmt}"].body).entries
        assert {e.title: e.id for e in entries} == expected, fmt
    items = json.loads(resources["feed.json"].body)["items"]
    assert {i["title"]: i["id"] for i in items} == expected
    assert b'<guid isPermaLink="false">tag:news.example,2019:article-4711</guid>' in resources["feed.rss"].body
    # Pages stay safe paths: named after the file when the id is a URI, after a bare UUID itself.
    assert {p for p in resources if p.startswith("articles/")} == {
        "articles/2019/tagged", "articles/urn", "articles/url", "articles/0b9a0e8e-6b1c-4f0b-9d55-2a7c1c1b0c11",
        "articles/economy/rates"}


@pytest.mark.parametrize("others", [
    ["urn:uuid:0b9a0e8e-6b1c-4f0b-9d55-2a7c1c1b0c11"],  # bare and as a URN
    # UUIDs are case-insensitive (RFC 9562 §4): an upper-case one was published as a second item with the same GUID
    # (found in review)
    ["URN:UUID:0B9A0E8E-6B1C-4F0B-9D55-2A7C1C1B0C11", "0B9A0E8E-6B1C-4F0B-9D55-2A7C1C1B0C11"],
])
def test_ids_that_are_one_uuid_are_one_guid_so_only_the_first_file_publishes(articles_dir, make_publisher, others):
    """The first file keeps the GUID, as written in the feeds; each other file is skipped naming it."""
    write(articles_dir, "a.md", md("0b9a0e8e-6b1c-4f0b-9d55-2a7c1c1b0c11", "First"))
    names = [f"{chr(ord('b') + n)}.md" for n in range(len(others))]
    for name, id_ in zip(names, others):
        write(articles_dir, name, md(id_, name))
    publisher = make_publisher(articles_dir)
    assert publisher.refresh()
    entries = feedparser.parse(publisher.snapshot.resources["feed.atom"].body).entries
    assert [(e.title, e.id) for e in entries] == [("First", "urn:uuid:0b9a0e8e-6b1c-4f0b-9d55-2a7c1c1b0c11")]
    skipped = {s.source: s.reason for s in publisher.snapshot.skipped}
    assert all("same GUID" in skipped[name] and "a.md" in skipped[name] for name in names), skipped


def test_two_files_whose_names_differ_only_in_unicode_form_are_told_apart(articles_dir, make_publisher):
    """café.txt written composed and decomposed (as macOS writes names) is one ID: the second was skipped as "same id
    'café' as café.txt", the two names printed alike (found in review). The line says which form each is."""
    import unicodedata

    write(articles_dir, unicodedata.normalize("NFD", "café.txt"), "News\nOne\nBody text.\n")
    write(articles_dir, unicodedata.normalize("NFC", "café.txt"), "News\nTwo\nBody text.\n")
    publisher = make_publisher(articles_dir)
    assert publisher.refresh()
    ((skip,),) = [[s for s in publisher.snapshot.skipped]]
    assert "the same name in another Unicode form" in skip.reason and "NFC" in skip.reason and "NFD" in skip.reason
    assert skip.fix.startswith("delete the copy you do not want")


def test_a_guid_stays_with_the_article_that_had_it_first_when_a_later_file_names_it(articles_dir, tmp_path, make_publisher):
    """A published article whose id is a URI, then a newer file with the same id written before it in path order: the
    published one keeps its GUID (and its content in the feeds), here and after a restart; a plain id repeated is
    still its first owner's."""
    write(articles_dir, "b.md", md(TAG, "Published"))
    write(articles_dir, "m.md", md("plain/one", "Plain"))
    state = tmp_path / "state.sqlite3"
    assert make_publisher(articles_dir, STATE_PATH=str(state)).refresh()
    write(articles_dir, "a.md", md(TAG, "Newer"))
    write(articles_dir, "a2.md", md("plain/one", "Newer plain"))
    later = FIXED_NOW + timedelta(hours=1)
    for publisher in (make_publisher(articles_dir, later, STATE_PATH=str(state)), make_publisher(articles_dir, later, STATE_PATH=str(state))):
        assert publisher.refresh()
        entries = feedparser.parse(publisher.snapshot.resources["feed.atom"].body).entries
        assert sorted((e.title, e.id) for e in entries) == [("Plain", stable_id("plain/one")), ("Published", TAG)]
        skipped = {s.source: s.reason for s in publisher.snapshot.skipped}
        assert skipped.keys() == {"a.md", "a2.md"} and "same GUID" in skipped["a.md"] and "b.md" in skipped["a.md"]


def test_an_id_with_dot_segments_is_refused_by_build_as_by_serve(articles_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(articles_dir, "escape.md", md("../feed.rss", "Escape"))
    write(articles_dir, "good.md", md("good", "Good"))
    out = tmp_path / "site"
    result = CliRunner().invoke(main, ["build", "--out", str(out), "--articles", str(articles_dir)],
                                env={"FEEDSVC_STATE_PATH": str(tmp_path / "state.sqlite3"), "FEEDSVC_SETTLE_MS": "0"})
    assert result.exit_code == 0, result.output
    assert [e.title for e in feedparser.parse((out / "feed.rss").read_bytes()).entries] == ["Good"]
    assert not list(out.resolve().parent.glob("feed.rss*"))  # nothing written beside the export
    check = CliRunner().invoke(main, ["check", "--json", str(articles_dir)])
    (skip,) = json.loads(check.output)["skipped"]
    assert skip["file"] == "escape.md" and ". or .." in skip["reason"] and "id:" in skip["fix"]


def test_a_long_category_line_is_published_under_a_cut_slug(articles_dir, make_publisher):
    category = "World › Middle East › Iran › Politics › Nuclear programme › " * 5 + "Analysis"
    write(articles_dir, "long.txt", f"{category}\nInspectors return\nThe inspectors arrived on Monday.\n")
    publisher = make_publisher(articles_dir)
    assert publisher.refresh()
    (listing,) = [lst for key, lst in publisher.snapshot.listings.items() if key]
    assert listing.category.name == category and len(listing.key) == SLUG_MAX
    feed = feedparser.parse(publisher.snapshot.resources[f"category/{listing.key}/feed.atom"].body)
    assert [t.term for t in feed.entries[0].tags] == [category]


def test_an_id_written_as_a_uri_that_is_not_a_valid_one_is_skipped_with_the_fix(articles_dir, make_publisher):
    """Such an id is the item's GUID as written (atom:id): `tag:x`, `urn:uuid:zzz` and an IRI were published and failed
    the W3C validator (InvalidTAG, InvalidUUID, UriNotIri; found in review). Skipped now, naming what is wrong."""
    write(articles_dir, "good.md", md(TAG, "Good"))
    for name, id_ in (("tag.md", "tag:x"), ("uuid.md", "urn:uuid:zzz"), ("iri.md", "https://١.example/x")):
        write(articles_dir, name, md(id_, name))
    publisher = make_publisher(articles_dir)
    assert publisher.refresh()
    entries = feedparser.parse(publisher.snapshot.resources["feed.atom"].body).entries
    assert [e.id for e in entries] == [TAG]
    reasons = {s.source: s.reason for s in publisher.snapshot.skipped}
    assert "tag: URI" in reasons["tag.md"] and "UUID" in reasons["uuid.md"] and "IRI" in reasons["iri.md"]


def test_an_id_that_starts_as_a_uri_but_holds_a_space_is_skipped_as_a_uri_not_published_as_a_path(articles_dir, make_publisher):
    # `tag:news.example,2019:a b` was taken for a path id: published under a new hashed GUID, silently, where a migrated
    # site needs the GUID it wrote; `http://ex.com/a b` was skipped for "an empty part" (the // of its scheme).
    write(articles_dir, "good.md", md(TAG, "Good"))
    for name, id_ in (("tagspace.md", "tag:news.example,2019:a b"), ("http.md", "http://ex.com/a b"), ("quote.md", 'tag:x,2019:a"b')):
        write(articles_dir, name, md(id_, name))
    publisher = make_publisher(articles_dir)
    assert publisher.refresh()
    assert [e.id for e in feedparser.parse(publisher.snapshot.resources["feed.atom"].body).entries] == [TAG]
    skipped = {s.source: s for s in publisher.snapshot.skipped}
    assert set(skipped) == {"tagspace.md", "http.md", "quote.md"}
    assert all("characters a URI may not hold" in s.reason and "valid URI" in s.fix for s in skipped.values()), skipped

"""A listing's digest (feedsvc/building/versions.py), kept up to date from the items that left or came, is the digest
hashed from every item."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc.building.feeds import ListingBuilder
from feedsvc.building import versions as versions_module
from feedsvc.building.versions import ListingVersions
from feedsvc.model import Deleted
from feedsvc.paging import page_feed
from tests.conftest import FIXED_NOW
from tests.test_feeds import SITE, STEP, article


PAGE = 2  # items a page: 16 articles make archive pages enough


def versions() -> tuple[ListingVersions, dict]:
    recorded: dict[str, str] = {}

    def record(digests):
        recorded.update(digests)
        return {key: FIXED_NOW for key in digests}

    return ListingVersions(record, lambda keys: {}, ("shape",), PAGE), recorded


def snapshots(steps):
    """Each step's listings (articles written or edited, deleted, the clock moved on: test_feeds.STEP)."""
    builder, folder, now, edits = ListingBuilder(), {}, FIXED_NOW, 0
    for written, deleted, hours in steps:
        for number, offset, names, draft in written:
            edits += 1
            folder[number] = article(number, offset, names, draft, edits)
        for number in deleted:
            folder.pop(number, None)
        now += timedelta(hours=hours)
        yield builder.build(list(folder.values()), SITE, {}, now)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=8))
def test_a_digest_kept_up_to_date_is_the_digest_of_every_item(steps):
    kept, previous, before = versions(), {}, {}
    for listings in snapshots(steps):
        before = kept[0].times(listings, previous, before)[0]
        previous = {listing.key: listing for listing in listings}
        fresh = versions()
        fresh[0].times(listings, {}, {})
        assert kept[0].digests.keys() >= fresh[0].digests.keys()
        assert {key: kept[0].digests[key] for key in fresh[0].digests} == fresh[0].digests
        assert {key: pages.digests for key, pages in kept[0]._pages.items()} == {key: pages.digests for key, pages in fresh[0]._pages.items()}


def test_an_edited_article_changes_the_digest_of_its_listings_only():
    builder, (kept, recorded) = ListingBuilder(), versions()
    articles = [article(1, -1, ("Sport",), False), article(2, -2, ("Tech",), False)]
    listings = builder.build(articles, SITE, {}, FIXED_NOW)
    before = kept.times(listings, {}, {})[0]
    recorded.clear()
    edited = builder.build([articles[0], replace(articles[1], content_hash="new")], SITE, {}, FIXED_NOW)
    kept.times(edited, {listing.key: listing for listing in listings}, before)
    assert set(recorded) == {"listing:", "listing:tech"}


def test_a_listing_whose_tombstones_alone_changed_hashes_no_item_again(monkeypatch):
    builder, (kept, recorded) = ListingBuilder(), versions()
    listings = builder.build([article(n, -n, ("Sport",), False) for n in range(1, 40)], SITE, {}, FIXED_NOW)
    before = kept.times(listings, {}, {})[0]
    gone = Deleted("urn:gone", FIXED_NOW, ("Sport",))
    # A refresh where a tombstone came to (or left) the first pages: the same article objects, other tombstones.
    tombed = [replace(listing, deleted=(gone,)) for listing in listings]
    tokens, hashed = [], []
    token, number = kept._token, versions_module._number
    monkeypatch.setattr(kept, "_token", lambda a: (tokens.append(a), token(a))[1])
    monkeypatch.setattr(versions_module, "_number", lambda text: (hashed.append(text), number(text))[1])
    recorded.clear()
    kept.times(tombed, {listing.key: listing for listing in listings}, before)
    # Each listing's head hashed anew, and no item looked at again (at 100,000 articles a loop over every item's
    # token took a one-file refresh 100 ms whenever a tombstone was on a first page).
    assert set(recorded) == {"listing:", "listing:sport"} and len(hashed) == 2 and tokens == []
    fresh = versions()[0]
    fresh.times(tombed, {}, {})
    assert {key: kept.digests[key] for key in fresh.digests} == fresh.digests


def test_a_new_article_finds_the_archive_pages_it_moves_by_bisection_not_a_walk_over_the_items(monkeypatch):
    builder, (kept, recorded) = ListingBuilder(), versions()
    articles = [article(n, -n, ("Sport",), False) for n in range(1, 400)]
    listings = builder.build(articles, SITE, {}, FIXED_NOW)
    before = kept.times(listings, {}, {})[0]
    newer = builder.build([*articles, article(400, 0, ("Sport",), False)], SITE, {}, FIXED_NOW)
    compared = []
    is_not = versions_module.operator.is_not
    monkeypatch.setattr(versions_module.operator, "is_not", lambda a, b: (compared.append(1), is_not(a, b))[1])
    recorded.clear()
    kept.times(newer, {listing.key: listing for listing in listings}, before)
    assert compared == []  # no item compared: the moves (Listing.left, came) say where the pages changed
    assert sorted(key for key in recorded if key.startswith("page:")) == ["page:200:", "page:200:sport"]  # the newest archive page
    fresh = versions()[0]
    fresh.times(newer, {}, {})
    assert {key: pages.digests for key, pages in kept._pages.items()} == {key: pages.digests for key, pages in fresh._pages.items()}


def shown(listing, page: int):
    """What archive page `page` of a listing shows, its date aside (paging.page_feed); None if there is none."""
    feed = page_feed(listing, SITE, PAGE, page)
    return None if feed is None else (feed.title, feed.description, feed.links, feed.archive, tuple(
        (a.id, a.content_hash, a.published, a.updated) for a in feed.items))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=2, max_size=8))
def test_an_archive_page_is_dated_anew_exactly_when_what_it_shows_changes(steps):
    (kept, recorded), previous, before, times = versions(), {}, {}, {}
    clock = iter(range(1, 1000))

    def record(digests):  # a new digest gets a new time; a known one keeps its own (as state.record_versions)
        for key, digest in digests.items():
            if recorded.get(key, (None,))[0] != digest:
                recorded[key] = (digest, FIXED_NOW + timedelta(seconds=next(clock)))
        return {key: recorded[key][1] for key in digests}

    kept.record, recorded = record, {}
    for listings in snapshots(steps):
        before, pages = kept.times(listings, previous, before)
        for listing in listings:
            old = previous.get(listing.key)
            for page, when in enumerate(pages[listing.key], start=2):
                assert shown(listing, page) is not None
                was = None if old is None else shown(old, page)
                if was is not None and (listing.key, page) in times:
                    assert (when == times[listing.key, page]) == (was == shown(listing, page)), (listing.key, page)
                times[listing.key, page] = when
            assert shown(listing, len(pages[listing.key]) + 2) is None  # every archive page has a time
        previous = {listing.key: listing for listing in listings}


def test_a_new_article_dates_only_the_newest_archive_page_anew():
    builder, (kept, recorded) = ListingBuilder(), versions()
    articles = [article(n, -20 + n, ("Sport",), False) for n in range(8)]  # the first page and 3 full archive pages
    listings = builder.build(articles, SITE, {}, FIXED_NOW)
    before, pages = kept.times(listings, {}, {})
    assert len(pages[""]) == 3 and len(recorded) == 2 + 6  # two listings, three archive pages each
    recorded.clear()
    grown = builder.build([*articles, article(9, -1, ("Sport",), False)], SITE, {}, FIXED_NOW)
    before = kept.times(grown, {listing.key: listing for listing in listings}, before)[0]
    # The item pushed off the first page starts page 5 (page 4, the newest, was full), and page 4's "previous"
    # link moves from the first page to it. Pages 2 and 3 keep their digests.
    assert set(recorded) == {"listing:", "listing:sport", "page:4:", "page:5:", "page:4:sport", "page:5:sport"}
    recorded.clear()
    again = builder.build([*articles, article(9, -1, ("Sport",), False), article(10, 0, ("Sport",), False)], SITE, {}, FIXED_NOW)
    kept.times(again, {listing.key: listing for listing in grown}, before)
    assert {key for key in recorded if key.startswith("page:")} == {"page:5:", "page:5:sport"}  # it fills page 5 alone


def test_archive_pages_and_deltas_are_dated_anew_when_a_reading_setting_changes_their_bytes(articles_dir, make_publisher):
    """A restart with another SUMMARY_LENGTH changes every item's bytes though no file changed: the archive pages and
    the `?since=` deltas get a later Last-Modified with them (a client sending If-Modified-Since alone was answered
    304 and kept the old bytes), and keep it across a restart with the same settings."""
    from datetime import timedelta

    from feedsvc.building.export import archive_page
    from tests.conftest import FIXED_NOW, write

    words = " ".join(f"word{i}" for i in range(120))
    for i in range(8):
        write(articles_dir, f"n{i}.md", f"---\ntitle: Story {i}\ncategory: News\ndate: 2026-11-0{i + 1} 10:00\n---\n{words} end {i}.\n")
    dated = []
    for hours, length in ((0, 280), (1, 60), (2, 60)):
        publisher = make_publisher(articles_dir, FIXED_NOW + timedelta(hours=hours), FEED_MAX_ITEMS=3, SUMMARY_LENGTH=length)
        assert publisher.refresh()
        page = archive_page(publisher)("", "atom", 2)
        dated.append((page.body, page.last_modified, publisher.snapshot.changed[""]))
    (before, at, listed), (after, then, relisted), (again, still, kept) = dated
    assert after != before and then > at and relisted > listed  # the listing's own time dates its deltas
    assert (again, still, kept) == (after, then, relisted)

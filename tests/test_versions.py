"""A listing's digest (feedsvc/building/versions.py), kept up to date from the items that left or came, is the digest
hashed from every item."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc.building.feeds import ListingBuilder
from feedsvc.building.versions import ListingVersions
from tests.conftest import FIXED_NOW
from tests.test_feeds import SITE, STEP, article


def versions() -> tuple[ListingVersions, dict]:
    recorded: dict[str, str] = {}

    def record(digests):
        recorded.update(digests)
        return {key: FIXED_NOW for key in digests}

    return ListingVersions(record, lambda keys: {}, ("shape",)), recorded


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=8))
def test_a_digest_kept_up_to_date_is_the_digest_of_every_item(steps):
    builder, kept, folder, now, edits = ListingBuilder(), versions(), {}, FIXED_NOW, 0
    previous, before = {}, {}
    for written, deleted, hours in steps:
        for number, offset, names, draft in written:
            edits += 1
            folder[number] = article(number, offset, names, draft, edits)
        for number in deleted:
            folder.pop(number, None)
        now += timedelta(hours=hours)
        listings = builder.build(list(folder.values()), SITE, {}, now)
        before = kept[0].times(listings, previous, before)
        previous = {listing.key: listing for listing in listings}
        fresh = versions()
        fresh[0].times(listings, {}, {})
        assert kept[0].digests.keys() >= fresh[0].digests.keys()
        assert {key: kept[0].digests[key] for key in fresh[0].digests} == fresh[0].digests


def test_an_edited_article_changes_the_digest_of_its_listings_only():
    builder, (kept, recorded) = ListingBuilder(), versions()
    articles = [article(1, -1, ("Sport",), False), article(2, -2, ("Tech",), False)]
    listings = builder.build(articles, SITE, {}, FIXED_NOW)
    before = kept.times(listings, {}, {})
    recorded.clear()
    edited = builder.build([articles[0], replace(articles[1], content_hash="new")], SITE, {}, FIXED_NOW)
    kept.times(edited, {listing.key: listing for listing in listings}, before)
    assert set(recorded) == {"listing:", "listing:tech"}

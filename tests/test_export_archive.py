"""Archive pages in the export (feedsvc/building/archive.py): cut as the app cuts them, redated as the app dates them."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from feedsvc.building.archive import DATES, redated, redated_head
from feedsvc.paging import Listing, page_count, page_feed, page_items
from feedsvc.formats import FORMATS
from feedsvc.model import Site

SITE = Site(title="T", url="http://example.test", description="D", author="A", language="en", max_age=60)
WHEN = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=timezone.utc)


@pytest.mark.parametrize("size", [1, 3, 5, 50])
@pytest.mark.parametrize("total", [0, 1, 4, 5, 6, 11, 49, 50, 51, 101, 250])
def test_each_archive_page_holds_the_items_page_feed_gives_it(total, size):
    items = tuple(SimpleNamespace(n=n, lang="en") for n in range(total))  # all page_feed reads of an item
    listing = Listing("", "T", "D", None, items, "http://example.test/")
    for page in range(2, page_count(total, size) + 1):
        start, end, complete = page_items(total, size, page)
        feed = page_feed(listing, SITE, size, page)
        assert (tuple(feed.items), feed.archive) == (items[start:end], complete), page


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_redated_page_is_the_page_rendered_with_the_new_date(fmt, sample_articles):
    listing = Listing("", "T", "D", None, tuple(sample_articles), "http://example.test/")
    later = WHEN + timedelta(days=3, microseconds=7)
    before = FORMATS[fmt].render(page_feed(listing, SITE, 4, 2, updated=WHEN), SITE)
    after = FORMATS[fmt].render(page_feed(listing, SITE, 4, 2, updated=later), SITE)
    assert redated(fmt, before, WHEN, later) == after
    assert (before != after) is (fmt != "json")  # JSON Feed has no date of its own
    if fmt in DATES:  # redated from a buffer (a mapped file): its new head, then its rest as it was
        head, rest = redated_head(fmt, before, WHEN, later)
        assert head + before[rest:] == after and len(head) < len(after) // 2


@pytest.fixture
def sample_articles(make_publisher, sample_dir):
    publisher = make_publisher(sample_dir)
    assert publisher.refresh()
    return list(publisher.snapshot.listings[""].items)

"""Which articles go into which feed: order, limits, drafts, embargoes, categories, slugs, language, dates."""
from __future__ import annotations

import os
import unicodedata
from datetime import timedelta

import feedparser
import pytest
import yaml

from feedsvc.slugs import SLUG_MAX
from tests.conftest import FIXED_NOW, write


def markdown(title: str, body: str = "A paragraph of text.", **meta) -> str:
    """A Markdown article with front matter (dates as strings, lists kept)."""
    front = yaml.safe_dump({"title": title, **meta}, allow_unicode=True, sort_keys=False)
    return f"---\n{front}---\n{body}\n"


def feed_of(snapshot, key: str = ""):
    """The feed whose key is the category slug ("" = site-wide)."""
    return next(f for f in snapshot.feeds if f.key == key)


def category_feed(snapshot, name: str):
    return next(f for f in snapshot.feeds if f.category and f.category.name == name)


def titles(feed) -> list[str]:
    return [a.title for a in feed.items]


# Order and limits


def test_items_are_newest_first_by_published_date(make_publisher, articles_dir):
    write(articles_dir, "old.md", markdown("Old", date="2026-01-01 09:00", category="News"))
    write(articles_dir, "new.md", markdown("New", date="2026-03-01 09:00", category="News"))
    write(articles_dir, "mid.md", markdown("Mid", date="2026-02-01 09:00", category="News"))
    snap = make_publisher(articles_dir).build(FIXED_NOW)
    assert titles(feed_of(snap)) == ["New", "Mid", "Old"]
    assert titles(category_feed(snap, "News")) == ["New", "Mid", "Old"]


def test_items_published_at_the_same_moment_are_ordered_by_id(make_publisher, articles_dir):
    for name in ("c", "a", "b"):
        write(articles_dir, f"{name}.md", markdown(f"Title {name}", date="2026-05-05 12:00", category="News"))
    snap = make_publisher(articles_dir).build(FIXED_NOW)
    assert [a.id for a in feed_of(snap).items] == ["a", "b", "c"]


def test_a_feed_holds_at_most_feed_max_items_of_the_newest(make_publisher, articles_dir):
    for day in range(1, 6):
        write(articles_dir, f"d{day}.md", markdown(f"Day {day}", date=f"2026-06-0{day} 08:00", category="News"))
    snap = make_publisher(articles_dir, FEED_MAX_ITEMS=2).build(FIXED_NOW)
    assert titles(feed_of(snap)) == ["Day 5", "Day 4"]
    assert titles(category_feed(snap, "News")) == ["Day 5", "Day 4"]
    rss = feedparser.parse(snap.resources["feed.rss"].body)
    assert len(rss.entries) == 2


# What is published, and when


def test_drafts_are_never_published(make_publisher, articles_dir):
    write(articles_dir, "live.md", markdown("Live", date="2026-01-01", category="News"))
    write(articles_dir, "draft.md", markdown("Secret draft", date="2026-01-02", category="Drafts only", draft=True))
    snap = make_publisher(articles_dir).build(FIXED_NOW)
    assert titles(feed_of(snap)) == ["Live"]
    assert "draft" not in snap.articles
    assert all(f.category is None or f.category.name != "Drafts only" for f in snap.feeds)
    assert not any(b"Secret draft" in r.body for r in snap.resources.values())


def test_an_article_dated_after_now_is_held_back_until_its_time(make_publisher, articles_dir):
    release = FIXED_NOW + timedelta(hours=3)
    write(articles_dir, "now.md", markdown("Out now", date="2026-01-01", category="News"))
    write(articles_dir, "later.md", markdown("Embargoed", date=release.isoformat(), category="Scoops"))
    pub = make_publisher(articles_dir)

    before = pub.build(FIXED_NOW)
    assert titles(feed_of(before)) == ["Out now"]
    assert before.next_release == release
    assert not any(b"Embargoed" in r.body for r in before.resources.values())
    assert "category/scoops/feed.rss" not in before.resources

    at_release = pub.build(release)
    assert titles(feed_of(at_release)) == ["Embargoed", "Out now"]
    assert titles(category_feed(at_release, "Scoops")) == ["Embargoed"]
    assert at_release.next_release is None


def test_undated_articles_whose_files_share_a_future_mtime_are_all_published_at_once(make_publisher, articles_dir):
    # Files copied from a machine whose clock is ahead: first seen is `now` for all three.
    ahead = (FIXED_NOW + timedelta(days=1)).timestamp()
    for name in ("one", "two", "three"):
        os.utime(write(articles_dir, f"{name}.txt", f"News\nHeadline {name}\nBody.\n"), (ahead, ahead))
    snap = make_publisher(articles_dir).build(FIXED_NOW)
    assert sorted(titles(feed_of(snap))) == ["Headline one", "Headline three", "Headline two"]
    assert snap.next_release is None


def test_an_article_in_two_categories_is_in_both_category_feeds_and_once_in_the_site_feed(make_publisher, articles_dir):
    write(articles_dir, "both.md", markdown("Port deal", date="2026-02-02", categories=["Economy", "Politics"]))
    write(articles_dir, "other.md", markdown("Budget", date="2026-02-01", category="Economy"))
    snap = make_publisher(articles_dir).build(FIXED_NOW)
    assert titles(category_feed(snap, "Economy")) == ["Port deal", "Budget"]
    assert titles(category_feed(snap, "Politics")) == ["Port deal"]
    assert titles(feed_of(snap)) == ["Port deal", "Budget"]
    site_rss = feedparser.parse(snap.resources["feed.rss"].body)
    assert [e.title for e in site_rss.entries].count("Port deal") == 1


def test_two_articles_with_the_same_title_stay_two_items(make_publisher, articles_dir):
    write(articles_dir, "one.txt", "News\nSame headline\nFirst story.\n")
    write(articles_dir, "two.txt", "News\nSame headline\nSecond story.\n")
    snap = make_publisher(articles_dir).build(FIXED_NOW)
    assert titles(feed_of(snap)) == ["Same headline", "Same headline"]
    for fmt in ("rss", "atom"):
        entries = feedparser.parse(snap.resources[f"feed.{fmt}"].body).entries
        assert len({e.id for e in entries}) == 2


# Category slugs


def test_a_configured_category_slug_is_used_in_every_url(make_publisher, articles_dir):
    write(articles_dir, "a.txt", "سياسة\nعنوان الخبر\nنص الخبر.\n")
    snap = make_publisher(articles_dir, CATEGORY_SLUGS={"سياسة": "politics"}, SITE_URL="https://news.example").build(FIXED_NOW)
    assert {"category/politics/feed.rss", "category/politics/feed.atom", "category/politics/feed.json"} <= set(snap.resources)
    atom = feedparser.parse(snap.resources["category/politics/feed.atom"].body)
    links = {link.rel: link.href for link in atom.feed.links}
    assert links["self"] == "https://news.example/category/politics/feed.atom"
    assert links["alternate"] == "https://news.example/category/politics/"
    assert atom.feed.title.endswith("سياسة")


def test_a_configured_slug_is_kept_even_when_another_name_slugifies_to_it(make_publisher, articles_dir):
    write(articles_dir, "a.txt", "سياسة\nعنوان الخبر\nنص الخبر.\n")
    write(articles_dir, "b.txt", "Politics\nA headline\nA story.\n")
    snap = make_publisher(articles_dir, CATEGORY_SLUGS={"سياسة": "politics"}).build(FIXED_NOW)
    assert category_feed(snap, "سياسة").key == "politics"
    assert category_feed(snap, "Politics").key not in ("politics", "")


def test_arabic_category_names_give_arabic_urls(make_publisher, articles_dir, make_app):
    write(articles_dir, "a.txt", "اقتصاد\nارتفاع أسعار القمح\nنص الخبر.\n")
    snap = make_publisher(articles_dir).build(FIXED_NOW)
    assert category_feed(snap, "اقتصاد").key == "اقتصاد"
    assert "category/اقتصاد/feed.atom" in snap.resources
    atom = feedparser.parse(snap.resources["category/اقتصاد/feed.atom"].body)
    self_link = next(link.href for link in atom.feed.links if link.rel == "self")
    assert self_link.endswith("/category/%D8%A7%D9%82%D8%AA%D8%B5%D8%A7%D8%AF/feed.atom")  # a URI, percent-encoded

    response = make_app(articles_dir).test_client().get("/category/اقتصاد/feed.rss")
    assert response.status_code == 200
    assert "ارتفاع أسعار القمح" in response.get_data(as_text=True)


NASTY_NAMES = {  # name in the file → the display name the feed title keeps
    "slash": ("Local/Regional", "Local/Regional"),
    "dot-dot": ("../../etc", "../../etc"),
    "dots-between-words": ("v1 .. v2", "v1 .. v2"),
    "symbols-around-a-word": ("!!! News ???", "!!! News ???"),
    "controls": ("Breaking\u202e\u0007 news", "Breaking news"),
    "long-latin": ("Regional " * 30, " ".join(["Regional"] * 30)),
    "long-arabic": ("أخبار المحافظات الشمالية والجنوبية " * 8, " ".join(["أخبار المحافظات الشمالية والجنوبية"] * 8)),
    "mixed-scripts": ("Tech تقنية 2026", "Tech تقنية 2026"),
}


@pytest.mark.parametrize("name, display", NASTY_NAMES.values(), ids=NASTY_NAMES.keys())
def test_category_slugs_are_safe_path_segments_of_at_most_80_characters(make_publisher, articles_dir, name, display):
    write(articles_dir, "a.md", markdown("A headline", category=name))
    snap = make_publisher(articles_dir).build(FIXED_NOW)
    (feed,) = [f for f in snap.feeds if f.category]
    slug = feed.key
    assert slug and "/" not in slug and ".." not in slug
    assert not any(unicodedata.category(c)[0] in "CZ" for c in slug)  # no controls, no spaces
    assert len(slug) <= SLUG_MAX
    assert feed.title.endswith(" — " + display)  # the display name is kept whole
    assert f"category/{slug}/feed.rss" in snap.resources


def test_two_long_names_sharing_a_prefix_get_different_slugs_and_keep_their_titles(make_publisher, articles_dir):
    prefix = "Provincial council proceedings and municipal budget hearings " * 2
    write(articles_dir, "a.md", markdown("North headline", category=prefix + "north"))
    write(articles_dir, "b.md", markdown("South headline", category=prefix + "south"))
    snap = make_publisher(articles_dir).build(FIXED_NOW)
    feeds = [f for f in snap.feeds if f.category]
    assert len({f.key for f in feeds}) == 2
    assert all(len(f.key) <= SLUG_MAX for f in feeds)
    assert sorted(f.title.rsplit(" ", 1)[-1] for f in feeds) == ["north", "south"]


def test_category_names_that_differ_only_in_case_get_distinct_slugs(make_publisher, articles_dir):
    write(articles_dir, "a.txt", "Sport\nCup final\nA story.\n")
    write(articles_dir, "b.txt", "sport\nLeague round-up\nA story.\n")
    snap = make_publisher(articles_dir).build(FIXED_NOW)
    assert category_feed(snap, "sport").key == "sport"  # the name that is its own slug keeps it
    assert category_feed(snap, "Sport").key.startswith("sport-")
    assert titles(category_feed(snap, "Sport")) == ["Cup final"]
    assert titles(category_feed(snap, "sport")) == ["League round-up"]


def test_releasing_an_embargoed_article_never_moves_another_categorys_url(make_publisher, articles_dir):
    release = FIXED_NOW + timedelta(days=1)
    write(articles_dir, "live.md", markdown("Live", date="2026-01-01", category="Sport"))
    write(articles_dir, "later.md", markdown("Later", date=release.isoformat(), category="SPORT"))
    pub = make_publisher(articles_dir)
    before = category_feed(pub.build(FIXED_NOW), "Sport").key
    after = category_feed(pub.build(release), "Sport").key
    assert before == after


# Language and dates


def test_a_feed_is_in_the_language_most_of_its_items_are_in(make_publisher, articles_dir):
    write(articles_dir, "ar1.txt", "اقتصاد\nارتفاع أسعار القمح في الأسواق\nأظهرت بيانات أولية ارتفاع محصول القمح هذا الموسم.\n")
    write(articles_dir, "ar2.md", markdown("البنك المركزي يبقي الفائدة", category="اقتصاد", lang="ar"))
    write(articles_dir, "en.md", markdown("Central bank holds rates", category="اقتصاد", lang="en"))
    write(articles_dir, "en2.md", markdown("Fibre upgrade finished", category="Technology", lang="en"))
    snap = make_publisher(articles_dir, SITE_LANGUAGE="en").build(FIXED_NOW)
    assert category_feed(snap, "اقتصاد").language == "ar"
    assert category_feed(snap, "Technology").language == "en"
    assert feed_of(snap).language == "en"  # two and two: a tie goes to the site language


def test_a_feeds_updated_time_is_when_its_bytes_were_recorded_not_its_newest_items(make_publisher, articles_dir):
    write(articles_dir, "a.md", markdown("A", date="2026-03-01 10:00", updated="2026-04-01 10:00", category="News"))
    write(articles_dir, "b.md", markdown("B", date="2026-03-05 10:00", category="News"))
    snap = make_publisher(articles_dir).build(FIXED_NOW)
    feed = feed_of(snap)
    # First recorded now (bytes never served before: a second back); an article added later with an
    # old date still moves it.
    assert feed.updated == FIXED_NOW - timedelta(seconds=1)
    assert b"<updated>2026-11-29T11:59:59+00:00</updated>" in snap.resources["feed.atom"].body
    assert b"<lastBuildDate>Sun, 29 Nov 2026 11:59:59 +0000</lastBuildDate>" in snap.resources["feed.rss"].body
    assert all(snap.resources[f"feed.{fmt}"].last_modified == feed.updated for fmt in ("rss", "atom", "json"))
    assert b"<updated>2026-04-01T10:00:00+00:00</updated>" in snap.resources["feed.atom"].body  # the item's own


def test_rendering_at_a_later_time_with_the_same_state_gives_identical_bytes(make_publisher, articles_dir):
    write(articles_dir, "dated.md", markdown("Dated", date="2026-03-01 10:00", category="News"))
    write(articles_dir, "undated.txt", "News\nUndated\nIts date comes from the state store.\n")
    pub = make_publisher(articles_dir)
    first = pub.build(FIXED_NOW)
    later = pub.build(FIXED_NOW + timedelta(hours=5, seconds=17))
    assert set(first.resources) == set(later.resources)
    for path, rendered in first.resources.items():
        assert later.resources[path].body == rendered.body, path
        assert later.resources[path].etag == rendered.etag, path


# The listings kept up to date between refreshes are the listings built from scratch

from dataclasses import replace as _replace  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from feedsvc.building.feeds import ListingBuilder, build_listings  # noqa: E402
from feedsvc.model import Article, Site  # noqa: E402

SITE = Site(title="Example", url="https://news.example", description="News", author="Desk", language="en", max_age=60)
NAMES = ["سياسة", "اقتصاد", "Sport", "sport", "Tech"]
HOURS = st.integers(min_value=-6, max_value=6)  # around the moment of the build: some embargoed


def article(number: int, hours: int, names: tuple[str, ...], draft: bool, edit: int = 0) -> Article:
    published = FIXED_NOW + timedelta(hours=hours)
    return Article(id=f"n{number}", source=f"n{number}.txt", title=f"T{number}.{edit}", categories=names, body_html="",
                   body_text="", summary="", lang="en", content_hash=f"{number}.{edit}", published=published,
                   updated=published, draft=draft)


ARTICLE = st.tuples(st.integers(0, 15), HOURS, st.lists(st.sampled_from(NAMES), min_size=1, max_size=2, unique=True).map(tuple),
                    st.booleans())  # number, published relative to now, categories, draft
STEP = st.tuples(
    st.lists(ARTICLE, max_size=6),  # written or edited
    st.lists(st.integers(0, 15), max_size=3),  # deleted
    st.integers(0, 3),  # hours the clock moves on (embargoes end)
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=8))
def test_listings_updated_between_refreshes_equal_listings_built_from_scratch(steps):
    builder, folder, now, edits = ListingBuilder(), {}, FIXED_NOW, 0
    recorded: dict[str, str] = {}
    for written, deleted, hours in steps:
        for number, offset, names, draft in written:
            edits += 1
            folder[number] = article(number, offset, names, draft, edits)
        for number in deleted:
            folder.pop(number, None)
        now += timedelta(hours=hours)
        articles = list(folder.values())
        expected = build_listings(articles, SITE, {"Tech": "technology"}, now, recorded)
        got = builder.build(articles, SITE, {"Tech": "technology"}, now, recorded)
        assert got == expected
        for listing in expected:  # slugs once published stay with their category, as the state store does
            if listing.category:
                recorded.setdefault(listing.category.name, listing.category.slug)


def test_an_unchanged_listing_is_the_same_object_after_a_refresh():
    builder = ListingBuilder()
    articles = [article(1, -1, ("Sport",), False), article(2, -2, ("Tech",), False)]
    first = builder.build(articles, SITE, {}, FIXED_NOW)
    second = builder.build([articles[0], _replace(articles[1], title="edited")], SITE, {}, FIXED_NOW)
    assert [listing.key for listing in second] == ["", "sport", "tech"]
    assert second[1] is first[1] and second[0] is not first[0] and second[2] is not first[2]
    assert second[2].items[0].title == "edited"

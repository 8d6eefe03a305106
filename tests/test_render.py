"""A refresh that renders only what changed (feedsvc/building/render.py) gives the bytes a fresh build gives."""
from __future__ import annotations

from tests.conftest import FIXED_NOW, variant, write


def story(category: str, title: str, day: int) -> str:
    return f"---\ndate: 2026-11-{day:02d} 08:00\n---\n{category}\n{title}\nBody of {title}.\n"


def test_pages_feeds_and_category_counts_after_edits_are_those_of_a_fresh_build(make_publisher, articles_dir, deletions_at_once):
    for number in range(12):
        write(articles_dir, f"s{number:02d}.txt", story(["News", "Sport", "اقتصاد"][number % 3], f"Story {number}", 1 + number))
    pub = make_publisher(articles_dir, FEED_MAX_ITEMS=4)
    assert pub.refresh()
    edits = [
        ("s03.txt", story("Sport", "Story 3, moved to Sport", 4)),  # a category loses one, another gains one
        ("s11.txt", story("اقتصاد", "Story 11, corrected", 12)),  # same category, new text
        ("new.txt", story("Weather", "A new category", 20)),
        ("s05.txt", None),  # deleted
        ("s06.txt", "---\ndate: 2026-11-07 08:00\ndraft: true\n---\nNews\nWithdrawn\nBody.\n"),  # withdrawn
    ]
    for name, text in edits:
        if text is None:
            (articles_dir / name).unlink()
        else:
            write(articles_dir, name, text)
        assert pub.refresh([str(articles_dir / name)])
        fresh = make_publisher(articles_dir, FEED_MAX_ITEMS=4).build(FIXED_NOW)
        assert sorted(pub.snapshot.resources) == sorted(fresh.resources), name
        for path in pub.snapshot.resources:
            assert pub.snapshot.resources[path].body == fresh.resources[path].body, (name, path)
    home = pub.snapshot.resources[""].body.decode()
    assert "Weather" in home and "Withdrawn" not in home


def test_archive_pages_kept_for_requests_stay_within_their_byte_budget(make_publisher, articles_dir, monkeypatch):
    import feedsvc.formats.ondemand as ondemand  # the feed pages rendered on request, and their budget

    for number in range(30):
        write(articles_dir, f"s{number:02d}.txt", story("News", f"Story {number}", 1 + number % 28))
    pub = make_publisher(articles_dir, FEED_MAX_ITEMS=2)
    assert pub.refresh()
    one_page = ondemand._size(variant(pub, "", "atom", page=2))
    monkeypatch.setattr(ondemand, "VARIANT_BYTES", 3 * one_page)
    pages = [variant(pub, "", "atom", page=page) for page in range(2, 16)]
    renderer = pub.renderer
    assert renderer._variants_bytes == sum(ondemand._size(found) for found in renderer._variants.values())
    assert renderer._variants_bytes <= 3 * one_page * 1.5 and len(renderer._variants) < len(pages)
    assert variant(pub, "", "atom", page=15) is pages[-1]  # the most recent are kept


def test_a_refresh_reports_what_it_rendered_and_the_renderer_keeps_no_side_channel(make_publisher, articles_dir):
    write(articles_dir, "a.txt", story("News", "One", 1))
    pub = make_publisher(articles_dir)
    refreshes = []
    pub.observers.append(refreshes.append)
    assert pub.refresh()
    first = refreshes[-1]
    feeds = [res for path, res in pub.snapshot.resources.items() if "feed." in path and not path.endswith(".xsl")]
    assert first.made >= len(feeds) == 6 and sorted(first.fresh, key=id) == sorted(feeds, key=id)
    assert pub.refresh() and (refreshes[-1].made, refreshes[-1].fresh) == (0, ())  # nothing changed: nothing made
    assert not hasattr(pub.renderer, "rendered_last") and not hasattr(pub.renderer, "fresh")


def test_the_builder_keeps_item_fragments_of_its_first_pages_only(make_publisher, articles_dir):
    for number in range(30):
        write(articles_dir, f"s{number:02d}.txt", story(["News", "Sport"][number % 2], f"Story {number}", 1 + number % 28))
    pub = make_publisher(articles_dir, FEED_MAX_ITEMS=2)
    assert pub.refresh()
    first = {a.id for feed in pub.snapshot.feeds for a in feed.items}
    assert set(pub.renderer.fragments._kept) == first
    for page in range(2, 10):  # archive pages asked of the builder itself: their items made and kept for now
        variant(pub, "", "rss", page=page)
    assert set(pub.renderer.fragments._kept) > first
    write(articles_dir, "new.txt", story("News", "A new one", 28))
    assert pub.refresh([str(articles_dir / "new.txt")])
    assert set(pub.renderer.fragments._kept) == {a.id for feed in pub.snapshot.feeds for a in feed.items}

"""feedsvc/urls.py builds every URL and path the site publishes; no other module or template formats one by hand."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from urllib.parse import quote

from hypothesis import given, settings, strategies as st

from feedsvc import urls

from feedsvc.formats import FORMATS
from feedsvc.model import Site
from feedsvc.urls import (ARTICLE_PATH, EXPORT_PREVIEW, OPML, article_id, article_path, category_path, category_url,
                          export_file, feed_path, feed_pattern, home_url, preview_key, stylesheet_href, url)

PACKAGE = Path(__file__).resolve().parents[1] / "feedsvc"
# Pieces of the site's paths: only urls.py may hold them (prose in a docstring or an SQL comment may name them).
PIECES = ("articles/", "category/", OPML, "#preview", "partners/", "feed.xsl", "style.css", "favicon.ico")
SITE = Site(url="https://news.example/sub", title="News", description="d", author="a", language="en", max_age=60)


def _strings(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_no_module_but_urls_formats_a_site_path():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "urls.py":
            continue
        for lineno, value in _strings(path):
            for line in value.splitlines() or [value]:
                code = line.split("--")[0] if path.name == "store.py" else line  # the schema's SQL comments
                found += [f"{path.relative_to(PACKAGE)}:{lineno}: {piece!r}" for piece in PIECES if piece in code]
    assert not found


def test_no_module_but_urls_builds_a_feeds_query_or_names_a_sitemap_by_hand():
    # A query is built where a string ends with its name ("?page=" then the number); a message that shows the form
    # ("expected ?page=N") is prose.
    found = [f"{path.relative_to(PACKAGE)}:{lineno}: {value!r}" for path in sorted(PACKAGE.rglob("*.py")) if path.name != "urls.py"
             for lineno, value in _strings(path) if value.endswith(("?page=", "&page=", "?since=")) or value == "sitemap"]
    assert not found


def test_the_queries_of_a_feeds_pages():
    from datetime import datetime, timezone

    since = datetime(2026, 11, 29, 8, 0, tzinfo=timezone.utc)
    assert (urls.page_query(1), urls.page_query(3)) == ("", "?page=3")
    assert (urls.since_query(since), urls.since_query(since, 2)) == ("?since=2026-11-29T08:00:00Z", "?since=2026-11-29T08:00:00Z&page=2")
    assert urls.archive_path("world", "atom", 4) == "category/world/feed.atom?page=4"
    assert urls.archive_feed(urls.archive_path("", "rss", 2)) == "feed.rss" and urls.archive_feed("feed.rss") is None
    assert all(map(urls.is_sitemap, ("sitemap.xml", urls.sitemap_path(2), urls.NEWS_SITEMAP)))
    assert not any(map(urls.is_sitemap, (urls.ROBOTS, "feed.rss", urls.category_path("sitemap"))))


def test_no_template_writes_a_site_url_by_hand():
    for template in (PACKAGE / "templates").glob("*.html"):
        assert "site.url }}/" not in template.read_text(encoding="utf-8"), template.name


@pytest.mark.parametrize("fmt", FORMATS)
def test_feed_paths_and_their_pattern_agree(fmt):
    pattern = feed_pattern(f.suffix for f in FORMATS.values())
    site, category = pattern.fullmatch(feed_path("", fmt)), pattern.fullmatch(feed_path("world", fmt))
    assert site["slug"] is None and category["slug"] == "world"
    assert site["suffix"] == category["suffix"] == FORMATS[fmt].suffix
    assert feed_path("world", fmt).startswith(category_path("world"))
    assert stylesheet_href(feed_path("world", fmt)) == "../../feed.xsl" and stylesheet_href(feed_path("", fmt)) == "feed.xsl"


def test_urls_are_the_site_url_and_the_path_percent_encoded():
    assert home_url(SITE) == "https://news.example/sub/"
    assert url(SITE.url, OPML) == "https://news.example/sub/feeds.opml"
    assert url(SITE.url, article_path("2026/خبر one")) == "https://news.example/sub/articles/2026/%D8%AE%D8%A8%D8%B1%20one"
    assert category_url(SITE, "a/b") == "https://news.example/sub/category/a%2Fb/"  # a slug is one segment


def test_article_pages_and_previews_round_trip():
    assert article_id(article_path("2026-story")) == "2026-story" and ARTICLE_PATH.fullmatch(article_path("x"))
    # A file's path is its ID by default: an article in a sub-folder has a "/" in it (its page made on demand too).
    assert article_id(article_path("a/b")) == "a/b" and article_id("feed.rss") is None and article_id("articles/") is None
    assert preview_key("feed.rss") != "feed.rss" and preview_key("feed.rss").endswith("feed.rss")


@pytest.mark.parametrize("path, media, name", [
    ("", "text/html", "index.html"),
    ("category/world/", "text/html", "category/world/index.html"),
    ("articles/story", "text/html", "articles/story.html"),
    ("feed.rss?page=2", "application/rss+xml", "feed.rss.page-2"),
    ("feed.rss" + EXPORT_PREVIEW, "text/html", "feed.rss.html"),
    ("articles/x" + EXPORT_PREVIEW, "text/html", "articles/x#preview.html"),
    ("feed.rss?since=x", "application/rss+xml", None),
    ("../etc/passwd", "text/plain", None),
    # A slug is a folder: as long as a file name may be (79 Thai letters, 237 bytes), its files' names are short.
    ("category/" + "ก" * 79 + "/feed.rss?page=2", "application/rss+xml", "category/" + "ก" * 79 + "/feed.rss.page-2"),
    ("tag/" + "ก" * 79 + "/", "text/html", "tag/" + "ก" * 79 + "/index.html"),
    ("tag/" + "ก" * 86 + "/", "text/html", None),
    ("articles/" + "ก" * 79, "text/html", None),  # a file's name leaves room for what it gains
])
def test_the_exports_file_names(path, media, name):
    assert export_file(path, media) == name


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
       | st.text(alphabet="abcXYZ019_.~-/ %?#&+:@", max_size=40))
def test_a_path_that_needs_no_quoting_is_joined_as_it_is_and_any_other_is_quoted(path):
    """url()'s fast path (a path of unreserved characters and /) gives what quote() would give."""
    assert urls.url("https://news.example", path) == "https://news.example/" + quote(path, safe="/")

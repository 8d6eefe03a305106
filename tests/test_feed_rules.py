"""The tests' own feed checks catch what readers trip over (so a passing feed test means something)."""
from __future__ import annotations

import json

from tests.feed_rules import SCHEMA_PATH, feed_problems, json_feed_problems, reader_problems

GOOD_JSON = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "News",
    "home_page_url": "https://news.example/",
    "feed_url": "https://news.example/feed.json",
    "language": "ar",
    "items": [
        {"id": "urn:uuid:1", "url": "https://news.example/articles/a", "title": "A", "content_html": "<p>A</p>",
         "date_published": "2026-11-20T10:30:00Z", "date_modified": "2026-11-21T09:00:00+03:00"},
    ],
}

GOOD_RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>News</title><link>https://news.example/</link><description>d</description>
<language>en</language>
<item><title>A</title><link>https://news.example/articles/a</link><guid isPermaLink="false">urn:uuid:1</guid>
<pubDate>Fri, 20 Nov 2026 10:30:00 +0000</pubDate></item></channel></rss>"""


def dumped(doc: dict) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def test_the_json_feed_schema_is_kept_in_the_repository_with_its_licence():
    assert SCHEMA_PATH.is_file()
    assert "ISC License" in SCHEMA_PATH.with_suffix(".LICENSE").read_text(encoding="utf-8")


def test_a_good_json_feed_and_a_good_rss_feed_have_no_problems():
    assert json_feed_problems(dumped(GOOD_JSON), feed_url="https://news.example/feed.json") == []
    assert reader_problems(GOOD_RSS) == []


def test_json_feed_rules_the_schema_cannot_express_are_caught():
    item = GOOD_JSON["items"][0]
    doc = {**GOOD_JSON, "items": [
        {**item, "date_published": "2026-11-20 10:30"},                  # not RFC 3339
        {**item, "id": "urn:uuid:1"},                                     # a repeated id
        {**item, "id": 7, "summary": "<p>html in plain text</p>"},        # a number id; HTML outside content_html
        {**item, "id": "urn:uuid:4", "title": "Ø§Ù„Ø®Ø¨Ø±", "url": "/articles/d"},  # mojibake; a relative URL
    ]}
    problems = "\n".join(json_feed_problems(dumped(doc)))
    for expected in ("items[0]: date_published", "items[1]: id 'urn:uuid:1' repeats items[0]", "items[2]: id 7",
                     "items[2]: summary looks like HTML", "items[3].title: mojibake", "items[3]: url missing or not absolute"):
        assert expected in problems


def test_a_json_feed_that_only_the_schema_rejects_is_caught():
    doc = {**GOOD_JSON, "items": [{"id": "urn:uuid:1", "url": "https://news.example/a", "date_published": "2026-11-20T10:30:00Z"}]}
    assert any(p.startswith("schema: items/0") for p in json_feed_problems(dumped(doc)))  # no content at all


def test_a_json_feed_with_a_bom_or_a_duplicate_key_is_caught():
    assert json_feed_problems(b"\xef\xbb\xbf" + dumped(GOOD_JSON))[0].startswith("starts with a byte order mark")
    twice = dumped(GOOD_JSON).replace(b'"title": "News"', b'"title": "News", "title": "Other"')
    assert any("duplicate keys" in p for p in json_feed_problems(twice))


def test_a_json_feed_served_at_another_url_than_its_feed_url_is_caught():
    assert json_feed_problems(dumped(GOOD_JSON), feed_url="http://127.0.0.1:9101/feed.json") != []


def test_rss_a_reader_cannot_use_is_caught():
    broken = (GOOD_RSS.replace(b"<link>https://news.example/articles/a</link>", b"<link>/articles/a</link>")
              .replace(b"Fri, 20 Nov", b"Mon, 20 Nov")  # the wrong weekday
              .replace(b"<language>en</language>", b""))
    problems = "\n".join(reader_problems(broken))
    for expected in ("link is not an absolute URL", "is not an RFC 822 date", "declares no language"):
        assert expected in problems


def test_xml_that_is_not_well_formed_is_caught():
    assert reader_problems(GOOD_RSS.replace(b"</title>", b"", 1))[0].startswith("not well-formed")


def test_the_checks_are_chosen_by_the_paths_extension():
    assert feed_problems("/feed.json?page=2", dumped(GOOD_JSON)) == []
    assert feed_problems("/feed.rss", dumped(GOOD_JSON)) != []

"""Partner feeds: full text of licensed categories for each key; 401, 403 and 429 otherwise."""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from feedsvc.config import ConfigError
from feedsvc.partners import authenticate, load_partners
from tests.conftest import write

AGENCY_KEY = "agency-key-0123456789abcdef"
PORTAL_KEY = "portal-key-0123456789abcdef"
POLITICS = quote("سياسة")


@pytest.fixture
def partner_app(make_app, articles_dir, tmp_path, monkeypatch):
    write(articles_dir, "p.md", "---\ntitle: Politics story\ncategory: سياسة\nsummary: P summary.\ndate: 2026-11-01T00:00:00Z\n---\nPolitics full body.\n")
    write(articles_dir, "e.md", "---\ntitle: Economy story\ncategory: Economy\nsummary: E summary.\ndate: 2026-11-02T00:00:00Z\n---\nEconomy full body.\n")
    write(articles_dir, "t.md", "---\ntitle: Tech story\ncategory: Tech\nsummary: T summary.\ndate: 2026-11-03T00:00:00Z\n---\nTech full body.\n")
    monkeypatch.setenv("AGENCY_KEY", AGENCY_KEY)
    keyfile = tmp_path / "portal.key"
    keyfile.write_text(PORTAL_KEY + "\n", encoding="utf-8")
    partners = [
        {"name": "Agency", "key_env": "AGENCY_KEY", "categories": ["سياسة", "Economy"], "full_text": True},
        {"name": "Portal", "key_file": str(keyfile), "categories": "all", "full_text": False},
    ]
    return make_app(articles_dir, PARTNERS=partners, PUBLIC_CONTENT="summary", PARTNER_RATE_LIMIT=30)


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def titles(res) -> list[str]:
    return [i["title"] for i in json.loads(res.data)["items"]]


def test_a_partner_sees_exactly_its_licensed_categories_in_full_text(partner_app):
    client = partner_app.test_client()
    res = client.get("/partners/feed.json", headers=bearer(AGENCY_KEY))
    assert res.status_code == 200
    assert titles(res) == ["Economy story", "Politics story"]
    body = res.get_data(as_text=True)
    assert "Politics full body." in body and "Economy full body." in body and "Tech" not in body
    assert "private" in res.headers["Cache-Control"] and "Authorization" in res.headers["Vary"]


def test_a_partner_licensed_for_a_category_written_with_harakat_reads_it(make_app, articles_dir, monkeypatch):
    """Articles name a section one way (config.section_name: no harakat or tatweel); a partner's licence written with
    them (الرِّياضة) licensed nothing once they were taken off the articles' names."""
    write(articles_dir, "s.md", "---\ntitle: Match\ncategory: الرياضة\ndate: 2026-11-01T00:00:00Z\n---\nGoal.\n")
    write(articles_dir, "o.md", "---\ntitle: Other\ncategory: Economy\ndate: 2026-11-02T00:00:00Z\n---\nRates.\n")
    monkeypatch.setenv("AGENCY_KEY", AGENCY_KEY)
    partners = [{"name": "Agency", "key_env": "AGENCY_KEY", "categories": ["الرِّياضة"], "full_text": True}]
    client = make_app(articles_dir, PARTNERS=partners, CATEGORY_SLUGS={"الريـاضة": "sport"}).test_client()
    assert titles(client.get("/partners/feed.json", headers=bearer(AGENCY_KEY))) == ["Match"]
    assert client.get("/category/sport/feed.json").status_code == 200


def test_the_public_feed_carries_summaries_only_in_summary_mode(partner_app):
    body = partner_app.test_client().get("/feed.json").get_data(as_text=True)
    assert "P summary." in body and "Politics full body." not in body


def test_a_key_in_the_query_works_for_readers_that_cannot_set_headers(partner_app):
    res = partner_app.test_client().get(f"/partners/category/{POLITICS}/feed.atom?key={AGENCY_KEY}")
    assert res.status_code == 200 and "Politics full body." in res.get_data(as_text=True)


def test_a_partner_feeds_links_never_carry_its_key(make_app, articles_dir, monkeypatch):
    # A feed passed on must not pass the key on: a partner that sends ?key= adds it to each link it follows (README).
    for i in range(5):
        write(articles_dir, f"e{i}.md", f"---\ntitle: Economy {i}\ncategory: Economy\ndate: 2026-11-1{i}T00:00:00Z\n---\nBody {i}.\n")
    monkeypatch.setenv("AGENCY_KEY", AGENCY_KEY)
    app = make_app(articles_dir, PARTNERS=[{"name": "Agency", "key_env": "AGENCY_KEY", "categories": "all"}], FEED_MAX_ITEMS=2)
    client = app.test_client()
    for path in ("/partners/feed.atom", "/partners/feed.rss", "/partners/feed.json", "/partners/feed.atom?page=2"):
        res = client.get(path + ("&" if "?" in path else "?") + f"key={AGENCY_KEY}")
        body = res.get_data(as_text=True)
        assert res.status_code == 200 and "page=" in body, path  # paged: next/last links are there
        assert AGENCY_KEY not in body and "key=" not in body and AGENCY_KEY not in res.headers.get("Link", ""), path


def test_a_partner_without_full_text_gets_summaries(partner_app):
    res = partner_app.test_client().get("/partners/feed.rss", headers=bearer(PORTAL_KEY))
    body = res.get_data(as_text=True)
    assert res.status_code == 200 and "Tech story" in body and "full body" not in body


@pytest.mark.parametrize("path", ["/partners/feed.rss", f"/partners/category/{POLITICS}/feed.json",
                                  "/partners/category/nope/feed.json", "/partners/secret.txt"])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-key-0123456789abcdef"}, {"Authorization": "Basic eDp5"}])
def test_a_missing_or_wrong_key_is_401_and_reveals_nothing(partner_app, path, headers):
    res = partner_app.test_client().get(path, headers=headers)
    assert res.status_code == 401
    assert res.headers["WWW-Authenticate"].startswith("Bearer")
    assert res.data == partner_app.test_client().get("/partners/feed.rss").data  # one answer for every path


def test_a_licensed_partner_asking_for_an_unlicensed_category_gets_403(partner_app):
    res = partner_app.test_client().get("/partners/category/tech/feed.json", headers=bearer(AGENCY_KEY))
    assert res.status_code == 403 and b"Tech" in res.data


def test_an_unknown_category_for_a_partner_is_404(partner_app):
    assert partner_app.test_client().get("/partners/category/nope/feed.json", headers=bearer(AGENCY_KEY)).status_code == 404


def test_partner_feeds_page_and_take_since(partner_app):
    client = partner_app.test_client()
    res = client.get("/partners/feed.json?since=2026-11-01T12:00:00Z", headers=bearer(AGENCY_KEY))
    assert titles(res) == ["Economy story"]
    assert client.get("/partners/feed.json?page=2", headers=bearer(AGENCY_KEY)).status_code == 404


def test_a_partner_over_its_budget_gets_429_with_retry_after(partner_app):
    client = partner_app.test_client()
    statuses = [client.get("/partners/feed.json", headers=bearer(AGENCY_KEY)).status_code for _ in range(31)]
    assert statuses[:30] == [200] * 30 and statuses[30] == 429
    res = client.get("/partners/feed.json", headers=bearer(AGENCY_KEY))
    assert res.status_code == 429 and int(res.headers["Retry-After"]) >= 1
    # Another partner has its own budget.
    assert client.get("/partners/feed.json", headers=bearer(PORTAL_KEY)).status_code == 200


def test_keys_never_appear_in_logs_or_errors(partner_app, caplog):
    client = partner_app.test_client()
    with caplog.at_level("DEBUG"):
        client.get("/partners/feed.json", headers=bearer(AGENCY_KEY))
        client.get(f"/partners/feed.json?key={PORTAL_KEY}")
        client.get("/partners/feed.json", headers=bearer("wrong-key-0123456789abcdef"))
    assert AGENCY_KEY not in caplog.text and PORTAL_KEY not in caplog.text


def test_keys_come_from_the_environment_or_a_file_and_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="AGENCY_KEY") as err:
        load_partners([{"name": "A", "key_env": "AGENCY_KEY"}], environ={"AGENCY_KEY": "s3cr3t"})
    assert "s3cr3t" not in str(err.value)
    with pytest.raises(ConfigError, match="cannot be read"):
        load_partners([{"name": "A", "key_file": str(tmp_path / "missing")}], environ={})
    # A variable not set at all was "empty or shorter than 16 characters"
    with pytest.raises(ConfigError, match="environment variable AGENCY_KEY is not set; set it to a long random key"):
        load_partners([{"name": "A", "key_env": "AGENCY_KEY"}], environ={})
    with pytest.raises(ConfigError, match="AGENCY_KEY is empty or shorter than"):
        load_partners([{"name": "A", "key_env": "AGENCY_KEY"}], environ={"AGENCY_KEY": ""})
    with pytest.raises(ConfigError, match="same key"):
        load_partners([{"name": "A", "key_env": "K"}, {"name": "B", "key_env": "K"}], environ={"K": AGENCY_KEY})


def test_a_key_written_into_the_settings_is_refused(tmp_path):
    from feedsvc.config import load_settings

    with pytest.raises(ConfigError, match="keys never go in settings"):
        load_settings({"PARTNERS": [{"name": "A", "key": AGENCY_KEY}]}, environ={}, toml_path=tmp_path / "none.toml")


def test_authentication_compares_against_every_partner(monkeypatch):
    partners = load_partners([{"name": "A", "key_env": "A"}, {"name": "B", "key_env": "B"}],
                             environ={"A": AGENCY_KEY, "B": PORTAL_KEY})
    calls = []
    import hmac

    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    assert authenticate(partners, AGENCY_KEY).name == "A"
    assert len(calls) == 2  # no early exit on the first match
    assert authenticate(partners, None) is None and authenticate(partners, "nope") is None


@pytest.mark.e2e
def test_the_server_access_log_never_records_a_key(tmp_path):
    from tests.http_helpers import Server, fetch

    folder = tmp_path / "articles"
    write(folder, "p.txt", "سياسة\nعنوان\nنص.\n")
    partners = json.dumps([{"name": "Agency", "key_env": "AGENCY_KEY", "categories": "all"}])
    server = Server(folder, tmp_path / "state.sqlite3", env={"FEEDSVC_PARTNERS": partners, "AGENCY_KEY": AGENCY_KEY})
    try:
        assert fetch(server.base, f"/partners/feed.rss?key={AGENCY_KEY}").status == 200
        assert fetch(server.base, "/partners/feed.rss", headers=bearer(AGENCY_KEY)).status == 200
        assert fetch(server.base, "/partners/feed.rss?key=wrong-key-0123456789").status == 401
    finally:
        server.stop()
    log = server.output()
    assert "/partners/feed.rss" in log and AGENCY_KEY not in log and "wrong-key" not in log


def test_guessing_keys_costs_the_addresss_public_budget(make_app, articles_dir, monkeypatch):
    write(articles_dir, "p.txt", "سياسة\nعنوان\nنص.\n")
    monkeypatch.setenv("AGENCY_KEY", AGENCY_KEY)
    app = make_app(articles_dir, PARTNERS=[{"name": "Agency", "key_env": "AGENCY_KEY"}], RATE_LIMIT=5, RATE_LIMIT_EXEMPT=[])
    client = app.test_client()
    statuses = [client.get("/partners/feed.rss", headers=bearer(f"guess-{i:020d}")).status_code for i in range(6)]
    assert statuses == [401] * 5 + [429]


def test_a_partners_archive_pages_keep_their_bytes_and_date_as_new_articles_arrive(make_app, articles_dir, tmp_path, monkeypatch):
    """A partner's view that holds the whole listing (a category's; the site-wide one for a partner licensed for all)
    is paged, frozen and dated as the public one: a new article leaves its archive pages as they were, as the README's
    Paging says of every archive page. (They took the listing's date, so every page got new bytes with each article.)"""
    for day in range(1, 8):
        write(articles_dir, f"e{day}.md", f"---\ntitle: Economy {day}\ncategory: Economy\ndate: 2026-11-0{day}T00:00:00Z\n---\nBody {day}.\n")
    monkeypatch.setenv("AGENCY_KEY", AGENCY_KEY)
    monkeypatch.setenv("PORTAL_KEY", PORTAL_KEY)
    app = make_app(articles_dir, FEED_MAX_ITEMS=2, PARTNERS=[
        {"name": "Agency", "key_env": "AGENCY_KEY", "categories": ["Economy"], "full_text": True},
        {"name": "Portal", "key_env": "PORTAL_KEY", "categories": "all", "full_text": False}])
    client = app.test_client()
    pages = [(AGENCY_KEY, f"/partners/category/economy/feed{suffix}?page=2") for suffix in (".rss", ".atom", ".json")]
    pages += [(PORTAL_KEY, "/partners/feed.atom?page=3"), (None, "/category/economy/feed.atom?page=2")]

    def fetched():
        found = {}
        for key, path in pages:
            res = client.get(path, headers=bearer(key) if key else {})
            assert res.status_code == 200, path
            found[path] = (res.get_data(), res.headers["ETag"], res.headers["Last-Modified"])
        return found

    before = fetched()
    write(articles_dir, "e8.md", "---\ntitle: Economy 8\ncategory: Economy\ndate: 2026-11-08T00:00:00Z\n---\nBody 8.\n")
    assert app.extensions["feedsvc"].refresh()
    assert b"Economy 8" in client.get("/partners/category/economy/feed.rss", headers=bearer(AGENCY_KEY)).get_data()
    assert fetched() == before


def test_a_browsers_preflight_for_a_partner_feed_grants_the_authorization_header(partner_app):
    """A partner's script on another origin sends its key as `Authorization: Bearer`, which a preflight must grant."""
    asked = {"Origin": "https://partner.example", "Access-Control-Request-Method": "GET",
             "Access-Control-Request-Headers": "authorization, if-none-match"}
    res = partner_app.test_client().options(f"/partners/category/{POLITICS}/feed.atom", headers=asked)
    assert res.status_code == 200 and res.headers["Access-Control-Allow-Origin"] == "*"
    assert {h.strip().lower() for h in res.headers["Access-Control-Allow-Headers"].split(",")} >= {"authorization", "if-none-match"}
    assert "Authorization" not in partner_app.test_client().options("/feed.atom", headers=asked).headers.get(
        "Access-Control-Allow-Headers", "")  # public feeds take no key


def test_a_partners_view_of_some_categories_has_no_archive_page_cached_for_a_day(make_app, articles_dir, monkeypatch):
    """Cut by count from its oldest, one item deleted moves every newer page: none of them may be cached for
    ARCHIVE_MAX_AGE (a partner walking 1, 4, 3, 2 from cache missed one story and kept a deleted one)."""
    for i in range(8):
        write(articles_dir, f"e{i}.md", f"---\ntitle: Economy {i}\ncategory: Economy\ndate: 2026-08-0{i + 1}T00:00:00Z\n---\nBody {i}.\n")
        write(articles_dir, f"t{i}.md", f"---\ntitle: Tech {i}\ncategory: Tech\ndate: 2026-08-0{i + 1}T01:00:00Z\n---\nBody {i}.\n")
    monkeypatch.setenv("AGENCY_KEY", AGENCY_KEY)
    app = make_app(articles_dir, FEED_MAX_ITEMS=3, ARCHIVE_MAX_AGE=86400,
                   PARTNERS=[{"name": "Agency", "key_env": "AGENCY_KEY", "categories": ["Economy"], "full_text": True}])
    client = app.test_client()
    public = client.get("/feed.json?page=2")
    assert "max-age=86400" in public.headers["Cache-Control"]  # the public listing's frozen pages still are archives
    for page in (2, 3):
        res = client.get(f"/partners/feed.json?page={page}", headers=bearer(AGENCY_KEY))
        assert res.status_code == 200 and "max-age=86400" not in res.headers["Cache-Control"], page
        assert "archive" not in json.loads(res.data).get("_feedsvc", {})


def test_a_partners_atom_feed_is_a_feed_of_its_own_not_the_public_one(partner_app):
    """The partner's view had the public feed's atom:id: an aggregator that knows feeds by their id merged the two."""
    import feedparser

    client = partner_app.test_client()
    public = feedparser.parse(client.get("/feed.atom").data).feed.id
    theirs = feedparser.parse(client.get("/partners/feed.atom", headers=bearer(AGENCY_KEY)).data).feed.id
    again = feedparser.parse(client.get("/partners/feed.atom?page=1", headers=bearer(AGENCY_KEY), follow_redirects=True).data).feed.id
    assert public.startswith("urn:uuid:") and theirs.startswith("urn:uuid:") and public != theirs == again
    portal = feedparser.parse(client.get("/partners/feed.atom", headers=bearer(PORTAL_KEY)).data).feed.id
    assert portal not in (public, theirs)  # each partner's view is its own feed
    from feedsvc.model import stable_id
    search = feedparser.parse(client.get("/search/feed.atom?q=story").data).feed.id
    assert search == stable_id("search:story")  # a public search feed's id as it always was


def test_a_category_the_settings_name_that_no_article_has_is_said_once(make_app, articles_dir, monkeypatch, caplog):
    """A partner licensed for "Technolgy" got an empty feed and a 403, a CATEGORY_SLUGS key mapped nothing: unsaid."""
    write(articles_dir, "t.md", "---\ntitle: Tech story\ncategory: Technology\ndate: 2026-11-03T00:00:00Z\n---\nBody.\n")
    monkeypatch.setenv("AGENCY_KEY", AGENCY_KEY)
    with caplog.at_level("WARNING"):
        app = make_app(articles_dir, CATEGORY_SLUGS={"Technolgy": "tech"},
                       PARTNERS=[{"name": "Agency", "key_env": "AGENCY_KEY", "categories": ["Technolgy", "Technology"]}])
        write(articles_dir, "u.md", "---\ntitle: Other\ncategory: Sport\ndate: 2026-11-04T00:00:00Z\n---\nBody.\n")
        app.extensions["feedsvc"].refresh()
    said = [r.getMessage() for r in caplog.records if "which no published article has" in r.getMessage()]
    assert said == ["setting CATEGORY_SLUGS names the category 'Technolgy', which no published article has (yet): check its "
                    "spelling against the articles' categories (the site's OPML lists them)"], said

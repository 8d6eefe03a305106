"""Request budgets: token buckets per client, 304s cheaper, 429 with Retry-After past the budget."""
from __future__ import annotations

from feedsvc.serving.ratelimit import FULL_COST, NOT_MODIFIED_COST, RateLimiter
from tests.conftest import write


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_client_may_burst_its_budget_then_waits_for_the_refill():
    clock = Clock()
    limiter = RateLimiter(60, clock=clock)
    assert all(limiter.charge("a", FULL_COST) == 0 for _ in range(60))
    assert limiter.charge("a", FULL_COST) == 1
    clock.now += 1.0  # one token a second at 60 a minute
    assert limiter.charge("a", FULL_COST) == 0
    assert limiter.charge("b", FULL_COST) == 0  # each client has its own bucket


def test_conditional_requests_cost_a_fifth():
    limiter = RateLimiter(10, clock=Clock())
    assert sum(limiter.charge("a", NOT_MODIFIED_COST) == 0 for _ in range(60)) == 50


def test_no_limit_when_the_budget_is_zero():
    limiter = RateLimiter(0, clock=Clock())
    assert all(limiter.charge("a", FULL_COST) == 0 for _ in range(1000))


def test_idle_clients_are_forgotten_so_memory_stays_bounded():
    clock = Clock()
    limiter = RateLimiter(60, clock=clock, max_clients=10)
    for i in range(10):
        limiter.charge(f"c{i}", 61)
    clock.now += 120
    limiter.charge("late", 61)
    assert len(limiter._buckets) <= 2


def test_public_feeds_answer_429_with_retry_after_past_the_budget(make_app, articles_dir):
    write(articles_dir, "a.txt", "News\nTitle\nBody.\n")
    client = make_app(articles_dir, RATE_LIMIT=5, RATE_LIMIT_EXEMPT=[]).test_client()
    statuses = [client.get("/feed.rss").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    res = client.get("/feed.rss")
    assert res.status_code == 429 and int(res.headers["Retry-After"]) >= 1
    assert client.get("/").status_code == 200  # pages are not feeds: no budget


def test_polite_conditional_polling_goes_five_times_further(make_app, articles_dir):
    write(articles_dir, "a.txt", "News\nTitle\nBody.\n")
    client = make_app(articles_dir, RATE_LIMIT=5, RATE_LIMIT_EXEMPT=[]).test_client()
    etag = client.get("/feed.atom").headers["ETag"]
    statuses = [client.get("/feed.atom", headers={"If-None-Match": etag}).status_code for _ in range(20)]
    assert statuses == [304] * 20


def test_a_head_costs_what_a_304_costs(make_app, articles_dir):
    """A HEAD sends no body: with RATE_LIMIT=10, 13 of them were 10 200s then 429s, charged as full GETs."""
    write(articles_dir, "a.txt", "News\nTitle\nBody.\n")
    client = make_app(articles_dir, RATE_LIMIT=10, RATE_LIMIT_EXEMPT=[]).test_client()
    assert [client.head("/feed.rss").status_code for _ in range(45)] == [200] * 45  # a fifth each: 9 of 10
    assert [client.head("/feed.rss").status_code for _ in range(10)][-1] == 429  # the budget still ends
    assert b"HEAD cost a fifth" in client.get("/feed.rss").data
    assert [client.get("/feed.atom").status_code for _ in range(2)] == [429] * 2  # the budget is the GETs' too


def test_exempt_networks_are_never_charged_and_nothing_else_is():
    limiter = RateLimiter(1, clock=Clock(), exempt=["127.0.0.0/8", "::1", "10.1.0.0/16"])
    for client in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1", "10.1.200.3"):
        assert all(limiter.charge(client, FULL_COST) == 0 for _ in range(50)), client
        limiter.debit(client, 100)  # no debt either
        assert limiter.charge(client, FULL_COST) == 0, client
    for client in ("203.0.113.5", "10.2.0.1", "::2", "partner:127.0.0.1", "not an address", ""):
        assert limiter.charge(client, FULL_COST) == 0 and limiter.charge(client, FULL_COST) >= 1, client


def test_this_machine_is_exempt_by_default_a_reader_elsewhere_is_not(make_app, articles_dir):
    """A local proxy without PROXY_HOPS would make every reader one loopback client: it is not throttled as one."""
    write(articles_dir, "a.txt", "News\nTitle\nBody.\n")
    client = make_app(articles_dir, RATE_LIMIT=5).test_client()
    assert [client.get("/feed.rss").status_code for _ in range(20)] == [200] * 20  # 127.0.0.1, the test client's
    elsewhere = {"REMOTE_ADDR": "203.0.113.5"}
    assert [client.get("/feed.rss", environ_base=elsewhere).status_code for _ in range(6)] == [200] * 5 + [429]


def test_an_exempt_entry_that_is_no_network_is_refused_with_the_fix(make_app, articles_dir):
    import pytest
    from feedsvc.config import ConfigError

    with pytest.raises(ConfigError, match=r"RATE_LIMIT_EXEMPT: 'localhost' is not an address or network such as 10.0.0.0/8"):
        make_app(articles_dir, RATE_LIMIT_EXEMPT=["localhost"])

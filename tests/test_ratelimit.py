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
    client = make_app(articles_dir, RATE_LIMIT=5).test_client()
    statuses = [client.get("/feed.rss").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    res = client.get("/feed.rss")
    assert res.status_code == 429 and int(res.headers["Retry-After"]) >= 1
    assert client.get("/").status_code == 200  # pages are not feeds: no budget


def test_polite_conditional_polling_goes_five_times_further(make_app, articles_dir):
    write(articles_dir, "a.txt", "News\nTitle\nBody.\n")
    client = make_app(articles_dir, RATE_LIMIT=5).test_client()
    etag = client.get("/feed.atom").headers["ETag"]
    statuses = [client.get("/feed.atom", headers={"If-None-Match": etag}).status_code for _ in range(20)]
    assert statuses == [304] * 20

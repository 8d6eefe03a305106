"""Request budgets: a token bucket per client (address or partner key), refilled continuously.

A bucket holds a minute's worth of requests, so a client may burst up to its per-minute budget and
then goes at the refill rate. Before any work a request is charged a 304's price, so a client past its budget
costs no parsing or rendering; a full response then takes the rest, even into debt. Budgets are per process: under
N workers a client gets up to N times it.

Addresses in `exempt` (RATE_LIMIT_EXEMPT: this machine's own by default) are never charged: behind a local proxy
that does not pass the reader's address on (no PROXY_HOPS) every reader would otherwise share the proxy's one
budget, and a health check or monitor on the machine would be turned away with them.
"""
from __future__ import annotations

import ipaddress
import math
import threading
import time
from functools import lru_cache
from typing import Callable, Iterable

FULL_COST = 1.0
NOT_MODIFIED_COST = 0.2  # a 304 or a HEAD sends no body: polite pollers get five times the budget


class RateLimiter:
    """Token buckets keyed by client; charge() says whether a request fits and, if not, how long to wait."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic, max_clients: int = 100_000,
                 exempt: Iterable[str] = ()):
        self.exempt = lru_cache(maxsize=4096)(_matcher(exempt))  # client → bool, looked up once per address
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens a second
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # client → (tokens, when)
        self._lock = threading.Lock()

    def charge(self, client: str, cost: float) -> int:
        """Take `cost` tokens; 0 when the request fits, else whole seconds until it would (Retry-After)."""
        if self.capacity <= 0 or self.exempt(client):
            return 0
        now = self.clock()
        with self._lock:
            tokens, when = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - when) * self.rate)
            if tokens >= cost:
                self._buckets[client] = (tokens - cost, now)
                return 0
            self._buckets[client] = (tokens, now)
            if len(self._buckets) > self.max_clients:
                self._forget_idle(now)
            return max(1, math.ceil((cost - tokens) / self.rate))

    def debit(self, client: str, cost: float) -> None:
        """Take `cost` tokens even if that leaves the bucket in debt: the rest of a request already let in."""
        if self.capacity <= 0 or self.exempt(client):
            return
        now = self.clock()
        with self._lock:
            tokens, when = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - when) * self.rate)
            self._buckets[client] = (tokens - cost, now)

    def _forget_idle(self, now: float) -> None:
        # A bucket that would be full again is the same as no bucket.
        full_after = self.capacity / self.rate
        self._buckets = {c: b for c, b in self._buckets.items() if now - b[1] < full_after}


def _matcher(exempt: Iterable[str]) -> Callable[[str], bool]:
    """Whether a client (an address; a partner key's "partner:NAME" never matches) is in one of these networks."""
    networks = tuple(ipaddress.ip_network(n, strict=False) for n in exempt)

    def exempted(client: str) -> bool:
        if not networks:
            return False
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped is not None:  # ::ffff:127.0.0.1 is 127.0.0.1
            address = address.ipv4_mapped
        return any(address in network for network in networks)

    return exempted

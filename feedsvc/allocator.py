"""What a long-lived process asks of glibc's allocator: memory it frees given back to the system. Elsewhere than
glibc (musl, macOS) each call does nothing and says so.

Neutral: the builder trims after each commit (building/committer.py) and maps big blocks apart (building/builder.py),
a serving process maps big blocks apart (server.py).
"""
from __future__ import annotations

import ctypes

M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # mallopt's parameters (malloc.h)


def mmap_from(size: int) -> bool:
    """Have every block of `size` bytes and more served from a mapping of its own, given back once freed, at a fixed
    threshold: glibc otherwise raises it to the largest block freed so far (up to 32 MiB), and the heap keeps the
    high-water mark of the biggest feeds and blobs a process held. Whether the allocator took it."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    return mallopt is not None and mallopt(M_MMAP_THRESHOLD, size) == 1


def arenas(count: int) -> bool:
    """At most `count` malloc arenas for this process's threads from now on, as MALLOC_ARENA_MAX gives a process
    started with it (glibc reads that variable once, as it starts); whether the allocator took it."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    return mallopt is not None and mallopt(M_ARENA_MAX, count) == 1


def trim() -> bool:
    """Give the heap's free memory back to the system now (glibc keeps it otherwise); whether the allocator did."""
    malloc_trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    return malloc_trim is not None and bool(malloc_trim(0))

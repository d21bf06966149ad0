"""A bound on what a fuzzed call allocates: its Python allocations' peak, by tracemalloc."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager

MIB = 1024 * 1024


@contextmanager
def allocations_below(limit: int, what: str) -> Iterator[None]:
    """Fail when the Python allocations made in the block peak at ``limit`` bytes or more
    (whether the block returns or raises)."""
    tracemalloc.start()
    try:
        yield
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < limit, f"{what} allocated {peak / MIB:.1f} MiB at its peak"

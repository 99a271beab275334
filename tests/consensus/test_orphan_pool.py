"""The orphan pool both chains use: bounded, oldest evicted first, children released in arrival
order. Blocks here are plain strings: the pool never looks inside them."""

from __future__ import annotations

from consensus.orphan_pool import DEFAULT_MAX_ORPHANS, OrphanPool


def ids(*names: str) -> list[bytes]:
    return [name.encode() for name in names]


def test_the_pool_is_bounded_and_evicts_the_oldest_arrival():
    pool: OrphanPool[str] = OrphanPool(max_blocks=2)
    a, b, c, parent = ids("a", "b", "c", "p")
    pool.add(a, parent, "a")
    pool.add(b, parent, "b")
    pool.add(a, parent, "a")          # already waiting: keeps its place, does not grow the pool
    pool.add(c, parent, "c")
    assert len(pool) == 2 and a not in pool and b in pool and c in pool


def test_children_leave_the_pool_in_arrival_order():
    pool: OrphanPool[str] = OrphanPool()
    x, y, z, p1, p2 = ids("x", "y", "z", "p1", "p2")
    pool.add(y, p1, "y")
    pool.add(z, p2, "z")
    pool.add(x, p1, "x")
    assert pool.pop_children(p1) == ["y", "x"]
    assert pool.pop_children(p1) == []
    assert len(pool) == 1 and z in pool
    assert pool.max_blocks == DEFAULT_MAX_ORPHANS

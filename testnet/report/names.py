"""How the report names things: nodes in natural order, hashes shortened to one width."""

from __future__ import annotations

import re

SHORT_HASH_CHARS = 12


def node_order(names: set[str] | list[str]) -> list[str]:
    """node2 before node10."""
    return sorted(names, key=lambda n: [int(p) if p.isdigit() else p
                                        for p in re.split(r"(\d+)", n)])


def short(hash_: str | None) -> str:
    return (hash_ or "?")[:SHORT_HASH_CHARS]

"""The node's side of link faults: partitions (blocks) and shaping (delay, loss, ...) kept apart.

The orchestrator sets both through the admin API. They are stored separately so that `heal`
removes partitions without touching a delay the user set, and `link --clear` removes shaping
without healing a partition. The effective rule per peer is pushed to the p2p host, touching only
peers whose effective rule changed (so a heal never briefly unblocks a still-blocked link).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from p2p.host import P2PHost
from p2p.link_shaper import LinkRule

DIRECTIONS = ("in", "out")
BLOCK = LinkRule(block=True)


@dataclass
class LinkFaults:
    host: P2PHost
    blocks: dict[str, set[str]] = field(default_factory=dict)           # peer -> {"in","out"}
    shaping: dict[tuple[str, str], LinkRule] = field(default_factory=dict)  # (peer|*, dir) -> rule
    _applied: dict[str, tuple[LinkRule | None, LinkRule | None]] = field(default_factory=dict)

    def block(self, peer: str, direction: str) -> None:
        self.blocks.setdefault(peer, set()).update(_directions(direction))
        self._push()

    def clear_blocks(self) -> int:
        count = len(self.blocks)
        self.blocks.clear()
        self._push()
        return count

    def shape(self, peer: str, direction: str, rule: LinkRule) -> None:
        for d in _directions(direction):
            self.shaping[(peer, d)] = rule
        self._push()

    def clear_shaping(self, peer: str | None = None) -> int:
        keys = [k for k in self.shaping if peer is None or k[0] == peer]
        for key in keys:
            del self.shaping[key]
        self._push()
        return len(keys)

    def describe(self) -> dict:
        return {"blocks": {p: sorted(d) for p, d in sorted(self.blocks.items())},
                "shaping": [{"peer": p, "direction": d, "rule": r.to_json()}
                            for (p, d), r in sorted(self.shaping.items())]}

    def _effective(self) -> dict[str, tuple[LinkRule | None, LinkRule | None]]:
        """Per peer: the rule in force for frames in, and for frames out (None: untouched)."""
        def rule(peer: str, direction: str) -> LinkRule | None:
            if direction in self.blocks.get(peer, ()):
                return BLOCK
            return self.shaping.get((peer, direction))

        # sorted: the host's link rules change in one order whatever PYTHONHASHSEED is
        peers = sorted(set(self.blocks) | {p for p, _ in self.shaping})
        return {peer: (rule(peer, "in"), rule(peer, "out")) for peer in peers}

    def _push(self) -> None:
        wanted = self._effective()
        for peer in sorted(set(self._applied) - set(wanted)):
            self.host.clear_link_rules(peer)
            del self._applied[peer]
        for peer, (rule_in, rule_out) in wanted.items():
            if self._applied.get(peer) == (rule_in, rule_out):
                continue
            if rule_in == rule_out and rule_in is not None:
                self.host.set_link_rule(peer, rule_in, "both")
            else:
                if peer in self._applied:
                    self.host.clear_link_rules(peer)
                if rule_in is not None:
                    self.host.set_link_rule(peer, rule_in, "in")
                if rule_out is not None:
                    self.host.set_link_rule(peer, rule_out, "out")
            self._applied[peer] = (rule_in, rule_out)


def _directions(direction: str) -> tuple[str, ...]:
    if direction == "both":
        return DIRECTIONS
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be in, out or both, got {direction!r}")
    return (direction,)

"""What a crash campaign found, as records per kill round and as the figures it reports.

The campaign driver (testnet/scenarios/crash_campaign.py) fills one `RoundRecord` per round, with a
`VictimRecord` per killed node; `campaign_figures` turns them into the report: node kills survived
(came back healthy, lost nothing, rejoined), blocks checked and lost, honest validators slashed,
and the time from restart to healthy and to converged with the cluster as p50/p95 with n.
Pure: the figures can be recomputed from a campaign's JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from testnet.checks.fork_metrics import percentile
from testnet.checks.result import CheckResult


@dataclass
class VictimRecord:
    """One killed node of a round."""
    node: str
    accepted: int = 0                  # distinct blocks its events.jsonl reported accepted
    cut_lines: int = 0                 # fragments of its log a kill cut short (not counted)
    lost: list[dict] = field(default_factory=list)   # accepted before, absent after restart
    healthy_s: float | None = None     # restart -> answers /status (None: never)
    blocks_loaded: int | None = None   # what its store held at the restart (node_started)
    signing_record: bool | None = None  # PoS: its signing.sqlite was still there after the kill
    error: str | None = None


@dataclass
class RoundRecord:
    index: int
    minority: bool
    victims: list[VictimRecord]
    converged_s: float | None = None   # restart -> every node on one head (None: not in time)
    error: str | None = None

    @property
    def nodes(self) -> list[str]:
        return [v.node for v in self.victims]

    def survived(self, victim: VictimRecord) -> bool:
        """The node came back healthy with every block it had accepted, and rejoined."""
        return (victim.error is None and victim.healthy_s is not None and not victim.lost
                and victim.signing_record is not False and self.converged_s is not None)

    def to_json(self) -> dict:
        return {"round": self.index, "minority": self.minority, "nodes": self.nodes,
                "converged_s": self.converged_s, "error": self.error,
                "victims": [asdict(v) for v in self.victims]}


def spread(values: list[float]) -> dict:
    """n, p50, p95 and max of durations in seconds (None when there are none)."""
    def rounded(x: float | None) -> float | None:
        return None if x is None else round(x, 3)
    return {"n": len(values), "p50_s": rounded(percentile(values, 50)),
            "p95_s": rounded(percentile(values, 95)), "max_s": rounded(max(values, default=None))}


def campaign_figures(rounds: list[RoundRecord], slashing: CheckResult | None,
                     slashed_in_state: list[int] | None = None) -> dict:
    """The campaign's report. On PoS, `slashing` is `no_honest_slashing` of the campaign's
    history and `slashed_in_state` the validators the nodes' states mark slashed (/validators);
    the campaign gives no validator a role, so each of those is an honest one. None on PoW."""
    victims = [(r, v) for r in rounds for v in r.victims]
    lost = [{"round": r.index, "node": v.node, **block} for r, v in victims for block in v.lost]
    failed = [{"round": r.index, "node": v.node,
               "reason": v.error or r.error or _why_not_survived(r, v)}
              for r, v in victims if not r.survived(v)]
    honest_slashed = set(slashed_in_state or ())
    if slashing is not None:
        honest_slashed.update(s["validator"] for s in slashing.evidence.get("slashed", []))
    return {
        "rounds": len(rounds),
        "minority_rounds": sum(1 for r in rounds if r.minority),
        "node_kills": len(victims),
        "kills_survived": len(victims) - len(failed),
        "blocks_checked": sum(v.accepted for _, v in victims),
        "blocks_lost": len(lost),
        "lost": lost,
        "cut_log_lines": sum(v.cut_lines for _, v in victims),
        "honest_slashings": len(honest_slashed),
        "slashed_validators": sorted(honest_slashed),
        "slashing_check": None if slashing is None else slashing.to_json(),
        "restart_to_healthy": spread([v.healthy_s for _, v in victims
                                      if v.healthy_s is not None]),
        "restart_to_converged": spread([r.converged_s for r, _ in victims
                                        if r.converged_s is not None]),
        "failures": failed,
    }


def campaign_passed(figures: dict) -> bool:
    """The whole plan ran (`aborted` unset), every kill survived, no block lost, and no honest
    validator slashed (a slashing check that could not decide is not a pass)."""
    check = figures.get("slashing_check")
    return (not figures.get("aborted")
            and figures["kills_survived"] == figures["node_kills"]
            and figures["blocks_lost"] == 0 and figures["honest_slashings"] == 0
            and (check is None or check["verdict"] == "valid"))


def _why_not_survived(record: RoundRecord, victim: VictimRecord) -> str:
    if victim.healthy_s is None:
        return "did not come back healthy"
    if victim.lost:
        return f"lost {len(victim.lost)} accepted block(s)"
    if victim.signing_record is False:
        return "its signing record (signing.sqlite) was gone after the kill"
    return "the cluster did not converge after the restart"

"""Text summaries of a run for report.md and the console: the miners' table, each miner's
share of the main chain against its share of the hashrate, and for a selfish miner the revenue
Eyal and Sirer's model predicts."""

from __future__ import annotations


def selfish_mining_revenue(alpha: float, gamma: float = 0.0) -> float:
    """Eyal and Sirer's relative revenue of a selfish pool with hashrate share alpha."""
    num = alpha * (1 - alpha) ** 2 * (4 * alpha + gamma * (1 - 2 * alpha)) - alpha ** 3
    den = 1 - alpha * (1 + (2 - alpha) * alpha)
    return num / den


def miner_summary(metrics: dict, history: list[dict], mining: bool) -> list[str]:
    """The miners' table; empty unless the run's consensus mines (`mining`)."""
    miners = metrics.get("miners") or {}
    if not miners or not mining:
        return []
    roles = {}
    for entry in history:
        if entry.get("what") == "roles":
            roles = entry.get("roles", {})
    lines = ["", "## Miners", "", "| node | role | hashrate share | revenue share "
             "(main-chain blocks) | stale blocks |", "| --- | --- | --- | --- | --- |"]
    notes = []
    for node, m in sorted(miners.items()):
        role = roles.get(node, "honest")
        if m.get("hashrate_share") is None or m.get("revenue_share") is None:
            continue
        lines.append(f"| {node} | {role} | {m['hashrate_share']:.1%} | {m['revenue_share']:.1%} "
                     f"({m['main_chain_blocks']}) | {m['stale_blocks']} |")
        if role == "selfish-miner" and m["hashrate_share"]:
            alpha = m["hashrate_share"]
            expected = selfish_mining_revenue(alpha) if alpha < 0.5 else 1.0
            verdict = ("above" if m["revenue_share"] > alpha else "not above")
            total = max(1, sum(x["main_chain_blocks"] for x in miners.values()))
            luck = (alpha * (1 - alpha) / total) ** 0.5
            notes.append(f"{node} (selfish) earned {m['revenue_share']:.1%} of the main-chain "
                         f"blocks with {alpha:.1%} of the hashrate: {verdict} its hashrate share. "
                         f"Eyal-Sirer predicts {expected:.1%} at gamma = 0 (ties go to the block "
                         f"seen first); over {m['main_chain_blocks']} of its blocks luck alone "
                         f"moves the share by about {luck:.1%}.")
    return lines + ([""] + notes if notes else [])

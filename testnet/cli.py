"""`testnet`: launch, inspect and stop local clusters, and run single nodes.

Every command takes `--dir DIR` (default `./.testnet`, or $TESTNET_DIR) naming the cluster it acts on.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from testnet.client import NodeAPIError
from testnet.cluster import Cluster, ClusterTimeout
from testnet.cluster_files import CLUSTER_FILE, write_cluster
from testnet.manifest import ManifestError, validate_manifest

# Wide enough for full API URLs when the output is a pipe or a file (rich assumes 80 columns).
console = Console(width=shutil.get_terminal_size((140, 24)).columns)

DIR_OPTION = click.option(
    "--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
    default=lambda: os.environ.get("TESTNET_DIR", ".testnet"), show_default="./.testnet",
    help="Cluster folder (also $TESTNET_DIR).")


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def _open(directory: Path) -> Cluster:
    try:
        return Cluster(directory)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None


def _fail(message: str) -> None:
    raise click.ClickException(message)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="p2p-testnet")
def main() -> None:
    """p2p-testnet: launch a peer-to-peer blockchain testnet, break it, watch forks resolve."""


# ---- up / down ---------------------------------------------------------------------------------
@main.command()
@click.option("--nodes", "-n", default=4, show_default=True, help="Number of nodes.")
@click.option("--consensus", type=click.Choice(["pow"]), default="pow", show_default=True)
@click.option("--topology", default="full", show_default=True,
              help="full, ring, line, star or random:K.")
@click.option("--seed", default=0, show_default=True, help="Seed for keys, accounts and topology.")
@click.option("--block-interval", default=2, show_default=True, help="Target seconds per block.")
@click.option("--hashrate", default=20_000.0, show_default=True,
              help="Per-node hashrate cap (hashes/s); difficulty is set to match.")
@click.option("--base-port", type=int, default=None,
              help="First API/p2p port (default: free ports chosen by the OS).")
@click.option("--fresh", is_flag=True, help="Delete an existing cluster in DIR first.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for health.")
@DIR_OPTION
def up(nodes: int, consensus: str, topology: str, seed: int, block_interval: int, hashrate: float,
       base_port: int | None, fresh: bool, timeout: float, directory: Path) -> None:
    """Start a local cluster of N nodes on 127.0.0.1 (or resume the one in DIR)."""
    if (directory / CLUSTER_FILE).exists() and fresh:
        cluster = _open(directory)
        cluster.stop_all()
        shutil.rmtree(directory)
    if (directory / CLUSTER_FILE).exists():
        cluster = _open(directory)
        running = [i for i in range(cluster.size) if cluster.backend.is_running(i)]
        console.print(f"Resuming the cluster in {directory} "
                      f"({len(running)}/{cluster.size} nodes already running; use --fresh for a "
                      "new one).")
    else:
        try:
            manifest = validate_manifest({
                "nodes": nodes, "consensus": consensus, "topology": topology, "seed": seed,
                "block_interval_s": block_interval, "hashrate": hashrate})
        except ManifestError as exc:
            _fail(str(exc))
        write_cluster(directory, manifest, base_port=base_port)
        cluster = _open(directory)
        console.print(f"Created a {nodes}-node {consensus} cluster in {directory} "
                      f"(seed {seed}, topology {topology}).")
    cluster.start_all()

    async def wait() -> list[dict | None]:
        try:
            with console.status("Waiting for the nodes to answer and connect..."):
                await cluster.healthy(timeout)
                await cluster.connected(timeout)
            return await cluster.statuses()
        finally:
            await cluster.close()
    try:
        statuses = _run(wait())
    except ClusterTimeout as exc:
        _fail(f"{exc}. See the node logs: testnet logs NODE --dir {directory}")
    _print_status_table(cluster, statuses)
    console.print(f"Stop it with: testnet down --dir {directory}")


@main.command()
@click.option("--purge", is_flag=True, help="Also delete the cluster folder (chains, logs).")
@DIR_OPTION
def down(purge: bool, directory: Path) -> None:
    """Stop every node of the cluster."""
    cluster = _open(directory)
    stopped = [cluster.info["nodes"][i]["name"] for i in range(cluster.size) if cluster.stop(i)]
    console.print(f"Stopped {len(stopped)} node(s): {', '.join(stopped) or 'none were running'}.")
    if purge:
        shutil.rmtree(directory)
        console.print(f"Deleted {directory}.")


# ---- status / logs -----------------------------------------------------------------------------
def _status_rows(cluster: Cluster, statuses: list[dict | None]) -> list[dict]:
    rows = []
    for node, st in zip(cluster.info["nodes"], statuses):
        row = {"name": node["name"], "api": node["api"], "up": st is not None}
        if st is not None:
            row.update({k: st.get(k) for k in ("height", "head", "peers", "mempool", "syncing",
                                                "total_work", "reorgs", "clock_offset_s")})
            row["hashrate"] = st.get("miner", {}).get("hashrate")
        rows.append(row)
    return rows


def _agreement(rows: list[dict]) -> dict:
    heads = {r["head"] for r in rows if r["up"]}
    up_rows = [r for r in rows if r["up"]]
    return {"agree": len(heads) == 1 and len(up_rows) == len(rows), "heads": len(heads),
            "nodes_up": len(up_rows), "node_count": len(rows)}


def _print_status_table(cluster: Cluster, statuses: list[dict | None]) -> None:
    rows = _status_rows(cluster, statuses)
    palette = ["green", "magenta", "cyan", "yellow", "red", "blue"]
    colours: dict[str, str] = {}
    table = Table(title=f"cluster {cluster.directory}")
    for col in ("node", "api", "height", "head", "peers", "mempool", "hashrate", "state"):
        table.add_column(col, justify="right" if col in ("height", "peers", "mempool",
                                                          "hashrate") else "left")
    for r in rows:
        if not r["up"]:
            table.add_row(r["name"], r["api"], "-", "-", "-", "-", "-", "[red]down[/red]")
            continue
        colour = colours.setdefault(r["head"], palette[len(colours) % len(palette)])
        state = "syncing" if r["syncing"] else "ok"
        table.add_row(r["name"], r["api"], str(r["height"]),
                      f"[{colour}]{r['head'][:16]}[/{colour}]", str(r["peers"]), str(r["mempool"]),
                      f"{r['hashrate'] or 0:,.0f}", state)
    console.print(table)
    agreement = _agreement(rows)
    if agreement["agree"]:
        console.print(f"[green]All {agreement['node_count']} nodes agree[/green] on head "
                      f"{rows[0]['head'][:16]} at height {rows[0]['height']}.")
    else:
        console.print(f"[yellow]Nodes disagree:[/yellow] {agreement['heads']} different head(s); "
                      f"{agreement['nodes_up']}/{agreement['node_count']} nodes up.")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@DIR_OPTION
def status(as_json: bool, directory: Path) -> None:
    """Each node's height, head and peers, and whether all agree."""
    cluster = _open(directory)

    async def fetch() -> list[dict | None]:
        try:
            return await cluster.statuses()
        finally:
            await cluster.close()
    statuses = _run(fetch())
    if as_json:
        rows = _status_rows(cluster, statuses)
        click.echo(json.dumps({"nodes": rows, **_agreement(rows)}, indent=2))
    else:
        _print_status_table(cluster, statuses)


@main.command()
@click.argument("node")
@click.option("--lines", "-n", default=50, show_default=True, help="Lines from the end.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines.")
@DIR_OPTION
def logs(node: str, lines: int, follow: bool, directory: Path) -> None:
    """Print a node's log (NODE: index or name)."""
    cluster = _open(directory)
    try:
        index = cluster.node_index(node)
    except KeyError as exc:
        _fail(str(exc.args[0]))
    path = cluster.backend.log_path(index)
    if not path.exists():
        _fail(f"{path} does not exist yet (has the node been started?)")
    with open(path, "rb") as fh:
        for line in fh.readlines()[-lines:]:
            sys.stdout.write(line.decode(errors="replace"))
        if follow:
            import time
            try:
                while True:
                    chunk = fh.read()
                    if chunk:
                        sys.stdout.write(chunk.decode(errors="replace"))
                        sys.stdout.flush()
                    else:
                        time.sleep(0.3)
            except KeyboardInterrupt:
                pass


# ---- transactions ------------------------------------------------------------------------------
@main.command()
@click.option("--from", "from_account", default=0, show_default=True,
              help="Funded genesis account index (see accounts.json).")
@click.option("--to", "to", required=True, help="Account index or 64-hex public key.")
@click.option("--amount", required=True, type=int)
@click.option("--fee", default=1, show_default=True, type=int)
@click.option("--node", default="0", show_default=True, help="Node to submit to.")
@click.option("--wait", is_flag=True, help="Wait until the transfer is in a block on every node.")
@click.option("--timeout", default=60.0, show_default=True)
@DIR_OPTION
def tx(from_account: int, to: str, amount: int, fee: int, node: str, wait: bool, timeout: float,
       directory: Path) -> None:
    """Submit a signed transfer from a funded genesis account."""
    cluster = _open(directory)
    try:
        index = cluster.node_index(node)
    except KeyError as exc:
        _fail(str(exc.args[0]))

    async def go() -> tuple[str, int | None]:
        try:
            txid = await cluster.send(from_account, to, amount, fee, node=index)
            if not wait:
                return txid, None
            with console.status(f"Waiting for {txid[:16]} to be mined on every node..."):
                height = await wait_for_tx_everywhere(cluster, txid, timeout)
            return txid, height
        finally:
            await cluster.close()
    try:
        txid, height = _run(go())
    except (ValueError, NodeAPIError, ClusterTimeout) as exc:
        _fail(str(exc))
    console.print(f"Submitted transfer {txid} to {cluster.info['nodes'][index]['name']}.")
    if height is not None:
        console.print(f"In block at height {height} on all {cluster.size} nodes.")


async def wait_for_tx_everywhere(cluster: Cluster, txid: str, timeout: float) -> int:
    """Height of the block holding `txid` once it is on every node's main chain."""
    async def heights() -> int | None:
        found = set()
        for i in range(cluster.size):
            status = await cluster.status(i)
            if status is None:
                return None
            chain = await cluster.client(i).chain(max(0, status["height"] - 50), status["height"])
            hit = None
            for header in chain["headers"]:
                block = await cluster.client(i).block(header["hash"]) if header["txs"] > 1 else None
                if block and any(t["txid"] == txid for t in block["transactions"]):
                    hit = header["height"]
            if hit is None:
                return None
            found.add(hit)
        return found.pop() if len(found) == 1 else None
    return await cluster.wait_until(heights, timeout, f"transaction {txid[:16]} on every node",
                                    interval=0.5)


# ---- one node ----------------------------------------------------------------------------------
@main.command("node")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Node config file (YAML).")
def node_cmd(config_path: str) -> None:
    """Run one node in the foreground from a config file."""
    from node.app import main as node_main
    sys.exit(node_main(config_path))


if __name__ == "__main__":
    main()

"""`testnet up|down|status|logs|tx|node`: launch, inspect and stop a cluster, send a transfer, run
one node in the foreground."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import click
from rich.table import Table

from testnet.backends.base import PROCESS_BACKENDS, create_cluster
from testnet.cli.common import DIR_OPTION, console, fail, open_cluster, run_async
from testnet.cli.observe import serve_dashboard_cli
from testnet.cluster import Cluster, wait_for_tx_everywhere
from testnet.config.cluster_files import CLUSTER_FILE
from testnet.config.manifest import CONSENSUS, DPOS_PRESETS, validate_manifest
from testnet.errors import TestnetError
from testnet.observe.dashboard import DEFAULT_HOST, DEFAULT_PORT
from testnet.observe.dashboard_frames import DEFAULT_WINDOW_BLOCKS


# ---- up / down ---------------------------------------------------------------------------------
@click.command()
@click.option("--nodes", "-n", default=4, show_default=True, help="Number of nodes.")
@click.option("--consensus", type=click.Choice(CONSENSUS), default="pow", show_default=True,
              help="pow (Bitcoin), pos (Gasper), hybrid (PoW + Casper FFG, EIP-1011) or dpos "
                   "(EOSIO/Graphene delegated proof of stake).")
@click.option("--validators", "validators_per_node", default=8, show_default=True,
              help="PoS, hybrid: validator keys each node runs.")
@click.option("--epoch-length", default=5, show_default=True,
              help="Hybrid: blocks per Casper epoch.")
@click.option("--producers", type=int, default=None,
              help="DPoS: producers in the schedule (default: the preset's, 7 or 21).")
@click.option("--candidates", default=0, show_default=True,
              help="DPoS: genesis candidates besides the schedule (their keys run too).")
@click.option("--preset", type=click.Choice(DPOS_PRESETS), default="default", show_default=True,
              help="DPoS: default 7x2x0.5s, eosio 21x12x0.5s, graphene 21x1x3s, tron 27x1x3s.")
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
@click.option("--backend", type=click.Choice(PROCESS_BACKENDS), default="local", show_default=True,
              help="Nodes as local processes, containers of a compose project (docker), or "
                   "services of a swarm stack (swarm).")
@click.option("--image", default="p2p-testnet:latest", show_default=True,
              help="docker/swarm: the node image (built from ./Dockerfile when missing).")
@click.option("--build", is_flag=True, help="docker/swarm: rebuild the image first.")
@click.option("--dashboard", "with_dashboard", is_flag=True,
              help="Once the nodes are up, serve the web dashboard in the foreground until "
                   "Ctrl-C (the nodes keep running).")
@click.option("--dashboard-port", default=DEFAULT_PORT, show_default=True,
              type=click.IntRange(0, 65535), help="Port of the dashboard (on 127.0.0.1).")
@DIR_OPTION
def up(nodes: int, consensus: str, validators_per_node: int, epoch_length: int,
       producers: int | None, candidates: int, preset: str, topology: str, seed: int,
       block_interval: int, hashrate: float,
       base_port: int | None, fresh: bool, timeout: float, backend: str, image: str, build: bool,
       with_dashboard: bool, dashboard_port: int, directory: Path) -> None:
    """Start a cluster of N nodes: local processes on 127.0.0.1, or containers (--backend docker
    or swarm) with their APIs on host ports (or resume the cluster in DIR). With --dashboard,
    then serve the web dashboard (see `testnet dashboard`)."""
    if (directory / CLUSTER_FILE).exists() and fresh:
        cluster = open_cluster(directory)
        cluster.stop_all()
        shutil.rmtree(directory)
    if (directory / CLUSTER_FILE).exists():
        cluster = open_cluster(directory)
        running = [i for i in range(cluster.size) if cluster.backend.is_running(i)]
        console.print(f"Resuming the cluster in {directory} "
                      f"({len(running)}/{cluster.size} nodes already running; use --fresh for a "
                      "new one).")
    else:
        try:
            manifest = validate_manifest({
                "nodes": nodes, "consensus": consensus, "topology": topology, "seed": seed,
                "block_interval_s": block_interval, "hashrate": hashrate,
                "validators_per_node": validators_per_node, "epoch_length": epoch_length,
                "producers": producers, "candidates": candidates, "preset": preset})
        except TestnetError as exc:
            fail(str(exc))
        options = {"image": image, "build": build} if backend != "local" else {}
        try:
            with console.status(f"Preparing the {backend} cluster" +
                                (f" (building {image} if needed)..." if options else "...")):
                create_cluster(directory, manifest, backend=backend, base_port=base_port,
                               **options)
        except TestnetError as exc:
            shutil.rmtree(directory, ignore_errors=True)
            fail(str(exc))
        cluster = open_cluster(directory)
        console.print(f"Created a {nodes}-node {consensus} cluster in {directory} "
                      f"(seed {seed}, topology {topology}, backend {backend}).")
    try:
        cluster.start_all()
    except TestnetError as exc:
        fail(str(exc))

    async def wait() -> list[dict | None]:
        try:
            with console.status("Waiting for the nodes to answer and connect..."):
                await cluster.healthy(timeout)
                await cluster.connected(timeout)
            return await cluster.statuses()
        finally:
            await cluster.close()
    try:
        statuses = asyncio.run(wait())
    except TestnetError as exc:
        fail(f"{exc}. See the node logs: testnet logs NODE --dir {directory}")
    _print_status_table(cluster, statuses)
    console.print(f"Stop it with: testnet down --dir {directory}")
    if with_dashboard:
        serve_dashboard_cli(cluster, DEFAULT_HOST, dashboard_port, DEFAULT_WINDOW_BLOCKS,
                         open_browser=False, controls=True)


@click.command()
@click.option("--purge", is_flag=True, help="Also delete the cluster folder (chains, logs).")
@DIR_OPTION
def down(purge: bool, directory: Path) -> None:
    """Stop every node of the cluster."""
    cluster = open_cluster(directory)
    stopped = [node["name"] for node in cluster.info["nodes"]
               if cluster.backend.is_running(node["index"])]
    try:
        cluster.stop_all()  # containers: also removes them and their network
    except TestnetError as exc:
        fail(str(exc))
    console.print(f"Stopped {len(stopped)} node(s): {', '.join(stopped) or 'none were running'}.")
    if purge:
        shutil.rmtree(directory)
        console.print(f"Deleted {directory}.")


# ---- status / logs -----------------------------------------------------------------------------
def _status_rows(cluster: Cluster, statuses: list[dict | None]) -> list[dict]:
    rows = []
    for node, st in zip(cluster.info["nodes"], statuses):
        row = {"name": node["name"], "api": node["api"], "up": st is not None,
               "process": cluster.backend.process_state(node["index"])}
        if st is not None:
            row.update({k: st.get(k) for k in ("height", "head", "peers", "mempool", "syncing",
                                                "total_work", "reorgs", "clock_offset_s")})
            row["hashrate"] = st.get("miner", {}).get("hashrate")
            row["role"] = st.get("role", "honest")
            row["consensus"] = st.get("consensus", "pow")
            for key in ("slot", "epoch", "justified", "finalized", "active_validators",
                        "total_stake", "total_deposits", "round", "producer", "lib_gap",
                        "schedule_version", "missed_slots"):
                if key in st:
                    row[key] = st[key]
            if "validators" in st:
                row["validator_roles"] = st["validators"].get("roles", {})
            if "local_producers" in st:
                row["validator_roles"] = st["local_producers"].get("roles", {})
            row["faults"] = st.get("faults", {})
        rows.append(row)
    return rows


def _fault_summary(row: dict) -> str:
    parts = []
    if row.get("role", "honest") not in ("honest", "validator", "producer"):
        parts.append(f"[magenta]{row['role']}[/magenta]")
    for validator, role in (row.get("validator_roles") or {}).items():
        parts.append(f"[magenta]v{validator} {role}[/magenta]")
    faults = row.get("faults") or {}
    if faults.get("blocked_peers"):
        parts.append(f"cut from {faults['blocked_peers']}")
    if faults.get("shaped_links"):
        parts.append(f"{faults['shaped_links']} shaped")
    if faults.get("clock_offset_s"):
        parts.append(f"clock {faults['clock_offset_s']:+g}s")
    return ", ".join(parts)


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
    manifest = cluster.manifest
    progress_cols = (["hashrate"] if manifest.has_mining else []) + \
        (["finalized"] if manifest.has_finality else []) + \
        (["slot", "lib", "schedule"] if manifest.has_irreversibility else [])
    for col in ("node", "api", "height", "head", "peers", "mempool", *progress_cols, "state",
                "faults"):
        table.add_column(col, justify="right" if col in ("height", "peers", "mempool",
                                                          "hashrate") else "left")
    for r in rows:
        if not r["up"]:
            state = "[yellow]paused[/yellow]" if r["process"] == "paused" else "[red]down[/red]"
            table.add_row(r["name"], r["api"], "-", "-", "-", "-", *("-" for _ in progress_cols),
                          state, "")
            continue
        colour = colours.setdefault(r["head"], palette[len(colours) % len(palette)])
        state = "syncing" if r["syncing"] else "ok"
        progress = {"hashrate": f"{r['hashrate'] or 0:,.0f}",
                    "finalized": f"{(r.get('finalized') or {}).get('epoch', '-')} "
                                 f"(j {(r.get('justified') or {}).get('epoch', '-')})",
                    "slot": str(r.get("slot", "-")),
                    "lib": f"{(r.get('finalized') or {}).get('height', '-')} "
                           f"(gap {r.get('lib_gap', '-')})",
                    "schedule": f"v{r.get('schedule_version', '-')}"}
        table.add_row(r["name"], r["api"], str(r["height"]),
                      f"[{colour}]{r['head'][:16]}[/{colour}]", str(r["peers"]), str(r["mempool"]),
                      *(progress[c] for c in progress_cols), state, _fault_summary(r))
    console.print(table)
    agreement = _agreement(rows)
    if agreement["agree"]:
        console.print(f"[green]All {agreement['node_count']} nodes agree[/green] on head "
                      f"{rows[0]['head'][:16]} at height {rows[0]['height']}.")
    else:
        console.print(f"[yellow]Nodes disagree:[/yellow] {agreement['heads']} different head(s); "
                      f"{agreement['nodes_up']}/{agreement['node_count']} nodes up.")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@DIR_OPTION
def status(as_json: bool, directory: Path) -> None:
    """Each node's height, head and peers, and whether all agree."""
    cluster = open_cluster(directory)

    async def fetch() -> list[dict | None]:
        try:
            return await cluster.statuses()
        finally:
            await cluster.close()
    statuses = run_async(fetch())
    if as_json:
        rows = _status_rows(cluster, statuses)
        click.echo(json.dumps({"nodes": rows, **_agreement(rows)}, indent=2))
    else:
        _print_status_table(cluster, statuses)


@click.command()
@click.argument("node")
@click.option("--lines", "-n", default=50, show_default=True, help="Lines from the end.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines.")
@DIR_OPTION
def logs(node: str, lines: int, follow: bool, directory: Path) -> None:
    """Print a node's log (NODE: index or name)."""
    cluster = open_cluster(directory)
    try:
        index = cluster.node_index(node)
    except TestnetError as exc:
        fail(str(exc))
    path = cluster.backend.log_path(index)
    if not path.exists():
        fail(f"{path} does not exist yet (has the node been started?)")
    with open(path, "rb") as fh:
        for line in fh.readlines()[-lines:]:
            sys.stdout.write(line.decode(errors="replace"))
    if follow:
        try:
            for chunk in cluster.backend.follow_log(index):
                sys.stdout.write(chunk.decode(errors="replace"))
                sys.stdout.flush()
        except KeyboardInterrupt:
            pass


# ---- transactions ------------------------------------------------------------------------------
@click.command()
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
    cluster = open_cluster(directory)
    try:
        index = cluster.node_index(node)
    except TestnetError as exc:
        fail(str(exc))

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
    txid, height = run_async(go())
    console.print(f"Submitted transfer {txid} to {cluster.info['nodes'][index]['name']}.")
    if height is not None:
        console.print(f"In block at height {height} on all {cluster.size} nodes.")


# ---- one node ----------------------------------------------------------------------------------
@click.command("node")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Node config file (YAML).")
def node_cmd(config_path: str) -> None:
    """Run one node in the foreground from a config file."""
    from node.app import main as node_main
    sys.exit(node_main(config_path))

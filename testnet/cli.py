"""`testnet`: launch, inspect and stop local clusters, and run single nodes.

Every command takes `--dir DIR` (default `./.testnet`, or $TESTNET_DIR) naming the cluster it acts on.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from testnet.client import NodeAPIError
from testnet.cluster import Cluster, ClusterTimeout
from testnet.backend import BACKENDS, BackendError, create_cluster
from testnet.cluster_files import CLUSTER_FILE
from testnet.compose_cli import compose as compose_command
from testnet.dashboard import (DEFAULT_HOST, DEFAULT_PORT, DEFAULT_WINDOW_BLOCKS,
                               MAX_WINDOW_BLOCKS)
from testnet import grudge as grudges
from testnet.grudge import PartitionSpecError
from testnet.manifest import ManifestError, validate_manifest
from testnet.nemesis import Nemesis, NemesisError
from testnet.prometheus_config import prometheus as prometheus_command
from testnet.stake_cli import stake as stake_command
from testnet.units import parse_duration_s, parse_fraction, parse_rate_bps

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
    except (FileNotFoundError, BackendError) as exc:
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
@click.option("--consensus", type=click.Choice(["pow", "pos"]), default="pow", show_default=True)
@click.option("--validators", "validators_per_node", default=8, show_default=True,
              help="PoS: validator keys each node runs.")
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
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True,
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
def up(nodes: int, consensus: str, validators_per_node: int, topology: str, seed: int,
       block_interval: int, hashrate: float,
       base_port: int | None, fresh: bool, timeout: float, backend: str, image: str, build: bool,
       with_dashboard: bool, dashboard_port: int, directory: Path) -> None:
    """Start a cluster of N nodes: local processes on 127.0.0.1, or containers (--backend docker
    or swarm) with their APIs on host ports (or resume the cluster in DIR). With --dashboard,
    then serve the web dashboard (see `testnet dashboard`)."""
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
                "block_interval_s": block_interval, "hashrate": hashrate,
                "validators_per_node": validators_per_node})
        except ManifestError as exc:
            _fail(str(exc))
        options = {"image": image, "build": build} if backend != "local" else {}
        try:
            with console.status(f"Preparing the {backend} cluster" +
                                (f" (building {image} if needed)..." if options else "...")):
                create_cluster(directory, manifest, backend=backend, base_port=base_port,
                               **options)
        except BackendError as exc:
            shutil.rmtree(directory, ignore_errors=True)
            _fail(str(exc))
        cluster = _open(directory)
        console.print(f"Created a {nodes}-node {consensus} cluster in {directory} "
                      f"(seed {seed}, topology {topology}, backend {backend}).")
    try:
        cluster.start_all()
    except BackendError as exc:
        _fail(str(exc))

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
    if with_dashboard:
        _serve_dashboard(cluster, DEFAULT_HOST, dashboard_port, DEFAULT_WINDOW_BLOCKS,
                         open_browser=False, controls=True)


@main.command()
@click.option("--purge", is_flag=True, help="Also delete the cluster folder (chains, logs).")
@DIR_OPTION
def down(purge: bool, directory: Path) -> None:
    """Stop every node of the cluster."""
    cluster = _open(directory)
    stopped = [node["name"] for node in cluster.info["nodes"]
               if cluster.backend.is_running(node["index"])]
    try:
        cluster.stop_all()  # containers: also removes them and their network
    except BackendError as exc:
        _fail(str(exc))
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
            for key in ("slot", "justified", "finalized", "active_validators", "total_stake"):
                if key in st:
                    row[key] = st[key]
            if "validators" in st:
                row["validator_roles"] = st["validators"].get("roles", {})
            row["faults"] = st.get("faults", {})
        rows.append(row)
    return rows


def _fault_summary(row: dict) -> str:
    parts = []
    if row.get("role", "honest") not in ("honest", "validator"):
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
    pos = cluster.info.get("consensus") == "pos"
    for col in ("node", "api", "height", "head", "peers", "mempool",
                "finalized" if pos else "hashrate", "state", "faults"):
        table.add_column(col, justify="right" if col in ("height", "peers", "mempool",
                                                          "hashrate") else "left")
    for r in rows:
        if not r["up"]:
            state = "[yellow]paused[/yellow]" if r["process"] == "paused" else "[red]down[/red]"
            table.add_row(r["name"], r["api"], "-", "-", "-", "-", "-", state, "")
            continue
        colour = colours.setdefault(r["head"], palette[len(colours) % len(palette)])
        state = "syncing" if r["syncing"] else "ok"
        progress = (f"{r['finalized']['epoch']} (j {r['justified']['epoch']})" if pos
                    else f"{r['hashrate'] or 0:,.0f}")
        table.add_row(r["name"], r["api"], str(r["height"]),
                      f"[{colour}]{r['head'][:16]}[/{colour}]", str(r["peers"]), str(r["mempool"]),
                      progress, state, _fault_summary(r))
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
        try:
            for chunk in cluster.backend.follow_log(index):
                sys.stdout.write(chunk.decode(errors="replace"))
                sys.stdout.flush()
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


# ---- faults (the nemesis) ---------------------------------------------------------------------
def _nemesis_call(directory: Path, action) -> dict:  # type: ignore[no-untyped-def]
    """Run one nemesis action on the cluster in DIR; turn its errors into CLI errors."""
    cluster = _open(directory)
    nemesis = Nemesis(cluster)

    async def go() -> dict:
        try:
            result = action(nemesis, cluster)
            if asyncio.iscoroutine(result):
                result = await result
            return result
        finally:
            await cluster.close()
    try:
        return _run(go())
    except (NemesisError, PartitionSpecError, ValueError, KeyError, ClusterTimeout,
            BackendError) as exc:
        _fail(str(exc.args[0]) if exc.args else str(exc))
    raise AssertionError("unreachable")


def _index(cluster: Cluster, node: str) -> int:
    try:
        return cluster.node_index(node)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None


def _said(entry: dict) -> None:
    shown = {**entry["params"], **entry.get("result", {})}
    params = ", ".join(f"{k}={v}" for k, v in shown.items() if k not in ("grudge",))
    nodes = ", ".join(entry["nodes"])
    verb = "applied" if entry["type"] == "fault_applied" else "cleared"
    console.print(f"{entry['fault']} {verb} on {nodes or 'no nodes'}" + (f" ({params})" if params
                                                                        else ""))


@main.command()
@click.argument("groups", nargs=-1)
@click.option("--isolate", type=str, default=None, help="Cut one node off from all others.")
@click.option("--oneway", type=str, default=None,
              help="Asymmetric cut: A>B means B no longer hears A (A still hears B).")
@click.option("--halves", is_flag=True, help="Two halves.")
@click.option("--majorities-ring", is_flag=True, help="Each node sees a different majority.")
@click.option("--bridge", is_flag=True, help="Two sides joined only through one node.")
@click.option("--seed", type=int, default=None, help="Shuffle for halves/ring/bridge.")
@click.option("--layer", type=click.Choice(["p2p", "net"]), default="p2p", show_default=True,
              help="p2p: the nodes drop each other's messages (link shaper); net: packets are "
                   "dropped below the nodes (iptables in each container; docker backend).")
@DIR_OPTION
def partition(groups: tuple[str, ...], isolate: str | None, oneway: str | None, halves: bool,
              majorities_ring: bool, bridge: bool, seed: int | None, layer: str,
              directory: Path) -> None:
    """Split the network: `testnet partition 0,1 2,3,4` (groups), or one of the options."""
    import random
    chosen = [bool(groups), isolate is not None, oneway is not None, halves, majorities_ring,
              bridge]
    if sum(chosen) != 1:
        _fail("give groups (e.g. 0,1 2,3,4) or exactly one of --isolate/--oneway/--halves/"
              "--majorities-ring/--bridge")

    def act(nemesis: Nemesis, cluster: Cluster):  # type: ignore[no-untyped-def]
        n = cluster.size
        rng = random.Random(seed) if seed is not None else None
        if groups:
            spec: dict = {"groups": "|".join(groups)}
        elif isolate is not None:
            spec = {"isolate": _index(cluster, isolate)}
        elif oneway is not None:
            spec = {"one_way": oneway}
        elif halves:
            spec = {"halves": True}
        elif majorities_ring:
            spec = {"majorities_ring": True}
        else:
            spec = {"bridge": True}
        grudge = grudges.from_spec(n, spec, rng)
        console.print(f"Partition: {grudges.describe(grudge)}")
        return nemesis.partition(grudge, layer)
    _said(_nemesis_call(directory, act))


@main.command()
@DIR_OPTION
def heal(directory: Path) -> None:
    """Remove every partition (link shaping set with `testnet link` stays)."""
    _said(_nemesis_call(directory, lambda nemesis, cluster: nemesis.heal()))


@main.command()
@click.option("--delay", default=None, help="Added latency, e.g. 200ms.")
@click.option("--jitter", default=None, help="Uniform +- jitter, e.g. 50ms.")
@click.option("--loss", default=None, help="Drop probability, e.g. 5%.")
@click.option("--duplicate", default=None, help="Duplication probability, e.g. 1%.")
@click.option("--reorder", default=None, help="Probability a frame skips the delay queue.")
@click.option("--rate", default=None, help="Bandwidth cap, e.g. 100kB/s.")
@click.option("--from", "sources", default=None, help="Sending nodes, e.g. 0 or 0,1 (default all).")
@click.option("--to", "targets", default=None, help="Receiving nodes (default all).")
@click.option("--clear", is_flag=True, help="Remove link shaping (from --from nodes, or all).")
@DIR_OPTION
def link(delay: str | None, jitter: str | None, loss: str | None, duplicate: str | None,
         reorder: str | None, rate: str | None, sources: str | None, targets: str | None,
         clear: bool, directory: Path) -> None:
    """Shape links in the p2p layer: `testnet link --delay 200ms --jitter 50ms --loss 5%`."""
    def nodes(cluster: Cluster, text: str | None) -> list[int] | None:
        return None if text is None else [_index(cluster, x) for x in text.split(",")]

    if clear:
        _said(_nemesis_call(directory, lambda nemesis, cluster:
                            nemesis.link_clear(nodes(cluster, sources))))
        return
    rule: dict = {}
    if delay is not None:
        rule["delay_ms"] = parse_duration_s(delay, default_unit="ms") * 1000
    if jitter is not None:
        rule["jitter_ms"] = parse_duration_s(jitter, default_unit="ms") * 1000
    try:
        if loss is not None:
            rule["loss"] = parse_fraction(loss)
        if duplicate is not None:
            rule["duplicate"] = parse_fraction(duplicate)
        if reorder is not None:
            rule["reorder"] = parse_fraction(reorder)
        if rate is not None:
            rule["bandwidth_bps"] = parse_rate_bps(rate)
    except ValueError as exc:
        _fail(str(exc))
    if not rule:
        _fail("nothing to do: give --delay, --jitter, --loss, --duplicate, --reorder, --rate "
              "or --clear")
    _said(_nemesis_call(directory, lambda nemesis, cluster: nemesis.link(
        rule, nodes(cluster, sources), nodes(cluster, targets))))


def _process_command(name: str, doc: str):  # type: ignore[no-untyped-def]
    @main.command(name=name, help=doc)
    @click.argument("node")
    @DIR_OPTION
    def command(node: str, directory: Path) -> None:
        def act(nemesis: Nemesis, cluster: Cluster):  # type: ignore[no-untyped-def]
            return getattr(nemesis, name)(_index(cluster, node))
        _said(_nemesis_call(directory, act))
    return command


kill_cmd = _process_command("kill", "SIGKILL a node (no shutdown code runs).")
stop_cmd = _process_command("stop", "Stop a node cleanly (SIGTERM).")
start_cmd = _process_command("start", "Start a stopped or killed node; it rejoins with its chain.")
pause_cmd = _process_command("pause", "Freeze a node (SIGSTOP on its process group; "
                                       "`docker pause` for a container).")
resume_cmd = _process_command("resume", "Unfreeze a paused node (SIGCONT; `docker unpause`).")
restart_cmd = _process_command("restart", "Stop and start a node.")


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("node")
@click.argument("offset")
@DIR_OPTION
def skew(node: str, offset: str, directory: Path) -> None:
    """Offset a node's clock: `testnet skew 1 +30s` (0 to reset)."""
    try:
        seconds = parse_duration_s(offset)
    except ValueError as exc:
        _fail(str(exc))
    _said(_nemesis_call(directory, lambda nemesis, cluster:
                        nemesis.skew(_index(cluster, node), seconds)))


POW_ROLES = ("honest", "selfish-miner", "withhold")
POS_ROLES = ("honest", "silent", "double-propose", "double-vote", "surround-vote")


@main.command()
@click.argument("target")
@click.argument("role", type=click.Choice(sorted(set(POW_ROLES + POS_ROLES))))
@DIR_OPTION
def role(target: str, role: str, directory: Path) -> None:
    """Switch behaviour. PoW: `testnet role 4 selfish-miner` (honest, selfish-miner, withhold;
    back to honest releases withheld blocks). PoS: `testnet role v7 double-vote` (honest, silent,
    double-propose, double-vote, surround-vote) for validator 7."""
    def act(nemesis: Nemesis, cluster: Cluster):  # type: ignore[no-untyped-def]
        pos = cluster.info.get("consensus") == "pos"
        if target.startswith("v") and target[1:].isdigit():
            if not pos:
                raise ValueError("validators (v7) exist on PoS clusters only")
            if role not in POS_ROLES:
                raise ValueError(f"{role} is a PoW role; validator roles: {', '.join(POS_ROLES)}")
            validator = int(target[1:])
            return nemesis.role(nemesis.validator_node(validator), role, validator)
        if pos:
            raise ValueError("on a PoS cluster a role names a validator, e.g. v7")
        if role not in POW_ROLES:
            raise ValueError(f"{role} is a PoS validator role; miner roles: {', '.join(POW_ROLES)}")
        return nemesis.role(_index(cluster, target), role)
    _said(_nemesis_call(directory, act))


@main.command()
@click.argument("node")
@click.option("--hashrate", type=float, default=None, help="Cap in hashes/s.")
@click.option("--share", default=None,
              help="Hashrate share of the whole cluster, e.g. 51% (caps this node so that it "
                   "holds that share of the other nodes' configured total).")
@click.option("--on/--off", "enabled", default=None, help="Start or stop mining.")
@DIR_OPTION
def miner(node: str, hashrate: float | None, share: str | None, enabled: bool | None,
          directory: Path) -> None:
    """Change a node's miner: `testnet miner 3 --share 51%`."""
    def act(nemesis: Nemesis, cluster: Cluster):  # type: ignore[no-untyped-def]
        index = _index(cluster, node)
        rate = hashrate
        if share is not None:
            fraction = parse_fraction(share)
            if not 0 < fraction < 1:
                raise ValueError("share must be between 0% and 100%")
            manifest = cluster.info["manifest"]
            others = sum(_configured_rate(manifest, i) for i in range(cluster.size) if i != index)
            rate = others * fraction / (1 - fraction)
        return nemesis.miner(index, enabled=enabled, hashrate=rate)
    _said(_nemesis_call(directory, act))


def _configured_rate(manifest: dict, index: int) -> float:
    override = manifest.get("overrides", {}).get(str(index), {})
    if override.get("mine") is False:
        return 0.0
    return float(override.get("hashrate") or manifest["hashrate"])


# ---- scenarios --------------------------------------------------------------------------------
@main.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", type=int, default=None, help="Override the scenario's seed.")
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True,
              help="Run the scenario's nodes as local processes or as containers.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Report folder (default: reports/<name>-seed<S>).")
@click.option("--check-only", is_flag=True, help="Validate the file and print the schedule.")
@click.option("--keep", is_flag=True, help="Leave the cluster running after the run.")
@click.option("--dashboard", "dashboard_port", type=click.IntRange(0, 65535), default=None,
              help="Serve the live web dashboard (read-only) on this port during the run "
                   "(0: any free port; the URL is printed).")
def run(scenario_file: Path, seed: int | None, backend: str, report_dir: Path | None,
        check_only: bool, keep: bool, dashboard_port: int | None) -> None:
    """Run a scenario file: faults on a timeline, then checks; exits 1 when a check fails."""
    from testnet.runner import ScenarioRunner
    from testnet.scenario import ScenarioError, load_scenario
    try:
        scenario = load_scenario(scenario_file, seed=seed)
    except ScenarioError as exc:
        click.echo(f"invalid scenario {scenario_file}: {exc}", err=True)
        sys.exit(2)
    if check_only:
        click.echo(json.dumps(scenario.schedule(), indent=2))
        return
    target = report_dir or Path("reports") / f"{scenario.name}-seed{scenario.seed}"
    console.print(f"Running [bold]{scenario.name}[/bold] (seed {scenario.seed}, "
                  f"{len(scenario.steps)} steps, {scenario.manifest.nodes} nodes, "
                  f"backend {backend}); report in {target}")
    started = time.monotonic()

    def progress(message: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:7.1f}s[/dim] {message}")
    runner = ScenarioRunner(scenario, target, progress=progress, keep_cluster=keep,
                            backend=backend, dashboard_port=dashboard_port)
    try:
        result = asyncio.run(runner.run())
    except BackendError as exc:
        _fail(str(exc))
    table = Table(title=f"{scenario.name}: checks")
    for col in ("check", "verdict", "expected", "result", "why"):
        table.add_column(col, overflow="fold")
    for check, ok, spec in zip(result.checks, result.passed_checks, scenario.checks):
        colour = "green" if ok else "red"
        table.add_row(check.name, check.verdict, spec.get("expect", "valid"),
                      f"[{colour}]{'pass' if ok else 'FAIL'}[/{colour}]", check.message)
    console.print(table)
    for failure in result.failed_steps:
        console.print(f"[red]step {failure['step']} ({failure['action']}) failed:[/red] "
                      f"{failure['reason']}")
    from testnet.runner import miner_summary
    summary = miner_summary(result)
    if any("selfish" in line or "withhold" in line for line in summary):
        console.print("\n".join(summary))
    console.print(f"Report: {target}/report.md")
    if not result.passed:
        failed = [c.name for c, ok in zip(result.checks, result.passed_checks) if not ok]
        console.print(f"[red]FAILED[/red]: {', '.join(failed) or 'steps failed'}")
        sys.exit(1)
    console.print("[green]PASSED[/green]")


# ---- observation ------------------------------------------------------------------------------
@main.command()
@click.option("--interval", default=1.0, show_default=True, help="Seconds between refreshes.")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
@click.option("--plain", is_flag=True,
              help="Print snapshots instead of redrawing (automatic when not a terminal).")
@DIR_OPTION
def watch(interval: float, duration: float | None, plain: bool, directory: Path) -> None:
    """Live view: each node's height and head (coloured by branch) and every reorg."""
    from testnet.watch import watch as run_watch
    cluster = _open(directory)

    async def go() -> None:
        try:
            await run_watch(cluster, duration=duration, interval=interval,
                            plain=plain or not console.is_terminal, console=console)
        finally:
            await cluster.close()
    try:
        _run(go())
    except KeyboardInterrupt:
        pass


def _serve_dashboard(cluster: Cluster, host: str, port: int, window: int, *,
                     open_browser: bool, controls: bool) -> None:
    """Serve the dashboard in the foreground until Ctrl-C; the nodes keep running after it."""
    from testnet.dashboard import serve_dashboard

    def started(url: str) -> None:
        console.print(f"Dashboard: [bold]{url}[/bold]  (Ctrl-C stops it; the nodes keep running)")
        if host not in ("127.0.0.1", "localhost", "::1") and controls:
            console.print("[yellow]The fault controls answer anyone who can reach this address; "
                          "--no-controls turns them off.[/yellow]")
        if open_browser:
            import webbrowser
            webbrowser.open(url)

    async def go() -> None:
        try:
            await serve_dashboard(cluster, host, port, window=window, controls=controls,
                                  started=started)
        finally:
            await cluster.close()
    try:
        _run(go())
    except KeyboardInterrupt:
        console.print("Dashboard stopped.")
    except OSError as exc:
        _fail(f"cannot serve the dashboard on {host}:{port}: {exc.strerror or exc}")


@main.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to bind (anything but loopback exposes the fault controls).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port to serve on (0: any free port).")
@click.option("--window", default=DEFAULT_WINDOW_BLOCKS, show_default=True,
              type=click.IntRange(1, MAX_WINDOW_BLOCKS),
              help="Heights of the block tree drawn at once (the page scrolls back further).")
@click.option("--open/--no-open", "open_browser", default=False, show_default=True,
              help="Open the page in a web browser.")
@click.option("--controls/--no-controls", default=True, show_default=True,
              help="Offer partition/heal and kill/start/restart/pause/resume on the page.")
@DIR_OPTION
def dashboard(host: str, port: int, window: int, open_browser: bool, controls: bool,
              directory: Path) -> None:
    """Live web dashboard: the block tree (branches side by side, heads, stale blocks, finality),
    the partition, node cards and the event timeline, with fault controls. Serves until Ctrl-C."""
    _serve_dashboard(_open(directory), host, port, window, open_browser=open_browser,
                     controls=controls)


# ---- one node ----------------------------------------------------------------------------------
@main.command("node")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Node config file (YAML).")
def node_cmd(config_path: str) -> None:
    """Run one node in the foreground from a config file."""
    from node.app import main as node_main
    sys.exit(node_main(config_path))


main.add_command(compose_command)  # testnet compose (testnet/compose_cli.py)

main.add_command(stake_command)

main.add_command(prometheus_command)  # testnet prometheus (testnet/prometheus_config.py)

if __name__ == "__main__":
    main()

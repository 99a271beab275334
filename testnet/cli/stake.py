"""`testnet stake`: deposits (a new validator joins after the activation delay: PoS epochs, or
two hybrid dynasties) and exits (PoS exits, hybrid logouts; stake withdrawable after the lock-up),
signed here and submitted through a node's API. PoS and hybrid sign the same objects."""

from __future__ import annotations

import json
from pathlib import Path

import click

from consensus.keys import derive_private_key, public_key
from consensus.pos.signing import sign_deposit, sign_exit
from testnet.cli.common import DIR_OPTION, fail, open_cluster, with_cluster
from testnet.cluster import Cluster
from testnet.config.cluster_files import validator_keys


def _cluster(directory: Path) -> Cluster:
    cluster = open_cluster(directory)
    if not cluster.manifest.has_validators:
        fail("staking exists on PoS and hybrid clusters only (testnet up --consensus pos|hybrid)")
    return cluster


@click.group()
def stake() -> None:
    """PoS and hybrid staking: `testnet stake deposit --from 0 --amount 3200000000`, `testnet
    stake exit v7`."""


@stake.command()
@click.option("--from", "from_account", default=0, show_default=True,
              help="Funded genesis account paying the stake.")
@click.option("--amount", required=True, type=int, help="Stake, in base units.")
@click.option("--label", default=None, help="Name of the new validator key (default: next free).")
@click.option("--node", default=0, show_default=True, help="Node to submit to.")
@DIR_OPTION
def deposit(from_account: int, amount: int, label: str | None, node: int, directory: Path) -> None:
    """Deposit stake for a new validator (its key is derived from the cluster seed)."""
    cluster = _cluster(directory)
    accounts = cluster.accounts()
    if not 0 <= from_account < len(accounts):
        fail(f"no genesis account {from_account}")
    if not 0 <= node < cluster.size:
        fail(f"no node {node} in this cluster (nodes 0..{cluster.size - 1})")
    extra_path = directory / "extra_validators.json"
    extra = json.loads(extra_path.read_text()) if extra_path.exists() else []
    label = label or f"extra/{len(extra)}"
    seed = str(cluster.info["manifest"]["seed"])
    key = derive_private_key(seed, f"validator/{label}")
    account_key = bytes.fromhex(accounts[from_account]["private_key"])

    async def go(cluster: Cluster) -> dict:
        client = cluster.client(node)
        nonce = (await client.account(accounts[from_account]["account"]))["nonce"]
        return await client.post_stake(
            "deposit", sign_deposit(account_key, public_key(key), amount, nonce).serialize())
    result = with_cluster(directory, go)
    extra.append({"label": label, "pubkey": public_key(key).hex(), "private_key": key.hex()})
    extra_path.write_text(json.dumps(extra, indent=2) + "\n")
    click.echo(f"deposit of {amount} for validator {public_key(key).hex()[:16]} ({label}): "
               f"{result['outcome']}; it activates after the activation delay once included")


@stake.command(name="exit")
@click.argument("validator")
@click.option("--node", default=0, show_default=True, help="Node to submit to.")
@DIR_OPTION
def exit_command(validator: str, node: int, directory: Path) -> None:
    """Exit a genesis validator (v7): its stake is withdrawable after the lock-up period."""
    cluster = _cluster(directory)
    if not (validator.startswith("v") and validator[1:].isdigit()):
        fail(f"name a validator like v7, got {validator!r}")
    if not 0 <= node < cluster.size:
        fail(f"no node {node} in this cluster (nodes 0..{cluster.size - 1})")
    index = int(validator[1:])
    keys = [k for node_keys in validator_keys(cluster.manifest) for k in node_keys]
    if index >= len(keys):
        fail(f"no genesis validator {validator} (0..{len(keys) - 1})")

    async def go(cluster: Cluster) -> dict:
        client = cluster.client(node)
        status = await client.status()
        return await client.post_stake(
            "exit", sign_exit(keys[index], index, status["epoch"]).serialize())
    result = with_cluster(directory, go)
    click.echo(f"exit of {validator}: {result['outcome']}")

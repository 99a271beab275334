"""`testnet stake`: PoS deposits (a new validator joins after the activation delay) and exits
(stake withdrawable after the lock-up), signed here and submitted through a node's API."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from consensus.keys import derive_private_key, public_key
from consensus.pos.signing import sign_deposit, sign_exit
from testnet.client import NodeAPIError
from testnet.cluster import Cluster
from testnet.cluster_files import validator_keys
from testnet.manifest import validate_manifest


def _cluster(directory: Path) -> Cluster:
    try:
        cluster = Cluster(directory)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    if cluster.info.get("consensus") != "pos":
        raise click.ClickException("staking exists on PoS clusters only (testnet up --consensus pos)")
    return cluster


async def _post(cluster: Cluster, node: int, kind: str, raw: bytes) -> dict:
    try:
        async with cluster.session.post(cluster.info["nodes"][node]["api"] + f"/stake/{kind}",
                                        json={"raw": raw.hex()}) as resp:
            body = await resp.json(content_type=None)
            if resp.status >= 400:
                raise NodeAPIError(resp.status, body.get("error", str(body)))
            return body
    finally:
        await cluster.close()


@click.group()
def stake() -> None:
    """PoS staking: `testnet stake deposit --from 0 --amount 3200000000`, `testnet stake exit v7`."""


@stake.command()
@click.option("--from", "from_account", default=0, show_default=True,
              help="Funded genesis account paying the stake.")
@click.option("--amount", required=True, type=int, help="Stake, in base units.")
@click.option("--label", default=None, help="Name of the new validator key (default: next free).")
@click.option("--node", default=0, show_default=True, help="Node to submit to.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=".testnet", show_default=True)
def deposit(from_account: int, amount: int, label: str | None, node: int, directory: Path) -> None:
    """Deposit stake for a new validator (its key is derived from the cluster seed)."""
    cluster = _cluster(directory)
    accounts = cluster.accounts()
    if not 0 <= from_account < len(accounts):
        raise click.ClickException(f"no genesis account {from_account}")
    extra_path = directory / "extra_validators.json"
    extra = json.loads(extra_path.read_text()) if extra_path.exists() else []
    label = label or f"extra/{len(extra)}"
    seed = str(cluster.info["manifest"]["seed"])
    key = derive_private_key(seed, f"validator/{label}")
    account_key = bytes.fromhex(accounts[from_account]["private_key"])

    async def go() -> dict:
        nonce = (await cluster.client(node).account(accounts[from_account]["account"]))["nonce"]
        return await _post(cluster, node, "deposit",
                           sign_deposit(account_key, public_key(key), amount, nonce).serialize())
    try:
        result = asyncio.run(go())
    except NodeAPIError as exc:
        raise click.ClickException(str(exc)) from None
    extra.append({"label": label, "pubkey": public_key(key).hex(), "private_key": key.hex()})
    extra_path.write_text(json.dumps(extra, indent=2) + "\n")
    click.echo(f"deposit of {amount} for validator {public_key(key).hex()[:16]} ({label}): "
               f"{result['outcome']}; it activates after the activation delay once included")


@stake.command(name="exit")
@click.argument("validator")
@click.option("--node", default=0, show_default=True, help="Node to submit to.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=".testnet", show_default=True)
def exit_command(validator: str, node: int, directory: Path) -> None:
    """Exit a genesis validator (v7): its stake is withdrawable after the lock-up period."""
    cluster = _cluster(directory)
    if not (validator.startswith("v") and validator[1:].isdigit()):
        raise click.ClickException(f"name a validator like v7, got {validator!r}")
    index = int(validator[1:])
    keys = [k for node_keys in validator_keys(validate_manifest(cluster.info["manifest"]))
            for k in node_keys]
    if index >= len(keys):
        raise click.ClickException(f"no genesis validator {validator} (0..{len(keys) - 1})")

    async def go() -> dict:
        status = await cluster.client(node).status()
        return await _post(cluster, node, "exit",
                           sign_exit(keys[index], index, status["epoch"]).serialize())
    try:
        result = asyncio.run(go())
    except NodeAPIError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"exit of {validator}: {result['outcome']}")

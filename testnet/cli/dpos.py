"""`testnet dpos ...` (and `testnet vote`): the token holders' side of a DPoS cluster. Operations
are signed here with a genesis account's key (accounts.json) and posted to a node's
`POST /dpos/operation`, as `testnet stake` does for PoS deposits.

Candidates are named as genesis lists them: `c0`, `c1`, ... (the schedule first, then the other
candidates; `v3` works too, as `testnet role v3 producer-offline` names the same producer), or by
their 64-hex key.
"""

from __future__ import annotations

from pathlib import Path

import click

from consensus.dpos.types import OpKind, sign_operation
from consensus.keys import public_key
from testnet.cli.common import DIR_OPTION, console, fail, open_cluster, with_cluster
from testnet.cluster import Cluster
from testnet.config.cluster_files import validator_keys


def _cluster(directory: Path) -> Cluster:
    cluster = open_cluster(directory)
    if not cluster.manifest.has_producers:
        fail("producers and votes exist on DPoS clusters only (testnet up --consensus dpos)")
    return cluster


def candidate_keys(cluster: Cluster, names: str) -> tuple[bytes, ...]:
    """`c1,c2,<hex>` -> public keys, in the order given."""
    genesis = [public_key(k) for node_keys in validator_keys(cluster.manifest) for k in node_keys]
    out = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name[:1] in ("c", "v") and name[1:].isdigit():
            index = int(name[1:])
            if index >= len(genesis):
                fail(f"no genesis candidate {name} (c0..c{len(genesis) - 1})")
            out.append(genesis[index])
        elif len(name) == 64:
            try:
                out.append(bytes.fromhex(name))
            except ValueError:
                fail(f"not a candidate name or key: {name!r}")
        else:
            fail(f"name candidates like c3 or by 64-hex key, got {name!r}")
    return tuple(out)


def _submit(directory: Path, from_account: int, node: int, kind: OpKind, *, amount: int = 0,
            candidates: tuple[bytes, ...] = ()) -> dict:
    cluster = _cluster(directory)
    accounts = cluster.accounts()
    if not 0 <= from_account < len(accounts):
        fail(f"no genesis account {from_account} (0..{len(accounts) - 1})")
    if not 0 <= node < cluster.size:
        fail(f"no node {node} in this cluster (nodes 0..{cluster.size - 1})")
    key = bytes.fromhex(accounts[from_account]["private_key"])

    async def go(cluster: Cluster) -> dict:
        client = cluster.client(node)
        nonce = (await client.account(accounts[from_account]["account"]))["pending_nonce"]
        op = sign_operation(key, kind, nonce, amount=amount, candidates=candidates)
        return await client.post_dpos_operation(op.serialize())
    return with_cluster(directory, go)


FROM = click.option("--from", "from_account", default=0, show_default=True,
                    help="Genesis account (accounts.json index) signing the operation.")
NODE = click.option("--node", default=0, show_default=True, help="Node to submit to.")


@click.group()
def dpos() -> None:
    """DPoS: `testnet dpos vote --from 0 --for c0,c1`, `register-candidate`, `stake`, `unstake`,
    `producers`."""


@click.command()
@FROM
@click.option("--for", "names", default="", help="Candidates c1,c2,... (empty: withdraw).")
@NODE
@DIR_OPTION
def vote(from_account: int, names: str, node: int, directory: Path) -> None:
    """Vote for up to 30 candidates with the account's stake; replaces its previous vote."""
    candidates = candidate_keys(_cluster(directory), names)
    result = _submit(directory, from_account, node, OpKind.VOTE, candidates=candidates)
    console.print(f"vote of account {from_account} for {len(candidates)} candidate(s): "
                  f"{result['outcome']}")


@click.command("register-candidate")
@FROM
@NODE
@DIR_OPTION
def register_candidate(from_account: int, node: int, directory: Path) -> None:
    """Register the account as a candidate (elected, it misses its slots unless a node runs its
    key)."""
    result = _submit(directory, from_account, node, OpKind.REGISTER)
    console.print(f"registration of account {from_account}: {result['outcome']}")


@click.command("stake")
@FROM
@click.option("--amount", required=True, type=click.IntRange(1), help="Base units.")
@NODE
@DIR_OPTION
def stake_command(from_account: int, amount: int, node: int, directory: Path) -> None:
    """Stake liquid balance (vote weight)."""
    result = _submit(directory, from_account, node, OpKind.STAKE, amount=amount)
    console.print(f"stake of {amount} by account {from_account}: {result['outcome']}")


@click.command()
@FROM
@click.option("--amount", required=True, type=click.IntRange(1), help="Base units.")
@NODE
@DIR_OPTION
def unstake(from_account: int, amount: int, node: int, directory: Path) -> None:
    """Unstake (refused while the account votes); the coins return after the unstake delay."""
    result = _submit(directory, from_account, node, OpKind.UNSTAKE, amount=amount)
    console.print(f"unstake of {amount} by account {from_account}: {result['outcome']}")


@click.command()
@NODE
@DIR_OPTION
def producers(node: int, directory: Path) -> None:
    """The schedule and every candidate's votes, produced and missed blocks (at one node)."""
    from rich.table import Table
    cluster = _cluster(directory)
    genesis = [public_key(k).hex() for node_keys in validator_keys(cluster.manifest)
               for k in node_keys]

    async def go(cluster: Cluster) -> dict:
        return await cluster.client(node).producers()
    data = with_cluster(directory, go)
    table = Table(title=f"schedule v{data['schedule_version']} "
                        f"(LIB {data['lib_height']}, {data['voters']} voters)")
    for col in ("candidate", "key", "votes", "scheduled", "produced", "missed", "slashed"):
        table.add_column(col)
    for c in data["candidates"]:
        name = f"c{genesis.index(c['producer'])}" if c["producer"] in genesis else "-"
        table.add_row(name, c["producer"][:16], str(c["votes"]),
                      "yes" if c["in_schedule"] else "", str(c["produced"]), str(c["missed"]),
                      "SLASHED" if c["slashed"] else "")
    console.print(table)
    if data["pending_schedule"]:
        console.print(f"pending schedule proposed at height {data['pending_height']}, active "
                      f"once that block is irreversible")


for _command in (vote, register_candidate, stake_command, unstake, producers):
    dpos.add_command(_command)

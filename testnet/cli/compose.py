"""`testnet compose`: write a compose file for a container network of any size and mix.

Registered on the `testnet` group by testnet/cli/main.py. The request is validated whole before the
file is written (testnet/backends/compose_file.py), so an impossible one leaves nothing behind.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from testnet.backends.compose_file import (
    CONSENSUS_CHOICES,
    DEFAULT_BASE_PORT,
    DEFAULT_IMAGE,
    NetworkRequest,
    network_compose,
    network_header,
    parse_assignments,
    render,
    validate_network_request,
)
from testnet.errors import ComposeSpecError


@click.command()
@click.option("--nodes", "-n", type=int, required=True, help="Number of nodes.")
@click.option("--consensus", default="pow", show_default=True,
              help=f"{' or '.join(CONSENSUS_CHOICES)}; the file also honours $CONSENSUS.")
@click.option("--topology", default="full", show_default=True,
              help="full, ring, line, star, random:K or groups:0,1|2,3.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed for keys, accounts and topology.")
@click.option("--block-interval", type=int, default=2, show_default=True,
              help="PoW: target seconds per block.")
@click.option("--hashrate", "hashrates", multiple=True,
              help="PoW hashrate cap in hashes/s: H for every node, or NODE=H / NODE=off for one "
                   "(repeatable).")
@click.option("--stake", "stakes", multiple=True,
              help="PoS: NODE=AMOUNT, the stake of each validator of that node in base units "
                   "(repeatable).")
@click.option("--role", "roles", multiple=True,
              help="NODE=ROLE, a role the node starts in, e.g. 3=selfish-miner (PoW) or "
                   "2=double-vote (all validators of a PoS node) (repeatable).")
@click.option("--base-port", type=int, default=DEFAULT_BASE_PORT, show_default=True,
              help="Host port of node0's API; node i gets BASE+i.")
@click.option("--image", default=DEFAULT_IMAGE, show_default=True,
              help="Node image (the file also honours $TESTNET_IMAGE).")
@click.option("--wait-healthy", is_flag=True,
              help="Nodes wait for node0's healthcheck before starting (docker compose only: "
                   "`docker stack deploy` rejects that form of depends_on).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The compose file to write ('-' for stdout).")
def compose(nodes: int, consensus: str, topology: str, seed: int, block_interval: int,
            hashrates: tuple[str, ...], stakes: tuple[str, ...], roles: tuple[str, ...],
            base_port: int, image: str, wait_healthy: bool, output: Path) -> None:
    """Write a compose file for an N-node network: `testnet compose --nodes 8 -o big.yml`.

    Deploy it with `docker compose -f big.yml up -d` (or docker-compose), or on a swarm with
    `docker stack deploy -c big.yml testnet`.
    """
    try:
        request = build_request(nodes, consensus, topology, seed, block_interval, hashrates,
                                stakes, roles, base_port, image, wait_healthy)
        validate_network_request(request)
    except ComposeSpecError as exc:
        raise click.ClickException(f"nothing written: {exc}") from None
    text = render(network_compose(request), network_header(request))
    if str(output) == "-":
        sys.stdout.write(text)
        return
    output.write_text(text)
    click.echo(f"Wrote a {nodes}-node {consensus} network to {output}: "
               f"docker compose -f {output} up -d   (APIs on ports {base_port}.."
               f"{base_port + nodes - 1})")


def build_request(nodes: int, consensus: str, topology: str, seed: int, block_interval: int,
                  hashrates: tuple[str, ...], stakes: tuple[str, ...], roles: tuple[str, ...],
                  base_port: int, image: str, wait_healthy: bool) -> NetworkRequest:
    """The NetworkRequest the options describe; raises ComposeSpecError naming the option."""
    default_rate = 20_000.0
    per_node: list[str] = []
    for value in hashrates:
        if "=" in value:
            per_node.append(value)
        else:
            default_rate = _positive_number("--hashrate ", value)
    rates = parse_assignments("--hashrate", tuple(per_node))
    for node, rate in rates.items():
        if rate.lower() not in ("off", "0"):
            _positive_number(f"--hashrate {node}=", rate)
    stake_amounts = {}
    for node, amount in parse_assignments("--stake", stakes).items():
        if not amount.isdigit():
            raise ComposeSpecError(f"--stake {node}={amount}: the stake is a whole number of base "
                                   "units")
        stake_amounts[node] = int(amount)
    command = " ".join(["testnet compose", *map(shlex.quote, sys.argv[2:])]) \
        if len(sys.argv) > 1 and sys.argv[1] == "compose" else ""
    return NetworkRequest(nodes=nodes, consensus=consensus, topology=topology, seed=seed,
                          block_interval=block_interval, hashrate=default_rate, hashrates=rates,
                          stakes=stake_amounts, roles=parse_assignments("--role", roles),
                          base_port=base_port, image=image, wait_healthy=wait_healthy,
                          command=command)


def _positive_number(option: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ComposeSpecError(f"{option}{text}: not a number of hashes/s") from None
    if value <= 0:
        raise ComposeSpecError(f"{option}{text}: must be positive (or NODE=off)")
    return value

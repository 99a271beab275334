"""`testnet`: launch, inspect, break and watch clusters, run scenarios and single nodes.

The commands live by what they act on: testnet/cli/cluster.py (up, down, status, logs, tx,
node), testnet/cli/faults.py (one command per fault verb of the action table), testnet/cli/run.py
(scenarios), testnet/cli/observe.py (watch, dashboard, replay), and compose, stake, dpos (and its
`vote`) and prometheus beside them; testnet/cli/experiments.py (compare, sweep). The
cluster commands take `--dir DIR` (default `./.testnet`, or $TESTNET_DIR) naming the cluster
they act on.
"""

from __future__ import annotations

import click

from testnet.cli.cluster import down, logs, node_cmd, status, tx, up
from testnet.cli.compose import compose
from testnet.cli.dpos import dpos, vote
from testnet.cli.experiments import compare, sweep
from testnet.cli.faults import fault_commands
from testnet.cli.observe import dashboard, replay, watch
from testnet.cli.prometheus import prometheus
from testnet.cli.run import run
from testnet.cli.stake import stake


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="p2p-testnet")
def main() -> None:
    """p2p-testnet: launch a peer-to-peer blockchain testnet, break it, watch forks resolve."""


for command in (up, down, status, logs, tx, *fault_commands(), run, watch, dashboard, replay,
                node_cmd, compose, stake, prometheus, dpos, vote, compare, sweep):
    main.add_command(command)


if __name__ == "__main__":
    main()

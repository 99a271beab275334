"""`testnet prometheus`: write a Prometheus scrape config for the cluster (testnet/observe/
prometheus_config.py), and optionally become the Prometheus server on it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from testnet.cli.common import DIR_OPTION
from testnet.errors import TestnetError
from testnet.observe.prometheus_config import (
    DEFAULT_LISTEN,
    JOB_NAME,
    find_prometheus,
    prometheus_command,
    write_config,
)
from testnet.units import parse_duration_s


@click.command()
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for prometheus.yml, targets.json and (with --run) the TSDB "
                   "[default: DIR/prometheus].")
@click.option("--scrape-interval", default="1s", show_default=True,
              help="How often Prometheus scrapes each node, e.g. 1s, 500ms, 15s.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.option("--run", is_flag=True, help="Then run the Prometheus server on it (foreground).")
@click.option("--prometheus-bin", default="prometheus", show_default=True,
              help="Prometheus server binary (Debian package: prometheus).")
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True,
              help="With --run: the server's web and query API address.")
@DIR_OPTION
def prometheus(out: Path | None, scrape_interval: str, as_json: bool, run: bool,
               prometheus_bin: str, listen: str, directory: Path) -> None:
    """Write a Prometheus scrape config for the cluster's nodes; --run starts the server.

    Run it again after the cluster changed: a running Prometheus picks up the new targets.json.
    Then query e.g. testnet_reorgs_total or testnet_head_height at http://LISTEN/graph.
    """
    try:
        interval_s = parse_duration_s(scrape_interval)
        binary = find_prometheus(prometheus_bin) if run else None
        written = write_config(directory, out, scrape_interval_s=interval_s)
    except TestnetError as exc:
        raise click.ClickException(str(exc)) from None
    command = prometheus_command(binary, written, listen) if binary else None
    if as_json:
        click.echo(json.dumps({**written, **({"command": command} if command else {})}, indent=2))
    else:
        click.echo(f"Wrote {written['config']} (job {JOB_NAME}, every "
                   f"{written['scrape_interval']}) and {len(written['targets'])} targets to "
                   f"{written['targets_file']}")
        if not command:
            click.echo(f"Run: prometheus --config.file={written['config']} "
                       f"--storage.tsdb.path={written['storage']}   (or add --run)")
    if command:
        if not as_json:
            click.echo(f"Starting Prometheus on http://{listen} (Ctrl-C stops it)")
        sys.stdout.flush()
        os.execv(command[0], command)

"""`testnet prometheus`: a Prometheus scrape config for the cluster in --dir, and optionally the
server itself.

Every node serves GET /metrics (node/metrics.py). This writes two files into the output folder
(default DIR/prometheus):

  prometheus.yml  one job, `testnet`, whose targets come from file service discovery
  targets.json    one target per node, labelled `node=<name>`, re-read by a running Prometheus
                  whenever it changes (so a restarted or grown cluster needs only a re-run of
                  `testnet prometheus`, not a restart of the server)

With --run it then replaces itself with the Prometheus binary (Debian's `prometheus` package),
listening on --listen and keeping its TSDB in OUT/data. Tests call `write_config` and
`prometheus_command` directly to start a server on a free port.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click
import yaml

from testnet.cluster_files import read_cluster
from testnet.units import parse_duration_s

JOB_NAME = "testnet"
CONFIG_FILE = "prometheus.yml"
TARGETS_FILE = "targets.json"
STORAGE_DIR = "data"
DEFAULT_LISTEN = "127.0.0.1:9090"
DEBIAN_PACKAGE = "prometheus"
# Prometheus re-reads file_sd files on change (inotify); this is the fallback re-read period.
TARGETS_REFRESH = "5s"
MAX_SCRAPE_TIMEOUT_MS = 10_000


class PrometheusConfigError(ValueError):
    """The cluster or the options cannot give a scrape config; the message says why."""


def prometheus_duration(seconds: float) -> str:
    """Prometheus's duration syntax for `seconds`: 1s, 500ms, 2m."""
    ms = round(seconds * 1000)
    if ms <= 0:
        raise PrometheusConfigError(f"a scrape interval must be positive, got {seconds!r} s")
    if ms % 60_000 == 0:
        return f"{ms // 60_000}m"
    if ms % 1000 == 0:
        return f"{ms // 1000}s"
    return f"{ms}ms"


def scrape_targets(cluster: dict) -> list[dict]:
    """file_sd entries: one per node, `host:port` of its API and a `node` label."""
    targets = []
    for position, node in enumerate(cluster.get("nodes") or []):
        name = node.get("name") or f"nodes[{position}]"
        api = node.get("api")
        if not api:
            raise PrometheusConfigError(f"{name}: no api URL in cluster.json")
        url = urlsplit(api)
        if url.scheme not in ("http", "https") or not url.hostname or url.port is None:
            raise PrometheusConfigError(f"{name}: api {api!r} is not an http://host:port URL")
        host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname
        targets.append({"targets": [f"{host}:{url.port}"], "labels": {"node": name}})
    if not targets:
        raise PrometheusConfigError("cluster.json lists no nodes")
    return targets


def prometheus_yaml(scrape_interval_s: float) -> dict:
    """The server config: one `testnet` job reading its targets from targets.json."""
    interval = prometheus_duration(scrape_interval_s)
    timeout = prometheus_duration(min(scrape_interval_s, MAX_SCRAPE_TIMEOUT_MS / 1000))
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [{
            "job_name": JOB_NAME,
            "scrape_interval": interval,
            "scrape_timeout": timeout,  # Prometheus refuses a timeout above the interval
            "metrics_path": "/metrics",
            # Nodes label their own series node=<name>; keep that instead of exported_node.
            "honor_labels": True,
            # Relative to this file, so the folder can move.
            "file_sd_configs": [{"files": [TARGETS_FILE], "refresh_interval": TARGETS_REFRESH}],
        }],
    }


def _write_atomically(path: Path, text: str) -> None:
    """A running Prometheus watches targets.json: it must never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_config(directory: Path, out: Path | None = None, *,
                 scrape_interval_s: float = 1.0) -> dict:
    """Write prometheus.yml and targets.json for the cluster in `directory`; return what was
    written. Raises FileNotFoundError (no cluster) or PrometheusConfigError."""
    cluster = read_cluster(Path(directory))
    targets = scrape_targets(cluster)
    config = prometheus_yaml(scrape_interval_s)
    out = Path(out) if out is not None else Path(directory) / "prometheus"
    out.mkdir(parents=True, exist_ok=True)
    _write_atomically(out / TARGETS_FILE, json.dumps(targets, indent=2) + "\n")
    _write_atomically(out / CONFIG_FILE, yaml.safe_dump(config, sort_keys=False))
    return {"config": str((out / CONFIG_FILE).resolve()),
            "targets_file": str((out / TARGETS_FILE).resolve()),
            "storage": str((out / STORAGE_DIR).resolve()),
            "job": JOB_NAME, "scrape_interval": config["global"]["scrape_interval"],
            "targets": [{"node": t["labels"]["node"], "address": t["targets"][0]}
                        for t in targets]}


def find_prometheus(binary: str = "prometheus") -> str:
    """The path of the Prometheus server binary, or PrometheusConfigError saying how to get it."""
    found = shutil.which(binary)
    if found is None:
        raise PrometheusConfigError(
            f"Prometheus server {binary!r} not found: install Debian's {DEBIAN_PACKAGE} package "
            f"(apt-get install {DEBIAN_PACKAGE}) or pass --prometheus-bin PATH")
    return found


def prometheus_command(binary: str, written: dict, listen: str = DEFAULT_LISTEN) -> list[str]:
    """The argv that runs Prometheus on a config `write_config` wrote."""
    return [binary, f"--config.file={written['config']}",
            f"--storage.tsdb.path={written['storage']}", f"--web.listen-address={listen}"]


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
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=lambda: os.environ.get("TESTNET_DIR", ".testnet"), show_default="./.testnet",
              help="Cluster folder (also $TESTNET_DIR).")
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
    except (FileNotFoundError, ValueError) as exc:
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

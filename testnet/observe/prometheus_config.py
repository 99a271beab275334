"""`testnet prometheus`: a Prometheus scrape config for the cluster in --dir, and optionally the
server itself.

Every node serves GET /metrics (node/metrics.py). This writes two files into the output folder
(default DIR/prometheus):

  prometheus.yml  one job, `testnet`, whose targets come from file service discovery
  targets.json    one target per node, labelled `node=<name>`, re-read by a running Prometheus
                  whenever it changes (so a restarted or grown cluster needs only a re-run of
                  `testnet prometheus`, not a restart of the server)

With --run (testnet/cli/prometheus.py) it then replaces itself with the Prometheus binary
(Debian's `prometheus` package), listening on --listen and keeping its TSDB in OUT/data. Tests
call `write_config` and `prometheus_command` directly to start a server on a free port.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from testnet.config.cluster_files import read_cluster
from testnet.errors import PrometheusConfigError

JOB_NAME = "testnet"
CONFIG_FILE = "prometheus.yml"
TARGETS_FILE = "targets.json"
STORAGE_DIR = "data"
DEFAULT_LISTEN = "127.0.0.1:9090"
DEBIAN_PACKAGE = "prometheus"
# Prometheus re-reads file_sd files on change (inotify); this is the fallback re-read period.
TARGETS_REFRESH = "5s"
MAX_SCRAPE_TIMEOUT_MS = 10_000


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

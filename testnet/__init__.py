"""The p2p-testnet orchestrator: generates clusters, starts and breaks them, observes and judges
them. It drives nodes only from outside: through their HTTP API and their processes or containers.

Its rooms, and which way their imports point (tests/testnet/test_layout.py keeps them so):

    errors.py  units.py  waiting.py  client.py   the vocabulary: one error root, units users type,
                                                  the one wait, the one HTTP client to a node
    config/     what a cluster is: manifest, topology, the files of a cluster folder
    backends/   where nodes run: local processes, Docker Compose, Swarm (one protocol)
    cluster.py  a running cluster (LocalCluster for tests and scenarios)
    faults/     plans as values (grudge), the mechanism (nemesis), the action table
    history/    reading a run's record: accessors, ancestry, the union block tree and its layout
    checks/     verdicts (valid / invalid / unknown) and fork metrics of a record
    report/     the report folder's pictures and page
    observe/    collector, dashboard, terminal watch, Prometheus config
    scenarios/  scenario files, the runner, what a run leaves behind
    experiments/ a scenario run many times per consensus and grid point: tables, intervals,
                 theory, the experiment page
    cli/        the `testnet` command, on top of all

config/, history/, checks/ and report/ are pure (no processes, no network): a run's verdicts and
pictures can be recomputed from its history.jsonl alone.
"""

from testnet.cluster import LocalCluster

__all__ = ["LocalCluster"]

"""The p2p-testnet orchestrator: generates clusters, starts and breaks them, observes them.

It drives nodes only from outside: through their HTTP API and their processes.
"""

from testnet.cluster import LocalCluster

__all__ = ["LocalCluster"]

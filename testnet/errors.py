"""The orchestrator's exceptions: one root, so callers catch `TestnetError` and nothing broader.

Everything the orchestrator refuses or cannot do on purpose is a `TestnetError` with a message a
user can act on: bad input (a manifest, a scenario step, a partition spec: these also subclass
ValueError, as aiohttp's errors subclass the builtins callers expect), a node that does not
answer or answers with an error, a backend that cannot do what was asked, a condition that did
not hold in time. A `KeyError`, `ValueError` or `TypeError` that is *not* one of these comes from
a bug in our own code and is left to surface as one: the runner and the CLI never catch it as "the
step failed".
"""

from __future__ import annotations


class TestnetError(Exception):
    """Root of every error the orchestrator raises on purpose."""

    __test__ = False   # not a pytest test class, whatever its name says


# ---- talking to nodes ----------------------------------------------------------------------------
class NodeUnreachable(TestnetError, ConnectionError):
    """A node did not answer: connection refused or reset, a timeout, a stream that broke."""


class NodeAPIError(TestnetError):
    """A node answered with an HTTP error; `status` and the node's own `message` say why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class UnknownNode(TestnetError, LookupError):
    """A node name or index that is not part of the cluster."""

    def __str__(self) -> str:   # LookupError would quote the message like a dict key
        return str(self.args[0]) if self.args else ""


class UnknownAccount(TestnetError, LookupError):
    """A genesis account index or a recipient key that does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# ---- waiting -------------------------------------------------------------------------------------
class WaitTimeout(TestnetError, TimeoutError):
    """A condition did not hold in time; the message names it and what was last seen."""


class NodeDown(WaitTimeout):
    """A node being waited for is not running (it exited or crashed at start)."""


# ---- what a cluster is, and where it runs --------------------------------------------------------
class ManifestError(TestnetError, ValueError):
    """A cluster description that cannot run; the message names the field (and node)."""


class TopologyError(ManifestError):
    """A topology name that does not parse, or that cannot connect the nodes."""


class ClusterNotFound(TestnetError, FileNotFoundError):
    """A folder with no cluster.json."""


class BackendError(TestnetError):
    """A backend cannot do what was asked; the message says why and what to do."""


class DockerUnavailable(BackendError):
    """No Docker engine answers (or the SDK is missing)."""


class ComposeSpecError(TestnetError, ValueError):
    """A compose-file request that cannot be written; names the option and the node."""


class EnvConfigError(TestnetError, ValueError):
    """A container's environment that does not describe a node; names the variable."""


# ---- faults, scenarios, checks -------------------------------------------------------------------
class PartitionSpecError(TestnetError, ValueError):
    """A partition that cannot be built (unknown node, overlapping groups, ...)."""


class UnitError(TestnetError, ValueError):
    """A duration, percentage or rate that does not parse (`200ms`, `5%`, `100kB/s`)."""


class ActionError(TestnetError, ValueError):
    """Arguments of a fault or scenario action that do not validate; names the field."""


class NemesisError(TestnetError):
    """A fault that could not be applied to the running cluster."""


class ScenarioError(TestnetError, ValueError):
    """A scenario file that cannot run; the message names the step (or check) and field."""


class CheckSpecError(TestnetError, ValueError):
    """A check named in a scenario that does not validate; names the check and field."""


class CampaignError(TestnetError, ValueError):
    """A crash campaign or soak that cannot run as asked; names the option."""


# ---- observing -----------------------------------------------------------------------------------
class DashboardError(TestnetError, ValueError):
    """A request the dashboard refuses; the message names the offending value."""


class PrometheusConfigError(TestnetError, ValueError):
    """A Prometheus setting that cannot be written or run."""


class HistoryFileError(TestnetError, ValueError):
    """A report folder whose history.jsonl is missing or unreadable; names the line."""

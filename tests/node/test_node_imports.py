"""A running node imports only what it needs (issue 11: idle node memory <= 60 MB VmRSS).

`python -m node` is the entry of every local node process; what its modules import at start-up
stays resident for the node's life. The orchestrator's libraries (the CLI's click and rich, the
Docker SDK, plotting, pydantic for manifests and scenarios) and testnet/ itself belong to the
process that drives nodes, never to a node. A fresh interpreter imports the entry module and
reports its sys.modules; this test names whichever of them got in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ORCHESTRATOR_ONLY = ("testnet", "pydantic", "pydantic_core", "click", "rich", "docker",
                     "matplotlib", "numpy", "pandas", "requests", "hypothesis", "playwright")
REPORT_MODULES = """
import json, sys
import node.__main__, node.app, node.api, node.admin_api, node.config, node.metrics
print(json.dumps(sorted(sys.modules)))
"""


def test_a_node_process_imports_no_orchestrator_module():
    done = subprocess.run([sys.executable, "-c", REPORT_MODULES], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    modules = json.loads(done.stdout)
    found = sorted(m for m in modules if m.split(".")[0] in ORCHESTRATOR_ONLY)
    assert found == [], f"a node process imports orchestrator-only modules: {found}"
    assert "node.app" in modules and "aiohttp.web" in modules   # the report is of a node

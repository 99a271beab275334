"""The orchestrator's rooms and which way their imports point (the design of issue 10):

    errors, units, waiting, client, clock   the vocabulary every room uses
    sim        the simulation's loop, network and in-memory HTTP (under backends)
    config     what a cluster is                 history   reading a run's record
    backends   where nodes run                   checks    verdicts and metrics of a record
    cluster    a running cluster                 report    pictures and pages of a record
    faults     plans, the nemesis, the action table
    observe    collector, dashboard, watch, prometheus
    scenarios  spec, runner, outcome             cli       the `testnet` command, on top

config/, history/, checks/ and report/ are pure: they import nothing that talks to a node or
runs a process, so a run's verdicts and pictures can be recomputed from its files alone.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTNET = ROOT / "testnet"
VOCABULARY = {"errors", "units", "waiting", "client", "clock"}
MAY_IMPORT = {
    "errors": set(), "units": {"errors"}, "waiting": {"errors"}, "client": {"errors"},
    "clock": set(), "sim": VOCABULARY | {"config"},
    "config": VOCABULARY, "history": VOCABULARY,
    "checks": VOCABULARY | {"history"}, "report": VOCABULARY | {"history"},
    "backends": VOCABULARY | {"config", "sim"},
    "cluster": VOCABULARY | {"config", "backends"},
    "faults": VOCABULARY | {"config", "backends", "cluster"},
    "observe": VOCABULARY | {"config", "backends", "cluster", "faults", "history"},
    "scenarios": VOCABULARY | {"config", "backends", "cluster", "faults", "history", "checks",
                               "report", "observe"},
    "experiments": VOCABULARY | {"config", "backends", "cluster", "faults", "history", "checks",
                                 "report", "observe", "scenarios"},
}
PURE_ROOMS = ("config", "history", "checks", "report")
LIVE_MODULES = ("aiohttp", "asyncio", "docker", "subprocess", "socket")


def room_of(path: Path) -> str:
    parts = path.relative_to(TESTNET).parts
    return parts[0] if len(parts) > 1 else path.stem


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def rooms_imported(names: set[str]) -> set[str]:
    return {name.split(".")[1] for name in names
            if name.startswith("testnet.") and (TESTNET / name.split(".")[1]).exists()
            or name.startswith("testnet.") and (TESTNET / f"{name.split('.')[1]}.py").exists()}


def test_imports_point_one_way():
    wrong = []
    for path in sorted(TESTNET.rglob("*.py")):
        room = room_of(path)
        if room in ("__init__", "cli") or room not in MAY_IMPORT:
            continue
        for other in rooms_imported(imports_of(path)) - {room} - MAY_IMPORT[room]:
            wrong.append(f"{path.relative_to(ROOT)} ({room}) imports testnet.{other}")
    assert not wrong, "\n".join(wrong)


def test_pure_rooms_import_nothing_live():
    live = []
    for room in PURE_ROOMS:
        for path in sorted((TESTNET / room).rglob("*.py")):
            found = {n for n in imports_of(path)
                     if n.split(".")[0] in LIVE_MODULES or n in ("testnet.client",)}
            live += [f"{path.relative_to(ROOT)} imports {n}" for n in sorted(found)]
    assert not live, "\n".join(live)


def test_few_modules_at_the_top_and_none_too_long():
    top = sorted(p.name for p in TESTNET.glob("*.py"))
    assert len(top) <= 8, top
    too_long = [f"{p.relative_to(ROOT)}: {n} lines"
                for folder in ("consensus", "p2p", "node", "testnet", "tests", "scripts")
                for p in sorted((ROOT / folder).rglob("*.py"))
                if (n := len(p.read_text().splitlines())) > 600]
    assert not too_long, too_long

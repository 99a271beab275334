"""Scenario parameters: `params:` with defaults, `${name}` templates, and `only:` filters.

An experiment runs one scenario file at many parameter points and under several consensuses
(testnet/experiments/). The file declares what may vary and its default:

    params: {delay: 0ms, share: 0.3}
    steps:
      - link: {delay: "${delay}"}
      - role: {node: 0, role: selfish, hashrate_share: "${share}"}
        only: [pow]

Templates are filled before the scenario is validated, so a filled value is checked like a
typed one. A template that is the whole text takes the value's own type (`"${share}"` -> 0.3); a
template inside a longer text is replaced by its text. An unknown name is an error naming it.
`only: [pow, hybrid]` on a step or a check keeps it only under those consensuses.
"""

from __future__ import annotations

import re
from typing import Any

from testnet.errors import ScenarioError

TEMPLATE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")
CONSENSUSES = ("pow", "pos", "hybrid", "dpos")


def fill_templates(value: Any, params: dict[str, Any], where: str = "") -> Any:
    """`value` with every `${name}` replaced by `params[name]` (recursively)."""
    if isinstance(value, dict):
        return {k: fill_templates(v, params, f"{where}.{k}" if where else str(k))
                for k, v in value.items()}
    if isinstance(value, list):
        return [fill_templates(v, params, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    for name in TEMPLATE.findall(value):
        if name not in params:
            raise ScenarioError(f"{where or 'scenario'}: unknown parameter ${{{name}}} "
                                f"(params: {', '.join(sorted(params)) or 'none declared'})")
    whole = TEMPLATE.fullmatch(value)
    if whole:
        return params[whole.group(1)]
    return TEMPLATE.sub(lambda m: str(params[m.group(1)]), value)


def resolve_params(declared: dict[str, Any], given: dict[str, Any] | None) -> dict[str, Any]:
    """The declared defaults overridden by `given`; a given name that is not declared is an
    error."""
    given = given or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ScenarioError(f"unknown parameter {unknown[0]!r} (params: "
                            f"{', '.join(sorted(declared)) or 'none declared'})")
    return {**declared, **given}


def keep_for(entry: Any, consensus: str, where: str) -> bool:
    """Whether a step or check with an optional `only:` list applies under `consensus`."""
    if not isinstance(entry, dict) or "only" not in entry:
        return True
    only = entry["only"]
    if isinstance(only, str):
        only = [only]
    if not isinstance(only, list) or not all(c in CONSENSUSES for c in only):
        raise ScenarioError(f"{where}: only: a list of {list(CONSENSUSES)}, got {only!r}")
    return consensus in only


def strip_only(entry: Any) -> Any:
    return {k: v for k, v in entry.items() if k != "only"} if isinstance(entry, dict) else entry

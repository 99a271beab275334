"""Checks as scenarios name them: small dicts (`{"converged_within": 30}`), validated before a
run starts and run against its history afterwards.

`validate_check_spec` refuses a bad one (CheckSpecError naming the check and field) before anything
starts; `check_from_spec` runs one; `run_checks` runs a scenario's list the way Jepsen's
`check-safe` does: a checker that raises becomes an `unknown` verdict carrying the exception, and
the other checks still run, so a checker's bug never costs a run its verdicts or its report.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from testnet.checks.chain import chains_valid, converged_within, max_reorg_depth
from testnet.checks.durability import no_honest_slashing, stored_blocks_kept
from testnet.checks.events import event_seen
from testnet.checks.finality import (
    finality_during_partition,
    finality_resumed_within,
    no_conflicting_finality,
    no_finalized_block_reverted,
    slashed_everywhere,
)
from testnet.checks.irreversibility import (
    lib_during_partition,
    lib_resumed_within,
    missed_after_schedule_change,
    no_conflicting_lib,
    no_irreversible_block_reverted,
)
from testnet.checks.result import VERDICTS, CheckResult, Verdict
from testnet.checks.transactions import tx_final, tx_reversed
from testnet.errors import CheckSpecError
from testnet.history.readers import REFERENCES

log = logging.getLogger(__name__)


def _positive_number(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0):
        raise CheckSpecError(f"{field} must be a positive number of seconds, got {value!r}")
    return value


def _int_at_least(field: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise CheckSpecError(f"{field} must be an integer >= {low}, got {value!r}")
    return value


def _only_keys(field: str, value: dict, allowed: set[str], required: set[str]) -> None:
    extra = sorted(set(value) - allowed)
    if extra:
        raise CheckSpecError(f"{field}: unknown field {extra[0]!r} (allowed: {sorted(allowed)})")
    missing = sorted(required - set(value))
    if missing:
        raise CheckSpecError(f"{field}: missing field {missing[0]!r}")


def _after(field: str, value: Any) -> str | float:
    if value in REFERENCES:
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise CheckSpecError(f"{field} must be one of {list(REFERENCES)} or a timestamp, got {value!r}")


def _timed_args(name: str, value: Any) -> dict:
    if isinstance(value, dict):
        _only_keys(name, value, {"seconds", "after"}, {"seconds"})
        return {"seconds": _positive_number(f"{name}.seconds", value["seconds"]),
                "after": _after(f"{name}.after", value.get("after", "last_heal"))}
    return {"seconds": _positive_number(name, value)}


def _reorg_args(value: Any) -> dict:
    if isinstance(value, dict):
        _only_keys("max_reorg_depth", value, {"k", "honest_only"}, {"k"})
        honest = value.get("honest_only", True)
        if not isinstance(honest, bool):
            raise CheckSpecError(f"max_reorg_depth.honest_only must be true or false, got "
                                 f"{honest!r}")
        return {"k": _int_at_least("max_reorg_depth.k", value["k"], 0), "honest_only": honest}
    return {"k": _int_at_least("max_reorg_depth", value, 0)}


def _event_args(value: Any) -> dict:
    if not isinstance(value, dict):
        raise CheckSpecError(f"event_seen takes {{type: ..., contains: ..., node: ...}}, got "
                             f"{value!r}")
    _only_keys("event_seen", value, {"type", "contains", "node"}, {"type"})
    for key in value:
        if not isinstance(value[key], str) or not value[key]:
            raise CheckSpecError(f"event_seen.{key} must be a non-empty string, got {value[key]!r}")
    return dict(value)


def _flag_args(name: str, value: Any) -> dict:
    if value is not True:
        raise CheckSpecError(f"{name} takes true, got {value!r}")
    return {}


def _tx_args(name: str, value: Any, confirmations: bool) -> dict:
    if isinstance(value, dict):
        _only_keys(name, value, {"tx", "confirmations"} if confirmations else {"tx"}, {"tx"})
        args = {"txid_or_label": _tx_name(f"{name}.tx", value["tx"])}
        if "confirmations" in value:
            args["min_confirmations"] = _int_at_least(f"{name}.confirmations",
                                                      value["confirmations"], 1)
        return args
    return {"txid_or_label": _tx_name(name, value)}


def _tx_name(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise CheckSpecError(f"{field} must be a tx label or txid, got {value!r}")
    return value


CHECKS: dict[str, Callable[..., CheckResult]] = {
    "finality_during_partition": lambda h, **kw: finality_during_partition(h, expect=True, **kw),
    "no_finality_during_partition": lambda h, **kw: finality_during_partition(h, expect=False,
                                                                            **kw),
    "slashed_everywhere": slashed_everywhere,
    "converged_within": converged_within,
    "max_reorg_depth": max_reorg_depth,
    "no_conflicting_finality": no_conflicting_finality,
    "no_finalized_block_reverted": no_finalized_block_reverted,
    "finality_resumed_within": finality_resumed_within,
    "tx_final": tx_final,
    "tx_reversed": tx_reversed,
    "chains_valid": chains_valid,
    "event_seen": event_seen,
    "stored_blocks_kept": stored_blocks_kept,
    "no_honest_slashing": no_honest_slashing,
    "no_conflicting_lib": no_conflicting_lib,
    "no_irreversible_block_reverted": no_irreversible_block_reverted,
    "lib_advanced_during_partition": lambda h, **kw: lib_during_partition(h, expect=True, **kw),
    "lib_stalled_during_partition": lambda h, **kw: lib_during_partition(h, expect=False, **kw),
    "lib_resumed_within": lib_resumed_within,
    "missed_after_schedule_change": missed_after_schedule_change,
}

def _nodes_args(name: str, value: Any) -> dict:
    if value is True:
        return {}
    if isinstance(value, list) and all(isinstance(v, (int, str)) for v in value):
        return {"nodes": [v if isinstance(v, str) else f"node{v}" for v in value]}
    raise CheckSpecError(f"{name} takes true or a list of nodes, got {value!r}")


def _slashed_args(value: Any) -> dict:
    if not isinstance(value, dict):
        raise CheckSpecError(f"slashed_everywhere takes {{validator: N, within: seconds}}, got "
                         f"{value!r}")
    _only_keys("slashed_everywhere", value, {"validator", "within"}, {"validator", "within"})
    return {"validator": _int_at_least("slashed_everywhere.validator", value["validator"], 0),
            "within_s": _positive_number("slashed_everywhere.within", value["within"])}


_SPEC_ARGS: dict[str, Callable[[Any], dict]] = {
    "finality_during_partition": lambda v: _nodes_args("finality_during_partition", v),
    "no_finality_during_partition": lambda v: _nodes_args("no_finality_during_partition", v),
    "slashed_everywhere": _slashed_args,
    "converged_within": lambda v: _timed_args("converged_within", v),
    "max_reorg_depth": _reorg_args,
    "no_conflicting_finality": lambda v: _flag_args("no_conflicting_finality", v),
    "no_finalized_block_reverted": lambda v: _flag_args("no_finalized_block_reverted", v),
    "finality_resumed_within": lambda v: _timed_args("finality_resumed_within", v),
    "tx_final": lambda v: _tx_args("tx_final", v, confirmations=True),
    "tx_reversed": lambda v: _tx_args("tx_reversed", v, confirmations=False),
    "chains_valid": lambda v: _flag_args("chains_valid", v),
    "event_seen": _event_args,
    "stored_blocks_kept": lambda v: _flag_args("stored_blocks_kept", v),
    "no_honest_slashing": lambda v: _flag_args("no_honest_slashing", v),
    "no_conflicting_lib": lambda v: _flag_args("no_conflicting_lib", v),
    "no_irreversible_block_reverted": lambda v: _flag_args("no_irreversible_block_reverted", v),
    "lib_advanced_during_partition": lambda v: _nodes_args("lib_advanced_during_partition", v),
    "lib_stalled_during_partition": lambda v: _nodes_args("lib_stalled_during_partition", v),
    "lib_resumed_within": lambda v: _timed_args("lib_resumed_within", v),
    "missed_after_schedule_change": lambda v: {
        "at_most": _int_at_least("missed_after_schedule_change", v, 0)},
}


def _parse_spec(spec: Any) -> tuple[str, dict, Verdict | None]:
    if not isinstance(spec, dict):
        raise CheckSpecError(f"a check must be a mapping like {{'converged_within': 30}}, "
                         f"got {spec!r}")
    unknown = sorted(k for k in spec if k != "expect" and k not in CHECKS)
    if unknown:
        raise CheckSpecError(f"unknown check {unknown[0]!r} (known: {', '.join(CHECKS)})")
    names = [k for k in spec if k in CHECKS]
    if len(names) != 1:
        raise CheckSpecError(f"a check names exactly one of {', '.join(CHECKS)}; got "
                         f"{names or 'none'}")
    expect = spec.get("expect")
    if expect is not None and expect not in VERDICTS:
        raise CheckSpecError(f"expect must be one of {list(VERDICTS)}, got {expect!r}")
    return names[0], _SPEC_ARGS[names[0]](spec[names[0]]), expect


def validate_check_spec(spec: Any) -> None:
    """Raise ValueError naming the bad key or field of a scenario's check."""
    _parse_spec(spec)


def check_from_spec(history: list[dict], spec: dict) -> CheckResult:
    """Run the check a scenario names; with `expect`, the result says whether that verdict came."""
    name, args, expect = _parse_spec(spec)
    result = CHECKS[name](history, **args)
    return replace(result, expected=expect) if expect else result


def run_checks(history: list[dict], specs: list[dict]) -> list[CheckResult]:
    """Every check of a scenario against the history, each guarded: one that raises is `unknown`
    with the exception in its message and evidence, and the others still run."""
    results = []
    for spec in specs:
        name, args, expect = _parse_spec(spec)
        try:
            outcome = CHECKS[name](history, **args)
        except Exception as exc:  # noqa: BLE001  Jepsen's check-safe: a checker bug is `unknown`
            log.exception("check %s raised; its verdict is unknown", name)
            outcome = CheckResult(name, "unknown", f"the checker raised {type(exc).__name__}: "
                                  f"{exc}", {"exception": repr(exc), "spec": spec})
        results.append(replace(outcome, expected=expect) if expect else outcome)
    return results

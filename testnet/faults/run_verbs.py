"""The verbs that exist only inside a scenario run (testnet run): waits, pauses, notes,
transactions and background load. Declared in the same action table as the faults, so a scenario
step of any kind is validated and performed the same way; performing one needs the runner's hooks
(`ActionContext.run`), which the CLI and the dashboard do not have.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import ValidationInfo, model_validator

from testnet.errors import ActionError
from testnet.faults.actions import Action, ActionArgs, ActionContext, register
from testnet.faults.targets import node_list, non_negative_int, number, require, target_of
from testnet.units import parse_duration_s

WAIT_KEYS = {"height", "converged", "nodes", "timeout", "finalized_epoch", "finalized_epochs",
             "tx", "confirmations", "blocks", "epochs", "event", "lib_height", "lib_blocks",
             "rounds"}
WAIT_GOALS = ("height", "blocks", "converged", "finalized_epoch", "finalized_epochs", "epochs",
              "tx", "event", "lib_height", "lib_blocks", "rounds")
DPOS_WAITS = ("lib_height", "lib_blocks", "rounds")


class SleepArgs(ActionArgs):
    seconds: float

    @model_validator(mode="before")
    @classmethod
    def _raw(cls, raw: Any) -> dict:
        return {"seconds": parse_duration_s(raw)}

    def plain(self) -> Any:
        return self.seconds


async def _sleep(ctx: ActionContext, args: SleepArgs) -> None:
    await asyncio.sleep(args.seconds)


class LogArgs(ActionArgs):
    text: str

    @model_validator(mode="before")
    @classmethod
    def _raw(cls, raw: Any) -> dict:
        return {"text": str(raw)}

    def plain(self) -> Any:
        return self.text


async def _log(ctx: ActionContext, args: LogArgs) -> None:
    ctx.observe("note", text=args.text)


class WaitArgs(ActionArgs):
    """Until a condition holds on the (given, else running) nodes, or `timeout`."""
    timeout: float
    nodes: list[int] | None = None
    height: int | None = None
    blocks: int | None = None
    converged: float | None = None
    finalized_epoch: int | None = None
    finalized_epochs: int | None = None
    epochs: int | None = None
    tx: str | None = None
    confirmations: int | None = None
    event: dict[str, str] | None = None
    lib_height: int | None = None      # DPoS: every node's LIB at this height or above
    lib_blocks: int | None = None      # DPoS: ... this many blocks above the highest LIB now
    rounds: int | None = None          # DPoS: the nodes' slot clocks this many rounds on

    @model_validator(mode="before")
    @classmethod
    def _raw(cls, raw: Any, info: ValidationInfo) -> dict:
        target = target_of(info)
        if raw == "converged":
            return {"converged": 60.0, "timeout": 60.0, "nodes": None}
        if not isinstance(raw, dict):
            raise ActionError("wait takes 'converged' or a mapping like {height: 10}")
        unknown = set(raw) - WAIT_KEYS
        if unknown:
            raise ActionError(f"unknown wait field(s) {sorted(unknown)}; use {sorted(WAIT_KEYS)}")
        out: dict[str, Any] = {"timeout": parse_duration_s(raw.get("timeout", 120))}
        for key in ("height", "blocks"):
            if key in raw:
                out[key] = non_negative_int(raw[key], key)
        if "converged" in raw:
            value = raw["converged"]
            out["converged"] = 60.0 if value is True else parse_duration_s(value)
            out["timeout"] = out["converged"]
        for key in ("finalized_epoch", "finalized_epochs", "epochs"):
            if key in raw:
                if not target.manifest.has_finality:
                    raise ActionError(f"{key}: epochs and finality exist on PoS and hybrid "
                                      f"clusters only")
                out[key] = non_negative_int(raw[key], key)
        for key in DPOS_WAITS:
            if key in raw:
                if not target.manifest.has_irreversibility:
                    raise ActionError(f"{key}: the LIB and rounds exist on DPoS clusters only")
                out[key] = non_negative_int(raw[key], key)
        if "tx" in raw:
            out["tx"] = str(raw["tx"])
            out["confirmations"] = non_negative_int(raw.get("confirmations", 1),
                                                    "confirmations")
        if "event" in raw:
            out["event"] = _event_spec(raw["event"])
        out["nodes"] = node_list(raw.get("nodes"), target, "nodes")
        if not set(WAIT_GOALS) & set(out):
            raise ActionError("wait needs one of height, blocks, converged, finalized_epoch(s), "
                             "epochs, tx, event, lib_height, lib_blocks, rounds")
        return out


def _event_spec(value: Any) -> dict:
    """`event: {type: block_rejected, contains: "in the future"}` (or just the type): wait until
    a node (one of `nodes`, when given) emits it after the step starts."""
    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, dict) or "type" not in value:
        raise ActionError(f"event takes a type or {{type: ..., contains: ...}}, got {value!r}")
    unknown = set(value) - {"type", "contains"}
    if unknown:
        raise ActionError(f"event: unknown field(s) {sorted(unknown)}; use type, contains")
    for key, text in value.items():
        if not isinstance(text, str) or not text:
            raise ActionError(f"event.{key} must be a non-empty string, got {text!r}")
    return dict(value)


async def _wait(ctx: ActionContext, args: WaitArgs) -> None:
    await ctx.runner("wait").wait(args)


class TxArgs(ActionArgs):
    """A signed transfer from a funded genesis account; `conflicts_with` reuses the nonce of an
    earlier labelled transfer (a double spend)."""
    sender: int
    to: int | str
    amount: int
    fee: int
    node: int
    conflicts_with: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _raw(cls, raw: Any, info: ValidationInfo) -> dict:
        target = target_of(info)
        require(raw, {"amount"}, {"from", "to", "fee", "node", "conflicts_with", "wait"})
        return {"sender": non_negative_int(raw.get("from", 0), "from"),
                "to": raw.get("to", 1),
                "amount": non_negative_int(raw["amount"], "amount"),
                "fee": non_negative_int(raw.get("fee", 1), "fee"),
                "node": target.node(raw.get("node", 0)),
                "conflicts_with": raw.get("conflicts_with")}

    def plain(self) -> Any:
        return {"from": self.sender, "to": self.to, "amount": self.amount, "fee": self.fee,
                "node": self.node, "conflicts_with": self.conflicts_with}


async def _tx(ctx: ActionContext, args: TxArgs) -> None:
    await ctx.runner("tx").send_tx(args, ctx.label or f"tx{ctx.step}")


class VoteArgs(ActionArgs):
    """DPoS: genesis account `from` votes with its stake for genesis candidates (`for`: indices,
    as `c3` / `v3` name them), replacing its previous vote; `from` may list several accounts."""
    accounts: list[int]
    candidates: list[int]
    node: int

    @model_validator(mode="before")
    @classmethod
    def _raw(cls, raw: Any, info: ValidationInfo) -> dict:
        target = target_of(info)
        if not target.manifest.has_producers:
            raise ActionError("vote: votes exist on DPoS clusters only")
        require(raw, {"from", "for"}, {"node"})
        senders = raw["from"] if isinstance(raw["from"], list) else [raw["from"]]
        candidates = raw["for"]
        if not isinstance(candidates, list):
            raise ActionError(f"for: a list of candidate indices, got {candidates!r}")
        for c in candidates:
            if non_negative_int(c, "for") >= target.validators:
                raise ActionError(f"for: candidate {c} does not exist (0..{target.validators - 1})")
        return {"accounts": [non_negative_int(a, "from") for a in senders],
                "candidates": [int(c) for c in candidates],
                "node": target.node(raw.get("node", 0))}

    def plain(self) -> Any:
        return {"from": self.accounts, "for": self.candidates, "node": self.node}


async def _vote(ctx: ActionContext, args: VoteArgs) -> None:
    await ctx.runner("vote").send_votes(args)


class RaceArgs(ActionArgs):
    """A double-spend race (Rosenfeld 2014): until the withholding `attacker` decides. It waits
    until the labelled payment `tx` has `confirmations` on the best honest chain, then until its
    private branch has more work than that chain (it would win: publish) or has fallen
    `give_up_behind` blocks behind (it gives up). The step ends at the decision; the next step
    (`role: {node: N, role: honest}`) publishes the branch either way."""
    attacker: int
    tx: str
    confirmations: int
    give_up_behind: int
    timeout: float

    @model_validator(mode="before")
    @classmethod
    def _raw(cls, raw: Any, info: ValidationInfo) -> dict:
        target = target_of(info)
        if not target.manifest.has_mining:
            raise ActionError("race: a double-spend race needs miners (PoW, hybrid)")
        if not isinstance(raw, dict):
            raise ActionError("race takes {attacker: N, tx: LABEL, confirmations: Z, "
                              "give_up_behind: D}")
        require(raw, {"attacker", "tx"}, {"confirmations", "give_up_behind", "timeout"})
        confirmations = non_negative_int(raw.get("confirmations", 1), "confirmations")
        behind = non_negative_int(raw.get("give_up_behind", 10), "give_up_behind")
        if confirmations < 1:
            raise ActionError("race: confirmations must be at least 1 (the payment's own block)")
        if behind < 1:
            raise ActionError("race: give_up_behind must be at least 1 block")
        return {"attacker": target.node(raw["attacker"]), "tx": str(raw["tx"]),
                "confirmations": confirmations, "give_up_behind": behind,
                "timeout": parse_duration_s(raw.get("timeout", 600))}


async def _race(ctx: ActionContext, args: RaceArgs) -> None:
    await ctx.runner("race").race(args)


class LoadArgs(ActionArgs):
    """Background transfers at `tps` for `duration`, each account through one node."""
    tps: float
    duration_s: float
    nodes: list[int] | None = None

    @model_validator(mode="before")
    @classmethod
    def _raw(cls, raw: Any, info: ValidationInfo) -> dict:
        require(raw, {"tps", "duration"}, {"nodes"})
        tps = number(raw["tps"], "tps")
        if not tps > 0:
            raise ActionError(f"tps: must be positive, got {raw['tps']!r}")
        return {"tps": tps, "duration_s": parse_duration_s(raw["duration"]),
                "nodes": node_list(raw.get("nodes"), target_of(info), "nodes")}


async def _load(ctx: ActionContext, args: LoadArgs) -> None:
    ctx.runner("load").start_load(args)


register(Action("wait", "Wait until a condition holds (height, convergence, finality, a tx, an "
                "event).", WaitArgs, _wait, scope="run"))
register(Action("sleep", "Let time pass.", SleepArgs, _sleep, scope="run"))
register(Action("log", "Write a note into the run's history.", LogArgs, _log, scope="run"))
register(Action("tx", "Send a signed transfer (label it to check it later).", TxArgs, _tx,
                scope="run"))
register(Action("load", "Send transfers in the background.", LoadArgs, _load, scope="run"))
register(Action("race", "A double-spend race: until the withholding attacker would win or gives "
                "up.", RaceArgs, _race, scope="run"))
register(Action("vote", "DPoS: genesis accounts vote for candidates.", VoteArgs, _vote,
                scope="run"))

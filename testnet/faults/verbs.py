"""Every verb of the action table (testnet/faults/actions.py), each declared once: its arguments,
how it is performed, and how the CLI spells it.

To add a fault: write its argument model (a `before` validator turns what users write into the
normalised fields; raise ActionError with the message they should read), an async `perform`
calling the nemesis, and `register(Action(...))`. Scenarios, the CLI and the dashboard pick it up.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationInfo, model_validator

from testnet.config.manifest import ROLES
from testnet.errors import ActionError
from testnet.faults import grudge as grudges
from testnet.faults.actions import Action, ActionArgs, ActionContext, CliParam, register
from testnet.faults.targets import (
    integer,
    node_list,
    non_negative_int,
    number,
    require,
    target_of,
)
from testnet.units import parse_duration_s, parse_fraction, parse_rate_bps

NODE_ARG = CliParam("node", ("node",))


# ---- processes -----------------------------------------------------------------------------------
class NodeArgs(ActionArgs):
    """One node: `kill: 2`, `kill: node2`, `kill: random` (seeded), or `{node: 2}`."""
    node: int

    @model_validator(mode="before")
    @classmethod
    def _raw(cls, raw: Any, info: ValidationInfo) -> dict:
        target = target_of(info)
        value = require(raw, {"node"})["node"] if isinstance(raw, dict) else raw
        if value == "random":
            return {"node": target.rng.randrange(target.nodes)}
        return {"node": target.node(value)}

    def plain(self) -> Any:
        return self.node


def _process_verb(name: str, summary: str, *, dashboard: bool) -> None:
    async def perform(ctx: ActionContext, args: NodeArgs) -> dict | None:
        return await getattr(ctx.nemesis, name)(args.node)
    register(Action(name, summary, NodeArgs, perform, scope="node", cli=(NODE_ARG,),
                    on_dashboard=dashboard))


_process_verb("kill", "SIGKILL a node (no shutdown code runs).", dashboard=True)
_process_verb("stop", "Stop a node cleanly (SIGTERM).", dashboard=False)
_process_verb("start", "Start a stopped or killed node; it rejoins with its chain.", dashboard=True)
_process_verb("restart", "Stop and start a node.", dashboard=True)
_process_verb("pause", "Freeze a node (SIGSTOP on its process group; `docker pause` for a "
              "container).", dashboard=True)
_process_verb("resume", "Unfreeze a paused node (SIGCONT; `docker unpause`).", dashboard=True)


# ---- partitions ----------------------------------------------------------------------------------
PARTITION_KINDS = ("groups", "isolate", "one_way", "halves", "majorities_ring", "bridge", "grudge")


class PartitionArgs(ActionArgs):
    """A partition as a grudge (who drops whom), from any of the partition kinds."""
    grudge: dict[str, list[int]]
    layer: str = "p2p"

    @model_validator(mode="before")
    @classmethod
    def _raw(cls, raw: Any, info: ValidationInfo) -> dict:
        target = target_of(info)
        if isinstance(raw, str):
            raw = {"groups": raw}
        if not isinstance(raw, dict):
            raise ActionError(f"a partition is one of {', '.join(PARTITION_KINDS[:-1])}, "
                             f"got {raw!r}")
        unknown = set(raw) - set(PARTITION_KINDS) - {"layer", "seed"}
        if unknown:
            raise ActionError(f"unknown field(s) {sorted(unknown)}")
        kinds = [k for k in PARTITION_KINDS if k in raw and raw[k] not in (None, False, "", ())]
        if len(kinds) != 1:
            raise ActionError("give groups (e.g. 0,1|2,3) or exactly one of isolate, one_way, "
                             "halves, majorities_ring, bridge")
        kind = kinds[0]
        layer = raw.get("layer", "p2p")
        if layer not in ("p2p", "net"):
            raise ActionError(f"layer: {layer!r} is not p2p or net")
        rng = target.rng if raw.get("seed") is None else _seeded(raw["seed"])
        grudge = _grudge(kind, raw[kind], target, rng)
        return {"grudge": {str(k): sorted(v) for k, v in grudge.items()}, "layer": layer}

    def plain(self) -> Any:
        return self.grudge if self.layer == "p2p" else {"grudge": self.grudge,
                                                          "layer": self.layer}

    def as_grudge(self) -> grudges.Grudge:
        return {int(k): set(v) for k, v in self.grudge.items()}

    def summary(self) -> str:
        return f"Partition: {grudges.describe(self.as_grudge())}"


def _seeded(seed: Any) -> Any:
    import random
    return random.Random(integer(seed, "seed"))


def _grudge(kind: str, value: Any, target: Any, rng: Any) -> grudges.Grudge:
    """grudge.from_spec on the spec with every node reference resolved as the target names
    nodes (an index, "2" or "node2")."""
    if kind == "groups":
        if isinstance(value, str):   # "0,1|2,3" or "node0|node1": names resolve as typed
            parts = value.split("|")
            if any(not part.strip() for part in parts):
                raise grudges.PartitionSpecError(f"empty group in {value!r}")
            value = [[t for t in part.split(",") if t.strip()] for part in parts]
        if not isinstance(value, list) or not all(isinstance(g, list) for g in value):
            raise ActionError(f"groups: a list of node lists or a text like 0,1|2,3, got {value!r}")
        value = [[target.node(_strip(x), "groups") for x in group] for group in value]
    elif kind == "isolate":
        value = target.node(value, "isolate")
    elif kind == "one_way" and not isinstance(value, str):
        if not isinstance(value, list) or not all(
                isinstance(cut, list | tuple) and len(cut) == 2 for cut in value):
            raise ActionError(f"one_way: cuts like 0>1 or [[0, 1]], got {value!r}")
        value = [(target.node(a, "one_way"), target.node(b, "one_way")) for a, b in value]
    elif kind == "grudge":
        if not isinstance(value, dict) or not all(isinstance(v, list) for v in value.values()):
            raise ActionError(f"grudge maps a node to the nodes it drops, got {value!r}")
        value = {target.node(k, "grudge"): [target.node(v, "grudge") for v in dropped]
                 for k, dropped in value.items()}
    return grudges.from_spec(target.nodes, {kind: value}, rng)


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


async def _partition(ctx: ActionContext, args: PartitionArgs) -> dict | None:
    return await ctx.nemesis.partition(args.as_grudge(), args.layer)


register(Action(
    "partition", "Split the network into groups that drop each other's messages.", PartitionArgs,
    _partition,
    cli=(CliParam("groups", ("groups",), many=True),
         CliParam("isolate", ("--isolate",), help="Cut one node off from all others."),
         CliParam("one_way", ("--oneway",),
                  help="Asymmetric cut: A>B means B no longer hears A (A still hears B)."),
         CliParam("halves", ("--halves",), flag=True, help="Two halves."),
         CliParam("majorities_ring", ("--majorities-ring",), flag=True,
                  help="Each node sees a different majority."),
         CliParam("bridge", ("--bridge",), flag=True,
                  help="Two sides joined only through one node."),
         CliParam("seed", ("--seed",), help="Shuffle for halves/ring/bridge."),
         CliParam("layer", ("--layer",), choices=("p2p", "net"),
                  help="p2p: the nodes drop each other's messages (link shaper); net: packets "
                       "are dropped below the nodes (iptables in each container; docker "
                       "backend).")),
    cli_help="Split the network: `testnet partition 0,1 2,3,4` (groups), or one of the options."))


class NoArgs(ActionArgs):
    """`heal: true` in a scenario; nothing on the command line."""

    @model_validator(mode="before")
    @classmethod
    def _raw(cls, raw: Any) -> dict:
        if raw not in (True, None, {}):
            raise ActionError(f"takes no arguments (write `true`), got {raw!r}")
        return {}

    def plain(self) -> Any:
        return True


async def _heal(ctx: ActionContext, args: NoArgs) -> dict | None:
    return await ctx.nemesis.heal()


register(Action("heal", "Remove every partition (link shaping set with `testnet link` stays).",
                NoArgs, _heal, cli=()))


# ---- links ---------------------------------------------------------------------------------------
LINK_FIELDS = ("delay", "jitter", "loss", "duplicate", "reorder", "rate")


class LinkArgs(ActionArgs):
    """Shape what `from` nodes send to `to` nodes (all when omitted)."""
    rule: dict[str, int | float]   # bandwidth_bps stays an int: the node insists
    sources: list[int] | None = None
    targets: list[int] | None = None

    @model_validator(mode="before")
    @classmethod
    def _raw(cls, raw: Any, info: ValidationInfo) -> dict:
        target = target_of(info)
        if not isinstance(raw, dict):
            raise ActionError("link takes a mapping like {delay: 200ms, loss: 5%}")
        unknown = set(raw) - set(LINK_FIELDS) - {"from", "to"}
        if unknown:
            raise ActionError(f"unknown link field(s) {sorted(unknown)}; use "
                             f"{sorted([*LINK_FIELDS, 'from', 'to'])}")
        rule: dict[str, int | float] = {}
        if raw.get("delay") is not None:
            rule["delay_ms"] = parse_duration_s(raw["delay"], default_unit="ms") * 1000
        if raw.get("jitter") is not None:
            rule["jitter_ms"] = parse_duration_s(raw["jitter"], default_unit="ms") * 1000
        for key in ("loss", "duplicate", "reorder"):
            if raw.get(key) is not None:
                rule[key] = parse_fraction(raw[key])
        if raw.get("rate") is not None:
            rule["bandwidth_bps"] = parse_rate_bps(raw["rate"])
        if not rule:
            raise ActionError("link needs at least one of delay, jitter, loss, duplicate, "
                             "reorder, rate")
        return {"rule": rule, "sources": node_list(raw.get("from"), target, "from"),
                "targets": node_list(raw.get("to"), target, "to")}

    def plain(self) -> Any:
        return {"rule": self.rule, "from": self.sources, "to": self.targets}


async def _link(ctx: ActionContext, args: LinkArgs) -> dict | None:
    return await ctx.nemesis.link(dict(args.rule), args.sources, args.targets)


register(Action(
    "link", "Shape links in the p2p layer: delay, jitter, loss, duplication, reordering, rate.",
    LinkArgs, _link,
    cli=(CliParam("delay", ("--delay",), help="Added latency, e.g. 200ms."),
         CliParam("jitter", ("--jitter",), help="Uniform +- jitter, e.g. 50ms."),
         CliParam("loss", ("--loss",), help="Drop probability, e.g. 5%."),
         CliParam("duplicate", ("--duplicate",), help="Duplication probability, e.g. 1%."),
         CliParam("reorder", ("--reorder",),
                  help="Probability a frame skips the delay queue."),
         CliParam("rate", ("--rate",), help="Bandwidth cap, e.g. 100kB/s."),
         CliParam("from", ("--from",), help="Sending nodes, e.g. 0 or 0,1 (default all)."),
         CliParam("to", ("--to",), help="Receiving nodes (default all)."),
         CliParam("clear", ("--clear",), flag=True, verb="link_clear",
                  help="Remove link shaping (from --from nodes, or all).")),
    cli_help="Shape links in the p2p layer: `testnet link --delay 200ms --jitter 50ms --loss 5%`."))


class LinkClearArgs(ActionArgs):
    """`link_clear: true` (all nodes) or `{from: 0,1}` (what those nodes send)."""
    nodes: list[int] | None = None

    @model_validator(mode="before")
    @classmethod
    def _raw(cls, raw: Any, info: ValidationInfo) -> dict:
        if raw in (True, None):
            return {}
        require(raw, set(), {"from"})
        return {"nodes": node_list(raw.get("from"), target_of(info), "from")}

    def plain(self) -> Any:
        return True if self.nodes is None else {"from": self.nodes}


async def _link_clear(ctx: ActionContext, args: LinkClearArgs) -> dict | None:
    return await ctx.nemesis.link_clear(args.nodes)


register(Action("link_clear", "Remove link shaping.", LinkClearArgs, _link_clear))


# ---- clocks, roles, miners -----------------------------------------------------------------------
class SkewArgs(ActionArgs):
    node: int
    offset_s: float

    @model_validator(mode="before")
    @classmethod
    def _raw(cls, raw: Any, info: ValidationInfo) -> dict:
        require(raw, {"node", "offset"})
        return {"node": target_of(info).node(raw["node"]),
                "offset_s": parse_duration_s(raw["offset"])}


async def _skew(ctx: ActionContext, args: SkewArgs) -> dict | None:
    return await ctx.nemesis.skew(args.node, args.offset_s)


register(Action("skew", "Offset a node's clock: `testnet skew 1 +30s` (0 to reset).", SkewArgs,
                _skew, scope="node",
                cli=(NODE_ARG, CliParam("offset", ("offset",)))))


class RoleArgs(ActionArgs):
    """A node's mining role (PoW, hybrid: `{node: 3, role: selfish-miner}`), or one validator's
    role (PoS, hybrid: `{validator: 7, role: double-vote}`, `v7` on the command line), or one
    DPoS producer's (`{validator: 3, role: producer-offline}`, `v3`)."""
    role: str
    node: int | None = None
    validator: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _raw(cls, raw: Any, info: ValidationInfo) -> dict:
        target = target_of(info)
        manifest = target.manifest
        if isinstance(raw, dict) and "target" in raw:   # the CLI: `role v7 double-vote`
            raw = _role_target(raw, manifest.has_mining,
                               manifest.has_validators or manifest.has_producers)
        if not isinstance(raw, dict):
            raise ActionError("role takes {node: N, role: R} or {validator: N, role: R}")
        of_validator = "validator" in raw or not manifest.has_mining
        roles = manifest.validator_roles() if of_validator else manifest.miner_roles()
        require(raw, {"validator" if of_validator else "node", "role"})
        # a censor names its account: `censor:<64 hex>` (DPoS producers)
        if str(raw["role"]).partition(":")[0] not in roles:
            raise ActionError(f"role: unknown {'validator' if of_validator else 'miner'} role "
                             f"{raw['role']!r} (roles: {', '.join(roles)})")
        if not of_validator:
            return {"node": target.node(raw["node"]), "role": raw["role"]}
        if not (manifest.has_validators or manifest.has_producers):
            raise ActionError("validators exist on PoS and hybrid clusters only (producers on "
                              "DPoS)")
        validator = non_negative_int(raw["validator"], "validator")
        if validator >= target.validators:
            raise ActionError(f"validator: v{validator} does not exist (validators are "
                             f"0..{target.validators - 1})")
        return {"validator": validator, "role": raw["role"]}


def _role_target(raw: dict, mining: bool, validators: bool) -> dict:
    require(raw, {"target", "role"})
    text, role = str(raw["target"]), raw["role"]
    if text.startswith("v") and text[1:].isdigit():
        if not validators:
            raise ActionError("validators (v7) exist on PoS and hybrid clusters only")
        return {"validator": int(text[1:]), "role": role}
    if not mining:
        raise ActionError("on a PoS cluster a role names a validator, e.g. v7")
    return {"node": text, "role": role}


async def _role(ctx: ActionContext, args: RoleArgs) -> dict | None:
    if args.validator is not None:
        node = ctx.nemesis.validator_node(args.validator)
        return await ctx.nemesis.role(node, args.role, args.validator)
    assert args.node is not None   # one of the two, by validation
    return await ctx.nemesis.role(args.node, args.role)


ALL_ROLES = tuple(sorted({role for roles in ROLES.values() for role in roles}))
register(Action(
    "role", "Switch a miner's, validator's or producer's behaviour.", RoleArgs, _role, scope="node",
    cli=(CliParam("target", ("target",)), CliParam("role", ("role",), choices=ALL_ROLES)),
    cli_help="Switch behaviour. PoW and hybrid miners: `testnet role 4 selfish-miner` (honest, "
             "selfish-miner, withhold; back to honest releases withheld blocks). PoS and hybrid "
             "validators: `testnet role v7 double-vote` (honest, silent, double-vote, "
             "surround-vote; PoS also double-propose) for validator 7. DPoS producers: "
             "`testnet role v3 producer-offline` (honest, producer-offline, double-produce, "
             "censor: leaves genesis account 0 out of its blocks; `censor:<hex>` in scenarios)."))


class MinerArgs(ActionArgs):
    node: int
    share: float | None = None
    hashrate: float | None = None
    enabled: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _raw(cls, raw: Any, info: ValidationInfo) -> dict:
        require(raw, {"node"}, {"share", "hashrate", "enabled"})
        out: dict[str, Any] = {"node": target_of(info).node(raw["node"])}
        if raw.get("share") is not None:
            share = parse_fraction(raw["share"])
            if not 0 < share < 1:
                raise ActionError("share: must be between 0% and 100%")
            out["share"] = share
        if raw.get("hashrate") is not None:
            rate = number(raw["hashrate"], "hashrate")
            if not rate > 0:
                raise ActionError(f"hashrate: must be positive, got {raw['hashrate']!r}")
            out["hashrate"] = rate
        if raw.get("enabled") is not None:
            if not isinstance(raw["enabled"], bool):
                raise ActionError(f"enabled: true or false, got {raw['enabled']!r}")
            out["enabled"] = raw["enabled"]
        return out


async def _miner(ctx: ActionContext, args: MinerArgs) -> dict | None:
    rate = args.hashrate
    if args.share is not None:
        rate = ctx.cluster.manifest.hashrate_for_share(args.node, args.share)
    entry = await ctx.nemesis.miner(args.node, enabled=args.enabled, hashrate=rate)
    ctx.observe("miner_set", node=ctx.cluster.name(args.node), hashrate=rate,
                enabled=args.enabled)
    return entry


register(Action(
    "miner", "Change a node's miner: `testnet miner 3 --share 51%`.", MinerArgs, _miner,
    scope="node",
    cli=(NODE_ARG, CliParam("hashrate", ("--hashrate",), help="Cap in hashes/s."),
         CliParam("share", ("--share",),
                  help="Hashrate share of the whole cluster, e.g. 51% (caps this node so that "
                       "it holds that share of the other nodes' configured total)."),
         CliParam("enabled", ("--on/--off",), help="Start or stop mining."))))


import testnet.faults.run_verbs  # noqa: E402,F401  (the scenario-only verbs: wait, tx, load, ...)

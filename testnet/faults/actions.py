"""The action table: every verb a user can aim at a cluster, declared once.

Each entry of `ACTIONS` is an `Action`: its name, a one-line summary, its argument model
(pydantic; it accepts what a scenario file, the CLI and the dashboard send and normalises it), the
coroutine that performs it (a nemesis verb, or a hook of the scenario runner), and how the CLI
spells it. Everything else reads this table:

- scenario files validate each step with `validate_action` (testnet/scenarios/spec.py), and the
  runner performs it with `perform_action`;
- `testnet partition|heal|link|kill|...` are generated from it (testnet/cli/faults.py);
- the dashboard offers the node verbs marked `on_dashboard` and performs every control through it
  (testnet/observe/dashboard.py).

Adding a fault verb is adding one `Action` here (docs/faults-and-scenarios.md shows one).

Arguments are validated against a target (testnet/faults/targets.py): a scenario's plan before
anything runs, or the live cluster. Errors are ActionError with one line naming the field, which
callers prefix with where it came from:
`step 3 (partition): node 7 does not exist (nodes are 0..3)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from testnet.errors import ActionError
from testnet.faults.targets import Target

if TYPE_CHECKING:
    from testnet.cluster import Cluster
    from testnet.faults.nemesis import Nemesis

Scope = Literal["cluster", "node", "validator", "run"]


class ActionArgs(BaseModel):
    """Base of every argument model: frozen, no unknown fields, validated against a target."""
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def plain(self) -> Any:
        """The normalised arguments as plain JSON (a scenario's schedule.json shows them)."""
        return self.model_dump(by_alias=True, exclude_unset=True)

    def summary(self) -> str | None:
        """A line the CLI prints before performing (None: nothing worth saying)."""
        return None


class RunHooks(Protocol):
    """What the scenario runner lends to the actions that only make sense inside a run."""

    def observe(self, what: str, **data: Any) -> None: ...
    async def wait(self, args: Any) -> None: ...
    async def send_tx(self, args: Any, label: str) -> None: ...
    def start_load(self, args: Any) -> None: ...
    async def send_votes(self, args: Any) -> None: ...
    async def race(self, args: Any) -> None: ...


@dataclass
class ActionContext:
    """What performing an action needs: the cluster and its nemesis, and inside a scenario run,
    the runner's hooks and the step being played."""
    cluster: Cluster
    nemesis: Nemesis
    run: RunHooks | None = None
    step: int | None = None
    label: str | None = None

    def observe(self, what: str, **data: Any) -> None:
        if self.run is not None:
            self.run.observe(what, **data)

    def runner(self, action: str) -> RunHooks:
        if self.run is None:
            raise ActionError(f"{action} exists only inside a scenario run (testnet run)")
        return self.run


@dataclass(frozen=True)
class CliParam:
    """How the CLI spells one raw argument.

    `decls` are click declarations: `("node",)` is a positional argument, `("--delay",)` an
    option, `("--on/--off",)` a boolean pair. A `flag` is included in the raw arguments only when
    given; `many` collects a variadic positional, joined with `join`. `verb` makes the flag select
    another action (`testnet link --clear` is `link_clear`).
    """
    key: str
    decls: tuple[str, ...]
    help: str = ""
    flag: bool = False
    many: bool = False
    join: str = "|"
    choices: tuple[str, ...] | None = None
    verb: str | None = None


@dataclass(frozen=True)
class Action:
    name: str
    summary: str
    args: type[ActionArgs]
    perform: Callable[[ActionContext, Any], Awaitable[dict | None]]
    scope: Scope = "cluster"
    cli: tuple[CliParam, ...] | None = None     # None: not a `testnet` command of its own
    cli_help: str = ""                           # the command's --help (default: summary)
    on_dashboard: bool = False                   # a button on each dashboard node card


# The table itself is filled by testnet/faults/verbs.py, which declares each verb.
ACTIONS: dict[str, Action] = {}


def register(action: Action) -> Action:
    if action.name in ACTIONS:
        raise RuntimeError(f"action {action.name!r} declared twice")
    ACTIONS[action.name] = action
    return action


def get_action(name: str) -> Action:
    _load_verbs()
    try:
        return ACTIONS[name]
    except KeyError:
        raise ActionError(f"unknown action {name!r} (actions: {', '.join(ACTIONS)})") from None


def all_actions() -> dict[str, Action]:
    _load_verbs()
    return ACTIONS


def _load_verbs() -> None:
    # The verbs are declared in their own modules (they import this one); importing them here,
    # on first use, keeps the table whole whichever module a caller imported first.
    import testnet.faults.verbs  # noqa: F401


def validate_action(name: str, raw: Any, target: Target) -> ActionArgs:
    """The arguments of `name` from what a user wrote, checked against `target`; raises
    ActionError with one line naming the field."""
    action = get_action(name)
    try:
        return action.args.model_validate(raw, context={"target": target})
    except ValidationError as exc:
        raise ActionError(first_error(exc)) from None


def first_error(exc: ValidationError) -> str:
    """One line for the first problem: our own validators' words as they are, pydantic's with
    the field they concern."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    kind = err["type"]
    if kind == "value_error":
        cause = (err.get("ctx") or {}).get("error")
        message = str(cause) if cause is not None else err["msg"]
        return f"{loc}: {message}" if loc and not message.startswith(loc) else message
    if kind == "missing":
        return f"missing field(s) {[loc]}"
    if kind == "extra_forbidden":
        return f"unknown field(s) {[loc]}"
    return f"{loc}: {err['msg']}" if loc else err["msg"]


async def perform_action(name: str, context: ActionContext, args: ActionArgs) -> dict | None:
    """Performs a validated action; returns its nemesis.jsonl entry (None for run actions)."""
    return await get_action(name).perform(context, args)


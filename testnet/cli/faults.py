"""`testnet partition|heal|link|kill|stop|start|pause|resume|restart|skew|role|miner`: one command
per verb of the action table that has a command-line spelling (testnet/faults/actions.py).

Each command is generated from its `Action`: positional arguments and options from its `CliParam`s,
the help from its summary. What the user typed goes, as raw arguments, through the same validation
as a scenario step (against the live cluster), then the same `perform` -- so the CLI cannot drift
from scenarios and the dashboard. A new verb in the table is a new command here, with no code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from testnet.cli.common import DIR_OPTION, console, open_cluster, run_async
from testnet.faults.actions import (
    Action,
    ActionContext,
    CliParam,
    all_actions,
    perform_action,
    validate_action,
)
from testnet.faults.nemesis import Nemesis
from testnet.faults.targets import LiveTarget


def said(entry: dict) -> None:
    """One line for a nemesis.jsonl entry: `partition applied on node0, node1 (...)`."""
    shown = {**entry["params"], **entry.get("result", {})}
    params = ", ".join(f"{k}={v}" for k, v in shown.items() if k not in ("grudge",))
    nodes = ", ".join(entry["nodes"])
    verb = "applied" if entry["type"] == "fault_applied" else "cleared"
    console.print(f"{entry['fault']} {verb} on {nodes or 'no nodes'}" + (f" ({params})" if params
                                                                        else ""))


def perform_from_cli(directory: Path, name: str, raw: Any) -> None:
    """Validates `raw` for verb `name` against the cluster in DIR, performs it, says what
    happened; every TestnetError on the way is a one-line CLI error."""
    cluster = open_cluster(directory)

    async def go() -> dict | None:
        try:
            args = validate_action(name, raw, LiveTarget(cluster))
            note = args.summary()
            if note:
                console.print(note)
            return await perform_action(name, ActionContext(cluster, Nemesis(cluster)), args)
        finally:
            await cluster.close()
    entry = run_async(go())
    if entry is not None:
        said(entry)


def _click_param(param: CliParam) -> click.Parameter:
    if not param.decls[0].startswith("-"):   # a positional argument
        if param.many:
            return click.Argument([param.key], nargs=-1)
        return click.Argument([param.key], type=click.Choice(param.choices) if param.choices
                              else None)
    if "/" in param.decls[0]:                 # --on/--off: True, False, or not given
        return click.Option([*param.decls, param.key], default=None, help=param.help)
    if param.flag:
        return click.Option([*param.decls, param.key], is_flag=True, help=param.help)
    return click.Option([*param.decls, param.key], default=None, help=param.help,
                        type=click.Choice(param.choices) if param.choices else None)


def _raw_arguments(action: Action, values: dict[str, Any]) -> tuple[str, Any]:
    """(verb, raw arguments) from the parsed command line: flags only when given, a variadic
    positional joined, options only when set; a flag with `verb` selects that verb."""
    raw: dict[str, Any] = {}
    verb = action.name
    for param in action.cli or ():
        value = values.get(param.key)
        if param.verb is not None:
            if value:
                verb = param.verb
            continue
        if param.many:
            value = param.join.join(value) if value else None
        if param.flag and not value:
            continue
        if value is not None:
            raw[param.key] = value
    if verb != action.name:   # the switched-to verb takes what it knows of the same options
        known = {"from"} if verb == "link_clear" else set()
        raw = {k: v for k, v in raw.items() if k in known}
        return verb, raw or True
    return verb, raw if raw or action.cli else True


def fault_command(action: Action) -> click.Command:
    assert action.cli is not None

    def callback(directory: Path, **values: Any) -> None:
        verb, raw = _raw_arguments(action, values)
        perform_from_cli(directory, verb, raw)

    help_text = action.cli_help or action.summary
    ignore_unknown = any(not p.decls[0].startswith("-") and p.key == "offset"
                         for p in action.cli)     # `testnet skew 1 -30s` is an offset, not a flag
    command = click.Command(
        action.name, callback=callback, help=help_text,
        params=[_click_param(p) for p in action.cli],
        context_settings={"ignore_unknown_options": True} if ignore_unknown else None)
    return DIR_OPTION(command)


def fault_commands() -> list[click.Command]:
    return [fault_command(a) for a in all_actions().values() if a.cli is not None]

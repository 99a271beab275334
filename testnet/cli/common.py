"""What every `testnet` command shares: the --dir option, the console, opening the cluster in
DIR, and turning the orchestrator's errors (`TestnetError`) into one-line CLI errors.

Only `TestnetError` becomes a CLI error: a KeyError or ValueError from our own code is a bug and
shows as one (a traceback), not as a polite message that hides it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console

from testnet.cluster import Cluster
from testnet.errors import TestnetError

T = TypeVar("T")

# Wide enough for full API URLs when the output is a pipe or a file (rich assumes 80 columns).
console = Console(width=shutil.get_terminal_size((140, 24)).columns)

DIR_OPTION = click.option(
    "--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
    default=lambda: os.environ.get("TESTNET_DIR", ".testnet"), show_default="./.testnet",
    help="Cluster folder (also $TESTNET_DIR).")


def fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def open_cluster(directory: Path) -> Cluster:
    try:
        return Cluster(directory)
    except TestnetError as exc:
        fail(str(exc))


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Runs `coro`; its TestnetError becomes a CLI error."""
    try:
        return asyncio.run(coro)
    except TestnetError as exc:
        fail(str(exc))


def with_cluster(directory: Path, act: Callable[[Cluster], Awaitable[T]]) -> T:
    """Opens the cluster in DIR, runs `act(cluster)`, closes its HTTP session."""
    cluster = open_cluster(directory)

    async def go() -> T:
        try:
            return await act(cluster)
        finally:
            await cluster.close()
    return run_async(go())

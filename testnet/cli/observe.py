"""`testnet watch` and `testnet dashboard`: watching a cluster live, in a terminal or a browser;
`testnet replay`: the dashboard over a finished run's report, with a time scrubber."""

from __future__ import annotations

from pathlib import Path

import click

from testnet.cli.common import DIR_OPTION, console, fail, open_cluster, run_async
from testnet.cluster import Cluster
from testnet.errors import TestnetError
from testnet.observe.dashboard import DEFAULT_HOST, DEFAULT_PORT
from testnet.observe.dashboard_frames import DEFAULT_WINDOW_BLOCKS, MAX_WINDOW_BLOCKS
from testnet.observe.replay_state import CHECKPOINT_EVERY


@click.command()
@click.option("--interval", default=1.0, show_default=True, help="Seconds between refreshes.")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
@click.option("--plain", is_flag=True,
              help="Print snapshots instead of redrawing (automatic when not a terminal).")
@DIR_OPTION
def watch(interval: float, duration: float | None, plain: bool, directory: Path) -> None:
    """Live view: each node's height and head (coloured by branch) and every reorg."""
    from testnet.observe.watch import watch as run_watch
    cluster = open_cluster(directory)

    async def go() -> None:
        try:
            await run_watch(cluster, duration=duration, interval=interval,
                            plain=plain or not console.is_terminal, console=console)
        finally:
            await cluster.close()
    try:
        run_async(go())
    except KeyboardInterrupt:
        pass


def serve_dashboard_cli(cluster: Cluster, host: str, port: int, window: int, *,
                     open_browser: bool, controls: bool) -> None:
    """Serve the dashboard in the foreground until Ctrl-C; the nodes keep running after it."""
    from testnet.observe.dashboard import serve_dashboard

    def started(url: str) -> None:
        console.print(f"Dashboard: [bold]{url}[/bold]  (Ctrl-C stops it; the nodes keep running)")
        if host not in ("127.0.0.1", "localhost", "::1") and controls:
            console.print("[yellow]The fault controls answer anyone who can reach this address; "
                          "--no-controls turns them off.[/yellow]")
        if open_browser:
            import webbrowser
            webbrowser.open(url)

    async def go() -> None:
        try:
            await serve_dashboard(cluster, host, port, window=window, controls=controls,
                                  started=started)
        finally:
            await cluster.close()
    try:
        run_async(go())
    except KeyboardInterrupt:
        console.print("Dashboard stopped.")
    except OSError as exc:   # the port: in use, or not ours to bind
        fail(f"cannot serve the dashboard on {host}:{port}: {exc.strerror or exc}")


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to bind (anything but loopback exposes the fault controls).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port to serve on (0: any free port).")
@click.option("--window", default=DEFAULT_WINDOW_BLOCKS, show_default=True,
              type=click.IntRange(1, MAX_WINDOW_BLOCKS),
              help="Heights of the block tree drawn at once (the page scrolls back further).")
@click.option("--open/--no-open", "open_browser", default=False, show_default=True,
              help="Open the page in a web browser.")
@click.option("--controls/--no-controls", default=True, show_default=True,
              help="Offer partition/heal and kill/start/restart/pause/resume on the page.")
@DIR_OPTION
def dashboard(host: str, port: int, window: int, open_browser: bool, controls: bool,
              directory: Path) -> None:
    """Live web dashboard: the block tree (branches side by side, heads, stale blocks, finality),
    the partition, node cards and the event timeline, with fault controls. Serves until Ctrl-C."""
    serve_dashboard_cli(open_cluster(directory), host, port, window, open_browser=open_browser,
                     controls=controls)


@click.command()
@click.argument("report_dir", type=click.Path(path_type=Path))
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to bind.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port to serve on (0: any free port).")
@click.option("--window", default=DEFAULT_WINDOW_BLOCKS, show_default=True,
              type=click.IntRange(1, MAX_WINDOW_BLOCKS),
              help="Heights of the block tree drawn at once (the page scrolls back further).")
@click.option("--checkpoint-every", default=CHECKPOINT_EVERY, show_default=True,
              type=click.IntRange(1), help="History entries between two stored states (fewer: "
              "faster scrubbing, more memory).")
@click.option("--open/--no-open", "open_browser", default=False, show_default=True,
              help="Open the page in a web browser.")
def replay(report_dir: Path, host: str, port: int, window: int, checkpoint_every: int,
           open_browser: bool) -> None:
    """Replay a finished run: the dashboard over REPORT_DIR/history.jsonl (a `testnet run`
    report folder), read-only, with a time scrubber (play, pause, speed) from the run's first to
    its last entry. Serves until Ctrl-C."""
    from testnet.observe.replay import load_replay, serve_replay
    try:
        recorded = load_replay(report_dir, checkpoint_every)
    except TestnetError as exc:
        fail(str(exc))
    span = recorded.end - recorded.start
    console.print(f"Replaying {report_dir}: {len(recorded.history)} entries over {span:.1f} s "
                  f"({len(recorded.checkpoints)} checkpoint(s))")

    def started(url: str) -> None:
        console.print(f"Replay dashboard: [bold]{url}[/bold]  (Ctrl-C stops it)")
        if open_browser:
            import webbrowser
            webbrowser.open(url)
    try:
        run_async(serve_replay(recorded, host, port, window=window, started=started))
    except KeyboardInterrupt:
        console.print("Replay stopped.")
    except OSError as exc:   # the port: in use, or not ours to bind
        fail(f"cannot serve the replay on {host}:{port}: {exc.strerror or exc}")

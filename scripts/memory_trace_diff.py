#!/usr/bin/env python3
"""What grew between two memory dumps of a node (diagnostic, not in CI).

A node started with `TESTNET_MEMORY_TRACE=<node id>` (node/memory_trace.py) dumps a tracemalloc
snapshot and a census of its containers every minute. This compares two of them:

    scripts/memory_trace_diff.py DIR/node0 --from 180 --to 900 [--by traceback] [--top 25]

prints the allocation sites (file:line, or whole tracebacks) whose traced bytes grew most, the
containers whose length grew, and the object types whose count grew. `--from`/`--to` pick the
dumps nearest those seconds.
"""

from __future__ import annotations

import json
import sys
import tracemalloc
from pathlib import Path

import click

IGNORED = (tracemalloc.__file__, "<frozen importlib._bootstrap>",
           "<frozen importlib._bootstrap_external>", "<unknown>")


def nearest(directory: Path, pattern: str, seconds: float) -> Path:
    """The dump in `directory` matching `pattern` whose elapsed seconds are nearest `seconds`."""
    files = sorted(directory.glob(pattern))
    if not files:
        raise click.ClickException(f"no {pattern} in {directory}")
    return min(files, key=lambda f: abs(int(f.stem.split("-")[1]) - seconds))


def snapshot(path: Path) -> tracemalloc.Snapshot:
    return tracemalloc.Snapshot.load(str(path)).filter_traces(
        [tracemalloc.Filter(False, name) for name in IGNORED])


def print_sites(old: Path, new: Path, by: str, top: int) -> None:
    stats = snapshot(new).compare_to(snapshot(old), by)
    stats.sort(key=lambda s: -s.size_diff)
    total = sum(s.size_diff for s in stats)
    print(f"traced bytes {old.name} -> {new.name}: {total / 1024:+.1f} KiB; top sites by growth:")
    for stat in stats[:top]:
        print(f"{stat.size_diff / 1024:+10.1f} KiB {stat.count_diff:+8d} blocks  "
              f"(now {stat.size / 1024:.1f} KiB)")
        frames = stat.traceback if by == "traceback" else stat.traceback[:1]
        for frame in frames:
            print(f"      {frame.filename}:{frame.lineno}")


def print_census(old: Path, new: Path, top: int) -> None:
    a, b = json.loads(old.read_text()), json.loads(new.read_text())
    print(f"\nRSS {a['resident_bytes'] / 2**20:.1f} -> {b['resident_bytes'] / 2**20:.1f} MiB, "
          f"traced {a['traced_bytes'] / 2**20:.1f} -> {b['traced_bytes'] / 2**20:.1f} MiB")
    for key, label in (("containers", "container lengths"), ("types", "objects per type")):
        grown = sorted(((b[key][k] - a[key].get(k, 0), k) for k in b[key]), reverse=True)
        print(f"\n{label} that grew (old -> new):")
        for diff, name in grown[:top]:
            if diff > 0:
                print(f"{diff:+9d}  {a[key].get(name, 0):>8} -> {b[key][name]:<8} {name}")


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--from", "start", type=float, required=True, help="Seconds of the older dump.")
@click.option("--to", "end", type=float, required=True, help="Seconds of the newer dump.")
@click.option("--by", type=click.Choice(["lineno", "filename", "traceback"]), default="lineno",
              show_default=True)
@click.option("--top", default=25, show_default=True)
def main(directory: Path, start: float, end: float, by: str, top: int) -> None:
    """Compare the dumps of DIRECTORY nearest --from and --to seconds."""
    print_sites(nearest(directory, "snap-*.tracemalloc", start),
                nearest(directory, "snap-*.tracemalloc", end), by, top)
    print_census(nearest(directory, "census-*.json", start),
                 nearest(directory, "census-*.json", end), top)


if __name__ == "__main__":
    sys.exit(main())

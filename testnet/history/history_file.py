"""Reading a report folder's `history.jsonl` back (the file `testnet run` writes first, before any
checker runs; docs/history.md describes its entries).

Every line must be one JSON object with a `source` and a numeric `ts` (and a numeric `rx_ts` where
there is one): the replay and the pictures place entries by those. A node event names its node and
type and carries what the union block tree reads of it (a block's hash and height, a head, a
checkpoint's root); a nemesis action names its fault and the nodes it touched. A line that is not
so is refused with its number, so a hand-edited or truncated file says where it broke instead of
drawing half a run. The entries come back in file order (a finished run's file is sorted by
`host_ts`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from testnet.errors import HistoryFileError

HISTORY_FILE = "history.jsonl"
MAX_SHOWN_CHARS = 60           # of a bad value quoted in an error message
# What testnet/history/block_tree.py reads of each node event it draws.
TREE_FIELDS = {"block_accepted": ("hash", "height"), "head_changed": ("head",),
               "justified": ("epoch", "root"), "finalized": ("epoch", "root"),
               "lib_advanced": ("height", "root")}


def history_path(report_dir: Path) -> Path:
    """The history.jsonl of a report folder; refused when the folder or the file is missing."""
    if not report_dir.is_dir():
        raise HistoryFileError(f"{report_dir} is not a folder (give the report folder of a "
                               f"`testnet run`, the one holding {HISTORY_FILE})")
    path = report_dir / HISTORY_FILE
    if not path.is_file():
        raise HistoryFileError(f"{report_dir} holds no {HISTORY_FILE} (is it the report folder "
                               "of a `testnet run`?)")
    return path


def read_history(report_dir: Path) -> list[dict]:
    """The entries of the report's history; HistoryFileError names a bad line."""
    path = history_path(report_dir)
    entries = []
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                entries.append(parse_entry(line, number))
    if not entries:
        raise HistoryFileError(f"{path} holds no entries: the run recorded nothing to replay")
    return entries


def parse_entry(line: bytes, number: int) -> dict:
    """One line of history.jsonl as an entry, checked for what placing it in time needs."""
    where = f"{HISTORY_FILE} line {number}"
    try:
        entry = json.loads(line.rstrip(b"\r\n"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise HistoryFileError(f"{where}: not JSON ({_reason(exc)})") from None
    # [REJECT] each line is one entry: a JSON object
    if not isinstance(entry, dict):
        raise HistoryFileError(f"{where}: not a JSON object but {type(entry).__name__}")
    # [REJECT] an entry says where it comes from
    if not isinstance(entry.get("source"), str):
        raise HistoryFileError(f"{where}: no \"source\" (node, nemesis or runner)")
    # [REJECT] its times are finite numbers of seconds (the replay orders and seeks by them)
    for key in ("ts", "rx_ts"):
        if key == "rx_ts" and key not in entry:
            continue
        value = entry.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            shown = json.dumps(value)[:MAX_SHOWN_CHARS]
            raise HistoryFileError(f"{where}: bad {key}: {shown} (seconds, a number)")
    if entry["source"] == "node":
        _check_node_event(entry, where)
    elif entry["source"] == "nemesis":
        _check_nemesis_action(entry, where)
    return entry


def _check_node_event(entry: dict, where: str) -> None:
    # [REJECT] a node event names its node and its type
    for key in ("node", "type"):
        if not isinstance(entry.get(key), str):
            raise HistoryFileError(f"{where}: a node event without a \"{key}\" (a string)")
    # [REJECT] it carries what the block tree reads of its type
    missing = [k for k in TREE_FIELDS.get(entry["type"], ()) if entry.get(k) is None]
    if missing:
        raise HistoryFileError(f"{where}: a {entry['type']} event without "
                               f"{', '.join(missing)}")
    height = entry.get("height")
    if entry["type"] == "block_accepted" and (isinstance(height, bool)
                                              or not isinstance(height, int)):
        raise HistoryFileError(f"{where}: bad height: {json.dumps(height)[:MAX_SHOWN_CHARS]}")


def _check_nemesis_action(entry: dict, where: str) -> None:
    # [REJECT] a nemesis action names its fault and the nodes it touched
    if not isinstance(entry.get("fault"), str):
        raise HistoryFileError(f"{where}: a nemesis action without a \"fault\" (a string)")
    nodes = entry.get("nodes", [])
    if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
        raise HistoryFileError(f"{where}: bad nodes of a nemesis action (a list of names)")
    if not isinstance(entry.get("params", {}), dict):
        raise HistoryFileError(f"{where}: bad params of a nemesis action (an object)")


def _reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    return type(exc).__name__

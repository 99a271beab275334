"""Reading a node's events.jsonl as SIGKILL leaves it: complete events kept, stumps counted, and
the next run's first event recovered from the line it shares with a stump."""

from __future__ import annotations

import json

from testnet.history.event_log import parse_event_log, read_event_log


def line(seq: int, type_: str = "block_accepted", **fields) -> bytes:
    event = {"seq": seq, "type": type_, "node": "node0", "ts": 1.0 + seq, **fields}
    return json.dumps(event, separators=(",", ":")).encode()


def test_complete_lines_are_read_in_order():
    log = parse_event_log(line(1, "node_started") + b"\n" + line(2, hash="a") + b"\n")
    assert [e["seq"] for e in log.events] == [1, 2] and log.cut == 0


def test_a_last_line_cut_by_a_kill_is_counted_not_read():
    data = line(1) + b"\n" + line(2, hash="a")[:25]
    log = parse_event_log(data)
    assert [e["seq"] for e in log.events] == [1] and log.cut == 1


def test_the_next_run_appended_to_a_stump_is_recovered():
    # The killed run left seq 3 half-written; the restarted node appends its node_started to it.
    data = (line(1) + b"\n" + line(2, hash="a") + b"\n" + line(3, hash="b")[:30]
            + line(3, "node_started", blocks_loaded=2) + b"\n" + line(4, hash="c") + b"\n")
    log = parse_event_log(data)
    assert [(e["seq"], e["type"]) for e in log.events] == [
        (1, "block_accepted"), (2, "block_accepted"), (3, "node_started"), (4, "block_accepted")]
    assert log.cut == 1
    assert [e.get("hash") for e in log.of_type("block_accepted")] == [None, "a", "c"]


def test_blank_lines_and_non_events_are_not_events():
    data = b"\n\n" + line(1) + b"\n[1, 2]\n" + b'{"type": "no seq"}\n'
    log = parse_event_log(data)
    assert [e["seq"] for e in log.events] == [1] and log.cut == 2


def test_a_node_that_never_started_has_an_empty_log(tmp_path):
    log = read_event_log(tmp_path / "missing.jsonl")
    assert log.events == [] and log.cut == 0


def test_reads_a_file(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(line(1) + b"\n" + line(2)[:10])
    log = read_event_log(path)
    assert len(log.events) == 1 and log.cut == 1

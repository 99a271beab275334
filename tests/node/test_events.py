"""Event numbering continues across restarts; a consumer that stops reading is bounded and told."""

from __future__ import annotations

from node.events import EventBus, read_log


def test_sequence_numbers_continue_after_restart(tmp_path):
    log_path = tmp_path / "events.jsonl"
    bus = EventBus("n0", log_path, clock=lambda: 1.0)
    for _ in range(3):
        bus.emit("head_changed", height=1)
    bus.close()
    again = EventBus("n0", log_path, clock=lambda: 2.0)
    assert again.emit("node_started")["seq"] == 4
    again.close()


async def test_slow_subscriber_is_bounded_and_learns_what_it_missed():
    bus = EventBus("n0", None, clock=lambda: 0.0)
    sub = bus.subscribe(maxsize=10)
    for i in range(100):
        bus.emit("tick", i=i)
    assert sub.queue.qsize() == 10
    drained = [sub.queue.get_nowait() for _ in range(10)]
    assert [e["seq"] for e in drained] == list(range(1, 11))
    bus.emit("tick", i=100)
    notice = sub.queue.get_nowait()
    assert notice["type"] == "events_missed" and notice["count"] == 90
    assert sub.queue.get_nowait()["seq"] == 101


async def test_a_subscriber_that_drains_its_queue_hears_of_its_gap_without_waiting():
    """No new event needs to come for the notice: once the queue is empty it is next."""
    bus = EventBus("n0", None, clock=lambda: 0.0)
    sub = bus.subscribe(maxsize=5)
    for i in range(12):
        bus.emit("tick", i=i)
    assert [(await sub.get())["seq"] for _ in range(5)] == [1, 2, 3, 4, 5]
    notice = await sub.get()
    assert notice == {"type": "events_missed", "count": 7, "seq": 12}
    bus.emit("tick", i=12)
    assert (await sub.get())["seq"] == 13, "the gap is announced once"
    assert bus.subscriber_stats() == {"subscribers": 1, "queued_max": 0, "missed_total": 7}


def test_an_event_after_a_line_cut_by_a_kill_is_not_lost(tmp_path):
    """SIGKILL can cut the last line of events.jsonl short; the restarted node's first event must
    start a line of its own, or every reader skips it together with the broken line."""
    path = tmp_path / "events.jsonl"
    bus = EventBus("n0", path, clock=lambda: 1.0)
    bus.emit("block_accepted", hash="aa")
    bus.close()
    with open(path, "a") as fh:
        fh.write('{"seq": 2, "type": "block_acc')          # the kill, mid-line
    restarted = EventBus("n0", path, clock=lambda: 2.0)
    restarted.emit("node_started", height=1)
    restarted.close()
    assert [(e["seq"], e["type"]) for e in read_log(path, 0, 10)] == [
        (1, "block_accepted"), (2, "node_started")]

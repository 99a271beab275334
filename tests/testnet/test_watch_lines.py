"""The lines `testnet watch` prints for DPoS news: a schedule taking effect, a double production
caught (reorg lines are covered by the functional watch test)."""

from __future__ import annotations

from testnet.observe.watch import LINE_OF


def test_dpos_news_get_a_line_each():
    changed = {"type": "schedule_changed", "ts": 0.0, "node": "node0", "version": 1,
               "slot": 58, "producers": ["ab" * 32] * 7}
    assert LINE_OF["schedule_changed"](changed).endswith(
        "node0 schedule v1 in effect at slot 58 (7 producers)")
    caught = {"type": "double_production", "ts": 0.0, "node": "node1", "producer": "cd" * 32,
              "slot": 9}
    assert LINE_OF["double_production"](caught).endswith(
        "node1 caught producer cdcdcdcdcdcd double-producing at slot 9")

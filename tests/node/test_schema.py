"""The node's explicit validation (node/schema.py): every problem of a mapping named by its field
path, JSON types without coercion, defaults filled in, and a client's values shown bounded."""

from __future__ import annotations

import pytest

from node.admin_api import MINER_FIELDS, PARTITION_FIELDS
from node.api import TX_FIELDS, transaction_from_body
from node.config import NODE_FIELDS, MinerConfig
from node.errors import NodeError
from node.schema import SchemaError, validate

NODE = {"node_id": "n0", "data_dir": "/d", "genesis": "/g.json", "port": 1, "node_key": "11" * 32}


def problems(fields, data) -> list[tuple[str, str]]:
    with pytest.raises(SchemaError) as caught:
        validate(fields, data)
    return caught.value.problems


def test_defaults_are_filled_in_and_nested_objects_built():
    values = validate(NODE_FIELDS, {**NODE, "miner": {"hashrate": 500}})
    assert values["consensus"] == "pow" and values["peers"] == [] and values["seed"] == 0
    assert values["miner"] == MinerConfig(hashrate=500.0)
    assert validate(NODE_FIELDS, NODE)["miner"] == MinerConfig()


def test_every_problem_is_named_by_its_path_unknown_fields_last():
    found = problems(NODE_FIELDS, {**NODE, "port": 70000, "node_key": "zz", "colour": "blue",
                                   "miner": {"chunk": 1}, "peers": ["ws://a", "http://b"]})
    assert [path for path, _ in found] == ["port", "peers.1", "node_key", "miner.chunk", "colour"]
    assert dict(found)["port"] == "must be an integer from 1 to 65535, got 70000"
    assert dict(found)["colour"] == "unknown field"


def test_json_types_are_not_coerced():
    assert problems(MINER_FIELDS, {"enabled": 1}) == [
        ("enabled", "must be true or false, got 1")]
    assert problems(TX_FIELDS, {"amount": True}) == [
        ("amount", "must be an integer from 0 to 18446744073709551615, got True")]
    assert problems(TX_FIELDS, {"amount": "5"})[0][0] == "amount"
    assert validate(MINER_FIELDS, {"hashrate": 5})["hashrate"] == 5.0   # an integer is a number


def test_the_message_names_the_first_problems_and_counts_the_rest():
    error = SchemaError([(f"f{i}", "unknown field") for i in range(10)])
    assert str(error) == "f0: unknown field; f1: unknown field; f2: unknown field (and 7 more)"
    assert isinstance(error, NodeError) and isinstance(error, ValueError)


def test_a_clients_values_and_keys_come_back_bounded():
    [(path, message)] = problems(PARTITION_FIELDS, {"peers": ["z" * 10_000]})
    assert path == "peers.0" and message.endswith("... (10000 long)") and len(message) < 200
    [(path, message)] = problems(TX_FIELDS, {"k" * 10_000: 1})
    assert message == "unknown field" and len(path) < 120
    assert problems(TX_FIELDS, [[[]]]) == [("", "must be an object of fields, got a list of 1 "
                                                "items")]


def test_a_transaction_body_needs_raw_or_every_field():
    with pytest.raises(ValueError, match=r"missing field\(s\): recipient, amount"):
        transaction_from_body(validate(TX_FIELDS, {"sender": "00" * 32, "fee": 1, "nonce": 0,
                                                   "signature": "00" * 64}))
    with pytest.raises(ValueError, match="raw: expected 152 bytes, got 2"):
        transaction_from_body(validate(TX_FIELDS, {"raw": "abcd"}))

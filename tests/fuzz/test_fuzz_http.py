"""Fuzzing every HTTP endpoint of a node (a few seconds per consensus in the suite; scripts/fuzz.py
runs it for minutes).

Requests of any shape to every route of the real app (tests/fuzz/http_cases.py), served by an
in-process node on loopback (tests/fuzz/targets.py): only 4xx for bad input, never a 500, a
traceback in a reply, or an ERROR record in the log.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.errors import BadRequestBody
from node.http_input import MAX_JSON_DEPTH, json_depth, parse_json_body
from tests.fuzz.http_cases import HttpCase, bodies, http_cases
from tests.fuzz.targets import HttpTarget, SyncTarget


@pytest.fixture(scope="module", params=["pow", "pos", "hybrid", "dpos"])
def http(request):
    with SyncTarget(HttpTarget(request.param)) as target:
        yield target


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=http_cases())
def test_bad_http_input_gets_a_4xx_and_nothing_else(http, case: HttpCase):
    http.check(case)


@settings(max_examples=300, deadline=None)
@given(
    body=st.one_of(
        st.binary(max_size=300),
        bodies(None).map(lambda pair: pair[1]),
        bodies(("raw", "amount")).map(lambda pair: pair[1]),
    )
)
def test_parse_json_body_returns_bounded_json_or_raises_bad_request_body(body: bytes):
    try:
        value = parse_json_body(body)
    except BadRequestBody as exc:
        assert len(str(exc)) < 300, f"a reason of {len(str(exc))} characters"
        return
    assert json_depth(value) <= MAX_JSON_DEPTH

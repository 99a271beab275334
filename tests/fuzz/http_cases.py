"""Hypothesis strategies for HTTP requests to every route of a node's app.

A case names a route (method and path template, as the app's router lists them: the targets
check that every route has one), fills its path parameters, adds a query and headers, and a body:
JSON of any shape, or the fields the endpoint reads with one of them broken, integers of thousands
of digits, numbers JSON does not have (NaN, Infinity, 1e999), nesting thousands deep, encodings
that are not UTF-8, or bytes that are no JSON at all. Headers carry the right admin token, none,
or one that is not UTF-8. A few cases are not HTTP at all (a garbage request line, a broken
header), for aiohttp's own refusals.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from tests.node.api_harness import ADMIN_TOKEN

# Every route of Node.make_runner()'s app, with the fields its JSON body has (None: no body).
ROUTES: dict[tuple[str, str], tuple[str, ...] | None] = {
    ("GET", "/status"): None,
    ("GET", "/blocks/{hash}"): None,
    ("GET", "/chain"): None,
    ("GET", "/tips"): None,
    ("GET", "/peers"): None,
    ("GET", "/accounts/{account}"): None,
    ("POST", "/tx"): ("raw", "sender", "recipient", "amount", "fee", "nonce", "signature"),
    ("GET", "/tx/{txid}"): None,
    ("GET", "/events"): None,
    ("GET", "/events/log"): None,
    ("GET", "/metrics"): None,
    ("GET", "/validators"): None,
    ("POST", "/stake/{kind}"): ("raw",),
    ("GET", "/producers"): None,
    ("POST", "/dpos/operation"): ("raw",),
    ("POST", "/admin/peers"): ("url",),
    ("DELETE", "/admin/peers"): ("url",),
    ("POST", "/admin/miner"): ("enabled", "hashrate", "unlimited"),
    ("GET", "/admin/faults"): None,
    ("POST", "/admin/link"): ("peer", "direction", "rule"),
    ("DELETE", "/admin/link"): None,
    ("POST", "/admin/partition"): ("peers", "direction"),
    ("DELETE", "/admin/partition"): None,
    ("POST", "/admin/clock"): ("offset_s",),
    ("POST", "/admin/role"): ("role", "validator"),
}
# GET /p2p is the websocket of the p2p host: fuzzed frame by frame by the wire target instead.
NOT_FUZZED_HERE = {("GET", "/p2p")}
QUERY_KEYS = ["from", "to", "after", "limit", "since", "peer"]


@dataclass(frozen=True)
class HttpCase:
    method: str
    target: str  # path and query, as sent
    headers: dict[str, bytes] = field(default_factory=dict)
    body: bytes = b""
    raw: bytes | None = None  # a request sent as it is instead (not HTTP)
    what: str = ""

    def __repr__(self) -> str:
        if self.raw is not None:
            return f"HttpCase(raw={self.raw[:60]!r}, {len(self.raw)} bytes)"
        body = self.body[:60] + (b"..." if len(self.body) > 60 else b"")
        return (
            f"HttpCase({self.method} {self.target[:80]!r}, {self.what}, headers={self.headers!r}, "
            f"body={body!r} ({len(self.body)} bytes))"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how hypothesis shows an example
        printer.text(repr(self))


# ---- values --------------------------------------------------------------------------------------
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=15,
)
# digits as text: CPython refuses to str() an int of more than 4300 digits
huge_numbers = st.builds(
    lambda sign, n: sign + "9" * n, st.sampled_from(["", "-"]), st.integers(19, 6000)
)
hexes = st.one_of(
    st.binary(max_size=160).map(bytes.hex), st.text(alphabet="0123456789abcdefABCDEF", max_size=200)
)
plausible = {  # values an endpoint might accept, so that one broken field is the only problem
    "raw": hexes,
    "sender": hexes,
    "recipient": hexes,
    "signature": hexes,
    "amount": st.integers(0, 2**64),
    "fee": st.integers(0, 2**64),
    "nonce": st.integers(0, 2**64),
    "url": st.one_of(
        st.just("ws://127.0.0.1:1/p2p"), st.text(max_size=30).map(lambda t: "ws://" + t)
    ),
    "enabled": st.booleans(),
    "unlimited": st.booleans(),
    "hashrate": st.one_of(st.floats(min_value=-1, max_value=1e16), st.integers(-1, 10**20)),
    "peer": st.one_of(
        st.just("*"), st.binary(min_size=32, max_size=32).map(bytes.hex), st.text(max_size=70)
    ),
    "direction": st.sampled_from(["in", "out", "both", "sideways"]),
    "rule": st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "block": st.booleans(),
                "delay_ms": st.one_of(st.integers(-1, 10**70), st.floats()),
                "jitter_ms": st.floats(),
                "loss": st.floats(),
                "duplicate": st.floats(),
                "reorder": st.floats(),
                "bandwidth_bps": st.one_of(st.none(), st.integers(-1, 10**30)),
            },
        ),
        json_values,
    ),
    "peers": st.lists(
        st.one_of(
            st.just("*"), st.binary(min_size=32, max_size=32).map(bytes.hex), st.text(max_size=70)
        ),
        max_size=4,
    ),
    "offset_s": st.one_of(st.floats(min_value=-1e6, max_value=1e6), st.integers(-(10**10), 10**10)),
    "role": st.sampled_from(
        ["honest", "selfish-miner", "withhold", "equivocate", "offline", "x" * 100]
    ),
    "validator": st.integers(-1, 2**70),
}


@st.composite
def field_bodies(draw, fields: tuple[str, ...]) -> dict:
    """The endpoint's fields with plausible values, then one broken: any JSON value, a wrong type,
    or missing; sometimes an extra field."""
    body = {name: draw(plausible[name]) for name in fields if draw(st.booleans())}
    if fields and draw(st.booleans()):
        body[draw(st.sampled_from(fields))] = draw(json_values)
    if draw(st.integers(0, 9)) == 0:
        body[draw(st.text(max_size=300))] = draw(json_values)
    return body


@st.composite
def bodies(draw, fields: tuple[str, ...] | None) -> tuple[str, bytes]:
    kind = draw(
        st.sampled_from(
            ["fields"] * 4 + ["json", "huge int", "nan", "deep", "encoding", "bytes", "empty"]
        )
    )
    if kind == "fields" and fields:
        return "field-aware JSON", json.dumps(draw(field_bodies(fields))).encode()
    if kind in ("fields", "json"):
        return "any JSON", json.dumps(draw(json_values)).encode()
    if kind == "huge int":
        digits = draw(st.integers(20, 20_000))
        name = draw(st.sampled_from(fields or ("x",)))
        return f"an integer of {digits} digits", f'{{"{name}": -{"9" * digits}}}'.encode()
    if kind == "nan":
        name = draw(st.sampled_from(fields or ("x",)))
        token = draw(
            st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e400", "1E+9999"])
        )
        return f"number {token}", f'{{"{name}": {token}}}'.encode()
    if kind == "deep":
        depth = draw(st.one_of(st.integers(30, 40), st.integers(900, 1100), st.integers(1, 50_000)))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        inner = opener * depth + "1" + (closer * depth if draw(st.booleans()) else "")
        wrap = draw(st.booleans()) and fields
        text = f'{{"{fields[0]}": {inner}}}' if wrap else inner
        return f"nested {depth} deep", text.encode()
    if kind == "encoding":
        text = json.dumps(
            draw(field_bodies(fields)) if fields else draw(json_values), ensure_ascii=False
        )
        codec = draw(st.sampled_from(["utf-16", "utf-32", "latin-1", "utf-8-sig", "cp1252"]))
        raw = text.encode(codec, errors="replace")
        if draw(st.booleans()):
            at = draw(st.integers(0, len(raw)))
            raw = (
                raw[:at]
                + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"]))
                + raw[at:]
            )
        return f"JSON in {codec}", raw
    if kind == "bytes":
        return "random bytes", draw(st.binary(max_size=200))
    return "no body", b""


def path_value(name: str) -> st.SearchStrategy[str]:
    plausible_value = {
        "hash": st.binary(min_size=32, max_size=32).map(bytes.hex),
        "txid": st.binary(min_size=32, max_size=32).map(bytes.hex),
        "account": st.binary(min_size=32, max_size=32).map(bytes.hex),
        "kind": st.sampled_from(["deposit", "exit"]),
    }[name]
    return st.one_of(plausible_value, st.text(min_size=1, max_size=200), huge_numbers)


@st.composite
def queries(draw) -> str:
    pairs = []
    for key in draw(
        st.lists(st.one_of(st.sampled_from(QUERY_KEYS), st.text(max_size=10)), max_size=3)
    ):
        value = draw(
            st.one_of(
                st.integers(-(10**6), 10**6).map(str),
                st.integers(10**18, 10**20).map(str),
                huge_numbers,
                st.text(max_size=40),
                st.just("*"),
            )
        )
        pairs.append((key, value))
    return urllib.parse.urlencode(pairs)


@st.composite
def admin_headers(draw) -> dict[str, bytes]:
    auth = draw(st.sampled_from(["token"] * 6 + ["none", "wrong", "not utf-8", "no bearer"]))
    headers: dict[str, bytes] = {}
    if auth == "token":
        headers["Authorization"] = f"Bearer {ADMIN_TOKEN}".encode()
    elif auth == "wrong":
        headers["Authorization"] = b"Bearer " + draw(st.text(max_size=40)).encode()
    elif auth == "not utf-8":
        headers["Authorization"] = b"Bearer " + draw(
            st.binary(min_size=1, max_size=40).filter(
                lambda b: b"\r" not in b and b"\n" not in b and b"\x00" not in b
            )
        )
    elif auth == "no bearer":
        headers["Authorization"] = draw(
            st.binary(max_size=20).filter(
                lambda b: b"\r" not in b and b"\n" not in b and b"\x00" not in b
            )
        )
    if draw(st.booleans()):
        headers["Content-Type"] = draw(
            st.sampled_from(
                [
                    b"application/json",
                    b"text/plain",
                    b"application/json; charset=latin-1",
                    b"\xff\xfe",
                ]
            )
        )
    return headers


@st.composite
def http_cases(draw, routes: list[tuple[str, str]] | None = None) -> HttpCase:
    """Any case for the given routes (default: all of ROUTES)."""
    if draw(st.integers(0, 19)) == 0:
        raw = draw(
            st.one_of(
                st.binary(min_size=1, max_size=200).map(lambda b: b + b"\r\n\r\n"),
                st.just(b"GET /status HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n"),
                st.just(b"GET /status HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
                st.just(
                    b"POST /tx HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
                ),
                st.integers(9000, 20000).map(lambda n: b"GET /" + b"a" * n + b" HTTP/1.1\r\n\r\n"),
            )
        )
        return HttpCase("", "", raw=raw, what="not HTTP")
    method, template = draw(st.sampled_from(routes or sorted(ROUTES)))
    path = template
    for name in ("hash", "txid", "account", "kind"):
        if "{" + name + "}" in path:
            path = path.replace(
                "{" + name + "}", urllib.parse.quote(draw(path_value(name)), safe="")
            )
    query = draw(queries())
    headers = draw(admin_headers()) if template.startswith("/admin") else {}
    fields = ROUTES.get((method, template))
    what, body = ("no body", b"")
    if fields is not None or draw(st.integers(0, 4)) == 0:
        what, body = draw(bodies(fields))
    return HttpCase(method, path + (f"?{query}" if query else ""), headers, body, what=what)

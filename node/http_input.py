"""Untrusted HTTP input: the one JSON body reader of the API and the admin API, bounded echoes of
client values in error messages, and one-line logs for the bad requests aiohttp refuses itself.

`read_json_body` accepts strict JSON (RFC 8259) in UTF-8 and nothing else. Python's `json` would
take more -- `NaN`, `Infinity`, `1e999` (a float infinity), integers of any length (CPython then
refuses more than 4300 digits with a plain ValueError) and nesting up to the interpreter's
recursion limit (then a RecursionError) -- so the reader bounds numbers and depth itself and turns
every way a body can be wrong into `BadRequestBody`, whose message the handler answers with a 400.

`shown(value)` (p2p.errors.shown, one helper for peers and clients alike) is how a client's value
goes into an error message: bounded, so a 1 MB body never comes back in an error or a log line.

aiohttp answers a malformed request line or header (an `HttpProcessingError` with a 4xx code)
before any handler runs and logs it at ERROR with a traceback; `QuietBadRequests` is the server
logger that turns those into one WARNING line with the client's address. Any other error keeps
its traceback: that is a bug of ours.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from node.errors import BadRequestBody
from p2p.errors import MAX_SHOWN_CHARS, shown

__all__ = ["read_json_body", "parse_json_body", "json_depth", "shown", "QuietBadRequests"]

MAX_JSON_DEPTH = 32  # our bodies nest 3 levels; room for tools that wrap them
MAX_JSON_INT_DIGITS = 64  # amounts are u64 (20 digits); longer numbers are noise or an attack

async def read_json_body(request: web.Request) -> Any:
    """The request's body as JSON. Raises BadRequestBody saying what is wrong; a body over the
    app's `client_max_size` is answered 413 by aiohttp (HTTPRequestEntityTooLarge)."""
    return parse_json_body(await request.read())

def parse_json_body(raw: bytes) -> Any:
    """Strict JSON in UTF-8: finite numbers of at most MAX_JSON_INT_DIGITS digits, nested at most
    MAX_JSON_DEPTH levels. Raises BadRequestBody."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestBody(f"body is not valid JSON: not UTF-8 at byte {exc.start}") from None
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float,
                           parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise BadRequestBody(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequestBody(f"body is not valid JSON: nested deeper than {MAX_JSON_DEPTH} "
                             f"levels") from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise BadRequestBody(f"body is not valid JSON: nested deeper than {MAX_JSON_DEPTH} levels")
    return value

def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_JSON_INT_DIGITS:
        raise BadRequestBody(f"number {text[:20]}... has {digits} digits, more than "
                             f"{MAX_JSON_INT_DIGITS}")
    return int(text)

def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadRequestBody(f"number {shown(text)} is out of range")
    return value

def _refuse_constant(name: str) -> Any:
    raise BadRequestBody(f"body is not valid JSON: {name} is not a JSON value")

def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """How deep lists and objects nest in `value` (0 for a scalar), counted up to `limit` + 1:
    iterative, so no depth can exhaust the interpreter's stack."""
    deepest = 0
    stack = [(value, 1)] if isinstance(value, (list, dict)) else []
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > limit:
            break
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (list, dict)))
    return deepest

class QuietBadRequests(logging.LoggerAdapter):
    """aiohttp's server logger for the node: a request aiohttp refused itself (malformed request
    line, header or body framing) is logged as one WARNING line with the client's address,
    without a traceback. Everything else is logged as aiohttp logs it."""

    def exception(self, msg: Any, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500:
            self.logger.warning(f"{msg}: %s", *args, _one_line(exc))
            return
        self.logger.exception(msg, *args, exc_info=exc_info, **kwargs)

def _one_line(exc: HttpProcessingError) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 2 * MAX_SHOWN_CHARS else text[:2 * MAX_SHOWN_CHARS] + "..."

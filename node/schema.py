"""Explicit validation of the mappings a node takes from outside: its config file and the JSON
bodies of the HTTP API and the admin API.

A schema is a dict of field name -> `Field(check, default)`. `validate(schema, data)` answers the
checked values with the defaults filled in, or raises `SchemaError` listing every problem as
(field path, message): an unknown field, a missing one, a wrong type, a value out of range. A
check is a function of one value that answers the value to keep or raises `Invalid`.

Why not pydantic: a node validates a few flat fields, and importing pydantic (with pydantic_core,
annotated_types, typing_inspection) costs a running node about 9 MB of resident memory against a
target of 60 MB for an idle node (issue 11). The orchestrator (testnet/) keeps pydantic for its
manifests and scenarios; no node process imports it (tests/node/test_node_imports.py).

Types are JSON's, without coercion: a bool is not an integer, an integer is also a number, a
string is never read as a number. Messages show the client's value bounded (`shown`), and a
field name that comes from the client (an unknown key) is shown bounded too, so a hostile body
never comes back whole in an error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.errors import NodeError
from p2p.errors import shown

Check = Callable[[Any], Any]
REQUIRED: Any = object()
MAX_PROBLEMS_SHOWN = 3  # a body with 10k unknown keys gets a message of three and a count


class Invalid(ValueError):
    """One value refused by a check; `problems` are (path below the value, message) pairs."""

    def __init__(self, message: str = "", problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems if problems is not None else [("", message)]


class SchemaError(NodeError, ValueError):
    """A mapping that does not fit its schema. `problems` holds every (field path, message);
    the message names the first few, each as `field: message`."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        parts = [_problem(path, message) for path, message in problems[:MAX_PROBLEMS_SHOWN]]
        more = len(problems) - MAX_PROBLEMS_SHOWN
        super().__init__("; ".join(parts) + (f" (and {more} more)" if more > 0 else ""))

    def lines(self) -> list[str]:
        return [_problem(path, message) for path, message in self.problems]


@dataclass(frozen=True)
class Field:
    """A field's check and its default (`REQUIRED`: none); a callable default is a factory."""
    check: Check
    default: Any = REQUIRED


def validate(schema: dict[str, Field], data: Any) -> dict[str, Any]:
    """The checked values of `data` (a mapping) by `schema`, defaults filled in. Raises
    SchemaError with every problem found, in schema order, unknown fields last."""
    if not isinstance(data, dict):
        raise SchemaError([("", f"must be an object of fields, got {shown(data)}")])
    problems: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    for name, field in schema.items():
        if name not in data:
            if field.default is REQUIRED:
                problems.append((name, "required field missing"))
            else:
                values[name] = field.default() if callable(field.default) else field.default
            continue
        try:
            values[name] = field.check(data[name])
        except Invalid as exc:
            problems.extend((_join(name, path), message) for path, message in exc.problems)
    problems.extend((_key_name(key), "unknown field") for key in data if key not in schema)
    if problems:
        raise SchemaError(problems)
    return values


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"must be true or false, got {shown(value)}")
    return value


def integer(ge: int | None = None, le: int | None = None) -> Check:
    """A JSON integer (not a bool) within [ge, le]."""
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"must be an integer{_bounds(ge, le)}, got {shown(value)}")
        if (ge is not None and value < ge) or (le is not None and value > le):
            raise Invalid(f"must be an integer{_bounds(ge, le)}, got {shown(value)}")
        return value
    return check


def number(ge: float | None = None, le: float | None = None, gt: float | None = None) -> Check:
    """A JSON number (an integer or a finite float, not a bool) within the bounds, as a float."""
    bounds = f" greater than {_num(gt)}" if gt is not None else _bounds(ge, le)

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(f"must be a number{bounds}, got {shown(value)}")
        if not math.isfinite(value) or (ge is not None and value < ge) \
                or (le is not None and value > le) or (gt is not None and value <= gt):
            raise Invalid(f"must be a number{bounds}, got {shown(value)}")
        return float(value)
    return check


def text(min_chars: int = 0, max_chars: int | None = None, pattern: str | None = None,
         means: str = "") -> Check:
    """A string of min_chars..max_chars characters that `pattern` matches (`re.search`: anchor
    it); `means` says in words what the pattern asks for."""
    regex = re.compile(pattern) if pattern else None
    wanted = means or "a string"

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid(f"must be {wanted}, got {shown(value)}")
        if len(value) < min_chars or (max_chars is not None and len(value) > max_chars):
            size = f"{min_chars} to {max_chars}" if max_chars is not None else f">= {min_chars}"
            raise Invalid(f"must have {size} characters, got {len(value)}")
        if regex is not None and not regex.search(value):
            raise Invalid(f"must be {means or f'a string matching {pattern}'}, "
                          f"got {shown(value)}")
        return value
    return check


def choice(*options: str) -> Check:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in options:
            raise Invalid(f"must be one of {', '.join(options)}, got {shown(value)}")
        return value
    return check


def optional(inner: Check) -> Check:
    """`inner`, or null (None)."""
    def check(value: Any) -> Any:
        return None if value is None else inner(value)
    return check


def list_of(item: Check, max_items: int | None = None) -> Check:
    """A list whose every item passes `item`; problems name the item's index."""
    def check(value: Any) -> list:
        if not isinstance(value, list):
            raise Invalid(f"must be a list, got {shown(value)}")
        if max_items is not None and len(value) > max_items:
            raise Invalid(f"must have at most {max_items} items, got {len(value)}")
        problems: list[tuple[str, str]] = []
        items = []
        for i, element in enumerate(value):
            try:
                items.append(item(element))
            except Invalid as exc:
                problems.extend((_join(str(i), path), message) for path, message in exc.problems)
        if problems:
            raise Invalid(problems=problems)
        return items
    return check


def mapping(value: Any) -> dict:
    """An object whose fields someone else checks (e.g. `LinkRule.from_json`)."""
    if not isinstance(value, dict):
        raise Invalid(f"must be an object, got {shown(value)}")
    return value


def file_path(value: Any) -> Path:
    if not isinstance(value, str | Path) or not str(value):
        raise Invalid(f"must be a path, got {shown(value)}")
    return Path(value)


def nested(schema: dict[str, Field], build: Callable[..., Any] = dict) -> Check:
    """An object checked by `schema`, made into `build(**values)`."""
    def check(value: Any) -> Any:
        try:
            return build(**validate(schema, value))
        except SchemaError as exc:
            raise Invalid(problems=exc.problems) from None
    return check


def _bounds(ge: float | None, le: float | None) -> str:
    if ge is not None and le is not None:
        return f" from {_num(ge)} to {_num(le)}"
    if ge is not None:
        return f" >= {_num(ge)}"
    return f" <= {_num(le)}" if le is not None else ""


def _num(bound: float) -> str:
    return str(bound) if isinstance(bound, int) else f"{bound:g}"


def _join(name: str, path: str) -> str:
    return f"{name}.{path}" if path else name


def _key_name(key: Any) -> str:
    return key if isinstance(key, str) and len(key) <= 40 and key.isprintable() else shown(key)


def _problem(path: str, message: str) -> str:
    return f"{path or 'body'}: {message}"

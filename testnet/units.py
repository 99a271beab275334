"""Parsing the units users type: durations (200ms, 1.5s, 2m), percentages (5%, 0.05), clock
offsets (+30s, -2m), byte rates (100kB/s, 1MB/s, 5000)."""

from __future__ import annotations

import math
import re

from testnet.errors import UnitError

_DURATION = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib)?(?:/s|ps)?\s*$", re.I)
_SCALE = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_BYTES = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2}


def parse_duration_s(text: str | float | int, *, default_unit: str = "s") -> float:
    """Seconds from '200ms', '1.5s', '2m', '+30s' or a bare number in `default_unit`."""
    if _is_number(text):
        return float(text) * _SCALE[default_unit]
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match:
        raise UnitError(f"not a duration: {text!r} (try 200ms, 1.5s, 2m)")
    return float(match.group(1)) * _SCALE[match.group(2) or default_unit]


def parse_fraction(text: str | float | int) -> float:
    """0..1 from '5%' or '0.05'."""
    if _is_number(text):
        value = float(text)
    elif isinstance(text, str):
        raw = text.strip()
        try:
            value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
        except ValueError:
            raise UnitError(f"not a percentage: {text!r} (try 5% or 0.05)") from None
    else:
        raise UnitError(f"not a percentage: {text!r} (try 5% or 0.05)")
    if not 0.0 <= value <= 1.0:
        raise UnitError(f"a probability must be between 0% and 100%, got {text!r}")
    return value


def parse_rate_bps(text: str | int | float) -> int:
    """Bytes per second from '100kB/s', '1MB/s', '5000'."""
    if _is_number(text):
        if text < 0:
            raise UnitError(f"a byte rate cannot be negative, got {text!r}")
        return int(text)
    match = _RATE.match(text) if isinstance(text, str) else None
    if not match:
        raise UnitError(f"not a byte rate: {text!r} (try 100kB/s)")
    return int(float(match.group(1)) * _BYTES[(match.group(2) or "b").lower()])


def _is_number(value: object) -> bool:
    """A finite int or float (YAML gives both; a bool is not a number here)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))

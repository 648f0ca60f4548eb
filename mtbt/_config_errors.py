"""Rules and one-line wording of run-configuration problems (internal to :mod:`mtbt.config`).

Pydantic reports problems as structured errors; this module holds the one-key
rules the models use (each raises an error whose message is the expectation),
turns the first error into a :class:`Problem` whose text names the
``section.key``, the value and what was expected, words unknown sections and
keys with a ``difflib`` hint, and picks the ``--set`` override to blame.
"""
from __future__ import annotations

import datetime as dt
import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import annotated_types as at
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from mtbt.registry import check_name

#: Error type of a rule that ties two or more keys together (``ctx["keys"]`` lists them).
CROSS = "mtbt_cross"
#: Error type of a one-key rule whose message is already the expectation.
RULE = "mtbt_rule"

_EXPECT = {
    "int_type": "expected an integer",
    "float_type": "expected a number",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "finite_number": "expected a finite number",
    "string_too_short": "expected a non-empty string",
}
_RANGE = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
#: The regular New York close that force-close times are measured from.
CLOSE = dt.time(16, 0)
GRADES = ("shallow", "healthy", "deep")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a run.

    Attributes
    ----------
    keys : tuple of str
        The ``section.key`` names involved (two or more for a cross-key rule).
    text : str
        The full sentence, e.g. ``a.b = 1 is out of range: expected ...``.
    short : str
        What to say after ``--set a.b=1:`` when that override is to blame.
    """

    keys: tuple[str, ...]
    text: str
    short: str


def fmt(value: Any) -> str:
    """Write ``value`` as TOML would (floats that are whole numbers without ``.0``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dt.time):
        exact = value.second == 0 and value.microsecond == 0
        return value.isoformat(timespec="minutes") if exact else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {fmt(v)}" for k, v in value.items()) + "}"
    return repr(value)


def unknown_section(name: str, sections: Mapping[str, Any]) -> str:
    """Word an unknown ``[name]`` section, with the closest real one as a hint."""
    close = difflib.get_close_matches(name, list(sections), n=1)
    return f"unknown section [{name}]" + (f" (did you mean [{close[0]}]?)" if close else "")


def unknown_key(section: str, name: str, keys: Any) -> str:
    """Word an unknown ``section.name`` key, with the closest real key as a hint."""
    close = difflib.get_close_matches(name, list(keys), n=1)
    return f"unknown key {section}.{name}" + (f" (did you mean '{close[0]}'?)" if close else "")


def shape_problem(data: Mapping[str, Any], sections: Mapping[str, type[BaseModel]]) -> str | None:
    """Check that ``data`` holds only known sections (as tables) and known keys.

    Returns
    -------
    str or None
        The first problem, worded, or None when the shape is right.
    """
    for name, table in data.items():
        if name not in sections:
            return _stray(name, table, sections)
        if not isinstance(table, dict):
            return f"{name} = {fmt(table)}: expected a [{name}] table"
        fields = sections[name].model_fields
        for key in table:
            if key not in fields:
                return unknown_key(name, key, fields)
    return None


def _stray(name: str, value: Any, sections: Mapping[str, type[BaseModel]]) -> str:
    """Word a top-level name that is no section: a stray key or a misspelt section."""
    if isinstance(value, dict):
        return unknown_section(name, sections)
    homes = [s for s, model in sections.items() if name in model.model_fields]
    hint = f" (did you mean {homes[0]}.{name}?)" if homes else ""
    return f"key {name} is outside any section: expected it under a [section] header{hint}"


def problem_from(
    error: ValidationError,
    sections: Mapping[str, type[BaseModel]],
    data: Mapping[str, Any],
) -> Problem:
    """Turn the first error of a validation of ``data`` into a :class:`Problem`."""
    err = error.errors()[0]
    loc = err["loc"]
    if err["type"] == CROSS or len(loc) < 2:
        keys = tuple(err.get("ctx", {}).get("keys", str(loc[0]) if loc else "").split())
        return Problem(keys, err["msg"], err["msg"])
    section, name = str(loc[0]), str(loc[1])
    key = f"{section}.{name}"
    value = data.get(section, {}).get(name, err["input"])
    body = _expectation(err, sections[section].model_fields[name])
    sep = " " if body.startswith("is ") else ": "
    return Problem((key,), f"{key} = {fmt(value)}{sep}{body}", body.removeprefix("is "))


def _expectation(err: Any, field: FieldInfo) -> str:
    """What the key should have been, e.g. ``expected an integer``."""
    kind = err["type"]
    if kind in _RANGE:
        what = "an integer" if field.annotation is int else "a number"
        return f"is out of range: expected {what} {describe_range(field)}"
    if kind == RULE:
        return err["msg"]
    if kind == "literal_error":
        choices = str(err["ctx"]["expected"]).replace("'", '"')
        return f"expected one of {choices}" if " or " in choices else f"expected {choices}"
    return _EXPECT.get(kind, f"invalid value ({err['msg']})")


def describe_range(field: FieldInfo) -> str:
    """Word a field's bounds: ``from 1 to 50`` or ``> 0 and <= 10``."""
    bounds: dict[str, Any] = {}
    for meta in field.metadata:
        for op in ("gt", "ge", "lt", "le"):
            if isinstance(meta, at.BaseMetadata) and hasattr(meta, op):
                bounds[op] = getattr(meta, op)
    if "ge" in bounds and "le" in bounds:
        return f"from {fmt(bounds['ge'])} to {fmt(bounds['le'])}"
    signs = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    return " and ".join(f"{signs[op]} {fmt(v)}" for op, v in bounds.items())


# --- one-key rules: each raises a RULE error whose message is the expectation ---


def rule(message: str) -> PydanticCustomError:
    """A one-key rule error whose message is ``message`` (``expected ...``)."""
    return PydanticCustomError(RULE, message)


def parse_time(value: Any) -> Any:
    """Read ``"HH:MM"`` (or a TOML time on the minute) as a ``datetime.time``."""
    if isinstance(value, str) and re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        return dt.time(int(value[:2]), int(value[3:]))
    if isinstance(value, dt.time) and value.second == value.microsecond == 0 and not value.tzinfo:
        return value
    raise rule('expected a time "HH:MM"')


def by_close(value: dt.time) -> dt.time:
    """Reject a time after the 16:00 close."""
    if value > CLOSE:
        raise rule('expected a time "HH:MM" no later than the 16:00 close')
    return value


def parse_date(value: Any) -> Any:
    """Read a TOML date or ``"YYYY-MM-DD"``; ``""`` means none."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise rule('expected a date YYYY-MM-DD (or "" for none)')


def parse_grades(value: Any) -> Any:
    """Check a non-empty list of distinct grades and return it as a tuple."""
    if (
        isinstance(value, list | tuple)
        and value
        and all(isinstance(v, str) and v in GRADES for v in value)
        and len(set(value)) == len(value)
    ):
        return tuple(value)
    raise rule('expected a non-empty list of distinct values from "shallow", "healthy", "deep"')


def parse_times(value: Any) -> Any:
    """Check a non-empty list of "HH:MM" times, ascending, and return them as a tuple."""
    if isinstance(value, list | tuple) and value:
        times = tuple(parse_time(v) for v in value)
        if all(isinstance(t, dt.time) for t in times) and list(times) == sorted(set(times)):
            return times
    raise rule('expected a non-empty list of distinct "HH:MM" times in order, '
               'e.g. ["09:45", "11:30"]')


def parse_names(value: Any) -> Any:
    """Check a list of non-empty strings (file-name prefixes) and return it as a tuple."""
    if isinstance(value, list | tuple) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise rule('expected a list of file-name prefixes, e.g. ["spy_1m"]')


def check_symbol(value: str) -> str:
    """Check a ticker: upper-case letters and dots only."""
    if not re.fullmatch(r"[A-Z.]+", value):
        raise rule('expected upper-case letters and dots only, e.g. "SPY"')
    return value


def check_strategy(value: str) -> str:
    """A registered strategy name or ``package.module:Class`` (``mtbt.registry``)."""
    try:
        return check_name(value)
    except ValueError as exc:
        raise rule(str(exc)) from None


def require_paper(value: bool) -> bool:
    """Refuse ``paper_mode = false``."""
    if not value:
        raise rule("mtbt trades paper accounts only; paper_mode must be true")
    return value


def blame(problem: Problem, parsed: list[tuple[str, str, str, Any]]) -> str:
    """Word a problem the overrides caused, naming the last override of a key involved."""
    for raw, section, key, _ in reversed(parsed):
        if f"{section}.{key}" in problem.keys:
            single = problem.keys == (f"{section}.{key}",)
            return f"--set {raw}: {problem.short if single else problem.text}"
    return ", ".join(f"--set {raw}" for raw, *_ in parsed) + f": {problem.text}"

"""Reading a JSON request body so that no input can make it fail with anything but a 4xx naming the problem.

The standard parser alone would let through what later breaks the service: nesting deep enough to exhaust the
recursion limit (a RecursionError), numbers beyond a double (``1e400`` becomes infinity), ``NaN``/``Infinity``
(not JSON), and lone surrogates (``"\\ud800"`` parses, but no response holding it can be encoded).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
from fastapi import HTTPException

from app.settings import setting_name

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_DEPTH_CHUNK = 1 << 20
_DELTA = np.zeros(256, dtype=np.int8)
_DELTA[[ord("["), ord("{")]] = 1
_DELTA[[ord("]"), ord("}")]] = -1


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in ``body`` (brackets inside strings do not count), computed
    without parsing, so a body nested too deeply is refused before the parser recurses into it."""
    skeleton = _STRING.sub(b'""', body)
    depth = deepest = 0
    for start in range(0, len(skeleton), _DEPTH_CHUNK):
        steps = _DELTA[np.frombuffer(skeleton, np.uint8, min(_DEPTH_CHUNK, len(skeleton) - start), start)]
        running = depth + np.cumsum(steps, dtype=np.int64)
        if len(running):
            deepest = max(deepest, int(running.max()))
            depth = int(running[-1])
    return deepest


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is outside the range of a double")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _lone_surrogate(value: Any) -> str | None:
    """The first string (or key) in ``value`` that is not valid Unicode (a lone surrogate), or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def parse_json(body: bytes, max_depth: int) -> Any:
    """The JSON document of a request body. Raises ``HTTPException`` 400 for a body that is not JSON (invalid
    UTF-8, bad syntax, a number beyond a double, ``NaN``, a lone surrogate) and 422 for one nested deeper than
    ``max_depth`` (``MSVAE_MAX_JSON_DEPTH``)."""
    depth = json_depth(body)
    if depth > max_depth:
        raise HTTPException(
            422, f"the JSON body is nested {depth} deep; the limit is {max_depth} ({setting_name('max_json_depth')})"
        )
    try:
        document = json.loads(body.decode("utf-8"), parse_float=_finite_float, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise HTTPException(400, f"the body is not valid JSON: {exc}") from None
    bad = _lone_surrogate(document)
    if bad is not None:
        shown = bad[:60].encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
        raise HTTPException(400, f"the body is not valid JSON: the string {shown!r} has a lone surrogate")
    return document

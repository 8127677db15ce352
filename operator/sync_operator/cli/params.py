"""``--param k=v`` and ``--params-json``: task parameters from the command line.

Values are read as JSON when they parse (``items=5`` is a number, ``dry=true`` a
boolean) and as strings otherwise, as ``helm --set`` does; ``--params-json`` gives
the whole object when that is not enough, and ``--param`` entries override it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sync_operator.cli.errors import UsageError


def parse_value(text: str) -> Any:
    """JSON if it parses (numbers, booleans, null, lists, objects), else the raw string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_params(pairs: Iterable[str], params_json: str | None = None) -> dict[str, Any]:
    """The params object; a malformed pair or non-object JSON is a usage error."""
    params: dict[str, Any] = {}
    if params_json is not None:
        try:
            loaded = json.loads(params_json)
        except ValueError as err:
            raise UsageError(f"--params-json is not valid JSON: {err}") from None
        if not isinstance(loaded, dict):
            raise UsageError("--params-json must be a JSON object, e.g. '{\"items\": 5}'")
        params.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {pair!r}: expected KEY=VALUE")
        params[key.strip()] = parse_value(value)
    return params

"""Reading the JSON-lines files a run appends to (logs, metrics, manifests): a line torn by a kill
mid-write is left out, never an error. No torch import."""

from __future__ import annotations

import json
from typing import Any


def json_objects(
    text: str | bytes, key: str | None = None, kind: type | tuple[type, ...] = object
) -> list[dict[str, Any]]:
    """The object lines of ``text``; with ``key``, only those whose ``key`` is a ``kind``."""
    out = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and (key is None or isinstance(item.get(key), kind)):
            out.append(item)
    return out

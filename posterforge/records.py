"""The small vocabularies every command shares: what happened to one input (:class:`Status`), the
two kinds of model (:class:`Kind`), and the record a translated image yields (:class:`Record`).

They are ``StrEnum`` members, so ``rec.status == "ok"`` and ``json.dumps`` keep working for callers
that speak strings, while the code names them once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """What became of one input or output."""

    OK = "ok"
    SKIPPED = "skipped"
    FAILED = "failed"


class Kind(StrEnum):
    """The two kinds of model a plugin registers and a weight file holds (its header's ``kind``)."""

    TRANSLATOR = "translator"
    GENERATOR = "generator"


OK, SKIPPED, FAILED = Status.OK, Status.SKIPPED, Status.FAILED


@dataclass
class Record:
    """What happened to one input; ``--json`` prints one of these per line."""

    input: str
    output: str | None
    status: Status
    error: str | None = None
    ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = str(self.status)
        return d

"""A network's config, stated once: a frozen dataclass of its constructor arguments whose fields
declare the values they allow. The same declaration makes the weight header's ``config``
(:meth:`NetConfig.to_dict`), rebuilds the config from a header (:meth:`NetConfig.from_dict`) and
checks a header's config before anything is built (the family's ``check``)::

    from dataclasses import dataclass
    from posterforge.plugin import NetConfig, between, flag

    @dataclass(frozen=True, kw_only=True)
    class BlobConfig(NetConfig):
        z_dim: int = between(1, 4096)  # no default: a header must state it
        width: int = between(1, 1024, 32)
        affine: bool = flag(False)

    header = make_header(Kind.GENERATOR, ARCH, net.config.to_dict())
    net = BlobGenerator(BlobConfig.from_dict(header["config"]))

Every error is a one-line ``ValueError`` (``config width must be a whole number in [1, 1024]``),
which the core turns into a :class:`~posterforge.errors.WeightsError` naming the file. No torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Literal, Self

_KEY = "posterforge.allowed"  # the field metadata key that holds its Allowed

FieldKind = Literal["whole", "number", "flag", "size"]


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Allowed:
    """The values one config field takes: ``whole`` or ``number`` in ``[low, high]``, ``flag``
    (true or false), or ``size`` (``[W, H]``, two whole numbers in ``[low, high]``); ``None``
    too where ``or_none``."""

    kind: FieldKind
    low: float = 0
    high: float = 0
    or_none: bool = False

    def problem(self, key: str, value: object) -> str | None:
        """What is wrong with ``value`` for the field ``key`` (one line), or None."""
        if value is None and self.or_none:
            return None
        low, high = self.low, self.high
        if self.kind == "flag":
            ok = isinstance(value, bool)
            return None if ok else f"config {key} must be true or false, not {value!r}"
        if self.kind == "size":
            ok = isinstance(value, list | tuple) and len(value) == 2
            ok = ok and all(_whole(v) and low <= v <= high for v in value)
            return None if ok else f"config {key} must be [W, H], whole numbers in [{low}, {high}]"
        if self.kind == "whole":
            ok = _whole(value) and low <= value <= high
            return None if ok else f"config {key} must be a whole number in [{low}, {high}]"
        ok = (_whole(value) or isinstance(value, float)) and low <= value <= high
        return None if ok else f"config {key} must be a number in [{low}, {high}]"

    def normalise(self, value: Any) -> Any:
        """The value as the config holds it: ints, floats, a ``(W, H)`` tuple (checked first)."""
        if value is None or self.kind == "flag":
            return value
        if self.kind == "size":
            return (int(value[0]), int(value[1]))
        return int(value) if self.kind == "whole" else float(value)


def check_values(
    config: Mapping[str, Any], allowed: Mapping[str, Allowed], required: Iterable[str] = ()
) -> None:
    """Raise ``ValueError`` (one line) for a key of ``config`` that is unknown, a ``required``
    key it lacks, or a value its :class:`Allowed` refuses."""
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise ValueError(f"unknown config keys {', '.join(map(repr, unknown))}")
    missing = [k for k in required if k not in config]
    if missing:
        raise ValueError(f"config lacks {', '.join(map(repr, missing))}")
    for key, value in config.items():
        problem = allowed[key].problem(key, value)
        if problem is not None:
            raise ValueError(problem)


def _declare(allowed: Allowed, default: Any) -> Any:
    if default is MISSING:
        return field(metadata={_KEY: allowed})
    return field(default=default, metadata={_KEY: allowed})


def between(low: float, high: float, default: Any = MISSING, *, or_none: bool = False) -> Any:
    """A number field in ``[low, high]``: whole numbers where both bounds are ints, any number
    (stored as a float) where one is a float. No ``default``: a header must state it. ``None``
    is allowed with ``or_none`` or a ``None`` default (a value derived from the others)."""
    kind: FieldKind = "whole" if _whole(low) and _whole(high) else "number"
    return _declare(Allowed(kind, low, high, or_none or default is None), default)


def flag(default: Any = MISSING) -> Any:
    """A true-or-false field."""
    return _declare(Allowed("flag"), default)


def size_between(low: int, high: int, default: Any = MISSING) -> Any:
    """An image size field ``(W, H)``, each a whole number in ``[low, high]`` (a list in the
    header, a tuple in the config)."""
    return _declare(Allowed("size", low, high), default)


def declared(cls: type) -> dict[str, Allowed]:
    """The :class:`Allowed` of every field of the config dataclass ``cls``."""
    out = {}
    for f in fields(cls):
        if _KEY not in f.metadata:
            raise TypeError(
                f"{cls.__name__}.{f.name} declares no allowed values: use between, flag or "
                "size_between from posterforge.plugin"
            )
        out[f.name] = f.metadata[_KEY]
    return out


def required(cls: type) -> tuple[str, ...]:
    """The fields of ``cls`` without a default, which a header must state."""
    return tuple(
        f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING
    )


class NetConfig:
    """Base of a network's config, a frozen dataclass whose every field is declared with
    :func:`between`, :func:`flag` or :func:`size_between`. Making one checks and normalises
    its values (a bad value is a one-line ``ValueError``)."""

    def __post_init__(self) -> None:
        for name, allowed in declared(type(self)).items():
            value = getattr(self, name)
            problem = allowed.problem(name, value)
            if problem is not None:
                raise ValueError(problem)
            object.__setattr__(self, name, allowed.normalise(value))  # frozen: set once here

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` unless ``config`` (a header's) can make this config."""
        check_values(config, declared(cls), required(cls))

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> Self:
        """The config a weight header's ``config`` states, checked (:meth:`check`)."""
        cls.check(config)
        return cls(**config)

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (sizes as lists): the weight header's ``config``."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

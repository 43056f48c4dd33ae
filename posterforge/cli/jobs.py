"""Commands made from typed jobs: a command's options are its job's fields.

A command module declares, per job field, how the command line spells it (an :class:`Opt`: the
type click parses, typer's Option or Argument, and how the parsed value becomes the field's),
plus the options that only shape the output (``--json``, ``--quiet``). :func:`job_command`
builds the function typer registers: it takes the parsed options, makes the job (which checks
them, once) and hands it to the command's ``run``. A job field that no option declares and that
is not listed as left out is an error when the CLI starts, so the two never drift apart.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Collection, Mapping
from copy import copy
from dataclasses import dataclass
from typing import Annotated, Any

from posterforge.errors import PosterforgeError
from posterforge.jobs.common import InvalidOption, field_help

_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class Opt:
    """One command-line option or argument. ``default``: the command line's own default (else
    the job field's). The help is the job field's unless ``info`` has its own. ``to_field``:
    the parsed value into the field's type (default: as is). ``for_job``: an option that is no
    field itself but that the command's ``prepare`` turns into fields (``--scenes`` into
    ``mode``), named as it likes, in its place among the options."""

    type: Any
    info: Any  # typer.Option(...) or typer.Argument(...)
    default: Any = _EMPTY
    to_field: Callable[[Any], Any] | None = None
    for_job: bool = False


def shown(json_help: str, quiet_help: str | None = None) -> dict[str, Opt]:
    """The options that say how a command's records are shown, not part of its job: ``--json``
    and, where it has one, ``--quiet``."""
    import typer

    out = {"as_json": Opt(bool, typer.Option("--json", help=json_help), default=False)}
    if quiet_help is not None:
        out["quiet"] = Opt(bool, typer.Option("--quiet", "-q", help=quiet_help), default=False)
    return out


def job_command(
    job: type,
    options: Mapping[str, Opt],
    run: Callable[..., None],
    *,
    extras: Mapping[str, Opt] | None = None,
    left_out: Collection[str] = (),
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Callable[..., None]:
    """The typer command for ``job``: its parameters are ``options`` (named by job field) then
    ``extras``; it calls ``run(job_instance, **extras)``. The docstring is ``run``'s.
    ``prepare`` may fill in what the command line defaults (an output folder, say) in the job's
    values before the job is made; what it returns is passed to ``run`` too."""
    extras = dict(extras or {})
    fields = {f.name: f for f in dataclasses.fields(job)}
    undeclared = sorted(set(fields) - set(options) - set(left_out))
    unknown = sorted(n for n, opt in options.items() if n not in fields and not opt.for_job)
    if undeclared or unknown:
        raise TypeError(f"{job.__name__} command: undeclared {undeclared}, unknown {unknown}")
    if prepare is None and any(opt.for_job for opt in options.values()):
        raise TypeError(f"{job.__name__} command: options for_job need a prepare")
    params = [
        _parameter(name, opt, *_field_default_and_help(fields.get(name)))
        for name, opt in options.items()
    ] + [_parameter(name, opt, _EMPTY) for name, opt in extras.items()]

    def command(**values: Any) -> None:
        shown = {k: values.pop(k) for k in extras}
        made = {
            k: (options[k].to_field(v) if options[k].to_field is not None and v is not None else v)
            for k, v in values.items()
        }
        if prepare is not None:
            shown.update(prepare(made))
        try:
            made_job = job(**made)
        except InvalidOption as e:  # name the option as the user typed it
            if e.field not in options:
                raise
            raise PosterforgeError(e.naming(_flag(e.field, options[e.field]))) from None
        run(made_job, **shown)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__doc__ = run.__doc__
    command.__name__ = command.__qualname__ = run.__name__
    command.__module__ = run.__module__
    return command


def _declared_names(info: Any) -> list[str]:
    """The names an Option declares. In ``Annotated``, typer reads a first positional argument
    (stored as ``default``) as the first name."""
    first = getattr(info, "default", None)
    names = [first] if isinstance(first, str) and first.startswith("-") else []
    return names + list(getattr(info, "param_decls", None) or ())


def _flag(field: str, opt: Opt) -> str:
    """The option's long name (``--batch-size``), as the user typed it."""
    decls = [d for d in _declared_names(opt.info) if d.startswith("--")]
    return decls[0] if decls else "--" + field.replace("_", "-")


def _field_default_and_help(field: dataclasses.Field | None) -> tuple[Any, str]:
    if field is None:  # an option for the job's prepare, not a field
        return _EMPTY, ""
    default = field.default if field.default is not dataclasses.MISSING else _EMPTY
    return default, field_help(field)


def _parameter(name: str, opt: Opt, field_default: Any, help: str = "") -> inspect.Parameter:
    default = opt.default if opt.default is not _EMPTY else field_default
    info = opt.info
    if help and not getattr(info, "help", None):  # the job field's own description
        info = copy(info)
        info.help = help
    if opt.type is bool and default is False and not _declared_names(info):
        # off by default: a plain flag, with no --no- twin to widen the help's columns
        info = copy(info)
        info.param_decls = ("--" + name.replace("_", "-"),)
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[opt.type, info]
    )

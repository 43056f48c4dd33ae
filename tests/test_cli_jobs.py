"""``job_command``: a command's options are its job's fields, and options that are no field
(``for_job``) are turned into fields by the command's ``prepare`` (issue 20)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from posterforge.cli.jobs import Opt, job_command
from posterforge.jobs.common import about


@dataclass(frozen=True)
class _Job:
    mode: str = about("fast or slow.", "slow")
    n: int = about("How many.", 1)


def _loud(values: dict[str, Any]) -> dict[str, Any]:
    values["mode"] = "fast" if values.pop("fast") else "slow"
    return {}


def test_an_option_for_the_job_keeps_its_place_and_becomes_a_field():
    made = []
    options = {"fast": Opt(bool, typer.Option("--fast"), default=False, for_job=True),
               "n": Opt(int, typer.Option("-n"))}  # fmt: skip
    command = job_command(_Job, options, made.append, left_out=("mode",), prepare=_loud)
    assert list(inspect.signature(command).parameters) == ["fast", "n"]
    app = typer.Typer()
    app.command()(command)
    assert CliRunner().invoke(app, ["--fast", "-n", "3"]).exit_code == 0
    assert CliRunner().invoke(app, []).exit_code == 0
    assert made == [_Job("fast", 3), _Job("slow", 1)]


def test_options_and_fields_cannot_drift_apart():
    with pytest.raises(TypeError, match=r"undeclared \['mode'\]"):
        job_command(_Job, {"n": Opt(int, typer.Option())}, print)
    with pytest.raises(TypeError, match=r"unknown \['m'\]"):
        job_command(_Job, {"m": Opt(int, typer.Option())}, print, left_out=("mode", "n"))
    fast = {"fast": Opt(bool, typer.Option(), default=False, for_job=True)}
    with pytest.raises(TypeError, match="need a prepare"):
        job_command(_Job, fast, print, left_out=("mode", "n"))

"""The typed job of ``posterforge warmup`` and ``posterforge.api.warmup`` over it (issue 20)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from posterforge import api
from posterforge.errors import PosterforgeError
from posterforge.jobs.warmup import WarmupJob


@pytest.mark.parametrize(
    ("fields", "line"),
    [
        ({}, "name what to compile: --style S --size WxH, or --model M"),
        ({"style": "a", "model": "b"}, "name what to compile"),
        ({"style": "a"}, "--style needs --size WxH: the frames' size"),
        ({"style": "a", "size": "16"}, "--size 16: give the frames' exact size as WxH"),
        ({"style": "a", "size": "0x5"}, "invalid size '0x5'"),
        ({"model": "m", "size": "16x16"}, "--size is for --style: a generator's size is its own"),
        ({"model": "m", "batch_size": 0}, "invalid batch size 0: use 1 or more"),
        ({"model": "m", "precision": "fp8"},
         "invalid precision 'fp8': use auto, fp32, fp16 or bf16"),
        ({"model": "m", "backend": "tvm"}, "invalid backend 'tvm': use auto, torch or openvino"),
        ({"model": "m", "device": "tpu"}, "invalid device 'tpu'"),
    ],
)
def test_a_warmup_job_is_checked_when_made(fields, line):
    with pytest.raises(PosterforgeError) as e:
        WarmupJob(**fields)
    assert str(e.value).startswith(line) and "\n" not in str(e.value)


def test_the_cli_names_the_option_as_typed(inproc):
    r = inproc("warmup", "--model", "m", "--precision", "fp8")
    assert r.code == 2 and "invalid --precision 'fp8': use auto, fp32, fp16 or bf16" in r.err


def test_the_api_keywords_are_the_jobs_fields():
    import inspect

    params = inspect.signature(api.warmup).parameters
    keywords = {n: p.default for n, p in params.items() if n != "ctx"}
    assert keywords == {f.name: f.default for f in dataclasses.fields(WarmupJob)}
    assert all(p.kind == p.KEYWORD_ONLY and p.annotation != p.empty for p in params.values())


def test_the_api_compiles_a_style_of_the_context_it_is_given(tiny_style, tmp_path, monkeypatch):
    """A style that only the given context's store holds: the warm-up resolves it there."""
    from posterforge.context import Context
    from posterforge.plugins import get_host
    from posterforge.store import Store
    from posterforge.weights import load_weights

    compiled = []

    def fake_compile(module, **kwargs):
        compiled.append(module)
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    weights = load_weights(tiny_style)
    store = Store(tmp_path / "elsewhere")
    store.put("only-here", weights.tensors, weights.header)
    ctx = Context(get_host(), store)
    with pytest.raises(PosterforgeError, match="only-here"):  # not in the default store
        api.warmup(style="only-here", size="16x12", device="cpu")
    done = api.warmup(style="only-here", size="16x12", batch_size=2, device="cpu", ctx=ctx)
    assert done.shape == (2, 3, 12, 16) and not done.cached and len(compiled) == 1

"""The run layer: typed jobs made and checked once, a model resolved once (one hash and one header
parse of its weight file per run), the Python API taking the jobs' fields as typed keywords."""

from __future__ import annotations

import dataclasses
import inspect
import sys
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from posterforge import api, weights
from posterforge.errors import PosterforgeError
from posterforge.jobs.generate import GenerateJob
from posterforge.jobs.mix import MixJob
from posterforge.jobs.morph import MorphJob
from posterforge.jobs.project import ProjectJob
from posterforge.jobs.translate import TranslateJob
from tests.test_generate import tiny_generator  # noqa: F401  (a fixture)


def _count(monkeypatch, name: str, counts: Counter) -> None:
    """Count the calls of ``posterforge.weights.<name>`` by file, wherever a module bound it."""
    original = getattr(weights, name)

    def counting(path, *args, **kwargs):
        counts[Path(path).resolve()] += 1
        return original(path, *args, **kwargs)

    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("posterforge"):
            for attr, value in list(vars(module).items()):
                if value is original:
                    monkeypatch.setattr(module, attr, counting)


@pytest.fixture
def counted(monkeypatch):
    hashes, headers = Counter(), Counter()
    _count(monkeypatch, "sha256_file", hashes)
    _count(monkeypatch, "read_header", headers)
    return hashes, headers


def _frames(folder: Path, n: int = 2) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")
    return folder


@pytest.mark.parametrize("by", ["store", "file"])
def test_translate_hashes_and_parses_the_weights_once(inproc, tiny_style, tmp_path, by, counted):
    spec = str(tiny_style)
    if by == "store":
        api.import_weights(tiny_style, "tinyone")
        spec = "tinyone"
    path = (api.weights_path(spec)).resolve()
    hashes, headers = counted
    hashes.clear(), headers.clear()
    frames = _frames(tmp_path / "in")
    r = inproc("translate", str(frames), "-o", str(tmp_path / "o"), "-s", spec, "--device", "cpu")
    assert r.code == 0, r.err
    assert len(r.out.splitlines()) == 2
    assert hashes[path] == 1, hashes
    assert headers[path] == 1, headers


def test_generate_hashes_and_parses_the_weights_once(inproc, tiny_generator, tmp_path, counted):  # noqa: F811
    api.import_weights(tiny_generator, "tinygen")
    path = api.weights_path("tinygen").resolve()
    hashes, headers = counted
    hashes.clear(), headers.clear()
    r = inproc("generate", "-m", "tinygen", "-g", "horror", "-g", "comedy", "-n", "3",
               "-b", "2", "-o", str(tmp_path / "p"), "--device", "cpu")  # fmt: skip
    assert r.code == 0, r.err
    assert len(r.out.splitlines()) == 6
    assert hashes[path] == 1, hashes
    assert headers[path] == 1, headers


def test_a_condition_is_parsed_once_per_run_not_per_batch(tiny_generator, tmp_path, monkeypatch):  # noqa: F811
    from posterforge.generation import load_generator, start

    gen = load_generator(str(tiny_generator), device="cpu")
    calls = Counter()
    real = gen.module.conditions

    def conditions(spec):
        calls[spec] += 1
        return real(spec)

    monkeypatch.setattr(gen.module, "conditions", conditions)
    job = GenerateJob(("horror",), 7, tmp_path / "p", batch_size=2, device="cpu")
    posters = list(start(job, generator=gen).records())
    assert len(posters) == 7 and calls == {"horror": 1}


def _fields(job: type) -> dict[str, object]:
    return {f.name: f.default for f in dataclasses.fields(job)}


@pytest.mark.parametrize(
    ("function", "job", "positional"),
    [(api.translate, TranslateJob, ("inputs", "out")),
     (api.generate, GenerateJob, ("conditions", "n", "out")),
     (api.morph, MorphJob, ("out", "conditions")),
     (api.project, ProjectJob, ("posters", "out")),
     (api.mix, MixJob, ("rows", "cols", "out"))],
)  # fmt: skip
def test_the_api_takes_exactly_the_jobs_fields(function, job, positional):
    params = inspect.signature(function).parameters
    assert "options" not in params and all(p.kind != p.VAR_KEYWORD for p in params.values())
    keywords = {n: p.default for n, p in params.items() if n not in (*positional, "ctx")}
    fields = {n: d for n, d in _fields(job).items() if n not in positional}
    assert keywords == fields
    assert all(params[n].annotation != inspect.Parameter.empty for n in keywords)


def test_a_job_is_checked_when_made_and_frozen(tmp_path):
    job = TranslateJob(["a.png"], str(tmp_path), size="64", fmt="JPEG")
    assert job.inputs == ("a.png",) and job.out == tmp_path and job.fmt == "jpg"
    assert job.size is not None and job.size.short == 64
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.style = "other"  # type: ignore[misc]
    for bad, words in [({"precision": "fp8"}, "invalid precision 'fp8'"),
                       ({"compile": "maybe"}, "invalid compile"),
                       ({"alpha": "x"}, "use keep or drop"),
                       ({"quality": 0}, "invalid quality 0: use 1 to 100"),
                       ({"device": "tpu"}, "invalid device 'tpu'"),
                       ({"shard": "3/2"}, "shard"),
                       ({"null": True}, "--null")]:  # fmt: skip
        with pytest.raises(PosterforgeError, match=words):
            TranslateJob(("a.png",), tmp_path, **bad)
    with pytest.raises(PosterforgeError, match="nothing to write"):
        GenerateJob(("horror",), 2, None)
    with pytest.raises(PosterforgeError, match="--seed"):
        GenerateJob((), 2, tmp_path, seed=-1)


def test_the_shape_check_patches_nothing_outside_its_thread():
    """Building a network on the meta device skips its fills in that thread alone: torch.nn.init
    is never replaced, and another thread filling a tensor meanwhile really fills it."""
    import torch
    from torch import nn

    original = torch.nn.init.normal_
    filled: list[float] = []

    def other_thread():
        t = torch.zeros(1000)
        torch.nn.init.normal_(t)
        filled.append(float(t.std()))

    def factory():
        assert torch.nn.init.normal_ is original
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        return nn.Embedding(5, 4)

    weights.check_shapes(factory, {"weight": (5, 4)})
    assert filled and filled[0] > 0.5


def test_the_api_reference_is_generated_from_the_jobs():
    from posterforge.jobs.reference import render_api_reference

    text = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text()
    assert text == render_api_reference(), (
        "docs/api.md is stale: python -m posterforge.jobs.reference > docs/api.md"
    )
    for page in ("translate", "generate", "frames", "train", "training.run.resume",
                 "training.run.export", "evaluate", "api.warmup"):  # fmt: skip
        assert f"\n## posterforge.{page}\n" in text, page
    assert "| `run_dir` | `Path` | required | A run folder made by train. |" in text
    assert "Style name or a .safetensors weight file." in (api.translate.__doc__ or "")
    assert "Images per genre" in (api.generate.__doc__ or "")


def test_a_plugin_failure_keeps_its_stage_apart_from_its_text(with_test_plugins):
    """What failed, and where, is data: nobody parses the line that `plugins` shows."""
    from posterforge import plugins

    host = plugins.get_host()
    [error] = host.plugins["broken"].errors
    assert error == "load failed: RuntimeError: pf-broken fails on import on purpose"
    assert error.stage == plugins.Stage.LOAD
    assert error.detail == "RuntimeError: pf-broken fails on import on purpose"

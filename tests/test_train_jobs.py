"""The training and eval jobs: made once, checked with the CLI's lines, and the API's keywords are
the jobs' own."""

from __future__ import annotations

import inspect
from dataclasses import FrozenInstanceError, fields

import pytest

from posterforge.context import default_context
from posterforge.errors import PosterforgeError
from posterforge.jobs.evaluate import EvalJob
from posterforge.jobs.train import ExportJob, ResumeJob, TrainJob, TrainOptions


def _keywords(fn) -> dict[str, object]:
    params = inspect.signature(fn).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def test_the_api_keywords_are_the_jobs_keywords():
    import posterforge
    from posterforge import api

    assert posterforge.train is api.train and posterforge.evaluate is api.evaluate
    for fn in (api.train, api.evaluate):  # typed keywords, each named: no **options
        params = inspect.signature(fn).parameters.values()
        assert all(p.kind is not p.VAR_KEYWORD for p in params)
        assert all(p.annotation is not inspect.Parameter.empty for p in params)
    own = ("ctx", "progress")  # what the run is given besides the job
    train_keywords = {k: v for k, v in _keywords(api.train).items() if k not in own}
    assert train_keywords == _keywords(TrainJob.create)
    assert set(TrainOptions.__annotations__) == set(train_keywords)  # run.train's **options
    eval_keywords = {k: v for k, v in _keywords(api.evaluate).items() if k not in own}
    translator = ("a", "b", "reverse", "size")  # posterforge.evaluate_translator's own
    job_fields = {
        f.name: f.default for f in fields(EvalJob) if f.name not in ("model", "data", *translator)
    }
    assert eval_keywords == job_fields  # the labels file's fields (train's, too) included
    shared = ("device", "batch_size")
    translator_keywords = {k: v for k, v in _keywords(api.evaluate_translator).items()
                           if k not in (*own, "model", "a", "b")}  # fmt: skip
    assert translator_keywords == {
        f.name: f.default for f in fields(EvalJob) if f.name in ("reverse", "size", *shared)
    }


def _folders(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    return {"a": tmp_path / "a", "b": tmp_path / "b"}


def test_a_train_job_is_checked_once_when_it_is_made(tmp_path):
    ctx = default_context()
    inputs = _folders(tmp_path)
    job = TrainJob.create(ctx, "translator", inputs, "mine", tmp_path / "run", max_steps=3,
                          overrides=["lr=1e-3", "train.log_every=1"])  # fmt: skip
    assert job.family.name == "cyclegan" and job.recipe["train"]["max_steps"] == 3
    assert job.recipe["model"]["lr"] == 1e-3 and job.recipe["train"]["log_every"] == 1
    with pytest.raises(FrozenInstanceError):
        job.name = "other"  # type: ignore[misc]
    request = job.request()
    assert request["arch"] == "cyclegan" and request["data"]["a"] == str(inputs["a"].resolve())
    cases = [
        (dict(inputs={"a": inputs["a"]}), "missing --b (or pass --resume RUN_DIR)"),
        (dict(name=None, run_dir=None), "missing --name, --out (or pass --resume RUN_DIR)"),
        (dict(inputs={**inputs, "data": tmp_path}), "cyclegan does not take --data"),
        (dict(inputs={**inputs, "b": tmp_path / "nope"}), f"--b {tmp_path / 'nope'}: folder not"),
        (dict(options={"balance": "cap"}), "cyclegan has no option --balance"),
        (dict(device="tpu"), "invalid device 'tpu'"),
        (dict(kind="painter"), "invalid kind 'painter': use translator or generator"),
        (dict(init_from="vintage", kind="generator", inputs={"data": tmp_path}),
         "--init-from vintage: holds a translator, not a generator"),
        (dict(overrides=["lr"]), "invalid --set 'lr': use KEY=VALUE"),
    ]  # fmt: skip
    base = dict(kind="translator", inputs=inputs, name="mine", run_dir=tmp_path / "run")
    for change, message in cases:
        call = {**base, **change}
        with pytest.raises(PosterforgeError) as e:
            TrainJob.create(ctx, call.pop("kind"), call.pop("inputs"), **call)
        assert str(e.value).startswith(message), (change, str(e.value))
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "step-00000001.pt").write_bytes(b"")
    with pytest.raises(PosterforgeError, match="holds a run already: resume it with --resume"):
        TrainJob.create(ctx, "translator", inputs, "mine", tmp_path / "run")


def test_a_declared_option_must_be_one_of_its_choices(tmp_path):
    ctx = default_context()
    with pytest.raises(PosterforgeError) as e:
        TrainJob.create(ctx, "generator", {"data": tmp_path}, "x", tmp_path / "run",
                        options={"balance": "most"})  # fmt: skip
    assert str(e.value) == "--balance must be one of cap, resample, none, not 'most'"
    job = TrainJob.create(ctx, "generator", {"data": tmp_path}, "x", tmp_path / "run",
                          options={"balance": "none", "labels_from_data": False})  # fmt: skip
    assert job.options == {"balance": "none"} and job.recipe["model"]["balance"] == "none"


def test_resume_export_and_eval_jobs_say_what_is_wrong(tmp_path):
    with pytest.raises(PosterforgeError, match="not a training run"):
        ResumeJob(tmp_path)
    with pytest.raises(PosterforgeError, match="not a training run"):
        ExportJob.create(default_context(), tmp_path, "x")
    with pytest.raises(PosterforgeError, match="invalid weight name"):
        ExportJob.create(default_context(), tmp_path, "../x")
    cases = [
        (dict(data=None), "name the real images with --data DIR"),
        (dict(data=tmp_path / "nope"), f"--data {tmp_path / 'nope'}: folder not found"),
        (dict(n=0), "-n must be at least 1"),
        (dict(device="gpu"), "invalid device 'gpu'"),
    ]
    for change, message in cases:
        with pytest.raises(PosterforgeError) as e:
            EvalJob(**{"model": "posters-demo", "data": tmp_path, **change})
        assert str(e.value).startswith(message)
    with pytest.raises(PosterforgeError, match=r"l\.csv: file not found"):
        EvalJob("m", tmp_path, labels=tmp_path / "l.csv")
    (tmp_path / "l.csv").write_text("path,labels\n")
    assert EvalJob("m", str(tmp_path), labels=str(tmp_path / "l.csv")).labels == tmp_path / "l.csv"
    assert EvalJob("m", tmp_path, only=("a,b", "c", "a")).only == ("a", "b", "c")


def test_train_and_eval_refuse_a_bad_labels_reading_alike(tmp_path):
    """One declaration (jobs/labelled.py): the same options, the same one line from both."""
    from posterforge.family import labelled_options
    from posterforge.jobs.labelled import FIELDS

    declared = {o.key: o.help for o in labelled_options("genre")}
    assert all(declared[f.name] == f.metadata["help"] for f in FIELDS)
    ctx = default_context()
    for bad, message in [({"encoding": "klingon"}, "unknown encoding 'klingon'"),
                         ({"path_template": "{imdbId"}, "--path-template")]:  # fmt: skip
        with pytest.raises(PosterforgeError, match=message) as train_error:
            TrainJob.create(ctx, "generator", {"data": tmp_path}, "x", tmp_path / "run",
                            options=bad)  # fmt: skip
        with pytest.raises(PosterforgeError) as eval_error:
            EvalJob("m", tmp_path, **bad)
        assert str(eval_error.value) == str(train_error.value)


def test_a_set_that_the_init_weights_overrule_is_said_naming_both_values(tmp_path, caplog):
    """The init weights fix the shape: a --set of it is not used, and one line says so."""
    ctx = default_context()
    inputs = _folders(tmp_path)

    def job(*overrides: str) -> TrainJob:
        return TrainJob.create(ctx, "translator", inputs, "mine", tmp_path / "run",
                               init_from="vintage", overrides=overrides)  # fmt: skip

    job("ngf=8")
    notes = [r.getMessage() for r in caplog.records if "note:" in r.getMessage()]
    assert notes == [
        "posterforge: note: --set ngf=8 is not used: --init-from vintage fixes ngf=64 (its "
        "weights' shape); leave out --init-from to train that shape"
    ]
    caplog.clear()
    job("lr=1e-3", "n_blocks=2")
    assert any("n_blocks=2 is not used" in r.getMessage() and "n_blocks=9" in r.getMessage()
               for r in caplog.records)  # fmt: skip
    caplog.clear()
    # the same value, and keys the weights do not fix, are taken without a word
    assert job("ngf=64", "lr=1e-3").recipe["model"]["ngf"] == 64
    assert not [r for r in caplog.records if "note:" in r.getMessage()]

"""`train` as an API and a command: recipes, overrides, early errors, and a real tiny run."""

from __future__ import annotations

import json

import pytest

from posterforge.errors import PosterforgeError
from posterforge.training.run import family_for, load_recipe, parse_overrides
from posterforge.training.schedules import Schedule


def test_overrides_are_toml_values_in_sections():
    got = parse_overrides(
        [
            "lr=1e-4",
            'loss="wgan-gp"',
            "train.max_steps=10",
            "cycle_weight={start=20, end=10}",
            "note=plain words",
        ]
    )
    assert got == {
        "train": {"max_steps": 10},
        "model": {
            "lr": 1e-4,
            "loss": "wgan-gp",
            "cycle_weight": {"start": 20, "end": 10},
            "note": "plain words",
        },
    }
    with pytest.raises(PosterforgeError, match="use KEY=VALUE"):
        parse_overrides(["lr"])
    with pytest.raises(PosterforgeError, match="section is train or model"):
        parse_overrides(["optim.lr=1"])


def test_the_anime_recipe_has_the_reference_shape():
    recipe = load_recipe(family_for("translator", "cyclegan"), "anime", ["train.max_steps=5"])
    model = recipe["model"]
    assert recipe["train"]["max_steps"] == 5
    assert model["loss"] == "lsgan" and model["wgan_from_step"] > 0  # LSGAN first, then WGAN-GP
    for key in ("cycle_weight", "identity_weight"):  # strong early, relaxed later
        s = Schedule.parse(model[key])
        assert s(0) > s(10**7)
    clip = Schedule.parse(model["grad_clip"])
    assert clip(0) < clip(10**7)  # tight clipping early


def _train_args(a, b, name, out, *extra) -> list[str]:
    return [
        "train",
        "translator",
        "--a",
        str(a),
        "--b",
        str(b),
        "--name",
        name,
        "--out",
        str(out),
        *extra,
    ]


def _train(cli, a, b, name, out, *extra):
    return cli(*_train_args(a, b, name, out, *extra))


def test_errors_come_before_any_training(tmp_path, inproc):
    cli = inproc  # the command in this process: what is tested is the check, not a process
    (tmp_path / "a").mkdir()
    r = _train(cli, str(tmp_path / "a"), str(tmp_path / "nope"), "x", str(tmp_path / "run"))
    assert r.code == 2 and "--b" in r.err and "not found" in r.err
    r = _train(cli, str(tmp_path / "a"), str(tmp_path / "a"), "../x", str(tmp_path / "run"))
    assert r.code == 2 and "invalid weight name" in r.err
    r = cli("train", "translator", "--a", str(tmp_path / "a"))
    assert r.code == 2 and "missing --b, --name, --out" in r.err
    assert not (tmp_path / "run").exists()


def _domain(folder, n, cast, seed):
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = rng.integers(60, 200, (1, 1, 3)) + rng.normal(0, 20, (40, 40, 3))
        Image.fromarray((img + cast).clip(0, 255).astype("uint8")).save(folder / f"{i:03d}.png")


TINY = [
    "size=32",
    "load_size=36",
    "batch_size=2",
    "ngf=4",
    "n_blocks=1",
    "ndf=4",
    "pool_size=4",
    "train.checkpoint_every=2",
    "train.sample_every=2",
    "train.log_every=1",
]


@pytest.mark.slow
def test_train_then_translate_with_the_new_style(tmp_path, inproc):
    cli = inproc
    _domain(tmp_path / "a", 6, (40, 0, -40), 1)
    _domain(tmp_path / "b", 6, (-40, 0, 40), 2)
    run = tmp_path / "run"
    args = _train_args(
        str(tmp_path / "a"),
        str(tmp_path / "b"),
        "tinystyle",
        str(run),
        "--max-steps",
        "4",
        "--device",
        "cpu",
    )
    for item in TINY:
        args += ["--set", item]
    r = cli(*args)
    assert r.code == 0, r.err
    stored = r.out.strip()
    assert stored.endswith("tinystyle.safetensors")
    assert sorted(p.name for p in (run / "checkpoints").iterdir())[-1] == "step-00000004.pt"
    assert (run / "request.json").is_file() and (run / "log.jsonl").is_file()
    # the new style is usable by translate right away
    r = cli("translate", str(tmp_path / "a"), "-o", str(tmp_path / "out"), "-s", "tinystyle", "-q")
    assert r.code == 0, r.err
    assert len(r.out.split()) == 6
    # resume to more steps; the name is re-exported
    r = cli("train", "translator", "--resume", str(run), "--max-steps", "6", "--device", "cpu")
    assert r.code == 0, r.err
    assert sorted(p.name for p in (run / "checkpoints").iterdir())[-1] == "step-00000006.pt"
    # any checkpoint can be stored as a style of its own
    r = cli("train", "export", str(run), "--name", "tinystep4", "--step", "4")
    assert r.code == 0, r.err
    assert r.out.strip().endswith("tinystep4.safetensors")
    from posterforge.weights import read_header

    assert read_header(r.out.strip())["provenance"]["steps"] == 4
    r = cli("train", "export", str(run), "--name", "nope", "--step", "3")
    assert r.code == 2 and "no checkpoint at step 3 (have: 2, 4, 6)" in r.err
    # a finished name is not silently replaced by a new run
    r = cli(*[a if a != str(run) else str(tmp_path / "run2") for a in args])
    assert r.code == 2 and "exist already" in r.err


@pytest.mark.slow
@pytest.mark.parametrize("nodes", [1, 2], ids=["one-node", "two-nodes"])
def test_the_same_command_under_torchrun_trains_with_ddp(tmp_path, nodes):
    """Two ranks, on one node or as two nodes joined by torchrun's c10d rendezvous (the
    multi-node command line of docs/training.md): one run, rank 0 alone stores its results."""
    from .conftest import run_torchrun

    _domain(tmp_path / "a", 8, (40, 0, -40), 1)
    _domain(tmp_path / "b", 8, (-40, 0, 40), 2)
    run = tmp_path / "run"
    args = _train_args(str(tmp_path / "a"), str(tmp_path / "b"), "ddpstyle", str(run),
                       "--max-steps", "2", "--device", "cpu")  # fmt: skip
    for item in TINY:
        args += ["--set", item]
    proc = run_torchrun(*args, procs=2 // nodes, nodes=nodes)
    assert proc.code == 0, proc.err[-2000:]
    assert proc.out.strip().endswith("ddpstyle.safetensors")  # rank 0 alone stores it
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-00000002.pt"]
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2]  # one log, not one per rank


def test_a_recipe_the_family_refuses_is_a_one_line_error(tmp_path, inproc):
    cli = inproc
    _domain(tmp_path / "a", 2, (0, 0, 0), 1)
    r = _train(
        cli,
        str(tmp_path / "a"),
        str(tmp_path / "a"),
        "x",
        str(tmp_path / "run"),
        "--max-steps",
        "1",
        "--set",
        "size=16",
    )
    assert r.code == 2
    assert r.err.strip() == (
        "posterforge: error: cyclegan: size must be a multiple of 4 and at least 32, not 16"
    )


@pytest.mark.slow
def test_fine_tuning_from_the_vintage_style(tmp_path, inproc):
    cli = inproc
    """--init-from takes a style name; the generators take its shape (ngf 64, 9 blocks)."""
    _domain(tmp_path / "a", 2, (40, 0, -40), 1)
    _domain(tmp_path / "b", 2, (-40, 0, 40), 2)
    r = _train(
        cli,
        tmp_path / "a",
        tmp_path / "b",
        "tuned",
        tmp_path / "run",
        "--max-steps",
        "1",
        "--init-from",
        "vintage",
        "--device",
        "cpu",
        *[x for item in TINY for x in ("--set", item)],
    )
    assert r.code == 0, r.err
    from posterforge.weights import read_header

    header = read_header(r.out.strip())
    assert header["config"]["ngf"] == 64 and header["config"]["n_blocks"] == 9
    assert header["config"]["affine"] is True  # vintagify's generator has affine norms


def test_family_factories_may_be_lazy_import_paths(tmp_path, monkeypatch):
    import sys

    from posterforge.family import Family

    (tmp_path / "pf_lazy_family.py").write_text(
        "def task(recipe, **kw):\n    return ('task', recipe, kw)\n"
        "def data(inputs, recipe, **kw):\n    return ('data', inputs, kw)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    family = Family("g", "generator", "", (), "pf_lazy_family:task", "pf_lazy_family:data")
    assert "pf_lazy_family" not in sys.modules  # registering imports nothing
    ctx = object()  # the run's context, handed through untouched
    assert family.task({"x": 1}, seed=2, ctx=ctx) == (
        "task",
        {"x": 1},
        {"device": "cpu", "seed": 2, "init_from": None, "ctx": ctx},
    )
    assert family.data({}, {}, rank=1, ctx=ctx)[2] == {
        "seed": 0, "rank": 1, "world_size": 1, "ctx": ctx,
    }  # fmt: skip
    assert family.load_recipe() == {"model": {}, "train": {}}  # no recipe files: empty tables
    monkeypatch.delitem(sys.modules, "pf_lazy_family")


def test_a_family_factory_gets_the_context_when_it_takes_it_and_not_otherwise():
    """Factories written before ``ctx`` was offered keep working: they are called without it."""
    from posterforge.family import Family

    def old_task(recipe, *, device, seed, init_from):
        return ("old", device, seed)

    def old_data(inputs, recipe, *, seed, rank, world_size):
        return ("old", rank)

    def new_task(recipe, *, device, seed, init_from, ctx):
        return ("new", ctx)

    def new_data(inputs, recipe, *, seed, rank, world_size, ctx):
        return ("new", ctx)

    ctx = object()
    old = Family("o", "generator", "", (), old_task, old_data)
    assert old.task({}, seed=3, ctx=ctx) == ("old", "cpu", 3)
    assert old.data({}, {}, rank=1, ctx=ctx) == ("old", 1)
    new = Family("n", "generator", "", (), new_task, new_data)
    assert new.task({}, ctx=ctx) == ("new", ctx) and new.data({}, {}, ctx=ctx) == ("new", ctx)


def test_init_from_survives_a_kill_before_the_first_checkpoint(tmp_path, tiny_style):
    """A run killed before its first checkpoint resumes from its --init-from weights (not from
    random ones), leaves no temp files of the killed export, and the export keeps provenance."""
    import shutil

    import torch

    from posterforge.atomic import _host
    from posterforge.context import default_context
    from posterforge.store import Store
    from posterforge.training import run
    from posterforge.weights import load_weights

    _domain(tmp_path / "a", 4, (40, 0, -40), 1)
    _domain(tmp_path / "b", 4, (-40, 0, 40), 2)
    inputs = {"a": tmp_path / "a", "b": tmp_path / "b"}
    kw = dict(overrides=TINY, init_from=str(tiny_style), max_steps=2, seed=1, device="cpu")
    # a run in a context of its own: its store, not the one of $POSTERFORGE_HOME
    ctx = default_context(Store(tmp_path / "elsewhere"))
    stored = run.train("translator", inputs, "straight", tmp_path / "s", ctx=ctx, **kw)
    assert stored is not None and stored.is_relative_to(tmp_path / "elsewhere")
    assert not Store().has("straight") and ctx.store.has("straight")
    straight = load_weights(stored)
    run.train("translator", inputs, "killed", tmp_path / "k", **kw)
    # what a kill -9 before the first checkpoint (during an export, say) leaves behind
    shutil.rmtree(tmp_path / "k" / "checkpoints")
    (tmp_path / "k" / "model.safetensors").unlink()
    stale = tmp_path / "k" / f".model.safetensors.999999999-{_host()}-0badf00d.tmp"
    stale.write_bytes(b"half a file")
    resumed = load_weights(run.resume(tmp_path / "k", device="cpu"))
    assert not stale.exists()
    assert all(torch.equal(straight.tensors[k], resumed.tensors[k]) for k in straight.tensors)
    assert straight.config == resumed.config and straight.config["ngf"] == 4  # tiny_style's shape
    for w in (straight, resumed):
        assert w.header["provenance"]["init_from"] == str(tiny_style)


@pytest.mark.slow
def test_ctrl_c_checkpoints_the_step_it_reached_and_says_how_to_resume(tmp_path):
    """A real SIGINT to a real training process: one line, exit 130, a checkpoint of the step
    reached (not the last periodic one), and --resume carries on from it. The default recipe's
    learning rate decays from step 100000, which a 10000-step run never reaches: that is said."""
    import re
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    _domain(tmp_path / "a", 4, (40, 0, -40), 1)
    _domain(tmp_path / "b", 4, (-40, 0, 40), 2)
    run = tmp_path / "run"
    args = _train_args(tmp_path / "a", tmp_path / "b", "stopped", run, "--max-steps", "10000",
                       "--device", "cpu")  # fmt: skip
    for item in TINY:
        args += ["--set", item]
    args += ["--set", "train.checkpoint_every=1000", "--set", "train.sample_every=1000"]
    proc = subprocess.Popen([sys.executable, "-m", "posterforge", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    log = run / "log.jsonl"
    deadline = time.time() + 180
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "posterforge: note: --max-steps 10000 ends before lr starts to change" in err
    last = err.strip().splitlines()[-1]
    m = re.fullmatch(
        r"posterforge: interrupted at step (\d+) of 10000, saved as a checkpoint; continue "
        r"with: posterforge train translator --resume (.+)",
        last,
    )
    assert m, last
    step = int(m[1])
    assert m[2] == str(run) and 3 <= step < 1000 and out == ""
    assert (run / "checkpoints" / f"step-{step:08d}.pt").is_file()
    r = subprocess.run([sys.executable, "-m", "posterforge", "train", "translator", "--resume",
                        str(run), "--max-steps", str(step + 2), "--device", "cpu"],
                       cwd=ROOT, text=True, capture_output=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (run / "checkpoints" / f"step-{step + 2:08d}.pt").is_file()


@pytest.mark.slow  # two real processes that import torch: 15-20 s on the shared 2 cores
@pytest.mark.parametrize(("signame", "code"), [("SIGTERM", 143), ("SIGHUP", 129)])
def test_sigterm_and_sighup_stop_like_the_first_ctrl_c(tmp_path, signame, code):
    """A real SIGTERM (what a scheduler or ``kill`` sends) or SIGHUP (a closed terminal) to a
    real ``posterforge train``: a checkpoint of the step reached, the continue line, and exit
    128 + the signal's number."""
    import re
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    _domain(tmp_path / "a", 2, (40, 0, -40), 1)
    _domain(tmp_path / "b", 2, (-40, 0, 40), 2)
    run = tmp_path / "run"
    args = _train_args(tmp_path / "a", tmp_path / "b", "termed", run, "--max-steps", "10000",
                       "--device", "cpu", "--set", "batch_size=1")  # fmt: skip
    for item in [*TINY, "train.checkpoint_every=1000", "train.sample_every=1000"]:
        args += ["--set", item]
    proc = subprocess.Popen([sys.executable, "-m", "posterforge", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    log = run / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 2):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(getattr(signal, signame))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err and out == ""
    last = err.strip().splitlines()[-1]
    m = re.fullmatch(
        r"posterforge: interrupted at step (\d+) of 10000, saved as a checkpoint; continue "
        r"with: posterforge train translator --resume (.+)",
        last,
    )
    assert m, last
    step = int(m[1])
    assert m[2] == str(run) and 2 <= step < 1000
    assert (run / "checkpoints" / f"step-{step:08d}.pt").is_file()

"""The family contract, tried as a plugin author would: registration of every kind with clash
reports, pluggy's calling convention, presets and vocabularies shipped by a third-party plugin,
and a third-party generator family built, trained, exported and sampled from the docs alone."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from posterforge import Generator, Translator, hookimpl, plugins
from posterforge.family import Family, Input

from .conftest import ROOT, pip_install_into, run_inprocess

# -- registration ----------------------------------------------------------------------------------


class _T(Translator):
    name = "same-translator"
    needs_weights = False


class _G(Generator):
    name = "same-generator"


def _everything(folder: Path):
    """A plugin that registers one of every kind, all under fixed names."""
    from posterforge.weights import Importer, WeightSource

    class Plugin:
        @hookimpl
        def register_translators(self, register):
            register(_T)

        @hookimpl
        def register_generators(self, register):
            register(_G)

        @hookimpl
        def register_families(self, register):
            register(Family("same-family", "generator", "", (), "m:t", "m:d"))

        @hookimpl
        def register_presets(self, register):
            register(folder)

        @hookimpl
        def register_importers(self, register):
            register(Importer("same-importer", "", lambda sd: False, lambda sd: ({}, {})))

        @hookimpl
        def register_weight_sources(self, register):
            register(WeightSource("same-weights", "", lambda: None, "same-importer"))

    return Plugin()


def test_a_clash_is_reported_for_every_registration_kind(tmp_path):
    (tmp_path / "styles").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "styles" / "same-style.toml").write_text('translator = "same-translator"\n')
    (tmp_path / "labels" / "same-labels.toml").write_text('names = ["a", "b"]\n')
    host = plugins.get_host()
    try:
        host.add(_everything(tmp_path), "first")
        assert host.plugins["first"].errors == []
        assert host.plugins["first"].registered == {
            "translators": ["same-translator"],
            "generators": ["same-generator"],
            "families": ["same-family"],
            "presets": ["styles/same-style", "labels/same-labels"],
            "importers": ["same-importer"],
            "weights": ["same-weights"],
        }

        class OtherT(Translator):  # a different class under the same name
            name = "same-translator"

        class OtherG(Generator):
            name = "same-generator"

        second = _everything(tmp_path)
        second.register_translators = hookimpl(lambda register: register(OtherT))
        second.register_generators = hookimpl(lambda register: register(OtherG))
        host.add(second, "second")
        errors = host.plugins["second"].errors
        kinds = [
            "translator name 'same-translator'",
            "generator name 'same-generator'",
            "family name 'same-family'",
            "styles preset name 'same-style'",
            "labels preset name 'same-labels'",
            "importer name 'same-importer'",
            "weight source name 'same-weights'",
        ]
        for kind in kinds:
            assert any(kind in e and "taken by plugin 'first'" in e for e in errors), (kind, errors)
        assert len(errors) == len(kinds)
        assert host.plugins["second"].registered == {}  # nothing of it was taken
        assert host.translators.entry("same-translator").plugin == "first"
    finally:
        for name in ("first", "second"):
            host.remove(name)
    assert "same-family" not in host.families and "cyclegan" in host.families


def test_a_hook_implementation_may_leave_out_its_argument():
    """pluggy lets an implementation take fewer arguments than the spec; so do we."""
    calls = []

    class Quiet:
        @hookimpl
        def register_commands(self):
            calls.append("commands")

        @hookimpl
        def register_translators(self):
            calls.append("translators")

    host = plugins.get_host()
    try:
        host.add(Quiet(), "quiet")
        host.add_commands(object())
        assert calls == ["translators", "commands"]
        assert host.plugins["quiet"].errors == []
    finally:
        host.remove("quiet")


def test_plugins_json_shows_exit_and_builtin_name_clash_and_the_rest_works(test_plugins_dir):
    r = run_inprocess("plugins", "--json", extra_path=test_plugins_dir)
    assert r.code == 0, r.err
    by_name = {p["name"]: p for p in json.loads(r.out)}
    assert by_name["exiter"]["errors"] == ["load failed: called sys.exit(3)"]
    [clash] = by_name["aclash"]["errors"]
    assert "translator name 'cyclegan-resnet'" in clash and "taken by plugin 'cyclegan'" in clash
    assert by_name["cyclegan"]["errors"] == [] and by_name["cyclegan"]["builtin"] is True
    assert by_name["moods"]["registered"] == {
        "translators": ["moods-mono"],
        "presets": ["styles/noir", "labels/moods"],
    }
    r = run_inprocess("styles", "--json", extra_path=test_plugins_dir)
    assert r.code == 0, r.err
    styles = {s["name"]: s for s in json.loads(r.out)}
    assert styles["vintage"]["translator"] == "cyclegan-resnet"


@pytest.mark.slow
def test_a_third_party_style_preset_runs(test_plugins_dir, tmp_path):
    r = run_inprocess("styles", "--json", extra_path=test_plugins_dir)
    noir = {s["name"]: s for s in json.loads(r.out)}["noir"]
    assert (noir["origin"], noir["status"], noir["translator"]) == (
        "preset:moods",
        "no weights needed",
        "moods-mono",
    )
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "red.png")
    r = run_inprocess(
        "translate", str(tmp_path / "red.png"), "--style", "noir", "--out", str(tmp_path / "o"),
        "--device", "cpu", extra_path=test_plugins_dir,
    )  # fmt: skip
    assert r.code == 0, r.err
    out = np.asarray(Image.open(tmp_path / "o" / "red.png"))
    assert (out[..., 0] == out[..., 1]).all() and abs(int(out[0, 0, 0]) - 67) <= 1  # 200 / 3


TINY_CGAN = ["ngf=8", "ndf=8", "batch_size=4", "train.log_every=1", "train.checkpoint_every=2"]


@pytest.mark.slow
def test_a_third_party_label_vocabulary_trains_a_first_party_family(test_plugins_dir, tmp_path):
    """genre-cgan conditioned on the moods of another plugin; generate maps moods by name; the
    run exports after its data is deleted."""
    data = tmp_path / "data"
    for i, mood in enumerate(["calm", "tense", "joyful"]):
        (data / mood).mkdir(parents=True)
        for j in range(3):
            Image.fromarray(np.full((32, 16, 3), 60 * i + 10 * j, np.uint8)).save(
                data / mood / f"{j}.png"
            )
    run = tmp_path / "run"
    r = run_inprocess(
        "train", "generator", "--arch", "genre-cgan", "--data", str(data), "--name", "moody",
        "--out", str(run), "--max-steps", "2", "--device", "cpu", "--set", 'labels="moods"',
        *[x for item in TINY_CGAN for x in ("--set", item)], extra_path=test_plugins_dir,
    )  # fmt: skip
    assert r.code == 0, r.err
    assert re.search(r"^mood\s+found\s+used$", r.err, re.M)  # the vocabulary's own noun
    model = r.out.strip()
    from posterforge.weights import read_header

    h = read_header(Path(model))
    assert h["labels"] == ["calm", "tense", "joyful"] and h["vocabulary"]["noun"] == "mood"
    assert h["provenance"]["data"]["images_found"] == 9
    r = run_inprocess(
        "generate", "--model", model, "--genre", "happy", "-n", "2", "--out", str(tmp_path / "g"),
        "--device", "cpu", extra_path=test_plugins_dir,
    )  # fmt: skip
    assert r.code == 0, r.err
    assert sorted(p.name for p in (tmp_path / "g").glob("*.png")) == [
        "joyful-00000.png",
        "joyful-00001.png",
    ]
    r = run_inprocess("generate", "--model", model, "-g", "sad", "-o", str(tmp_path / "x"))
    assert r.code == 2 and "unknown mood 'sad'" in r.err and "valid: calm" in r.err
    shutil.rmtree(data)
    r = run_inprocess("train", "export", str(run), "--name", "moody2", extra_path=test_plugins_dir)
    assert r.code == 0, r.err
    again = read_header(Path(r.out.strip()))
    assert again["labels"] == h["labels"] and again["provenance"]["data"] == h["provenance"]["data"]


# -- a third-party family, from the docs alone ----------------------------------------------------


def package_from_docs(target: Path) -> list[str]:
    """Write the files of the generator-family tutorial in docs/plugins.md (its fenced blocks
    whose info string names a file) into ``target``."""
    text = (ROOT / "docs" / "plugins.md").read_text()
    written = []
    for m in re.finditer(r"^```\w+ file=(\S+)\n(.*?)^```$", text, re.M | re.S):
        path = target / m[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(m[2])
        written.append(m[1])
    return written


@pytest.fixture(scope="module")
def blobs_site(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("blobs-src") / "posterforge-blobs"
    files = package_from_docs(src)
    assert set(files) == {
        "pyproject.toml",
        "posterforge_blobs/__init__.py",
        "posterforge_blobs/nets.py",
        "posterforge_blobs/training.py",
        "posterforge_blobs/recipes/default.toml",
    }
    site = tmp_path_factory.mktemp("blobs-site")
    pip_install_into(site, src)
    return site


@pytest.mark.slow
def test_a_third_party_unconditional_family_trains_exports_and_generates(blobs_site, tmp_path):
    images = tmp_path / "pictures"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(images / f"{i}.png")

    r = run_inprocess("train", "generator", "--help", extra_path=blobs_site)
    assert r.code == 0 and "--images" in r.out and "blobs" in r.out

    run = tmp_path / "run"
    common = ["--device", "cpu", "--set", "batch_size=4", "--set", "width=8"]
    r = run_inprocess(
        "train", "generator", "--arch", "blobs", "--images", str(images), "--name", "blobs",
        "--out", str(run), "--max-steps", "3", "--set", "train.checkpoint_every=2",
        "--set", "train.log_every=1", *common, extra_path=blobs_site,
    )  # fmt: skip
    assert r.code == 0, r.err
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [1, 2, 3] and all(
        isinstance(e["loss_D"], float) for e in log
    )

    shutil.rmtree(images)  # export needs only the run
    site = {"extra_path": blobs_site}
    r = run_inprocess("train", "export", str(run), "--name", "blobs-2", "--step", "2", **site)
    assert r.code == 0, r.err

    out = tmp_path / "out"
    r = run_inprocess(
        "generate", "--model", "blobs", "-n", "3", "--out", str(out), "--json", "--device", "cpu",
        extra_path=blobs_site,
    )  # fmt: skip
    assert r.code == 0, r.err
    records = [json.loads(line) for line in r.out.splitlines()]
    assert [(x["condition"], x["index"], Path(x["path"]).name) for x in records] == [
        ("", 0, "00000.png"),
        ("", 1, "00001.png"),
        ("", 2, "00002.png"),
    ]
    assert Image.open(out / "00000.png").size == (32, 32)
    r = run_inprocess("generate", "--model", "blobs-2", "-g", "horror", "-o", str(out), **site)
    assert r.code == 2 and "unconditional: leave out --genre" in r.err

    r = run_inprocess(
        "train", "generator", "--arch", "blobs", "--data", str(tmp_path), "--name", "x",
        "--out", str(tmp_path / "r2"), extra_path=blobs_site,
    )  # fmt: skip
    assert r.code == 2 and "blobs does not take --data" in r.err
    r = run_inprocess(
        "train", "generator", "--arch", "blobs", "--images", str(tmp_path), "--name", "x",
        "--out", str(tmp_path / "r3"), "--init-from", "blobs", extra_path=blobs_site,
    )  # fmt: skip
    assert r.code == 2 and "blobs cannot start from existing weights" in r.err


def test_an_unconditional_generator_samples_through_the_python_api(blobs_site, monkeypatch):
    monkeypatch.syspath_prepend(str(blobs_site))
    plugins.reset()
    import posterforge_blobs.nets as nets

    from posterforge.weights import make_header, save_weights

    net = nets.generator(8, 4)
    path = Path(str(blobs_site)) / "b.safetensors"
    header = make_header("generator", "blobs", {"z_dim": 8, "width": 4})
    save_weights(path, net.state_dict(), header)
    from posterforge.generation import load_generator, sample

    gen = load_generator(str(path), device="cpu")
    assert gen.label_names is None and not gen.conditional
    x = sample(gen, None, 5, seed=3, batch_size=2)
    assert x.shape == (5, 3, 32, 32) and x.min() >= 0 and x.max() <= 1
    torch = pytest.importorskip("torch")
    assert torch.equal(x[3:], sample(gen, None, 2, seed=3, start=3))  # index, not batch, decides


def test_a_family_declaration_is_checked():
    from posterforge.errors import PosterforgeError

    with pytest.raises(PosterforgeError, match="reserved"):
        Family("f", "generator", "", (Input("name", "folder", ""),), "m:t", "m:d")
    with pytest.raises(PosterforgeError, match="kind"):
        Family("f", "painter", "", (), "m:t", "m:d")


@pytest.mark.slow
def test_an_unknown_name_mentions_the_plugins_that_failed_to_load(test_plugins_dir, tmp_path):
    site = {"extra_path": test_plugins_dir}
    r = run_inprocess("generate", "--model", "broken-model", "-o", str(tmp_path), **site)
    assert r.code == 2 and r.err.count("\n") == 1, r.err
    assert "plugins that failed to load: " in r.err and "broken (RuntimeError: pf-broken" in r.err


@pytest.mark.slow
def test_resume_refuses_options_it_would_ignore(tmp_path):
    r = run_inprocess("train", "translator", "--resume", str(tmp_path), "--a", str(tmp_path),
                "--name", "other")  # fmt: skip
    assert r.code == 2 and r.err.count("\n") == 1, r.err
    assert "leave out --a, --name (only --max-steps and --device may change)" in r.err

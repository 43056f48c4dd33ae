"""A new user's first commands as typed (issue 22): translate and generate without --out write
to a default that the first line names, beside the input and never inside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from posterforge.jobs.translate import default_output


def _frames(folder: Path, n: int = 2) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((16, 16, 3), 60 * i, np.uint8)).save(folder / f"{i}.png")
    return folder


def test_translate_without_out_writes_beside_the_folder(inproc, tiny_style, tmp_path):
    frames = _frames(tmp_path / "frames")
    r = inproc("translate", "--style", str(tiny_style), str(frames), "--device", "cpu")
    assert r.code == 0, r.err
    out = tmp_path / "frames-tiny"
    assert r.err.splitlines()[0] == f"posterforge: writing to {out} (no --out given)"
    assert sorted(p.name for p in out.glob("*.png")) == ["0.png", "1.png"]
    assert sorted(p.name for p in frames.iterdir()) == ["0.png", "1.png"]  # nothing inside it
    again = inproc("translate", "--style", str(tiny_style), str(frames), "--device", "cpu")
    assert again.code == 0 and "skipped 2" in again.err  # the same default: a re-run resumes


def test_the_default_output_is_named_for_the_input_and_the_style(tmp_path):
    assert default_output(("clips/clip.mp4",), "vintage") == Path("clips/clip-vintage.mp4")
    assert default_output(("a/photo.jpg",), "toon") == Path("a/photo-toon")
    assert default_output(("frames",), "w/mine.safetensors") == Path("frames-mine")


def test_translate_without_out_refuses_what_has_no_default(inproc, tiny_style, tmp_path):
    a, b = _frames(tmp_path / "a"), _frames(tmp_path / "b")
    r = inproc("translate", str(a), str(b), "-s", str(tiny_style), "--device", "cpu")
    assert r.code == 2 and r.err.count("\n") == 1, r.err
    assert "name the output with --out" in r.err
    (tmp_path / "a-tiny").write_text("a file where the default folder would go")
    r = inproc("translate", str(a), "-s", str(tiny_style), "--device", "cpu")
    assert r.code == 2 and "a-tiny is a file; name another with --out" in r.err, r.err


def test_generate_without_out_writes_posters_here(inproc, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = inproc("generate", "--genre", "horror", "-n", "3", "--device", "cpu")
    assert r.code == 0, r.err
    assert r.err.splitlines()[0] == "posterforge: writing to posters/ (no --out given)"
    assert sorted(p.name for p in (tmp_path / "posters").glob("*.png")) == [
        "horror-00000.png", "horror-00001.png", "horror-00002.png"]  # fmt: skip
    r = inproc("generate", "--genre", "horror", "-n", "1", "--grid", "g.png", "--device", "cpu")
    assert r.code == 0 and (tmp_path / "g.png").is_file()  # a grid alone writes no folder
    assert "writing to" not in r.err


def test_a_rerun_with_other_settings_names_them_as_typed(inproc, tiny_style, tmp_path):
    import shutil

    other = tmp_path / "other.safetensors"
    shutil.copy(tiny_style, other)
    frames, out = _frames(tmp_path / "frames"), tmp_path / "o"
    base = ("translate", str(frames), "-o", str(out), "--device", "cpu")
    assert inproc(*base, "-s", str(tiny_style)).code == 0
    r = inproc(*base, "-s", str(tiny_style), "--size", "12")
    assert r.code == 2 and "(--size: not given, now 12)" in r.err, r.err
    other.write_bytes(other.read_bytes()[:-8] + b"\0" * 8)  # other weights under another name
    r = inproc(*base, "-s", str(other))
    assert r.code == 2 and f"(style {tiny_style}, now {other})" in r.err, r.err


def test_a_new_sepia_plugin_tones_sepia_and_tests_that(tmp_path, monkeypatch):
    """`plugins new posterforge-sepia` starts from a sepia tone (other names start grey), and
    the tests it writes check that look; both run here without installing it (its tests by
    pytest in this process, its folder on the path)."""
    import torch

    from posterforge.plugin_template import new_plugin

    from .conftest import forget_modules_under

    root = new_plugin("posterforge-sepia", tmp_path)
    monkeypatch.syspath_prepend(str(root))
    from posterforge_sepia import SepiaTranslator

    brown = SepiaTranslator.build(None)(torch.full((1, 3, 2, 2), 0.5))[0, :, 0, 0].tolist()
    assert brown[0] > brown[1] > brown[2] and "Sepia" in SepiaTranslator.description
    tests = (root / "tests" / "test_plugin.py").read_text()
    assert "def test_the_output_is_sepia_toned" in tests and "is_gray" not in tests
    try:  # its output is this test's captured output
        code = pytest.main(["-q", "-p", "no:cacheprovider", "-k", "sepia or shape",
                            f"--rootdir={root}", str(root / "tests")])  # fmt: skip
    finally:
        forget_modules_under(root)
    assert code == pytest.ExitCode.OK, "the new plugin's own tests failed (output above)"
    gray = new_plugin("posterforge-ash", tmp_path)
    assert "def test_the_output_is_gray" in (gray / "tests" / "test_plugin.py").read_text()


def test_a_style_whose_translator_is_not_loaded_is_not_ready(inproc, tiny_style):
    import json

    from posterforge import api

    api.import_weights(tiny_style, "mine")
    ready = {s["name"]: s["status"] for s in json.loads(inproc("styles", "--json").out)}
    assert ready["mine"] == "ready"
    r = inproc("styles", "--json", env={"POSTERFORGE_LOAD_PLUGINS": ""})
    shown = {s["name"]: s["status"] for s in json.loads(r.out)}
    assert shown["mine"] == "needs translator 'cyclegan-resnet' (its plugin is not loaded)"


def test_generate_seeds_makes_one_poster_per_seed_each_reproduced_alone(inproc, tmp_path):
    import json

    from posterforge.errors import PosterforgeError
    from posterforge.jobs.generate import parse_seeds

    assert parse_seeds("1,5-9") == (1, 5, 6, 7, 8, 9)
    for bad in ("1,x", "9-5", "-3", ""):
        with pytest.raises(PosterforgeError, match="--seeds"):
            parse_seeds(bad)
    out = tmp_path / "p"
    r = inproc("generate", "-g", "horror", "--seeds", "3,10-12", "-o", str(out), "--json",
               "--device", "cpu")  # fmt: skip
    assert r.code == 0, r.err
    made = [json.loads(line) for line in r.out.splitlines()]
    assert [(m["seed"], Path(m["path"]).name) for m in made] == [
        (3, "horror-seed00003.png"), (10, "horror-seed00010.png"), (11, "horror-seed00011.png"),
        (12, "horror-seed00012.png")]  # fmt: skip
    alone = tmp_path / "alone"
    r = inproc("generate", "-g", "horror", "--seeds", "11", "-o", str(alone), "--device", "cpu")
    assert r.code == 0, r.err
    name = "horror-seed00011.png"
    assert (alone / name).read_bytes() == (out / name).read_bytes()
    r = inproc("generate", "-g", "horror", "--seeds", "2-1", "-o", str(alone), "--device", "cpu")
    assert r.code == 2 and "--seeds '2-1': use numbers and ranges" in r.err, r.err


def test_generators_lists_the_shipped_models_arch_and_labels_before_their_first_use(inproc):
    import json

    models = {m["name"]: m for m in json.loads(inproc("generators", "--json").out)["models"]}
    assert (models["posters-demo"]["arch"], models["posters-demo"]["labels"]) == ("genre-cgan", 20)
    assert models["posters-stylegan"]["arch"] == "stylegan"
    table = inproc("generators").out
    assert "genre-cgan" in table.split("Architectures")[0]  # in the models table, not only below

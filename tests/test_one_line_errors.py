"""The README's promise, checked over a list of bad invocations: every error is one
``posterforge: error:`` line on stderr, no traceback, and the documented exit code (2 for a
usage or configuration error)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# (name, argv with {img} {dir} {file} {gif} {style} {missing} placeholders, exit code, words the
# line must hold)
CASES = [
    ("unknown command", ["trnslate", "{dir}"], 2, "No such command 'trnslate'"),
    ("unknown option", ["translate", "{dir}", "--bogus"], 2, "No such option: --bogus"),
    ("missing argument", ["translate"], 2, "Missing argument"),
    ("not an integer", ["generate", "-n", "abc"], 2, "Invalid value for '-n'"),
    ("negative -n", ["generate", "-n", "-1", "-o", "{out}"], 2, "-n"),
    ("missing input", ["translate", "{missing}", "-o", "{out}", "-s", "{style}"], 2,
     "no such file or folder"),
    ("--out is a file", ["translate", "{dir}", "-o", "{file}", "-s", "{style}"], 2,
     "is a file, not a folder"),
    ("no images", ["translate", "{empty}", "-o", "{out}", "-s", "{style}"], 2, "no images found"),
    ("--out inside the input", ["translate", "{dir}", "-o", "{dir}/styled", "-s", "{style}",
                                "--overwrite"], 0, None),
    ("only images inside --out", ["translate", "{nested}", "-o", "{nested}/styled", "-s",
                                  "{style}"], 2, "inside --out"),
    ("unknown style", ["translate", "{dir}", "-o", "{out}", "-s", "nosuchstyle"], 2,
     "nosuchstyle"),
    ("huge --size", ["translate", "{dir}", "-o", "{out}", "-s", "{style}", "--size", "100000"],
     2, "at most 16384"),
    ("bad --size", ["translate", "{dir}", "-o", "{out}", "-s", "{style}", "--size", "12xx"], 2,
     "invalid size"),
    ("bad --format", ["translate", "{dir}", "-o", "{out}", "-s", "{style}", "-f", "bmpx"], 2,
     "unknown format"),
    ("bad --precision", ["translate", "{dir}", "-o", "{out}", "-s", "{style}",
                         "--precision", "fp8"], 2, "fp8"),
    ("bad --device", ["translate", "{dir}", "-o", "{out}", "-s", "{style}", "--device", "tpu"],
     2, "tpu"),
    ("bad --shard", ["translate", "{dir}", "-o", "{out}", "-s", "{style}", "--shard", "3/2"], 2,
     "shard"),
    ("bad --quality", ["translate", "{dir}", "-o", "{out}", "-s", "{style}", "--quality", "0"],
     2, "quality"),
    ("contact sheet of unknown type", ["translate", "{dir}", "-o", "{out}", "-s", "{style}",
                                       "--contact-sheet", "{tmp}/sheet.xyz"], 2, "sheet.xyz"),
    ("generate --out is a file", ["generate", "-g", "horror", "-n", "1", "-o", "{file}"], 2,
     "is a file, not a folder"),
    ("generate --seed -1", ["generate", "-g", "horror", "-n", "1", "-o", "{out}", "--seed", "-1"],
     2, "--seed"),
    ("generate --grid a folder", ["generate", "-g", "horror", "-n", "1", "--grid", "{dir}"], 2,
     "is a folder; give a file name"),
    ("generate --grid x.xyz", ["generate", "-g", "horror", "-n", "1", "--grid", "{tmp}/g.xyz"], 2,
     "--grid"),
    ("unknown genre", ["generate", "-g", "nosuchgenre", "-n", "1", "-o", "{out}"], 2,
     "nosuchgenre"),
    ("genre ending in +", ["generate", "-g", "horror+", "-n", "1", "-o", "{out}"], 2, "horror+"),
    ("genre named twice", ["generate", "-g", "horror+horror", "-n", "1", "-o", "{out}"], 2,
     "horror"),
    ("all-zero genre weights", ["generate", "-g", "horror:0+comedy:0", "-n", "1", "-o", "{out}"],
     2, "zero"),
    ("unknown generator", ["generate", "-m", "nosuchmodel", "-n", "1", "-o", "{out}"], 2,
     "nosuchmodel"),
    ("weights info of nothing", ["weights", "info", "nosuchweights"], 2, "nosuchweights"),
    ("weights rm of a shipped name", ["weights", "rm", "vintage"], 2,
     "'vintage' comes with plugin 'cyclegan' and has no copy in the store"),
    ("weights import of an image", ["weights", "import", "{img}", "--name", "x"], 2,
     "not a PyTorch checkpoint"),
    ("warmup without a size", ["warmup", "--style", "{style}"], 2, "--size"),
    ("train without data", ["train", "translator", "--name", "x"], 2, None),
    ("frames of an image", ["frames", "{img}", "--out", "{out}"], 2, None),
    ("a labels file with an unclosed quote", ["train", "generator", "--data", "{dir}", "--labels",
     "{badcsv}", "--name", "x", "--out", "{out}", "--device", "cpu"], 2, "unclosed quote"),
]


@pytest.fixture
def places(tmp_path, tiny_style) -> dict[str, str]:
    folder = tmp_path / "frames"
    folder.mkdir()
    img = folder / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(img)
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile.txt").write_text("not a folder")
    nested = tmp_path / "nested" / "styled"
    nested.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(nested / "old.png")
    (tmp_path / "bad.csv").write_text('path,genres\na.png,"horror\n')
    return {
        "img": str(img), "dir": str(folder), "file": str(tmp_path / "afile.txt"),
        "empty": str(tmp_path / "empty"), "out": str(tmp_path / "out"), "tmp": str(tmp_path),
        "missing": str(tmp_path / "nope"), "style": str(tiny_style),
        "nested": str(tmp_path / "nested"), "badcsv": str(tmp_path / "bad.csv"),
    }  # fmt: skip


@pytest.mark.parametrize(("name", "argv", "code", "words"), CASES, ids=[c[0] for c in CASES])
def test_every_error_is_one_line(inproc, places, name, argv, code, words):
    args = [a.format(**places) for a in argv]
    if args[0] == "translate" and "--device" not in args:
        args += ["--device", "cpu"]
    r = inproc(*args)
    assert r.code == code, (r.code, r.err)
    assert "Traceback" not in r.err + r.out
    if code == 0:
        return
    lines = [line for line in r.err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("posterforge: error:")]
    assert len(errors) == 1, r.err
    assert errors == lines or name.startswith("generate"), r.err  # generate may print its device
    if words is not None:
        assert words in errors[0], errors[0]


def test_the_readme_promises_it(tmp_path):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "Errors are one line on stderr" in readme


def test_an_unknown_plugin_named_in_the_environment_is_one_line(inproc):
    r = inproc("styles", env={"POSTERFORGE_LOAD_PLUGINS": "nosuchplugin"})
    assert r.code == 2 and r.out == ""
    assert r.err.splitlines() == [
        "posterforge: error: POSTERFORGE_LOAD_PLUGINS names no installed plugin: nosuchplugin"
    ]


def test_a_style_from_a_plugin_that_failed_to_load_says_why(inproc, with_test_plugins, places):
    r = inproc("translate", places["dir"], "-o", places["out"], "-s", "broken-style")
    assert r.code == 2 and "Traceback" not in r.err
    [line] = r.err.splitlines()
    assert line.startswith("posterforge: error: ") and "broken (RuntimeError: pf-broken" in line

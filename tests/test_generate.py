"""`generate` as an API and a command: labels by name, seeds, truncation, files, grids, JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from posterforge import api, presets
from posterforge import generation as gen_api
from posterforge.errors import PosterforgeError
from posterforge.outputs import RECORD
from posterforge.plugins import get_host


@pytest.fixture(scope="session")
def tiny_generator(tmp_path_factory):
    """A small genre cGAN in our weight format (random but fixed weights, batch norm statistics
    set so that eval mode is well defined)."""
    from posterforge.weights import make_header, save_weights
    from posterforge_genre_cgan.config import GenreConfig
    from posterforge_genre_cgan.network import GenreGenerator
    from posterforge_genre_cgan.training import recalibrated

    torch.manual_seed(0)
    net = GenreGenerator(GenreConfig(z_dim=100, ngf=8))
    with torch.no_grad():
        net.net[-2].weight.mul_(20)  # visible contrast from DCGAN's small initial weights
    names = list(presets.labels("genres", get_host()).names)
    net = recalibrated(net, torch.eye(len(names)))
    header = make_header(
        "generator", "genre-cgan", {"z_dim": 100, "ngf": 8, "image_size": [64, 128]}, labels=names
    )
    path = tmp_path_factory.mktemp("gens") / "tiny-gen.safetensors"
    save_weights(path, net.state_dict(), header)
    return path


@pytest.fixture
def loaded(tiny_generator):
    return gen_api.load_generator(str(tiny_generator), device="cpu")


def test_noise_rows_depend_only_on_seed_and_index():
    a = gen_api.noise(range(6), 100, seed=3)
    b = gen_api.noise([4, 5], 100, seed=3)
    torch.testing.assert_close(a[4:], b)
    assert not torch.equal(gen_api.noise([0], 100, seed=4), a[:1])


def test_truncation_bounds_the_noise_and_narrows_the_posters(loaded):
    z = gen_api.noise(range(64), 100, seed=0, truncation=0.5)
    assert z.abs().max() <= 0.5
    assert z.std() > 0.2  # redrawn inside the bounds, not clamped to them
    with pytest.raises(PosterforgeError, match="truncation must be positive"):
        gen_api.noise([0], 100, 0, truncation=0)
    wide = gen_api.sample(loaded, "horror", 32, seed=1)
    narrow = gen_api.sample(loaded, "horror", 32, seed=1, truncation=0.2)
    assert narrow.std(dim=0).mean() < wide.std(dim=0).mean()


def test_sample_returns_tensors_that_do_not_depend_on_batch_size(loaded, tmp_path):
    x = gen_api.sample(loaded, "horror", 5, seed=7, batch_size=2)
    y = gen_api.sample(loaded, "horror", 5, seed=7, batch_size=5)
    assert x.shape == (5, 3, 128, 64) and x.min() >= 0 and x.max() <= 1
    torch.testing.assert_close(x, y, atol=1e-5, rtol=0)
    assert not torch.allclose(x, gen_api.sample(loaded, "comedy", 5, seed=7))  # conditioned
    assert list(tmp_path.iterdir()) == []


def test_generate_images_gives_pil_images_without_touching_disk(tiny_generator, tmp_path):
    images = gen_api.generate_images(str(tiny_generator), "war", 3, seed=2, device="cpu")
    assert [im.size for im in images] == [(64, 128)] * 3
    assert all(isinstance(im, Image.Image) for im in images)


def test_files_are_named_by_genre_and_index_and_reruns_skip_them(tiny_generator, tmp_path):
    out = tmp_path / "out"
    kw = dict(model=str(tiny_generator), seed=0, device="cpu", batch_size=3)
    first = api.generate(["horror", "comedy+drama"], 4, out, **kw)
    assert [p.status for p in first] == ["ok"] * 8
    assert sorted(f.name for f in out.iterdir() if f.name != RECORD) == [
        *(f"comedy+drama-{i:05d}.png" for i in range(4)),
        *(f"horror-{i:05d}.png" for i in range(4)),
    ]
    before = (out / "horror-00002.png").read_bytes()
    (out / "horror-00001.png").unlink()
    again = api.generate(["horror"], 4, out, **kw)
    assert [p.status for p in again] == ["skipped", "ok", "skipped", "skipped"]
    assert (out / "horror-00002.png").read_bytes() == before  # same seed, same poster
    redo = api.generate(["horror"], 4, out, overwrite=True, **kw)
    assert [p.status for p in redo] == ["ok"] * 4
    assert (out / "horror-00002.png").read_bytes() == before


def test_errors_come_before_anything_is_written(tiny_generator, tmp_path):
    kw = dict(model=str(tiny_generator), device="cpu")
    with pytest.raises(PosterforgeError, match=r"unknown genre 'horor'.*valid: action"):
        api.generate(["horror", "horor"], 2, tmp_path / "o", **kw)
    with pytest.raises(PosterforgeError, match="nothing to write"):
        api.generate(["horror"], 2, None, **kw)
    with pytest.raises(PosterforgeError, match="unknown format"):
        api.generate(["horror"], 2, tmp_path / "o", fmt="xyz", **kw)
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_cli_generate_json_grid_and_format(tiny_generator, tmp_path, inproc):
    out, grid = tmp_path / "posters", tmp_path / "grid.png"
    r = inproc(
        "generate", "--model", str(tiny_generator), "--genre", "horror", "-g", "sci fi",
        "-n", "10", "--out", str(out), "--grid", str(grid), "--format", "jpg", "--json",
        "--seed", "4", "--device", "cpu",
    )  # fmt: skip
    assert r.code == 0, r.err
    records = [json.loads(line) for line in r.out.splitlines()]
    assert len(records) == 20
    assert records[0] == {
        "path": str(out / "horror-00000.jpg"),
        "condition": "horror",
        "index": 0,
        "seed": 4,
        "status": "ok",
    }
    assert records[10]["condition"] == "sci-fi" and records[10]["path"].endswith("sci-fi-00000.jpg")
    assert len(list(out.glob("*.jpg"))) == 20
    sheet = np.asarray(Image.open(grid))
    # two captioned groups of two rows of 8 posters (64x128) with 4 px gaps
    assert sheet.shape == (2 * (20 + 2 * 132) + 4, 8 * 68 + 4, 3)
    assert "generated 20, skipped 0" in r.err

    bad = inproc("generate", "--model", str(tiny_generator), "--genre", "horor", "--out", str(out))
    assert bad.code == 2
    assert bad.err.startswith("posterforge: error: unknown genre 'horor': did you mean 'horror'?")


@pytest.mark.slow
def test_a_rerun_with_other_settings_is_refused_not_skipped(tiny_generator, tmp_path, inproc):
    """A skip happens only when the same settings made the file: another --seed, --truncation or
    --model into the same --out is refused up front, naming --overwrite; records never claim
    what is not on disk."""
    out = tmp_path / "posters"
    base = ["generate", "--model", str(tiny_generator), "-g", "horror", "-n", "2", "--out",
            str(out), "--device", "cpu", "--json"]  # fmt: skip
    r = inproc(*base)
    assert r.code == 0 and r.err.startswith("posterforge: device cpu (")  # what auto/cpu gave
    first = (out / "horror-00000.png").read_bytes()
    r = inproc(*base)
    assert r.code == 0 and [json.loads(x)["status"] for x in r.out.splitlines()] == ["skipped"] * 2
    for other in (["--seed", "123"], ["--truncation", "0.5"], ["--format", "jpg", "-n", "0"]):
        r = inproc(*base, *other)
        if "jpg" in other:  # other files altogether: nothing to refuse
            assert r.code == 0, r.err
            continue
        assert r.code == 2 and r.out == "", r.err
        assert "made with other settings" in r.err and "--overwrite" in r.err
        assert (out / "horror-00000.png").read_bytes() == first
    r = inproc(*base, "--seed", "123", "--overwrite")
    assert r.code == 0 and (out / "horror-00000.png").read_bytes() != first
    r = inproc(*base, "--seed", "123")  # the record now says seed 123 made them
    assert [json.loads(x)["status"] for x in r.out.splitlines()] == ["skipped"] * 2
    (out / "horror-00002.png").write_bytes(b"someone else's file")
    r = inproc(*base, "-n", "3", "--seed", "123")
    assert r.code == 2 and "no record of the settings that made it" in r.err


@pytest.mark.slow
def test_bad_destinations_and_seeds_are_one_line_before_any_work(tiny_generator, tmp_path, inproc):
    afile = tmp_path / "afile.txt"
    afile.write_text("mine\n")
    (tmp_path / "somedir").mkdir()
    model = ["generate", "--model", str(tiny_generator), "-g", "horror", "-n", "1"]
    cases = [
        (["-o", str(afile)], "is a file, not a folder"),
        (["--grid", str(tmp_path / "somedir")], "--grid"),
        (["--grid", str(tmp_path / "g.xyz")], "names no image format"),
        (["-o", str(tmp_path / "o"), "--seed", "-1"], "--seed must be 0 or more"),
    ]
    for args, says in cases:
        r = inproc(*model, *args)
        assert r.code == 2 and says in r.err and r.err.count("\n") == 1, (args, r.err)
    assert afile.read_text() == "mine\n" and not (tmp_path / "o").exists()


@pytest.mark.slow
def test_ctrl_c_prints_one_line_and_every_poster_on_disk_has_its_record(tiny_generator, tmp_path):
    import re
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    out = tmp_path / "posters"
    model = str(tiny_generator)
    args = [sys.executable, "-m", "posterforge", "generate", "--model", model, "-g", "horror",
            "-n", "4000", "-b", "8", "-o", str(out), "--json", "--device", "cpu"]  # fmt: skip
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, text=True
    )
    deadline = time.time() + 180
    while time.time() < deadline and len(list(out.glob("*.png"))) < 20:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    last = stderr.splitlines()[-1]
    assert re.fullmatch(
        r"posterforge: interrupted: generated \d+, skipped 0; run the same command again to "
        r"resume \(posters that exist are skipped\)",
        last,
    ), last
    records = [json.loads(line) for line in stdout.splitlines()]
    on_disk = sorted(str(p) for p in out.glob("*.png"))
    assert 20 <= len(on_disk) < 4000
    assert sorted(r["path"] for r in records) == on_disk
    assert int(re.search(r"generated (\d+)", last)[1]) == len(on_disk)


@pytest.mark.slow
@pytest.mark.parametrize("nodes", [1, 2], ids=["one-node", "two-nodes"])
def test_torchrun_generate_shards_posters_and_writes_what_one_process_writes(
    tiny_generator, tmp_path, cli, nodes
):
    from tests.conftest import run_torchrun

    common = ["--model", str(tiny_generator), "-g", "horror", "-g", "comedy", "-n", "7", "-b", "3",
              "--device", "cpu", "--json"]  # fmt: skip
    # one thread per process, as torchrun gives each: how a convolution splits its sums among
    # threads moves the last bit, and now and then a pixel by one grey level
    one = cli("generate", *common, "-o", str(tmp_path / "one"), "--grid", str(tmp_path / "g1.png"),
              env={"OMP_NUM_THREADS": "1"})  # fmt: skip
    assert one.code == 0, one.err
    outs = ["-o", str(tmp_path / "two"), "--grid", str(tmp_path / "g2.png")]
    two = run_torchrun("generate", *common, *outs, procs=2 // nodes, nodes=nodes)
    assert two.code == 0, two.err[-2000:]

    def files(folder):
        return {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith(".")}

    assert files(tmp_path / "two") == files(tmp_path / "one") and len(files(tmp_path / "one")) == 14
    assert (tmp_path / "g2.png").read_bytes() == (tmp_path / "g1.png").read_bytes()
    records = [json.loads(line) for line in two.out.splitlines()]
    assert sorted(r["path"] for r in records) == sorted(str(tmp_path / "two" / f) for f in
                                                        files(tmp_path / "one"))  # fmt: skip
    summaries = [line for line in two.err.splitlines() if line.startswith("generated ")]
    assert len(summaries) == 1 and summaries[0].startswith("generated 14, skipped 0"), two.err
    # --shard by hand: the same split, by batches of -b 3 (batch 1 is indices 3-5)
    part = cli("generate", *common, "-o", str(tmp_path / "part"), "--shard", "2/3",
               env={"OMP_NUM_THREADS": "1"})  # fmt: skip
    assert part.code == 0, part.err
    assert files(tmp_path / "part") == {f"{g}-{i:05d}.png": files(tmp_path / "one")[
        f"{g}-{i:05d}.png"] for g in ("comedy", "horror") for i in (3, 4, 5)}  # fmt: skip

"""The genre cGAN family: network shapes, the projection discriminator, label files and
balancing, the training step, exact resume, and export then generate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from posterforge import presets
from posterforge.errors import PosterforgeError
from posterforge.plugins import get_host
from posterforge.training.ema import ema_decay_at
from posterforge.training.labelled import LabelledImage, balance, label_counts, read_labelled
from posterforge.weights import load_weights
from posterforge_genre_cgan.config import GenreConfig
from posterforge_genre_cgan.demo_data import make_demo_posters
from posterforge_genre_cgan.network import GenreDiscriminator, GenreGenerator, PosterSampler
from posterforge_genre_cgan.training import (
    GenreCGANRecipe,
    GenreCGANTask,
    recalibrated,
)

GENRES = presets.labels("genres", get_host())
TINY = {"ngf": 8, "ndf": 8, "batch_size": 4, "diffaugment": "translation,cutout,color"}


@pytest.fixture(scope="module")
def demo_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    make_demo_posters(out, per_genre=3, seed=0)
    return out


# -- network ------------------------------------------------------------------------------------


def test_generator_takes_z_and_genres_as_120_inputs_and_makes_64x128_posters():
    g = GenreGenerator(GenreConfig(z_dim=100, ngf=8), n_labels=20)
    assert g.net[0].in_channels == 120
    y = torch.zeros(3, 20)
    y[:, 11] = 1
    x = g(torch.randn(3, 100), y)
    assert x.shape == (3, 3, 128, 64)
    assert x.min() >= -1 and x.max() <= 1
    d = GenreDiscriminator(n_labels=20, ndf=8)
    assert d(x, y).shape == (3,)


def test_the_discriminator_adds_the_genre_through_one_linear_layer_on_its_features():
    torch.manual_seed(0)
    d = GenreDiscriminator(n_labels=20, ndf=8).eval()
    x = torch.rand(2, 3, 128, 64) * 2 - 1
    horror, comedy, none = (torch.zeros(2, 20) for _ in range(3))
    horror[:, GENRES.index("horror")] = 1
    comedy[:, GENRES.index("comedy")] = 1
    with torch.no_grad():
        base, h, c, both = d(x, none), d(x, horror), d(x, comedy), d(x, horror + comedy)
    assert not torch.allclose(h, c)  # the genre changes the score ...
    torch.testing.assert_close(both - base, (h - base) + (c - base))  # ... linearly (projection)


def test_sampler_maps_to_unit_range_and_checks_its_labels():
    net = GenreGenerator(GenreConfig(z_dim=100, ngf=8))
    s = PosterSampler(net, list(GENRES.names))
    y = torch.zeros(2, 20)
    out = s.sample(torch.randn(2, 100), y)
    assert out.shape == (2, 3, 128, 64) and out.min() >= 0 and out.max() <= 1
    assert s.image_size == (64, 128) and s.z_dim == 100
    with pytest.raises(ValueError, match="label names"):
        PosterSampler(net, ["horror"])


# -- labels -------------------------------------------------------------------------------------


def test_genres_map_by_name_alias_and_mix():
    assert GENRES.vector("Horror")[GENRES.index("horror")] == 1.0
    assert GENRES.index("Musical") == GENRES.index("music")  # alias from presets/genres.toml
    assert GENRES.index("Sci Fi") == GENRES.index("sci-fi")
    mix = GENRES.vector("horror:0.7+comedy:0.3")
    assert mix[GENRES.index("horror")] == 0.7 and mix[GENRES.index("comedy")] == 0.3
    assert sum(mix) == pytest.approx(1.0)
    assert GENRES.caption("COMEDY+sci fi") == "comedy+sci-fi"
    with pytest.raises(PosterforgeError, match=r"did you mean 'horror'\? valid: action,"):
        GENRES.index("horor")
    with pytest.raises(PosterforgeError, match="weight"):
        GENRES.vector("horror:2")


def test_bad_label_rows_are_reported_with_line_numbers(tmp_path, demo_set):
    (tmp_path / "a.png").write_bytes((demo_set / "posters" / "horror-0000.png").read_bytes())
    (tmp_path / "b.png").write_bytes((demo_set / "posters" / "comedy-0000.png").read_bytes())
    (tmp_path / "labels.csv").write_text(
        "path,genres\n"
        "a.png,Horror|Thriller\n"  # line 2: fine
        "missing.png,drama\n"  # line 3: no such file
        "b.png,comedy|romcom\n"  # line 4: usable, unknown genre ignored
        "a.png,\n"  # line 5: no genres
        "a.png,romcom\n"  # line 6: no known genre
    )
    got = read_labelled(tmp_path, GENRES, tmp_path / "labels.csv")
    assert [(p.path.name, p.labels) for p in got.items] == [
        ("a.png", (GENRES.index("horror"), GENRES.index("thriller"))),
        ("b.png", (GENRES.index("comedy"),)),
    ]
    assert got.problems == [
        "labels.csv:3: no such file 'missing.png'",
        "labels.csv:4: unknown genre 'romcom'",
        "labels.csv:5: no genres",
        "labels.csv:6: unknown genre 'romcom' (row skipped)",
    ]


def test_jsonl_labels_and_genre_folders(tmp_path, demo_set):
    src = demo_set / "posters" / "war-0001.png"
    (tmp_path / "war").mkdir()
    (tmp_path / "war" / "x.png").write_bytes(src.read_bytes())
    (tmp_path / "notagenre").mkdir()
    got = read_labelled(tmp_path, GENRES)
    assert [it.labels for it in got.items] == [(GENRES.index("war"),)]
    assert got.problems == [f"{tmp_path / 'notagenre'}: folder is not a genre name"]

    lines = [
        json.dumps({"path": "war/x.png", "genres": ["war", "history"]}),
        "{not json",
        json.dumps({"path": "war/y.png", "genres": "drama"}),  # another file: not a duplicate
    ]
    (tmp_path / "war" / "y.png").write_bytes(src.read_bytes())
    (tmp_path / "l.jsonl").write_text("\n".join(lines) + "\n")
    got = read_labelled(tmp_path, GENRES, tmp_path / "l.jsonl")
    assert [it.labels for it in got.items] == [
        tuple(sorted((GENRES.index("war"), GENRES.index("history")))),
        (GENRES.index("drama"),),
    ]
    assert len(got.problems) == 1 and got.problems[0].startswith("l.jsonl:2: not a JSON object")
    (tmp_path / "empty.csv").write_text("path,genres\nnope.png,war\n")
    with pytest.raises(PosterforgeError, match=r"no usable labelled images.*empty\.csv:2"):
        read_labelled(tmp_path, GENRES, tmp_path / "empty.csv")
    (tmp_path / "nohead.csv").write_text("war/x.png,war\n")
    with pytest.raises(PosterforgeError, match="header with path and genres"):
        read_labelled(tmp_path, GENRES, tmp_path / "nohead.csv")


def _skewed(n_drama=60, n_war=5, n_both=5):
    d, w = GENRES.index("drama"), GENRES.index("war")
    items = [LabelledImage(f"d{i}.png", (d,)) for i in range(n_drama)]
    items += [LabelledImage(f"w{i}.png", (w,)) for i in range(n_war)]
    items += [LabelledImage(f"b{i}.png", (d, w)) for i in range(n_both)]
    return items, d, w


def test_balance_cap_trims_common_genres_and_keeps_rare_ones():
    items, d, w = _skewed()
    before = label_counts(items, 20)
    kept = balance(items, 20, "cap", seed=0)
    after = label_counts(kept, 20)
    cap = int(np.ceil((before[d] + before[w]) / 2))
    assert after[w] == before[w]  # every poster of the rare genre survives
    assert after[d] < before[d] and after[d] <= cap + 5  # the common one is cut near the cap
    assert balance(items, 20, "cap", seed=0) == kept  # deterministic
    assert label_counts(balance(items, 20, "cap", cap=10), 20)[d] <= 10 + 5
    assert balance(items, 20, "none") == items


def test_balance_resample_evens_out_genres():
    items, d, w = _skewed()
    drawn = balance(items, 20, "resample", seed=3)
    assert len(drawn) == len(items)
    c = label_counts(drawn, 20)
    ratio_before = label_counts(items, 20)[d] / label_counts(items, 20)[w]
    assert c[d] / c[w] < ratio_before / 3  # 6.5:1 before, about even after
    with pytest.raises(ValueError, match="balance must be"):
        balance(items, 20, "shuffle")


# -- training -----------------------------------------------------------------------------------


def test_recipe_validation():
    with pytest.raises(ValueError, match="unknown genre-cgan recipe keys: ngff"):
        GenreCGANRecipe.from_dict({"ngff": 3})
    with pytest.raises(ValueError, match="unknown augmentation"):
        GenreCGANRecipe.from_dict({"diffaugment": "rotate"})
    with pytest.raises(ValueError, match="loss must be"):
        GenreCGANRecipe.from_dict({"loss": "wgan"})


def test_ema_ramps_in_then_holds_the_decay():
    assert ema_decay_at(0.999, 0) == pytest.approx(0.1)
    assert ema_decay_at(0.999, 10) < ema_decay_at(0.999, 100) < 0.999
    assert ema_decay_at(0.999, 10**6) == 0.999


def _batch(n=4, genre="horror"):
    torch.manual_seed(1)
    y = torch.zeros(n, 20)
    y[:, GENRES.index(genre)] = 1
    return {"image": torch.rand(n, 3, 128, 64), "labels": y}


def test_a_step_trains_both_nets_and_averages_the_generator():
    task = GenreCGANTask(TINY, list(GENRES.names), seed=0)
    g0 = [p.detach().clone() for p in task.G.parameters()]
    d0 = [p.detach().clone() for p in task.D.parameters()]
    out = task.step(_batch(), 0)
    assert set(out) == {"loss_D", "loss_G"} and all(torch.isfinite(v) for v in out.values())
    assert any(not torch.equal(a, b) for a, b in zip(g0, task.G.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d0, task.D.parameters(), strict=True))
    # EMA after one step (decay 0.1): 0.1 * init + 0.9 * updated
    for e, a, b in zip(task.G_ema.parameters(), g0, task.G.parameters(), strict=True):
        torch.testing.assert_close(e, 0.1 * a + 0.9 * b)
    assert not any(p.requires_grad for p in task.G_ema.parameters())


def test_bf16_precision_autocasts_the_passes_and_keeps_state_fp32():
    """``precision = "bf16"``: the nets run in bfloat16 (first-step losses close to fp32's),
    weights and Adam's moments stay fp32; an unknown precision is refused."""
    bf16 = GenreCGANTask({**TINY, "precision": "bf16"}, list(GENRES.names), seed=0)
    fp32 = GenreCGANTask(TINY, list(GENRES.names), seed=0)
    seen = []
    hook = bf16.G.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    torch.manual_seed(3)
    got = {k: float(v) for k, v in bf16.step(_batch(), 0).items()}
    hook.remove()
    torch.manual_seed(3)
    ref = {k: float(v) for k, v in fp32.step(_batch(), 0).items()}
    assert seen == [torch.bfloat16]
    assert got["loss_D"] == pytest.approx(ref["loss_D"], rel=0.05)
    assert got["loss_G"] == pytest.approx(ref["loss_G"], rel=0.05)
    state = bf16.state_dict()
    assert all(t.dtype == torch.float32 for t in state["G"].values() if t.is_floating_point())
    moments = [v["exp_avg"] for v in state["opt_G"]["state"].values()]
    assert moments and all(t.dtype == torch.float32 for t in moments)
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
        GenreCGANRecipe.from_dict({"precision": "fp16"})


def test_sample_grid_has_a_real_row_and_one_row_per_genre():
    task = GenreCGANTask(TINY, list(GENRES.names), seed=0)
    task.step(_batch(), 0)
    grid = task.sample_grid(_batch())
    # 21 rows of 6 posters (128x64, 2 px apart), each under its 20 px caption line
    assert grid.shape == (3, 21 * (20 + 130) + 2, 6 * 66 + 2)


def test_each_row_of_the_sample_grid_is_captioned_with_its_label():
    """The caption strips hold text (light pixels on the dark sheet), as ``generate --grid``
    draws them; the label names come from the task, in its order."""
    from posterforge.sheet import labelled_sheet

    task = GenreCGANTask(TINY, list(GENRES.names), seed=0)
    grid = task.sample_grid(_batch()).mul(255).round().byte().permute(1, 2, 0).numpy()
    row = 20 + 130
    for i in range(21):
        strip = grid[i * row + 2 : i * row + 18, 2:120]
        assert (strip > 200).any(), f"row {i} has no caption"
    # the same caption for the same name as generate --grid's sheet
    tile = np.zeros((128, 64, 3), np.uint8)
    sheet = labelled_sheet([(GENRES.names[0], [tile] * 6)], columns=6, gap=2)
    assert np.array_equal(sheet[:20, :120], grid[row : row + 20, :120])


def test_export_recalibrates_batch_norm_deterministically():
    task = GenreCGANTask({**TINY, "export_dtype": "fp16"}, list(GENRES.names), seed=0)
    for s in range(3):
        task.step(_batch(), s)
    t1, header = task.export()
    t2, _ = task.export()
    assert all(torch.equal(t1[k], t2[k]) for k in t1)
    assert t1["net.0.weight"].dtype == torch.float16
    assert header["kind"] == "generator" and header["arch"] == "genre-cgan"
    assert header["labels"] == list(GENRES.names) and header["config"]["ngf"] == 8
    # the re-estimated statistics are those of the averaged net's own activations
    net = recalibrated(task.G_ema, task.label_bank)
    raw = task.G_ema.state_dict()
    assert not torch.equal(net.net[1].running_mean, raw["net.1.running_mean"])
    # a fresh estimate is the exported one (the task re-estimates once per state, not per call)
    assert all(torch.equal(t1[k], v.to(t1[k].dtype)) for k, v in net.state_dict().items())
    task.step(_batch(), 3)
    t3, _ = task.export()
    assert not torch.equal(t3["net.1.running_mean"], t1["net.1.running_mean"])  # a new state


def _train(tmp_path, demo_set, name, steps, **kw):
    from posterforge.training import run

    return run.train(
        "generator",
        {"data": demo_set, "labels": demo_set / "labels.csv"},
        name,
        tmp_path / name,
        overrides=[f"{k}={json.dumps(v)}" for k, v in TINY.items()] + ["train.log_every=1"],
        max_steps=steps,
        seed=5,
        device="cpu",
        **kw,
    )


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, demo_set):
    from posterforge.training import run

    straight = load_weights(_train(tmp_path, demo_set, "straight", 4))
    _train(tmp_path, demo_set, "halves", 2)
    resumed = load_weights(run.resume(tmp_path / "halves", max_steps=4, device="cpu"))
    assert straight.tensors.keys() == resumed.tensors.keys()
    for k in straight.tensors:
        torch.testing.assert_close(straight.tensors[k], resumed.tensors[k], rtol=0, atol=0)
    log = [json.loads(x) for x in (tmp_path / "halves" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert (tmp_path / "halves" / "samples" / "step-00000004.png").is_file()


@pytest.mark.slow
def test_train_generator_command_prints_counts_and_bad_rows(tmp_path, demo_set, inproc):
    cli = inproc  # the command in this process: what is tested is its report, not a process
    labels = tmp_path / "labels.csv"
    rows = (demo_set / "labels.csv").read_text().splitlines()
    labels.write_text("\n".join([*rows[:3], "posters/gone.png,horror", *rows[3:]]) + "\n")
    r = cli(
        "train", "generator", "--data", str(demo_set), "--labels", str(labels),
        "--name", "cli-posters", "--out", str(tmp_path / "run"), "--max-steps", "1",
        "--balance", "none", *[a for k, v in TINY.items() for a in ("--set", f"{k}={v!r}")],
    )  # fmt: skip
    assert r.code == 0, r.err
    assert "labels.csv:4: no such file 'posters/gone.png'" in r.err
    assert "genre" in r.err and "found" in r.err and "used" in r.err
    assert r.out.strip().endswith("cli-posters.safetensors")


@pytest.mark.slow
def test_the_same_command_under_torchrun_trains_with_ddp(tmp_path, demo_set):
    import os
    import subprocess
    import sys

    from .conftest import ROOT

    run = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "posterforge", "train", "generator", "--data", str(demo_set),
        "--labels", str(demo_set / "labels.csv"), "--name", "ddp-posters", "--out", str(run),
        "--max-steps", "2", "--device", "cpu",
        *[a for k, v in TINY.items() for a in ("--set", f"{k}={v!r}")],
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("ddp-posters.safetensors")  # rank 0 alone stores it
    assert proc.stderr.count("images used") == 1  # and reports the counts once
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-00000002.pt"]


@pytest.mark.slow
def test_moviegenre_csv_trains_its_own_genres_and_generate_refuses_an_untrained_one(
    tmp_path, inproc
):
    """MovieGenre.csv as it is (latin-1, its header, <imdbId>.jpg posters) with the genres of
    the data; the model keeps per-genre counts, and generate refuses a genre it never saw."""
    from posterforge.api import list_generators
    from posterforge.generation import load_generator, sample
    from posterforge.training import run
    from posterforge.weights import read_header, save_weights

    posters = tmp_path / "posters"
    posters.mkdir()
    rows = [
        ("1", "Détour", "Film-Noir|Crime"),
        ("2", "Amélie", "Comedy|Romance"),
        ("3", "Le Samouraï", "Film-Noir|Crime|Drama"),
        ("4", "Court", "Short"),
        ("5", "Noir", "Film-Noir"),
        ("6", "Absent", "Drama"),  # no poster
    ]
    for i, (imdb, _, _) in enumerate(rows[:5]):
        Image.fromarray(np.full((16, 8, 3), 40 * i, np.uint8)).save(posters / f"{imdb}.jpg")
    text = "imdbId,Imdb Link,Title,IMDB Score,Genre,Poster\n" + "".join(
        f"{i},http://www.imdb.com/title/tt{i},{t},7.0,{g},https://example.com/{i}.jpg\n"
        for i, t, g in rows
    )
    labels = tmp_path / "MovieGenre.csv"
    labels.write_bytes(text.encode("latin-1"))
    inputs = {"data": posters, "labels": labels}
    cli = inproc  # the commands in this process: what is tested is what they say and store

    with pytest.raises(PosterforgeError) as e:  # before any work, naming the file and the line
        run.train("generator", inputs, "mg", tmp_path / "bad", device="cpu",
                  options={"path_template": "{imdbId}.jpg"})  # fmt: skip
    assert str(e.value).startswith(f"{labels}:2: not utf-8 text (byte 0xe9): pass the file's")

    run_dir = tmp_path / "run"
    r = cli(
        "train", "generator", "--data", str(posters), "--labels", str(labels), "--encoding",
        "latin-1", "--path-template", "{imdbId}.jpg", "--labels-from-data", "--name", "mg",
        "--out", str(run_dir), "--max-steps", "1", "--device", "cpu",
        *[a for k, v in TINY.items() for a in ("--set", f"{k}={v!r}")],
    )  # fmt: skip
    assert r.code == 0, r.err
    assert "MovieGenre.csv: 6 rows read, 5 used, 1 dropped (1 with no image; at line 7)" in r.err
    model = Path(r.out.strip())
    header = read_header(model)
    assert header["labels"] == ["film-noir", "crime", "comedy", "drama", "romance", "short"]
    counts = dict(header["provenance"]["data"]["label_counts"])
    assert counts == {"film-noir": 3, "crime": 2, "comedy": 1, "drama": 1, "romance": 1, "short": 1}
    assert header["provenance"]["recipe"]["labels_from_data"] is True
    assert {m.name: m.label_counts for m in list_generators()}["mg"] == counts
    # resume and train export rebuild the same nets without the data: the names are recipe
    assert run.read_request(run_dir)["recipe"]["model"]["label_names"] == header["labels"]
    gen = load_generator(str(model), device="cpu")
    assert gen.caption("Film Noir") == "film-noir"
    assert sample(gen, "film noir+short", 1).shape == (1, 3, 128, 64)

    header["provenance"]["data"]["label_counts"]["short"] = 0
    save_weights(tmp_path / "untrained.safetensors", load_weights(model).tensors, header)
    r = cli("generate", "--model", str(tmp_path / "untrained.safetensors"), "-g", "short",
            "-o", str(tmp_path / "gen"))  # fmt: skip
    assert r.code == 2 and r.err.count("\n") == 1, r.err
    assert (
        "genre 'short' had no training images, so this model never learnt it: name one it was "
        "trained on (film-noir, crime, comedy, drama, romance)" in r.err
    )

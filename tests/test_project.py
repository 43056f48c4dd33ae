"""Latent capabilities, projection, re-rendering and style mixing (issue 25), on tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import posterforge
from posterforge.capabilities import MissingCapability, require
from posterforge.errors import PosterforgeError
from posterforge.images import decode
from posterforge.models import LatentGenerator, StyleMixer
from posterforge.sampling import load_generator, noise_at

LABELS = ["horror", "comedy", "drama"]


@pytest.fixture(scope="module")
def tiny_stylegan(tmp_path_factory) -> Path:
    """A tiny conditional StyleGAN (random, fixed weights, distinct per-label w_avg)."""
    from posterforge.weights import make_header, save_weights
    from posterforge_stylegan.config import StyleGeneratorConfig
    from posterforge_stylegan.generator import StyleGenerator

    torch.manual_seed(0)
    config = StyleGeneratorConfig(z_dim=8, c_dim=3, w_dim=8, mapping_layers=2,
                                  image_size=(16, 32), channel_base=128, channel_max=8)
    net = StyleGenerator(config)
    net.mapping.w_avg.copy_(torch.randn(3, 8) * 0.5)
    path = tmp_path_factory.mktemp("sg") / "tiny-sg.safetensors"
    save_weights(path, net.state_dict(), make_header("generator", "stylegan", config.to_dict(),
                                                     labels=LABELS))  # fmt: skip
    return path


@pytest.fixture(scope="module")
def lively_cgan(tmp_path_factory) -> Path:
    """A small genre cGAN whose batch norms were calibrated on random input (as training would
    leave them), so its images depend on z and the label."""
    from posterforge import presets
    from posterforge.plugins import get_host
    from posterforge.weights import make_header, save_weights
    from posterforge_genre_cgan.config import GenreConfig
    from posterforge_genre_cgan.network import GenreGenerator

    torch.manual_seed(0)
    names = list(presets.labels("genres", get_host()).names)
    net = GenreGenerator(GenreConfig(z_dim=16, ngf=4, image_size=(64, 128)), len(names))
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # a plain average of the calibration batches
    net.train()
    with torch.no_grad():
        for _ in range(4):
            net(torch.randn(32, 16), torch.eye(len(names))[torch.randint(len(names), (32,))])
    path = tmp_path_factory.mktemp("cg") / "lively.safetensors"
    config = {"z_dim": 16, "ngf": 4, "image_size": [64, 128]}
    save_weights(path, net.state_dict(), make_header("generator", "genre-cgan", config,
                                                     labels=names))  # fmt: skip
    return path


def _gen(path):
    return load_generator(str(path), device="cpu", precision="fp32", compile="off")


def _save(x: torch.Tensor, path: Path) -> Path:
    from PIL import Image

    Image.fromarray(x[0].mul(255).round().byte().permute(1, 2, 0).numpy()).save(path)
    return path


# --- the capabilities -------------------------------------------------------------------------


def test_capabilities_render_what_sample_makes(tiny_stylegan, small_genre_generator):
    for path, kind in ((tiny_stylegan, "w"), (small_genre_generator, "z")):
        gen = _gen(path)
        mod = gen.module
        assert isinstance(mod, LatentGenerator) and mod.latent_kind == kind
        z, c = noise_at([(3, 0), (4, 1)], gen.z_dim), gen.conditions("horror", 2)
        assert torch.equal(mod.render(mod.to_latent(z, c), c), mod.sample(z, c))
        start = mod.latent_start(c)
        assert start.shape == (2, mod.latent_dim)
        if kind == "z":
            assert not start.any() and not isinstance(mod, StyleMixer)
        else:  # the label's w_avg; render_styles with one w per layer is render
            assert torch.equal(start[0], mod.net.mapping.w_avg[0])
            w = mod.to_latent(z, c)
            ws = w[:, None].expand(-1, mod.style_layers, -1)
            assert torch.equal(mod.render_styles(ws, c), mod.render(w, c))


def test_require_names_the_capability(small_genre_generator):
    mod = _gen(small_genre_generator).module
    with pytest.raises(MissingCapability) as e:
        require(mod, StyleMixer, "per-layer styles", "gen", verb="mix styles", family="genre-cgan")
    assert str(e.value) == (
        "model 'gen' (family genre-cgan) cannot mix styles: it has no per-layer styles"
    )
    assert require(mod, LatentGenerator, "latent", "gen") is mod


# --- projection -------------------------------------------------------------------------------


@pytest.mark.slow
def test_projecting_its_own_image_recovers_it(tiny_stylegan, tmp_path):
    """The bound: the pixel MSE after 40 steps is under a fifth of a random latent's (the mean
    over 8 random seeds), and under a half of the start's."""
    gen = _gen(tiny_stylegan)
    mod, c = gen.module, gen.conditions("comedy", 1)
    target = mod.sample(noise_at([(7, 0)], gen.z_dim), c)
    poster = _save(target, tmp_path / "self.png")
    (rec,) = posterforge.project([poster], tmp_path / "out", model=str(tiny_stylegan),
                                 genre="comedy", steps=40, feature_weight=0, device="cpu")
    target = torch.from_numpy(decode(poster).rgb).permute(2, 0, 1)[None].float() / 255
    randoms = mod.sample(noise_at([(100 + i, 0) for i in range(8)], gen.z_dim), c.repeat(8, 1))
    random_err = float((randoms - target).square().mean())
    assert rec.losses["pixel"] < random_err / 5
    curve = json.loads(Path(rec.record).read_text())["loss_curve"]
    assert rec.losses["pixel"] < curve[0] / 2


def _demo_poster(tmp_path: Path, genre: str = "horror", size=(120, 180)) -> Path:
    from posterforge_genre_cgan.demo_data import poster

    path = tmp_path / f"demo-{genre}.png"
    poster(genre, np.random.default_rng(1)).resize(size).save(path)
    return path


@pytest.mark.slow
def test_demo_poster_without_genre_ranks_labels_and_writes_everything(lively_cgan, tmp_path):
    poster = _demo_poster(tmp_path)
    out = tmp_path / "out"
    (rec,) = posterforge.project([poster], out, model=str(lively_cgan), steps=24,
                                 feature_weight=0, as_labels=("comedy", "drama"), device="cpu")
    record = json.loads(Path(rec.record).read_text())
    assert len(record["ranking"]) == 20 and record["label"] == record["ranking"][0][0]
    losses = [v for _, v in record["ranking"]]
    assert losses == sorted(losses)
    curve = record["loss_curve"]
    assert len(curve) == 24 and np.mean(curve[-6:]) < np.mean(curve[:6])  # lower on average
    assert rec.losses["pixel"] < curve[0]
    for p in (rec.reconstruction, rec.latent, *rec.rerenders):
        assert Path(p).is_file()
    assert [Path(p).name for p in rec.rerenders] == [
        "demo-horror-as-comedy.png", "demo-horror-as-drama.png", "demo-horror-row.png"]
    row = decode(rec.rerenders[-1]).rgb
    assert row.shape[1] == 4 * (64 + 4) + 4  # poster, reconstruction, two re-renders
    # a re-run with the same settings skips; other settings are refused
    (again,) = posterforge.project([poster], out, model=str(lively_cgan), steps=24,
                                   feature_weight=0, as_labels=("comedy", "drama"), device="cpu")
    assert again.status == "skipped"
    with pytest.raises(PosterforgeError, match="--overwrite"):
        posterforge.project([poster], out, model=str(lively_cgan), steps=5,
                            feature_weight=0, device="cpu")


def test_projection_is_deterministic_and_fits_without_stretching(small_genre_generator, tmp_path):
    from posterforge.latents import load_latent
    from posterforge.projection import fit_poster

    poster = _demo_poster(tmp_path, "comedy", size=(200, 100))  # landscape
    latents = []
    for i in range(2):
        (rec,) = posterforge.project([poster], tmp_path / f"o{i}", model=str(small_genre_generator),
                                     genre="comedy", steps=6, feature_weight=0, seed=3,
                                     fit="letterbox", device="cpu")  # fmt: skip
        latents.append(load_latent(rec.latent).latent)
    assert np.array_equal(*latents)
    rgb = decode(poster).rgb
    boxed = fit_poster(rgb, (64, 128), "letterbox")
    assert boxed.shape == (1, 3, 128, 64)
    assert torch.allclose(boxed[0, :, 0], boxed[0, :, 0, :1])  # a bar of one colour on top
    crop = fit_poster(rgb, (64, 128), "crop")
    assert crop.shape == (1, 3, 128, 64) and crop.std(dim=(2, 3)).min() > 0


def test_feature_loss_from_the_registered_extractor(small_genre_generator, tmp_path, monkeypatch):
    from posterforge.evaluation import features

    class Tiny(features.FeatureExtractor):
        name, num_features, size = "tiny", 8, 32

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.requires_grad_(False)

        def forward(self, x):
            y = self.conv(self.resize(x))
            return torch.cat([y.mean((2, 3)), y.std((2, 3))], 1)

    asked = []
    monkeypatch.setattr(features, "default_extractor",
                        lambda host, name=None: asked.append(name) or Tiny())  # fmt: skip
    (rec,) = posterforge.project([_demo_poster(tmp_path)], tmp_path / "o", genre="horror",
                                 model=str(small_genre_generator), steps=4, device="cpu")
    assert asked == [None] and set(rec.losses) == {"pixel", "feature", "total"}
    assert rec.losses["total"] == pytest.approx(rec.losses["pixel"] + 0.1 * rec.losses["feature"])


# --- re-rendering -----------------------------------------------------------------------------


def test_rerender_keeps_the_latent_and_changes_the_label(tiny_stylegan, tmp_path):
    from posterforge.latents import load_latent

    gen = _gen(tiny_stylegan)
    poster = _save(gen.module.sample(noise_at([(2, 0)], gen.z_dim), gen.conditions("horror", 1)),
                   tmp_path / "p.png")  # fmt: skip
    (rec,) = posterforge.project([poster], tmp_path / "o", model=str(tiny_stylegan),
                                 genre="horror", steps=5, feature_weight=0, device="cpu")
    before = Path(rec.latent).read_bytes()
    recs = posterforge.generate(["horror", "drama"], 1, tmp_path / "r", model=str(tiny_stylegan),
                                from_latent=rec.latent, device="cpu", grid=tmp_path / "g.png")
    assert [Path(r.path).name for r in recs] == ["horror-p.png", "drama-p.png"]
    same, other = (decode(r.path).rgb for r in recs)
    assert np.array_equal(same, decode(rec.reconstruction).rgb)  # its own label: itself
    assert not np.array_equal(same, other)
    assert Path(rec.latent).read_bytes() == before
    assert load_latent(rec.latent).label == "horror" and (tmp_path / "g.png").is_file()


# --- style mixing -----------------------------------------------------------------------------


def test_mix_grid_shape_and_diagonal(tiny_stylegan, tmp_path):
    grid = posterforge.mix([1, 2], [1, 2, 3], tmp_path / "mix.png", model=str(tiny_stylegan),
                           genre="drama", layers="0-3", device="cpu")
    assert grid.cells.shape == (2, 3, 32, 16, 3) and grid.layers == (0, 3)
    sheet = decode(grid.path).rgb
    assert sheet.shape == (3 * (32 + 4) + 4, 4 * (16 + 4) + 4, 3)
    recs = posterforge.generate(["drama"], 1, tmp_path / "plain", model=str(tiny_stylegan),
                                seeds=(1, 2), device="cpu", precision="fp32")
    for i, r in enumerate(recs):
        assert np.array_equal(grid.cells[i, i], decode(r.path).rgb)
    assert not np.array_equal(grid.cells[0, 1], grid.cells[0, 0])
    with pytest.raises(PosterforgeError, match="exists"):
        posterforge.mix([1], [2], grid.path, model=str(tiny_stylegan), genre="drama")


# --- bad input: one line each -----------------------------------------------------------------


def _one_line(result, *fragments):
    assert result.code != 0, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    for f in fragments:
        assert f in lines[0], lines[0]


def test_bad_inputs_are_one_line(inproc, tiny_stylegan, small_genre_generator, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    sg, cg, out = str(tiny_stylegan), str(small_genre_generator), str(tmp_path / "o")
    _one_line(inproc("project", str(bad), "-m", sg, "-g", "horror", "-o", out), "bad.png",
              "not an image")  # fmt: skip
    good = _demo_poster(tmp_path)
    _one_line(inproc("project", str(good), "-m", sg, "-g", "nosuch", "-o", out), "nosuch")
    _one_line(inproc("project", str(good), "-m", sg, "--fit", "stretch", "-o", out), "--fit")
    _one_line(inproc("mix", "-m", cg, "--rows", "1", "--cols", "2", "-g", "horror", "-o",
                     str(tmp_path / "m.png")), "cannot mix styles", "per-layer styles")
    _one_line(inproc("mix", "-m", sg, "--rows", "1", "--cols", "2", "-g", "horror",
                     "--layers", "0-99", "-o", str(tmp_path / "m.png")), "style layers")
    (rec,) = posterforge.project([good], tmp_path / "p", model=sg, genre="horror", steps=2,
                                 feature_weight=0, device="cpu")
    r = str(tmp_path / "r")
    _one_line(inproc("generate", "--from-latent", rec.latent, "-m", cg, "-g", "horror", "-o", r),
              "made with another model")  # fmt: skip
    from posterforge.latents import LatentFile, load_latent

    lf = load_latent(rec.latent)
    wrong = tmp_path / "wrong.npz"
    LatentFile(np.zeros(5, np.float32), lf.kind, lf.model_sha256, "", "horror").save(wrong)
    _one_line(inproc("generate", "--from-latent", str(wrong), "-m", sg, "-g", "horror", "-o", r),
              "wrong.npz", "shape (5,)")  # fmt: skip
    _one_line(inproc("generate", "--from-latent", rec.latent, "-m", sg, "-g", "nosuch", "-o", r),
              "nosuch")  # fmt: skip
    (tmp_path / "junk.npz").write_bytes(b"junk")
    _one_line(inproc("generate", "--from-latent", str(tmp_path / "junk.npz"), "-m", sg, "-g",
                     "horror", "-o", r), "junk.npz")  # fmt: skip
    assert not Path(r).exists()


def test_a_read_only_poster_array_fits_without_a_warning():
    """Pillow's arrays are read-only: fitting one must not print torch's raw UserWarning."""
    import warnings

    from PIL import Image

    from posterforge.projection import fit_poster

    rgb = np.asarray(Image.new("RGB", (90, 120), (200, 10, 10)))
    assert not rgb.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = fit_poster(rgb, (64, 128), "crop")
    assert tuple(x.shape) == (1, 3, 128, 64) and abs(float(x[0, 0].mean()) - 200 / 255) < 1e-3

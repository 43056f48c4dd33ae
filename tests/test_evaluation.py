"""posterforge.evaluation: FID/KID, precision/recall and label consistency on synthetic images.

The images are stripes and checks made here (three "labels" that differ in structure, with random
frequency, phase and colours); the features come from vintagify's real checkpoint, run at 32x32
to keep the file fast on a CPU (the default is 128x128).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch

from posterforge.errors import PosterforgeError, WeightsError
from posterforge.evaluation import (
    EvalReport,
    FeatureExtractor,
    InceptionExtractor,
    default_extractor,
    evaluate,
)
from posterforge.evaluation.metrics import fid, precision_recall
from posterforge.hookspecs import hookimpl
from posterforge.models import Extractor
from posterforge.plugins import PluginHost, get_host
from posterforge_cyclegan import features as features_mod
from posterforge_cyclegan.features import VintagifyEncoder

KINDS = ("stripes-h", "stripes-v", "checks")
SIZE = 32


def patterns(kind: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """``(n, 3, SIZE, SIZE)`` in [0, 1]: one structure per ``kind``, random period, phase and
    colours per image."""
    yy, xx = torch.meshgrid(torch.arange(float(SIZE)), torch.arange(float(SIZE)), indexing="ij")
    out = []
    for _ in range(n):
        f = 0.4 + 0.5 * torch.rand((), generator=gen)
        ph = 6.28 * torch.rand(2, generator=gen)
        wave = {
            0: torch.sin(yy * f + ph[0]),
            1: torch.sin(xx * f + ph[0]),
            2: torch.sin(yy * f + ph[0]) * torch.sin(xx * f + ph[1]),
        }[kind]
        fg = 0.5 + 0.5 * torch.rand(3, 1, 1, generator=gen)
        bg = 0.3 * torch.rand(3, 1, 1, generator=gen)
        out.append(bg + (fg - bg) * (0.5 + 0.5 * wave))
    return torch.stack(out)


def mixed(n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` images cycling through the three kinds."""
    return torch.cat([patterns(i % 3, 1, gen) for i in range(n)])


def replay(images: torch.Tensor):
    """A sampler that hands out ``images`` in order (what a perfect memoriser would do)."""
    at = [0]

    def sample(row, n):
        at[0] += n
        return images[at[0] - n : at[0]]

    return sample


@pytest.fixture(scope="module")
def encoder() -> VintagifyEncoder:
    enc = VintagifyEncoder.from_vintagify(size=SIZE)
    assert enc.name == "vintagify-encoder-v1@32" and "resized to 32x32" in enc.description
    return enc


def test_import_loads_nothing():
    code = (
        "import sys, posterforge.evaluation as e; e.__all__; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "import torch; torch.load = None; "  # loading any weights from here on would fail
        "from posterforge.evaluation import FeatureExtractor, default_extractor"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_default_extractor_is_deterministic_and_fixed_length():
    enc = default_extractor(get_host())  # the cyclegan plugin's, through its hook
    assert isinstance(enc, VintagifyEncoder) and enc.name == "vintagify-encoder-v1"
    assert enc.size == 128 and enc.num_features == 640
    assert "NOT comparable" in enc.description
    gen = torch.Generator().manual_seed(0)
    small, big = patterns(0, 2, gen)[..., :24, :], torch.rand(2, 3, 96, 64, generator=gen)
    with torch.no_grad():
        a, b = enc(small), enc(big)
        assert a.shape == b.shape == (2, 640) and a.dtype == torch.float32
        assert torch.equal(a, enc(small)) and torch.isfinite(b).all()
        assert not torch.allclose(a[0], a[1])
        # uint8 input (torchmetrics' convention without normalize) means the same images
        assert torch.allclose(enc((big * 255).round().byte()), b, atol=1e-2)


@pytest.mark.slow
def test_torchmetrics_accepts_the_extractor_directly(encoder):
    from torchmetrics.image.fid import FrechetInceptionDistance

    gen = torch.Generator().manual_seed(1)
    real, fake = patterns(0, 12, gen), patterns(2, 12, gen)
    metric = FrechetInceptionDistance(feature=encoder, normalize=True)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.no_grad():
        ours = fid(encoder(real), encoder(fake))
    assert float(metric.compute()) == pytest.approx(ours, rel=1e-3)


@pytest.mark.slow
def test_identical_fresh_and_different_sets(encoder):
    gen = torch.Generator().manual_seed(4)
    real = patterns(0, 24, gen)

    def against(fake: torch.Tensor) -> EvalReport:
        return evaluate(real, None, replay(fake), None, n=24, extractor=encoder)

    same, fresh = against(real), against(patterns(0, 24, gen))
    other = against(patterns(2, 24, gen) * torch.tensor([0.3, 0.5, 1.0])[:, None, None])
    assert abs(same.fid) < 1e-3
    assert same.precision == 1.0 and same.recall == 1.0
    # KID is unbiased for independent sets; for one set against itself it is slightly negative
    assert same.kid_mean <= 0 and abs(same.kid_mean) < 0.2 * other.kid_mean
    assert abs(fresh.kid_mean) < 0.1 * other.kid_mean
    # a fresh draw of the same distribution: FID > 0 (few samples, 640 dimensions), yet far below
    # blue checks against warm stripes (other colours and structure)
    assert other.fid > 2 * fresh.fid > 0
    assert fresh.precision > 0.8 and fresh.recall > 0.8
    assert other.precision < 0.2 and other.recall < 0.2
    assert same.label_consistency is None and same.per_label == {}
    assert same.n_real == same.n_fake == 24 and same.kid_subset_size == 12  # half the set


@pytest.mark.slow
def test_mode_collapse_shows_as_low_recall(encoder):
    real = mixed(30, torch.Generator().manual_seed(5))
    report = evaluate(
        real, None, lambda row, n: real[7:8].expand(n, -1, -1, -1), None, n=30, extractor=encoder
    )
    assert report.precision > 0.9  # the one image it makes is a real one
    assert report.recall < 0.1


def labelled(per_label: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.cat([patterns(j, per_label, gen) for j in range(3)])
    rows = torch.eye(3).repeat_interleave(per_label, dim=0)
    return images, rows


@pytest.mark.slow
def test_label_consistency(encoder):
    real, rows = labelled(16, torch.Generator().manual_seed(6))
    gen = torch.Generator().manual_seed(7)
    calls = []

    def obedient(row, n):
        return patterns(int(row.argmax()), n, gen)

    def deaf(row, n):
        return mixed(n, gen)

    good = evaluate(
        real,
        rows,
        obedient,
        KINDS,
        n=48,
        extractor=encoder,
        progress=lambda done, total: calls.append((done, total)),
    )
    bad = evaluate(real, rows, deaf, KINDS, n=48, extractor=encoder)
    assert good.classifier_accuracy >= 0.8
    assert good.label_consistency >= 0.8
    assert bad.label_consistency < 0.6  # chance is 1/3
    assert set(good.per_label) == set(KINDS)
    assert all(s.n_real == 16 and s.n_fake == 16 for s in good.per_label.values())
    assert good.n_fake == 48
    assert calls[-1] == (96, 96) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    # a deaf generator's per-label sets mix all kinds: farther from each label's real images
    assert sum(s.fid for s in bad.per_label.values()) > sum(s.fid for s in good.per_label.values())


@pytest.mark.slow
def test_seeded_and_json_ready(encoder):
    real = mixed(12, torch.Generator().manual_seed(8))

    def noisy(row, n):  # draws from torch's global RNG, which evaluate seeds
        return (real[:n] + 0.1 * torch.rand(n, 3, SIZE, SIZE)).clamp(0, 1)

    torch.manual_seed(123)
    a = evaluate(real, None, noisy, None, n=12, extractor=encoder, seed=1)
    after = torch.rand(1)
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), after)  # the caller's RNG stream is untouched
    assert evaluate(real, None, noisy, None, n=12, extractor=encoder, seed=1) == a
    assert evaluate(real, None, noisy, None, n=12, extractor=encoder, seed=2) != a
    record = json.loads(json.dumps(a.as_dict()))
    assert record["extractor"] == "vintagify-encoder-v1@32" and record["n_fake"] == 12
    assert isinstance(a, EvalReport)


def test_precision_recall_on_known_points():
    real = torch.arange(10.0)[:, None]  # k=1: every real ball has radius 1
    fake = torch.tensor([[0.5], [100.0]])  # the second fake's ball (radius 99.5) covers all
    assert precision_recall(real, fake, k=1) == (0.5, 1.0)


def _without_checks(rows: torch.Tensor) -> torch.Tensor:
    """The checks relabelled as horizontal stripes: no real image left for 'checks'."""
    out = rows.clone()
    out[rows[:, 2] > 0, 0] = 1
    out[:, 2] = 0
    return out


_FEW = torch.cat([torch.arange(17), torch.arange(24, 36)])  # 12, 5 and 12 images per label
BAD_INPUT = {  # case: (overrides of a valid call from (real, rows), start of the message)
    "no real images": (lambda x, y: dict(real=x[:0], real_labels=y[:0]), "no real images"),
    "too few generated": (lambda x, y: dict(n=5), "5 generated images are too few"),
    "KID subset larger than n": (
        lambda x, y: dict(kid_subset_size=50),
        "only 36 real images: KID subsets of 50 images",
    ),
    "rows do not match names": (
        lambda x, y: dict(label_names=KINDS[:2]),
        "label rows have shape (36, 3), expected (36, 2)",
    ),
    "names without rows": (lambda x, y: dict(real_labels=None), "label names were given but no"),
    "not multi-hot": (lambda x, y: dict(real_labels=y * 2), "label rows must be multi-hot"),
    "unlabelled image": (
        lambda x, y: dict(real_labels=y * (torch.arange(36) != 3)[:, None]),
        "1 real image(s) have no label (first: index 3)",
    ),
    "real out of range": (lambda x, y: dict(real=x * 255), "the real images have values in"),
}


def test_rare_labels_are_in_the_overall_figures_only(encoder):
    """A label under the per-label minimum (5 images) or with none at all: the overall figures,
    no per-label ones for it, and its name and count in ``skipped_labels`` (was: refused)."""
    real, rows = labelled(12, torch.Generator().manual_seed(9))
    gen = torch.Generator().manual_seed(11)
    asked = []

    def obedient(row, n):
        asked.append((int(row.argmax()), n))
        return patterns(int(row.argmax()), n, gen)

    few = evaluate(real[_FEW], rows[_FEW], obedient, KINDS, n=30, extractor=encoder)
    assert set(few.per_label) == {"stripes-h", "checks"}
    assert few.skipped_labels == {"stripes-v": 5} and few.n_real == 29
    assert "stripes-v (5)" in few.skipped_note() and "under 10 real images" in few.skipped_note()
    assert (1, 5) in asked  # its share of n, in proportion: in the overall figures
    none = evaluate(real, _without_checks(rows), obedient, KINDS, n=30, extractor=encoder)
    assert none.skipped_labels == {"checks": 0} and set(none.per_label) == set(KINDS[:2])


def test_kid_subsets_are_half_the_smaller_set(encoder):
    """Subsets as large as a small set would all be that set (a spread of 0): half of it."""
    real = mixed(12, torch.Generator().manual_seed(12))
    gen = torch.Generator().manual_seed(13)
    report = evaluate(real, None, lambda row, n: mixed(n, gen), None, n=20, extractor=encoder)
    assert report.kid_subset_size == 6 and report.kid_std > 0


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_clear_error(case, encoder):
    real, rows = labelled(12, torch.Generator().manual_seed(9))
    overrides, message = BAD_INPUT[case]
    call = dict(real=real, real_labels=rows, label_names=KINDS, n=30)

    def must_not_run(row, n):
        raise AssertionError("sampled before the input was checked")

    with pytest.raises(PosterforgeError, match="^" + re.escape(message)):
        evaluate(sample=must_not_run, extractor=encoder, **{**call, **overrides(real, rows)})


def test_bad_generator_output_is_one_clear_error(encoder):
    real = mixed(10, torch.Generator().manual_seed(10))
    range_error = r"^generated images have values in \[-0\.99\d*, 0\.\d+\]; expected \[0, 1\]$"
    with pytest.raises(PosterforgeError, match=range_error):
        evaluate(real, None, lambda row, n: real[:n] * 2 - 1, None, n=10, extractor=encoder)
    with pytest.raises(PosterforgeError, match=r"expected \(10, 3, H, W\)"):
        evaluate(real, None, lambda row, n: real[:n, :1], None, n=10, extractor=encoder)


def test_missing_or_wrong_vintagify(monkeypatch, tmp_path):
    monkeypatch.setattr(features_mod, "locate_vintagify", lambda: None)
    with pytest.raises(PosterforgeError, match="pip install vintagify"):
        VintagifyEncoder.from_vintagify()
    other = tmp_path / "other.pth"
    torch.save({"model.1.weight": torch.zeros(1)}, other)
    with pytest.raises(WeightsError, match="not the checkpoint"):
        VintagifyEncoder.from_vintagify(other)


class _Fixed(FeatureExtractor):
    """Each image's channel means: a weightless extractor for the registry tests."""

    num_features, size = 3, 8

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.resize(images).mean(dim=(2, 3))


class ExtractorsPlugin:
    """A fake plugin registering extractors of the given names through the hook."""

    def __init__(self, *names: str):
        self.names = names

    @hookimpl
    def register_feature_extractors(self, register):
        for name in self.names:
            register(Extractor(name, f"means ({name})", lambda name=name: _Fixed(name)))


def _host_with(*plugins: tuple[str, ExtractorsPlugin]) -> PluginHost:
    host = PluginHost()  # no entry points: only the plugins given
    for name, plugin in plugins:
        host.add(plugin, name)
    return host


def test_extractors_are_registered_by_plugins_and_found_by_name():
    host = _host_with(
        ("means", ExtractorsPlugin("means-b", "means-a")), ("x", ExtractorsPlugin("x"))
    )
    assert host.plugins["means"].registered == {"extractors": ["means-a", "means-b"]}
    assert default_extractor(host).name == "means-b"  # the first registered, not the first by name
    assert default_extractor(host, "x").name == "x"
    images = torch.rand(2, 3, 8, 8)  # the extractor's size: no resizing
    assert torch.equal(default_extractor(host, "means-a")(images), images.mean(dim=(2, 3)))
    with pytest.raises(PosterforgeError, match=r"^unknown feature extractor 'mean': did you mean"):
        default_extractor(host, "mean")


def test_an_extractor_name_clash_is_reported_against_the_later_plugin():
    host = _host_with(("first", ExtractorsPlugin("same")), ("second", ExtractorsPlugin("same")))
    assert host.plugins["first"].errors == []
    assert host.plugins["second"].errors == [
        "register_feature_extractors: feature extractor name 'same' from plugin 'second' is taken "
        "by plugin 'first'"
    ]


def test_no_extractor_registered_is_one_line():
    with pytest.raises(PosterforgeError, match=r"^no feature extractors are registered") as e:
        default_extractor(PluginHost())
    assert "\n" not in str(e.value)
    with pytest.raises(
        PosterforgeError, match=r"^unknown feature extractor 'vintagify-encoder-v1'"
    ):
        default_extractor(PluginHost(), "vintagify-encoder-v1")


@pytest.mark.slow
def test_inception_from_a_local_file(tmp_path):
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    path = tmp_path / "inception.pth"
    torch.save(inception_v3(weights=None, init_weights=True).state_dict(), path)
    net = InceptionExtractor.from_file(path)
    assert net.num_features == 2048 and net.size == 299 and "inception.pth" in net.description
    images = patterns(1, 4, torch.Generator().manual_seed(11))
    with torch.no_grad():
        out = net(images)
    assert out.shape == (4, 2048) and torch.isfinite(out).all()

    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(WeightsError, match="not a torchvision inception_v3"):
        InceptionExtractor.from_file(path)
    with pytest.raises(WeightsError, match="not found"):
        InceptionExtractor.from_file(tmp_path / "missing.pth")

"""A network's config stated once (``posterforge.netconfig``): the check from the declaration,
its one-line errors (the same as ``check_config``'s), and the weight-header round trip of each
first-party family, which rebuilds the same network and leaves the shipped files' headers as
they are."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass

import pytest
import torch

from posterforge.netconfig import NetConfig, between, flag, size_between
from posterforge.plugin import check_config
from posterforge.weights import build_checked, load_weights, make_header, save_weights
from posterforge_cyclegan import CycleGANResnet
from posterforge_cyclegan.config import ResnetConfig
from posterforge_cyclegan.network import ResnetGenerator
from posterforge_genre_cgan import DEMO_FILE as GENRE_DEMO
from posterforge_genre_cgan import GenreCGAN
from posterforge_genre_cgan.config import GenreConfig
from posterforge_genre_cgan.network import GenreGenerator
from posterforge_stylegan import DEMO_FILE as STYLE_DEMO
from posterforge_stylegan import StyleGAN
from posterforge_stylegan.augment import AdaptiveAugment
from posterforge_stylegan.config import AugmentConfig, StyleGeneratorConfig
from posterforge_stylegan.generator import StyleGenerator


@dataclass(frozen=True, kw_only=True)
class Demo(NetConfig):
    z_dim: int = between(1, 64)
    width: int = between(1, 1024, 32)
    beta: float = between(0.0, 1.0, 0.5)
    affine: bool = flag(False)
    size: tuple[int, int] = size_between(4, 256, (16, 32))
    embed: int | None = between(1, 64, None)
    target: float | None = between(0.0, 1.0, 0.6, or_none=True)


# the same declaration, by hand (what plugins wrote before): both must say the same
BY_HAND = dict(
    ints={"z_dim": (1, 64), "width": (1, 1024)},
    floats={"beta": (0.0, 1.0)},
    bools=("affine",),
    required=("z_dim",),
)

BAD = [  # (config, what the one line says)
    ({"z_dim": 4, "evil": 1, "worse": 2}, "unknown config keys 'evil', 'worse'"),
    ({"width": 8}, "config lacks 'z_dim'"),
    ({"z_dim": "abc"}, "config z_dim must be a whole number in [1, 64]"),
    ({"z_dim": 4.0}, "config z_dim must be a whole number in [1, 64]"),
    ({"z_dim": True}, "config z_dim must be a whole number in [1, 64]"),
    ({"z_dim": 65}, "config z_dim must be a whole number in [1, 64]"),
    ({"z_dim": 4, "width": 0}, "config width must be a whole number in [1, 1024]"),
    ({"z_dim": 4, "beta": 1.5}, "config beta must be a number in [0.0, 1.0]"),
    ({"z_dim": 4, "beta": "x"}, "config beta must be a number in [0.0, 1.0]"),
    ({"z_dim": 4, "affine": "yes"}, "config affine must be true or false, not 'yes'"),
    ({"z_dim": 4, "affine": 1}, "config affine must be true or false, not 1"),
]


@pytest.mark.parametrize(("config", "says"), BAD, ids=[b[1] for b in BAD])
def test_the_declaration_check_says_what_check_config_says(config, says):
    for check in (Demo.check, lambda c: check_config(c, **BY_HAND)):
        with pytest.raises(ValueError) as err:
            check(config)
        assert str(err.value) == says
    with pytest.raises(ValueError, match=says.replace("[", r"\[").replace("]", r"\]")):
        Demo.from_dict(config)


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({"z_dim": 4, "size": [16]}, "config size must be [W, H], whole numbers in [4, 256]"),
        ({"z_dim": 4, "size": [16, "x"]}, "config size must be [W, H], whole numbers in [4, 256]"),
        ({"z_dim": 4, "size": [16, 512]}, "config size must be [W, H], whole numbers in [4, 256]"),
        ({"z_dim": 4, "size": 16}, "config size must be [W, H], whole numbers in [4, 256]"),
        ({"z_dim": 4, "beta": None}, "config beta must be a number in [0.0, 1.0]"),
    ],
)
def test_sizes_and_nones_are_checked_too(config, says):
    with pytest.raises(ValueError) as err:
        Demo.from_dict(config)
    assert str(err.value) == says


def test_a_config_is_normalised_frozen_and_round_trips_through_json():
    config = Demo.from_dict({"z_dim": 4, "beta": 1, "size": [8, 16], "target": None})
    assert config == Demo(z_dim=4, beta=1.0, size=(8, 16), target=None)
    assert isinstance(config.beta, float) and config.size == (8, 16) and config.embed is None
    header = json.loads(json.dumps(config.to_dict()))
    assert header == {
        "z_dim": 4, "width": 32, "beta": 1.0, "affine": False, "size": [8, 16], "embed": None,
        "target": None,
    }  # fmt: skip
    assert Demo.from_dict(header) == config
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.width = 8  # type: ignore[misc]
    with pytest.raises(ValueError, match="config width must be a whole number"):
        Demo(z_dim=4, width=2000)  # made in Python: checked the same way
    with pytest.raises(ValueError, match="config width must be a whole number"):
        dataclasses.replace(config, width=-1)


def test_a_field_without_a_declaration_is_refused():
    @dataclass(frozen=True)
    class Loose(NetConfig):
        width: int = 4

    with pytest.raises(TypeError, match=r"Loose.width declares no allowed values"):
        Loose()


def test_the_module_imports_no_torch():
    code = "import sys, posterforge.netconfig; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- each family: header config -> network -> header config ---------------------------------------


def _random(net: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(3)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.3)
    return net.eval()


def _families():
    """(kind, arch, model class, network, labels, the built model's output, the network's)."""
    labels = ["calm", "tense"]
    z = torch.randn(2, 8, generator=torch.Generator().manual_seed(0))
    c = torch.eye(2)
    x = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(1))
    cyc = ResnetGenerator(ResnetConfig(ngf=4, n_blocks=2, affine=True))
    genre = GenreGenerator(GenreConfig(z_dim=8, ngf=4), n_labels=2)
    style_config = StyleGeneratorConfig(z_dim=8, c_dim=2, w_dim=8, channel_base=128, channel_max=8)
    style = StyleGenerator(style_config)

    def unit(y: torch.Tensor) -> torch.Tensor:
        return y.add(1).mul(0.5)

    return [
        ("translator", "cyclegan-resnet", CycleGANResnet, cyc, [], lambda m: m(x),
         lambda n: unit(n(x * 2 - 1))),
        ("generator", "genre-cgan", GenreCGAN, genre, labels, lambda m: m.sample(z, c),
         lambda n: unit(n(z, c)).clamp(0, 1)),
        ("generator", "stylegan", StyleGAN, style, labels, lambda m: m.sample(z, c),
         lambda n: unit(n(z, c, noise_mode="const")).clamp(0, 1)),
    ]  # fmt: skip


@pytest.mark.parametrize("family", _families(), ids=lambda f: f[1])
def test_each_family_rebuilds_its_network_from_the_header_it_writes(tmp_path, family):
    kind, arch, cls, net, labels, run_built, run_net = family
    net = _random(net)
    header = make_header(kind, arch, net.config.to_dict(), labels=labels)
    path = tmp_path / f"{arch}.safetensors"
    save_weights(path, net.state_dict(), header)
    stored = load_weights(path)
    assert stored.config == net.config.to_dict()  # the header holds the dataclass's fields
    assert type(net.config).from_dict(stored.config) == net.config
    built = build_checked(cls, path)  # check() from the declaration, then build()
    with torch.no_grad():
        assert torch.equal(run_built(built), run_net(net))  # the same network, bit for bit


@pytest.mark.parametrize(
    ("path", "config_class"),
    [(GENRE_DEMO, GenreConfig), (STYLE_DEMO, StyleGeneratorConfig)],
    ids=["posters-demo", "posters-stylegan"],
)
def test_the_shipped_headers_read_and_write_back_unchanged(path, config_class):
    stored = load_weights(path).config
    assert config_class.from_dict(stored).to_dict() == stored


def test_the_vintagify_import_writes_the_config_the_dataclass_reads():
    pytest.importorskip("vintagify")
    from posterforge.weights import load_foreign_state_dict
    from posterforge_cyclegan.importers import convert_vintagify
    from posterforge_cyclegan.vintagify import locate_vintagify

    _, header = convert_vintagify(load_foreign_state_dict(locate_vintagify()))
    assert header["config"] == {
        "ngf": 64, "n_blocks": 9, "affine": True, "in_channels": 3, "out_channels": 3,
    }  # fmt: skip
    assert ResnetConfig.from_dict(header["config"]).to_dict() == header["config"]


def test_the_stylegan_embedding_is_stored_resolved_and_augment_takes_its_config():
    config = StyleGeneratorConfig(z_dim=8, c_dim=0, w_dim=16)
    assert config.embed_dim == 16 and config.to_dict()["embed_dim"] == 16
    with pytest.raises(ValueError, match="config c_dim must be a whole number in"):
        StyleGeneratorConfig.from_dict({"z_dim": 8, "c_dim": -1, "w_dim": 8})
    fixed = AdaptiveAugment(AugmentConfig(p=0.25, target=None))
    assert fixed.config.target is None and float(fixed.p) == 0.25
    with pytest.raises(ValueError, match=r"config p must be a number in \[0.0, 1.0\]"):
        AugmentConfig(p=1.5)

"""First-party plugin: the genre-conditioned poster DCGAN, its training family, the 20-genre
vocabulary and the demo model.

Discovered through the ``posterforge`` entry-point group like any third-party plugin, and like one
it imports only :mod:`posterforge.plugin` of the core. This module must stay cheap to import (no
torch): the networks live in :mod:`posterforge_genre_cgan.network`.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from posterforge.plugin import (
    Family,
    Generator,
    Kind,
    hookimpl,
    labelled_inputs,
    labelled_options,
    shipped,
    shipped_source,
)
from posterforge_genre_cgan.config import GenreConfig

if TYPE_CHECKING:
    import torch

    from posterforge.plugin import LabelSet, Weights

ARCH = "genre-cgan"
DEMO_NAME = "posters-demo"
DEMO_FILE = Path(__file__).resolve().parent / "weights" / f"{DEMO_NAME}.safetensors"
VOCABULARY = "genres"  # the label preset the recipes name by default


def presets_folder():
    return shipped(__name__, ARCH)


@cache
def genre_vocabulary() -> dict:
    """``labels/genres.toml``: the 20 genres, their noun and aliases."""
    return tomllib.loads((presets_folder() / "labels" / f"{VOCABULARY}.toml").read_text("utf-8"))


def labels_of(weights: Weights) -> LabelSet:
    """The label set of a genre-cgan weight file: its names, with the noun and aliases it stores
    (files from before vocabularies were stored get those of the genre preset) and the training
    images per genre its run recorded."""
    from posterforge.plugin import labels_from_header

    return labels_from_header(weights.header, weights.labels, genre_vocabulary())


class GenreCGAN(Generator):
    name = ARCH
    aliases = ("dcgan",)
    description = "Genre-conditioned DCGAN posters, 64 wide x 128 high (z 100 + 20 genres)"

    @classmethod
    def check(cls, header, shapes):
        from posterforge.plugin import check_shapes
        from posterforge_genre_cgan.network import GenreGenerator

        config = GenreConfig.from_dict(header.get("config", {}))
        n = len(header.get("labels", []))
        if not 1 <= n <= 10_000:
            raise ValueError(f"a {ARCH} model needs 1 to 10000 label names, not {n}")
        check_shapes(lambda: GenreGenerator(config, n), shapes)

    @classmethod
    def build(cls, weights: Weights | None) -> torch.nn.Module:
        from posterforge_genre_cgan.network import GenreGenerator, PosterSampler

        if weights is None:
            raise ValueError(f"{cls.name} needs weights")
        labels = labels_of(weights)
        net = GenreGenerator(GenreConfig.from_dict(weights.config), len(labels))
        net.load_state_dict({k: v.float() for k, v in weights.tensors.items()})
        return PosterSampler(net, labels).eval()


@hookimpl
def register_generators(register):
    register(GenreCGAN)


@hookimpl
def register_presets(register):
    register(presets_folder())


@hookimpl
def register_weight_sources(register):
    register(
        shipped_source(
            DEMO_NAME,
            DEMO_FILE,
            kind=Kind.GENERATOR,
            description="Demo poster generator trained on synthetic posters (not real films)",
        )
    )


@hookimpl
def register_families(register):
    register(
        Family(
            name=ARCH,
            kind=Kind.GENERATOR,
            description="Genre-conditioned DCGAN (z 100 + 20-genre one-hot, projection "
            "discriminator)",
            inputs=labelled_inputs("genre"),
            options=labelled_options("genre"),
            recipes=presets_folder() / "recipes",
            example="--data posters/ --labels labels.csv --name mine --out runs/mine",
            make_task="posterforge_genre_cgan.training:make_task",
            make_data="posterforge_genre_cgan.training:make_data",
        )
    )

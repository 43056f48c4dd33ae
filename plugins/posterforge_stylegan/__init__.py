"""First-party plugin: the StyleGAN-style conditional poster generator and its training family.

A mapping network with a label embedding and per-label w averages (truncation toward the genre
asked for), modulated convolutions on a learned poster-shaped constant, a residual projection
discriminator, lazy R1, optional path-length regularisation, and adaptive discriminator
augmentation on kornia whose probability survives resume. It uses nothing of the core but the
plugin contract, :mod:`posterforge.plugin`: this module registers the generator class, the
family and its recipes, and stays free of torch (the networks live in
:mod:`posterforge_stylegan.network` and the modules it gathers; their configs, torch-free, in
:mod:`posterforge_stylegan.config`).
"""

from __future__ import annotations

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
from posterforge_stylegan.config import StyleGeneratorConfig

if TYPE_CHECKING:
    import torch

    from posterforge.plugin import Weights

ARCH = "stylegan"
DEMO_NAME = "posters-stylegan"
DEMO_FILE = Path(__file__).resolve().parent / "weights" / f"{DEMO_NAME}.safetensors"


def presets_folder():
    return shipped(__name__, ARCH)


class StyleGAN(Generator):
    name = ARCH
    aliases = ("stylegan2",)
    description = "StyleGAN-style conditional posters (mapping net, modulated convs, ADA)"
    # The modulated convs fold the batch into the channels (one grouped conv per batch), which
    # OpenVINO's converter fixes at the traced batch size: it cannot take this family.
    exportable = False

    @classmethod
    def check(cls, header, shapes):
        from posterforge.plugin import check_shapes
        from posterforge_stylegan.generator import StyleGenerator

        config = StyleGeneratorConfig.from_dict(header.get("config", {}))
        if config.c_dim != len(header.get("labels", [])):
            raise ValueError(f"c_dim {config.c_dim} but {len(header.get('labels', []))} labels")
        check_shapes(lambda: StyleGenerator(config), shapes)

    @classmethod
    def build(cls, weights: Weights | None) -> torch.nn.Module:
        from posterforge.plugin import labels_from_header
        from posterforge_stylegan.generator import StyleGenerator
        from posterforge_stylegan.sampler import StyleSampler

        if weights is None:
            raise ValueError(f"{cls.name} needs weights")
        net = StyleGenerator(StyleGeneratorConfig.from_dict(weights.config))
        net.load_state_dict({k: v.float() for k, v in weights.tensors.items()})
        labels = labels_from_header(weights.header, weights.labels)
        return StyleSampler(net.eval(), labels).eval()


@hookimpl
def register_generators(register):
    register(StyleGAN)


@hookimpl
def register_weight_sources(register):
    register(
        shipped_source(
            DEMO_NAME,
            DEMO_FILE,
            kind=Kind.GENERATOR,
            description="Demo StyleGAN posters, trained on synthetic posters (not real films)",
        )
    )


@hookimpl
def register_families(register):
    register(
        Family(
            name=ARCH,
            kind=Kind.GENERATOR,
            description="StyleGAN-style conditional generator (R1, EMA, style mixing, ADA)",
            inputs=labelled_inputs("genre"),
            options=labelled_options("genre"),
            recipes=presets_folder() / "recipes",
            example="--data posters/ --labels labels.csv --name mine --out runs/mine",
            make_task="posterforge_stylegan.training:make_task",
            make_data="posterforge_stylegan.training:make_data",
        )
    )

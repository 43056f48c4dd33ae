"""First-party plugin: the StyleGAN-style conditional poster generator and its training family.

A mapping network with a label embedding and per-label w averages (truncation toward the genre
asked for), modulated convolutions on a learned poster-shaped constant, a residual projection
discriminator, lazy R1, optional path-length regularisation, and adaptive discriminator
augmentation on kornia whose probability survives resume. It uses nothing of the core but the
plugin contract: this module registers the generator class, the family and its recipes, and
stays free of torch (the networks live in :mod:`posterforge_stylegan.network`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from posterforge import Generator, hookimpl
from posterforge.family import BALANCE, Family, labelled_inputs
from posterforge.presets import shipped

if TYPE_CHECKING:
    import torch

    from posterforge.weights import Weights

ARCH = "stylegan"


def presets_folder():
    return shipped(__name__, ARCH)


class StyleGAN(Generator):
    name = ARCH
    aliases = ("stylegan2",)
    description = "StyleGAN-style conditional posters (mapping net, modulated convs, ADA)"

    @classmethod
    def build(cls, weights: Weights | None) -> torch.nn.Module:
        from posterforge.labels import LabelSet
        from posterforge_stylegan.network import StyleGenerator
        from posterforge_stylegan.sampler import StyleSampler

        if weights is None:
            raise ValueError(f"{cls.name} needs weights")
        net = StyleGenerator(**weights.config)
        net.load_state_dict({k: v.float() for k, v in weights.tensors.items()})
        vocabulary = weights.header.get("vocabulary") or {}
        labels = LabelSet.from_dict(vocabulary, names=weights.labels)
        return StyleSampler(net.eval(), labels).eval()


@hookimpl
def register_generators(register):
    register(StyleGAN)


@hookimpl
def register_families(register):
    register(
        Family(
            name=ARCH,
            kind="generator",
            description="StyleGAN-style conditional generator (R1, EMA, style mixing, ADA)",
            inputs=labelled_inputs("genre"),
            options=(BALANCE,),
            recipes=presets_folder() / "recipes",
            example="--data posters/ --labels labels.csv --name mine --out runs/mine",
            make_task="posterforge_stylegan.training:make_task",
            make_data="posterforge_stylegan.training:make_data",
        )
    )

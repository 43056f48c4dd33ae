"""First-party plugin: CycleGAN ResNet translators, their importers, training family, styles
and the `vintage` weights.

Discovered through the ``posterforge`` entry-point group like any third-party plugin. This module
must stay cheap to import (no torch): the networks live in :mod:`posterforge_cyclegan.network`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from posterforge import Translator, hookimpl
from posterforge.family import Family, Input
from posterforge.presets import shipped
from posterforge.weights import Importer, WeightSource
from posterforge_cyclegan import importers

if TYPE_CHECKING:
    import torch

    from posterforge.weights import Weights

VINTAGIFY_FILE = "resources/G_A2B_epoch33.pth"
VINTAGIFY_SHA256 = "c502cd44ca720d004f89775f593fc403acc6b36d27d65390cbe2f476f771e560"


def presets_folder():
    """Styles (``vintage``, ``yourname``, ``spiritedaway``) and recipes (``default``, ``anime``)."""
    return shipped(__name__, "cyclegan")


class CycleGANResnet(Translator):
    name = importers.ARCH
    aliases = ("cyclegan",)
    description = "CycleGAN ResNet generator (instance norm, reflection padding)"
    multiple = 4  # two stride-2 downsamplings
    min_size = 8  # the residual blocks reflect-pad by 1 at a quarter of the size

    @classmethod
    def check(cls, header, shapes):
        from posterforge.weights import check_config, check_shapes
        from posterforge_cyclegan.network import ResnetGenerator

        config = header.get("config", {})
        check_config(
            config,
            {"ngf": (1, 1024), "n_blocks": (0, 64), "in_channels": (3, 3), "out_channels": (3, 3)},
            bools=("affine",),
        )
        check_shapes(lambda: ResnetGenerator(**config), shapes)

    @classmethod
    def build(cls, weights: Weights | None) -> torch.nn.Module:
        from posterforge_cyclegan.network import ResnetGenerator, UnitRange

        if weights is None:
            raise ValueError(f"{cls.name} needs weights")
        net = ResnetGenerator(**weights.config)
        net.load_state_dict(weights.tensors)
        return UnitRange(net, cls.multiple).eval()


def locate_vintagify() -> Path | None:
    """The checkpoint inside the installed vintagify package, found without importing it."""
    spec = importlib.util.find_spec("vintagify")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / VINTAGIFY_FILE
    return path if path.is_file() else None


@hookimpl
def register_translators(register):
    register(CycleGANResnet)


@hookimpl
def register_importers(register):
    register(
        Importer(
            "reference",
            "junyanz/pytorch-CycleGAN-and-pix2pix ResnetGenerator "
            "(latest_net_G_A.pth, resnet_6blocks/resnet_9blocks)",
            importers.detect_reference,
            importers.convert_reference,
        )
    )
    register(
        Importer(
            "vintagify",
            "vintagify's ResnetGenerator (affine instance norm)",
            importers.detect_vintagify,
            importers.convert_vintagify,
        )
    )


@hookimpl
def register_weight_sources(register):
    register(
        WeightSource(
            name="vintage",
            description="Modern photo to a faded vintage look",
            locate=locate_vintagify,
            importer="vintagify",
            sha256=VINTAGIFY_SHA256,
            licence="MIT",
            provenance={
                "package": "vintagify",
                "file": VINTAGIFY_FILE,
                "authors": "Yusong Zhao, Fangyi Wang",
            },
            how_to_get="pip install vintagify",
        )
    )


@hookimpl
def register_presets(register):
    register(presets_folder())


@hookimpl
def register_families(register):
    register(
        Family(
            name="cyclegan",
            kind="translator",
            description="CycleGAN: two ResNet generators, two PatchGAN discriminators, "
            "LSGAN/WGAN-GP, cycle + identity losses",
            inputs=(
                Input("a", "folder", "Folder of domain A images (translate from)."),
                Input("b", "folder", "Folder of domain B images (translate to)."),
            ),
            recipes=presets_folder() / "recipes",
            example="--a spirited/ --b yourname/ --name yourname --preset anime "
            "--init-from vintage --out runs/yourname",
            make_task="posterforge_cyclegan.training:make_task",
            make_data="posterforge_cyclegan.training:make_data",
        )
    )

"""First-party plugin: CycleGAN ResNet translators, their importers, training family, styles,
the `vintage` weights and the `vintagify-encoder-v1` evaluation features.

Discovered through the ``posterforge`` entry-point group like any third-party plugin, and like one
it imports only :mod:`posterforge.plugin` of the core. This module must stay cheap to import (no
torch): the networks live in :mod:`posterforge_cyclegan.network`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from posterforge.plugin import (
    Extractor,
    Family,
    Importer,
    Input,
    Kind,
    Translator,
    WeightSource,
    hookimpl,
    shipped,
)
from posterforge_cyclegan import importers
from posterforge_cyclegan.config import ResnetConfig
from posterforge_cyclegan.vintagify import (
    ENCODER_NAME,
    VINTAGIFY_FILE,
    VINTAGIFY_SHA256,
    locate_vintagify,
)

if TYPE_CHECKING:
    import torch

    from posterforge.plugin import Weights


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
        from posterforge.plugin import check_shapes
        from posterforge_cyclegan.network import ResnetGenerator

        config = ResnetConfig.from_dict(header.get("config", {}))
        check_shapes(lambda: ResnetGenerator(config), shapes)

    @classmethod
    def build(cls, weights: Weights | None) -> torch.nn.Module:
        from posterforge_cyclegan.network import ResnetGenerator, UnitRange

        if weights is None:
            raise ValueError(f"{cls.name} needs weights")
        net = ResnetGenerator(ResnetConfig.from_dict(weights.config))
        net.load_state_dict(weights.tensors)
        return UnitRange(net, cls.multiple).eval()


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
def register_feature_extractors(register):
    register(
        Extractor(
            ENCODER_NAME,
            "vintagify's CycleGAN encoder pooled to 640 channel statistics at 128x128: colour, "
            "texture and layout (offline; needs pip install vintagify)",
            "posterforge_cyclegan.features:vintagify_encoder",
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
            kind=Kind.TRANSLATOR,
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
            # both generators are trained: G_AB (the style, the default) and G_BA
            exports={"a2b": "export", "b2a": "export_reverse"},
        )
    )

"""Feature extractors: images ``(B, 3, H, W)`` in ``[0, 1]`` -> features ``(B, D)``.

Every extractor is an ``nn.Module`` with the attributes torchmetrics looks for on a custom
``feature`` network (``num_features``, so it never probes with a dummy image) plus a ``name``
and a ``description`` that a report prints next to every number. It resizes its input itself, so
real and generated images of different sizes meet in the same space.

- :class:`FeatureExtractor`: their base; plugins register theirs through the
  ``register_feature_extractors`` hook, and :func:`default_extractor` finds them by name.
- :class:`InceptionExtractor`: torchvision's Inception v3 from a local weights file (standard FID).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from posterforge.errors import PosterforgeError, WeightsError

if TYPE_CHECKING:
    from posterforge.context import Context
    from posterforge.plugins import PluginHost


class FeatureExtractor(nn.Module):
    """Base of the extractors: ``forward`` maps ``(B, 3, H, W)`` (float in ``[0, 1]``, or uint8)
    to ``(B, num_features)`` float32, after resizing to ``size`` x ``size``."""

    name: str = "features"
    description: str = ""
    num_features: int
    size: int

    def resize(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` float ``[0, 1]`` or uint8 -> ``(B, 3, size, size)`` float32."""
        if images.dtype == torch.uint8:  # torchmetrics' convention when normalize=False
            images = images.float() / 255
        images = images.float()
        if images.shape[-2:] != (self.size, self.size):
            images = F.interpolate(
                images,
                size=(self.size, self.size),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )
        return images


class InceptionExtractor(FeatureExtractor):
    """torchvision's Inception v3 pool features: ``(B, 3, H, W)`` -> ``(B, 2048)`` at 299x299.

    With ImageNet weights these are the features of standard FID. The reference FID numbers come
    from the TensorFlow Inception (ported as ``pt_inception-2015-12-05``); torchvision's graph
    differs from it in a few pooling layers, so even that port's weights give FIDs close to,
    not identical with, the published ones.
    """

    name = "inception-v3"
    num_features = 2048
    size = 299

    def __init__(self, net: nn.Module, source: str = ""):
        super().__init__()
        self.net = net
        self.description = (
            "torchvision Inception v3 (2048-d average-pool features, images resized to 299x299)"
            + (f" with weights from {source}" if source else "")
            + "; comparable with other Inception FIDs when the weights are the standard ones."
        )
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_file(cls, path: str | Path) -> InceptionExtractor:
        """A local torchvision ``inception_v3`` state dict (``fc`` and ``AuxLogits`` optional:
        they are not used). Never downloads."""
        from torchvision.models import inception_v3

        path = Path(path)
        if not path.is_file():
            raise WeightsError(f"Inception weights file not found: {path}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise WeightsError(f"cannot read Inception weights {path}: {e}") from e
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise WeightsError(f"{path} does not hold a state dict")
        state = {k: v for k, v in state.items() if not k.startswith(("fc.", "AuxLogits."))}
        net = inception_v3(weights=None, aux_logits=False, init_weights=False)
        net.fc = nn.Identity()
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise WeightsError(
                f"{path} is not a torchvision inception_v3 state dict: {str(e).splitlines()[0]}"
            ) from e
        return cls(net, source=path.name)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # The ImageNet weights expect [-1, 1] (what transform_input=True converts to).
        return self.net(self.resize(images) * 2 - 1)


def default_extractor(where: PluginHost | Context, name: str | None = None) -> FeatureExtractor:
    """The feature extractor ``name`` that a plugin of ``where`` (a plugin host, or a context
    and its host) registered, loaded now; ``name`` None: the one registered first."""
    host: PluginHost = getattr(where, "host", where)
    registry = host.extractors
    if name is None:
        first = registry.first()
        if first is None:
            raise PosterforgeError(
                "no feature extractors are registered (no loaded plugin brings one: see "
                "posterforge plugins and POSTERFORGE_LOAD_PLUGINS); or pass --inception-weights"
            )
        return first.item.build()
    return registry.get(name).build()  # unknown: one line naming the registered ones

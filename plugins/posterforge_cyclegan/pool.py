"""History of generated images (Shrivastava et al. 2017), as CycleGAN uses for its
discriminators: they see a mix of current and past fakes, which damps oscillation."""

from __future__ import annotations

from typing import Any

import torch


class ImagePool:
    """Keeps up to ``size`` past fakes. ``query(batch)`` returns, per image, either that image or
    (with probability 1/2, once the pool is full) a stored one that it then replaces. Draws from
    torch's global RNG, which checkpoints save, so a resumed run queries identically."""

    def __init__(self, size: int = 50):
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return batch
        out = []
        for image in batch.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()) < 0.5:
                i = int(torch.randint(len(self.images), ()))
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        stacked = torch.stack(self.images) if self.images else torch.empty(0)
        return {"size": self.size, "images": stacked.cpu()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | None = None) -> None:
        self.size = int(state["size"])
        images = state["images"]
        self.images = [im.to(device) if device else im for im in images] if images.numel() else []

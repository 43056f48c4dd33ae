"""The baseline: the plain PyTorch loop a user would write for the same generator.

PIL open, to-tensor, forward, save, one image at a time (vintagify's own generator class and
weights, eager fp32, torch.no_grad). Prints one line per image as it is written.

    python bench/plain_loop.py IN_DIR OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from vintagify.generator import ResnetGenerator

from posterforge_cyclegan import locate_vintagify


def main(src: Path, dst: Path) -> None:
    net = ResnetGenerator()
    net.load_state_dict(torch.load(locate_vintagify(), map_location="cpu", weights_only=True))
    net.eval()
    dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.iterdir()):
        x = TF.to_tensor(Image.open(path).convert("RGB")).unsqueeze(0) * 2 - 1
        with torch.no_grad():
            y = net(x)
        TF.to_pil_image(((y[0] + 1) / 2).clamp(0, 1)).save(dst / path.name)
        print(path.name, flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

"""CycleGAN translator plugin: importers reproduce the original modules' outputs exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from posterforge import plugins
from posterforge.errors import WeightsError
from posterforge.store import Store
from posterforge.weights import load_weights
from posterforge_cyclegan.config import ResnetConfig
from posterforge_cyclegan.network import ResnetGenerator

from .reference_cyclegan import ReferenceResnetGenerator


def _randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return module.eval()


def _import(tmp_path, module, name, fmt="auto"):
    from posterforge.api import import_weights

    ckpt = tmp_path / f"{name}.pth"
    torch.save(module.state_dict(), ckpt)
    return load_weights(import_weights(ckpt, name, fmt=fmt))


def _ours(weights) -> torch.nn.Module:
    return plugins.get_host().translators.get(weights.arch).build(weights)


def _assert_same_outputs(original: torch.nn.Module, weights, x: torch.Tensor) -> None:
    """Our translator ([0, 1] in and out) computes what the original [-1, 1] module does."""
    with torch.no_grad():
        expected = (original(x * 2 - 1) + 1) / 2
        got = _ours(weights)(x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("n_blocks", "dropout"), [(6, False), (9, False), (6, True)])
def test_reference_checkpoint_parity(tmp_path, n_blocks, dropout):
    ref = _randomise(ReferenceResnetGenerator(ngf=8, n_blocks=n_blocks, use_dropout=dropout))
    weights = _import(tmp_path, ref, f"ref{n_blocks}{int(dropout)}")
    assert weights.config == {
        "ngf": 8,
        "n_blocks": n_blocks,
        "affine": False,
        "in_channels": 3,
        "out_channels": 3,
    }
    assert weights.header["provenance"]["importer"] == "reference"
    _assert_same_outputs(ref, weights, torch.rand(2, 3, 36, 44))


def test_old_checkpoints_with_instance_norm_running_stats_import(tmp_path):
    ref = _randomise(ReferenceResnetGenerator(ngf=4, n_blocks=2))
    state = ref.state_dict()
    state["model.2.running_mean"] = torch.zeros(4)  # what PyTorch < 0.4 saved
    ckpt = tmp_path / "old.pth"
    torch.save(state, ckpt)
    from posterforge.api import import_weights

    weights = load_weights(import_weights(ckpt, "old"))
    assert "model.2.running_mean" not in weights.tensors


def test_vintagify_checkpoint_parity(tmp_path):
    from vintagify.generator import ResnetGenerator as VintagifyGenerator

    theirs = _randomise(VintagifyGenerator(ngf=8, n_blocks=3), seed=1)
    weights = _import(tmp_path, theirs, "vg")
    assert weights.config["affine"] is True and weights.config["n_blocks"] == 3
    assert weights.header["provenance"]["importer"] == "vintagify"
    _assert_same_outputs(theirs, weights, torch.rand(1, 3, 40, 32))


def test_wrong_format_is_a_clear_error(tmp_path):
    ref = _randomise(ReferenceResnetGenerator(ngf=4, n_blocks=2))
    with pytest.raises(WeightsError, match="does not match the 'vintagify' layout"):
        _import(tmp_path, ref, "x", fmt="vintagify")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    from posterforge.api import import_weights

    with pytest.raises(WeightsError, match="no importer recognises these tensors"):
        import_weights(tmp_path / "other.pth", "other")


def test_config_rebuilds_the_network(tmp_path):
    net = _randomise(ResnetGenerator(ResnetConfig(ngf=4, n_blocks=2, affine=True)))
    rebuilt = ResnetGenerator(ResnetConfig.from_dict(net.config.to_dict()))
    assert rebuilt.config == net.config
    assert rebuilt.state_dict().keys() == net.state_dict().keys()


def test_vintage_style_matches_vintagify(tmp_path):
    """Our `vintage` output equals vintagify's own generator run directly (PSNR >= 40 dB)."""
    from vintagify.generator import ResnetGenerator as VintagifyGenerator

    from posterforge.api import translate
    from posterforge.plugins import get_host
    from posterforge_cyclegan import locate_vintagify

    src = tmp_path / "in" / "photo.png"
    src.parent.mkdir()
    rng = np.random.default_rng(0)
    # A smooth, photo-like test card (gradients + shapes), 128x96.
    yy, xx = np.mgrid[0:96, 0:128]
    img = np.stack([xx * 2, yy * 2.5, (xx + yy)], axis=-1) % 256
    img[20:60, 30:90] = rng.integers(0, 255, 3)
    Image.fromarray(img.astype(np.uint8)).save(src)

    records = translate([src.parent], tmp_path / "out", style="vintage", device="cpu")
    assert [r.status for r in records] == ["ok"]
    assert Store().has("vintage") and get_host()  # imported into the store on first use
    ours = np.asarray(Image.open(records[0].output), dtype=np.float64)

    theirs_net = VintagifyGenerator().eval()
    theirs_net.load_state_dict(
        torch.load(locate_vintagify(), map_location="cpu", weights_only=True)
    )
    x = torch.from_numpy(np.array(Image.open(src))).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        y = (theirs_net(x * 2 - 1) + 1) / 2
    theirs = y[0].permute(1, 2, 0).clamp(0, 1).mul(255).round().numpy()
    mse = np.mean((ours - theirs) ** 2)
    psnr = 10 * np.log10(255**2 / max(mse, 1e-12))
    assert psnr >= 40, psnr

"""A training recipe's ``precision = "auto"``: bf16 where the device computes it natively and a
step holds at least 256x256 pixels (batch x height x width), fp32 elsewhere; the recipe keeps
"auto", the task trains in what it took. The CPU's flags are faked (conftest makes every test a
CPU without native bf16 unless it says otherwise); no timing."""

from __future__ import annotations

import logging

import pytest
import torch

from posterforge.backends import precision as inference_precision
from posterforge.training.precision import AUTO_BF16_PIXELS, PRECISIONS, training_precision

CPU = torch.device("cpu")


@pytest.fixture
def native(monkeypatch):
    monkeypatch.setattr(inference_precision, "NATIVE_FLAGS", ("avx512_bf16",))
    monkeypatch.setattr(
        "posterforge.backends.calibration.cpu_identity",
        lambda cpuinfo=None: {"cpu": "Zen 5", "flags": "avx2 avx512f avx512_bf16"},
    )


def test_auto_decides_by_the_pixels_of_a_step(native, caplog):
    caplog.set_level(logging.WARNING)
    assert "auto" in PRECISIONS
    assert training_precision(CPU, "auto", 64 * 64) == "fp32"  # the tiny CycleGAN: 0.72x
    assert training_precision(CPU, "auto", 8 * 32 * 64) == "fp32"  # the tiny StyleGAN: 0.90x
    assert training_precision(CPU, "auto", 8 * 64 * 128) == "bf16"  # the tiny cGAN: 1.09x
    assert training_precision(CPU, "auto", AUTO_BF16_PIXELS) == "bf16"  # 256 px CycleGAN: 1.65x
    notes = [r.getMessage() for r in caplog.records]
    assert notes[0] == (
        "posterforge: note: precision auto: fp32 (native avx512_bf16, but 4096 pixels a step, "
        "under 65536)"
    )
    assert notes[-1] == "posterforge: note: precision auto: bf16 (native avx512_bf16, " \
        "65536 pixels a step)"  # fmt: skip


def test_auto_is_fp32_without_native_bf16_and_an_asked_precision_is_kept():
    assert training_precision(CPU, "auto", 10 * AUTO_BF16_PIXELS) == "fp32"
    assert training_precision(CPU, "fp32", 10 * AUTO_BF16_PIXELS) == "fp32"
    assert training_precision(CPU, "bf16", 1) == "bf16"


def test_the_families_train_in_what_auto_took(native):
    from posterforge_cyclegan.training import CycleGANTask
    from posterforge_genre_cgan.training import GenreCGANTask
    from posterforge_stylegan.training import StyleGANTask

    small = dict(load_size=260, batch_size=1, ngf=8, n_blocks=1, ndf=8, precision="auto")
    big = CycleGANTask({**small, "size": 256}, device="cpu", seed=0)
    assert big.precision == "bf16" and big.recipe.precision == "auto"  # the checkpoint: auto
    assert big._autocast().fast_dtype == torch.bfloat16 and big._autocast()._enabled
    tiny = CycleGANTask({**small, "size": 64}, device="cpu", seed=0)
    assert tiny.precision == "fp32" and not tiny._autocast()._enabled
    cgan = GenreCGANTask({"batch_size": 8, "ngf": 8, "ndf": 8, "precision": "auto"}, ["a", "b"])
    assert cgan.precision == "bf16"  # 8 x 64x128
    style = {"image_size": [32, 64], "batch_size": 8, "precision": "auto"}
    assert StyleGANTask(style, ["a", "b"]).precision == "fp32"  # 8 x 32x64

"""The training data stream: deterministic order, shards, resume, bad files; and augmentation."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from posterforge.errors import PosterforgeError
from posterforge.images import encode_atomic
from posterforge.training.augment import make_augment
from posterforge.training.data import ImageFolderStream, load_image


def write_images(folder: Path, n: int = 10) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        rgb = np.full((16 + 2 * i, 16, 3), 20 * i, dtype=np.uint8)  # one flat grey per image
        rgb[0, 0] = (i, 255 - i, 7)
        paths.append(folder / f"img{i:02d}.png")
        encode_atomic(rgb, paths[-1])
    return paths


def ids(batch: torch.Tensor) -> list[int]:
    """Which image each item of a batch is (its grey level is 20 * index)."""
    return [round(float(x[1, 4, 4]) * 255 / 20) for x in batch]


def take(stream: ImageFolderStream, n: int) -> list[torch.Tensor]:
    return [next(stream) for _ in range(n)]


def test_batches_shape_range_and_determinism(tmp_path):
    write_images(tmp_path)
    a = take(ImageFolderStream(tmp_path, batch_size=3, load_size=8, seed=5, workers=2), 7)
    b = take(ImageFolderStream(tmp_path, batch_size=3, load_size=8, seed=5, workers=1), 7)
    c = take(ImageFolderStream(tmp_path, batch_size=3, load_size=8, seed=6, workers=1), 7)
    assert a[0].shape == (3, 3, 8, 8) and a[0].dtype == torch.float32
    assert all(float(x.min()) >= 0.0 and float(x.max()) <= 1.0 for x in a)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
    # every epoch is a permutation: the first 10 items are all 10 images
    first = [i for batch in a for i in ids(batch)][:10]
    assert sorted(first) == list(range(10))


def test_load_image_resizes_shorter_side_and_centre_crops(tmp_path):
    rgb = np.zeros((20, 40, 3), dtype=np.uint8)
    rgb[:, 10:30] = 255  # a white band in the middle of a wide image
    encode_atomic(rgb, tmp_path / "wide.png")
    x = load_image(tmp_path / "wide.png", 10)
    assert x.shape == (3, 10, 10)
    assert float(x[:, :, 1:-1].min()) > 0.99  # the crop holds the white middle (edges antialiased)
    assert float(x.min()) > 0.5


def test_posters_of_any_shape_are_fitted_by_crop_or_pad(tmp_path):
    rgb = np.zeros((30, 40, 3), dtype=np.uint8)  # wider than a 1:2 poster
    rgb[:, :, 0] = np.linspace(0, 255, 40, dtype=np.uint8)  # red grows left to right
    rgb[:, :, 2] = 200
    encode_atomic(rgb, tmp_path / "wide.png")
    crop = load_image(tmp_path / "wide.png", (16, 32), fit="crop")  # (W, H)
    pad = load_image(tmp_path / "wide.png", (16, 32), fit="pad")
    assert crop.shape == pad.shape == (3, 32, 16)
    # crop: the height fills the poster, so only a middle strip of the width is left
    assert 0.3 < float(crop[0].mean()) < 0.7 and float(crop[0].max() - crop[0].min()) < 0.6
    # pad: the whole width is kept (red spans 0..1), and the rows above and below repeat edges
    assert float(pad[0].max() - pad[0].min()) > 0.8
    torch.testing.assert_close(pad[:, 0], pad[:, 12])
    with pytest.raises(ValueError, match="fit must be"):
        load_image(tmp_path / "wide.png", 8, fit="stretch")


def test_two_ranks_get_disjoint_shards_covering_the_epoch(tmp_path):
    write_images(tmp_path)
    r0 = ImageFolderStream(tmp_path, 1, 8, seed=3, rank=0, world_size=2, workers=1)
    r1 = ImageFolderStream(tmp_path, 1, 8, seed=3, rank=1, world_size=2, workers=1)
    got0 = [i for b in take(r0, 5) for i in ids(b)]
    got1 = [i for b in take(r1, 5) for i in ids(b)]
    assert not set(got0) & set(got1)
    assert sorted(got0 + got1) == list(range(10))
    assert r0.state_dict() == r1.state_dict() == {"epoch": 1, "position": 0}
    # the next epoch is a different permutation, still split the same way
    nxt0 = [i for b in take(r0, 5) for i in ids(b)]
    nxt1 = [i for b in take(r1, 5) for i in ids(b)]
    assert sorted(nxt0 + nxt1) == list(range(10))
    assert (nxt0, nxt1) != (got0, got1)


def test_resume_mid_epoch_yields_the_same_batches(tmp_path):
    write_images(tmp_path)
    a = ImageFolderStream(tmp_path, batch_size=3, load_size=8, seed=1, workers=2)
    take(a, 2)
    state = a.state_dict()
    assert state == {"epoch": 0, "position": 6}
    expected = take(a, 5)  # crosses into epoch 1
    b = ImageFolderStream(tmp_path, batch_size=3, load_size=8, seed=1, workers=2)
    take(b, 4)  # prefetched state must be dropped on load
    b.load_state_dict(state)
    got = take(b, 5)
    assert all(torch.equal(x, y) for x, y in zip(expected, got, strict=True))
    a.close()
    b.close()


def test_bad_files_are_skipped_with_one_warning_each(tmp_path):
    write_images(tmp_path, n=4)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("not an image at all\n")
    s = ImageFolderStream(tmp_path, batch_size=2, load_size=8, seed=0, workers=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = take(s, 8)  # four epochs' worth of good images
    assert all(b.shape == (2, 3, 8, 8) for b in batches)
    assert sorted(i for b in batches[:2] for i in ids(b)) == [0, 1, 2, 3]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert any("empty.png" in m for m in messages)
    assert any("notes.png" in m and "not an image" in m for m in messages)


def test_no_readable_images_is_a_clear_error(tmp_path):
    with pytest.raises(PosterforgeError, match="no images"):
        ImageFolderStream(tmp_path, 2, 8)
    (tmp_path / "bad.png").write_text("nope")
    (tmp_path / "worse.jpg").write_bytes(b"")
    s = ImageFolderStream(tmp_path, 2, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(PosterforgeError, match="no readable images"):
            next(s)


def test_augment_is_batched_and_follows_the_global_rng():
    x = torch.rand(4, 3, 16, 16)
    aug = make_augment(8, color_jitter=True)
    torch.manual_seed(0)
    a = aug(x)
    torch.manual_seed(0)
    b = aug(x)
    assert a.shape == (4, 3, 8, 8)
    assert torch.equal(a, b)
    assert not torch.equal(aug(x), a)


def test_diffaugment_is_differentiable_and_draws_per_sample():
    from posterforge.training.augment import make_diffaugment

    assert make_diffaugment("") is None
    with pytest.raises(ValueError, match="unknown augmentation rotate"):
        make_diffaugment("translation,rotate")
    aug = make_diffaugment("translation,cutout,color")
    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 16).repeat(4, 1, 1, 1).requires_grad_(True)
    y = aug(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0  # the generator learns through it
    assert not torch.allclose(y[0], y[1])  # the same image, augmented differently per sample

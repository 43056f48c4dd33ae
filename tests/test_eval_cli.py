"""``posterforge eval`` as a user runs it: any generator file, real images in label folders, a
JSON record or a table that names the feature extractor; bad input is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from .movie_genre import movie_genre_csv


@pytest.fixture(scope="module")
def two_label_model(tmp_path_factory):
    """A tiny genre-cgan file conditioned on two labels (no preset needed: names in the file)."""
    from posterforge.weights import make_header, save_weights
    from posterforge_genre_cgan.config import GenreConfig
    from posterforge_genre_cgan.network import GenreGenerator
    from posterforge_genre_cgan.training import recalibrated

    torch.manual_seed(0)
    net = recalibrated(GenreGenerator(GenreConfig(z_dim=8, ngf=4), n_labels=2), torch.eye(2))
    header = make_header(
        "generator", "genre-cgan", {"z_dim": 8, "ngf": 4}, labels=["calm", "tense"]
    )
    path = tmp_path_factory.mktemp("model") / "two.safetensors"
    save_weights(path, net.state_dict(), header)
    return path


def _real(folder, counts):
    rng = np.random.default_rng(0)
    for label, n in counts.items():
        (folder / label).mkdir(parents=True)
        for i in range(n):
            rgb = rng.integers(0, 255, (32, 16, 3), dtype=np.uint8)
            Image.fromarray(rgb).save(folder / label / f"{i}.png")
    return folder


@pytest.mark.slow
def test_eval_prints_every_number_with_its_extractor(two_label_model, tmp_path, inproc):
    cli = inproc  # the command in this process (no process-level behaviour is tested here)
    data = _real(tmp_path / "real", {"calm": 12, "tense": 12})
    r = cli("eval", "--model", str(two_label_model), "--data", str(data), "-n", "24", "--json",
            "--device", "cpu")  # fmt: skip
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["extractor"] == "vintagify-encoder-v1" and report["n_real"] == 24
    assert set(report["per_label"]) == {"calm", "tense"} and report["fid"] > 0
    assert 0 <= report["recall"] <= 1 and 0 <= report["label_consistency"] <= 1
    r = cli("eval", "--model", str(two_label_model), "--data", str(data), "-n", "24",
            "--device", "cpu")  # fmt: skip
    assert r.code == 0 and "FID [vintagify-encoder-v1]" in r.out and "tense" in r.out


def test_eval_refuses_bad_input_in_one_line(two_label_model, tmp_path, inproc):
    cli = inproc
    model = ["eval", "--model", str(two_label_model), "--device", "cpu"]
    cases = [
        ([], "name the real images with --data"),
        (["--data", str(tmp_path / "missing")], "folder not found"),
        (["--data", str(_real(tmp_path / "few", {"calm": 5, "tense": 2}))], "only 7 real images"),
        (["--data", str(tmp_path / "few"), "--label", "music"], "not the model's"),
        (["--data", str(tmp_path / "few"), "--encoding", "klingon"], "unknown encoding"),
    ]
    for args, message in cases:
        r = cli(*model, *args, "-n", "24")
        assert r.code == 2 and message in r.err and len(r.err.strip().splitlines()) == 1, r.err
        assert "Traceback" not in r.err


@pytest.mark.slow
def test_eval_reads_a_movie_genre_csv(two_label_model, tmp_path, inproc):
    """--encoding, --path-template and --label-column as train generator takes them; the
    duplicate and the truncated poster reported and dropped; the full list in --data-report."""
    labels = movie_genre_csv(tmp_path / "posters")
    report = tmp_path / "report.txt"
    r = inproc("eval", "--model", str(two_label_model), "--data", str(labels.parent),
               "--labels", str(labels), "--encoding", "latin-1", "--path-template",
               "{imdbId}.jpg", "--label-column", "Genre", "-n", "20", "--device", "cpu",
               "--data-report", str(report), "--json")  # fmt: skip
    assert r.code == 0, r.err
    record = json.loads(r.out)
    assert record["n_real"] == 29  # 30 posters, less the truncated one; the duplicate row once
    assert "is the file of line 4" in r.err and "does not decode" in r.err
    assert f"more (all in {report})" in r.err and "UserWarning" not in r.err
    full = report.read_text()
    assert "unclosed quote" in full and full.count("no such file") == 22
    assert record["skipped_labels"] == {}  # 10 tense posters: enough for their own figures
    r = inproc("eval", "--model", str(two_label_model), "--data", str(labels.parent),
               "--labels", str(labels), "--encoding", "latin-1", "--path-template",
               "{imdbId}.jpg", "-n", "20", "--device", "cpu", "--label", "calm",
               "--data-report", str(report), "--json")  # fmt: skip
    assert r.code == 0, r.err
    assert set(json.loads(r.out)["per_label"]) == {"calm"}


def test_progress_off_a_terminal_is_plain_lines_now_and_then(capsys):
    """Not a terminal (nohup, a log): the first count at once, at most one a period, the last."""
    from posterforge.cli.output import count_progress

    with count_progress("eval", every_s=3600) as progress:
        assert progress is not None
        for done in (1, 5, 9, 10):
            progress(done, 10)
    assert capsys.readouterr().err.splitlines() == ["eval: 1/10 images", "eval: 10/10 images"]

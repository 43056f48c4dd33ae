"""Generators through the backend choice (issue 21, item 6): the genre cGAN runs on OpenVINO when
asked and when a calibration picks it; StyleGAN, whose family does not export, says so once and
runs on torch. No timing asserts: the calibration's timings are given."""

from __future__ import annotations

import pytest

from posterforge.backends import OPENVINO, TORCH, calibration, choice


@pytest.fixture
def tiny_generator(small_genre_generator):
    return small_genre_generator


def test_the_genre_cgan_takes_openvino_when_the_calibration_picks_it(
    inproc, tiny_generator, tmp_path, monkeypatch
):
    pytest.importorskip("openvino")
    monkeypatch.setattr(choice, "CALIBRATE_MIN_PARAMS", 0)  # calibrate even this tiny model

    def fastest(candidates, **kw):
        for run in candidates.values():
            run()  # each candidate really runs
        assert OPENVINO in candidates
        return {name: [1.0 if name == OPENVINO else 2.0] * 3 for name in candidates}

    monkeypatch.setattr(calibration, "fastest", fastest)
    r = inproc("generate", "-m", str(tiny_generator), "-g", "horror", "-n", "2", "-o",
               str(tmp_path / "o"), "--device", "cpu", "--backend", "auto")  # fmt: skip
    assert r.code == 0, r.err
    assert "backend openvino (calibrated " in r.err and ", 2.00x torch)" in r.err
    assert len(list((tmp_path / "o").glob("*.png"))) == 2


def test_stylegan_says_once_that_it_stays_on_torch(inproc, tmp_path, caplog):
    r = inproc("generate", "-m", "posters-stylegan", "-g", "horror", "-g", "comedy", "-n", "2",
               "-o", str(tmp_path / "o"), "--device", "cpu", "--backend", "openvino")  # fmt: skip
    assert r.code == 0, r.err
    notes = [rec.getMessage() for rec in caplog.records if "does not export" in rec.getMessage()]
    assert notes == ["posterforge: note: openvino: this model family does not export; "
                     "running on torch"]  # fmt: skip
    assert r.err.count("does not export") == 1  # and the device line names the path and why
    assert f"backend {TORCH} (openvino: this model family does not export)" in r.err
    assert len(list((tmp_path / "o").glob("*.png"))) == 4

"""The run report in a real browser (headless Chromium): its script runs without an error, draws
every chart with a line per run and the slider with the last sample grid, and the screenshot
shows them (not a blank page)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from posterforge.training.stopping import TrainingInterrupted
from tests import browser
from tests.test_report import StoppedTask, toy_run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        browser.find() is None,
        reason="no chromium on PATH (make install puts Debian's chromium where apt can)",
    ),
]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    import posterforge

    root = tmp_path_factory.mktemp("browser")
    one = toy_run(root, "one", 8)
    with pytest.raises(TrainingInterrupted):
        toy_run(root, "two", 12, StoppedTask())
    return posterforge.report([one, root / "runs" / "two"], root / "report.html", frames=3)


def test_the_script_draws_every_chart_and_the_slider_without_an_error(page):
    dom, log = browser.dump_dom(page)
    assert "Uncaught" not in log, log[-3000:]
    html = re.search(r"<html[^>]*>", dom)
    assert html is not None and "data-js-error" not in html.group(0), html
    # mse, draw; loss (lr is the same in both runs: a line, not a chart); the two timings
    assert 'data-rendered="5 charts"' in dom
    charts = re.findall(r'<figure class="chart">(.*?)</figure>', dom, re.S)
    titles = [re.search(r'class="title">([^<]+)<', c).group(1) for c in charts]  # type: ignore
    assert titles == ["mse", "draw", "loss", "seconds per step (training)",
                      "seconds per metric pass"]  # fmt: skip
    assert '<p class="constants">Constant: lr = 0.01.</p>' in dom
    for chart in charts:  # both runs overlaid, in their own colours
        strokes = re.findall(r'<path d="M[^"]+" stroke="([^"]+)" class="series"', chart)
        assert strokes == ["#1f77b4", "#d62728"], chart[:300]
    sliders = re.findall(r'<input[^>]*type="range"[^>]*max="(\d+)"', dom)
    assert sliders == ["2", "1"]  # three grids of one's four (frames=3), both of two's
    assert re.findall(r'<span class="frame-step">step (\d+) ', dom) == ["8", "4"]
    assert len(re.findall(r'<img class="frame"[^>]*src="data:image/png;base64,', dom)) == 2


def test_the_screenshot_shows_the_curves_and_the_samples(page, tmp_path):
    from PIL import Image

    shot = browser.screenshot(page, tmp_path / "shot.png", height=2300)  # the whole page
    rgb = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert rgb.std() > 20  # not a blank page
    # each run's curves are drawn (the two swatches alone are 288 pixels of its colour)
    for colour in ((0x1F, 0x77, 0xB4), (0xD6, 0x27, 0x28)):
        near = np.abs(rgb - np.array(colour)).sum(axis=2) < 30
        assert near.sum() > 350, colour

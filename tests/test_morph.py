"""``posterforge morph`` (issue 25): a video through genre and seed stops. Frame counts, the first
and last frames equal to the stops' posters, W lerp for a LatentGenerator, determinism, resume
after a kill, and every bad input refused in one line before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

import posterforge
from posterforge.errors import PosterforgeError
from posterforge.jobs.morph import MorphJob
from posterforge.morphing import ease, place, slerp, start
from posterforge.sampling import LoadedGenerator, load_generator, noise_at, sample, to_uint8

av = pytest.importorskip("av")


def webp_frames(path: Path) -> tuple[list[np.ndarray], list[int]]:
    with Image.open(path) as im:
        frames = [
            (np.asarray(f.convert("RGB")), f.info["duration"]) for f in ImageSequence.Iterator(im)
        ]
    return [f for f, _ in frames], [d for _, d in frames]


def video_frames(path: Path) -> tuple[list[np.ndarray], list[int], object]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        out = [(f.pts, f.to_ndarray(format="rgb24")) for f in c.decode(s)]
        rate = s.average_rate
    return [f for _, f in out], [p for p, _ in out], rate


def poster(model: Path, genre: str | None, seed: int) -> np.ndarray:
    gen = load_generator(str(model), device="cpu", precision="fp32", compile="off")
    return to_uint8(sample(gen, genre, 1, seed=seed, batch_size=1))[0].numpy()


def test_the_path_is_eased_and_reaches_every_stop_exactly():
    assert [place(i, 5, 2) for i in (0, 4)] == [(0, 0.0), (0, 1.0)]
    assert place(2, 5, 3) == (1, 0.0)  # the middle frame of three stops is the middle stop
    assert ease(0.5) == pytest.approx(0.5) and ease(0.1) < 0.1  # slow at the ends
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1, 8, generator=g), torch.randn(1, 8, generator=g)
    b = b * a.norm() / b.norm()  # the same length: slerp keeps it all the way, lerp would not
    assert torch.equal(slerp(a, b, 0.0), a) and torch.equal(slerp(a, b, 1.0), b)
    for t in (0.25, 0.5, 0.9):
        assert float(slerp(a, b, t).norm()) == pytest.approx(float(a.norm()), rel=1e-5)
    assert float(((a + b) / 2).norm()) < 0.95 * float(a.norm())


def test_a_lossless_webp_morph_starts_and_ends_on_the_stops_posters(
    small_genre_generator, tmp_path
):
    out = tmp_path / "m.webp"
    kw = dict(model=str(small_genre_generator), device="cpu", precision="fp32", compile="off")
    rec = posterforge.morph(out, ["horror", "comedy"], seeds=[3], seconds=1, fps=10, batch_size=1,
                            **kw)  # fmt: skip
    assert (rec.status, rec.frames, rec.space) == ("ok", 10, "z")
    frames, durations = webp_frames(out)
    assert len(frames) == 10 and durations == [100] * 10
    assert np.array_equal(frames[0], poster(small_genre_generator, "horror", 3))
    assert np.array_equal(frames[-1], poster(small_genre_generator, "comedy", 3))
    assert not np.array_equal(frames[4], frames[0]) and not np.array_equal(frames[4], frames[-1])
    assert not any(p.name.startswith(".m.webp") for p in tmp_path.iterdir())  # no work left


def test_an_mp4_morph_of_seeds_has_its_frames_and_rate_and_is_deterministic(
    small_genre_generator, tmp_path
):
    kw = dict(model=str(small_genre_generator), device="cpu", precision="fp32", compile="off",
              seeds="1,2,3", seconds=1.0, fps=12)  # fmt: skip
    posterforge.morph(tmp_path / "a.mp4", ["war"], **kw)
    posterforge.morph(tmp_path / "b.mp4", ["war"], **kw)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    frames, pts, rate = video_frames(tmp_path / "a.mp4")
    assert len(frames) == 12 and rate == 12 and pts == list(range(12))
    for frame, seed in ((frames[0], 1), (frames[-1], 3)):  # within H.264's error at crf 18
        diff = np.abs(frame.astype(int) - poster(small_genre_generator, "war", seed).astype(int))
        assert diff.mean() < 8, diff.mean()


@pytest.mark.slow
def test_a_killed_morph_resumes_and_writes_the_same_bytes(small_genre_generator, tmp_path,
                                                          monkeypatch):  # fmt: skip
    monkeypatch.setenv("POSTERFORGE_SEGMENT_SECONDS", "0.25")
    job = MorphJob(tmp_path / "whole.mp4", ("horror", "drama"), model=str(small_genre_generator),
                   seconds=1.0, fps=16, batch_size=3, device="cpu", precision="fp32",
                   compile="off")  # fmt: skip
    list(start(job).records())
    cut = MorphJob(**{**job.__dict__, "out": tmp_path / "cut.mp4"})
    run = start(cut)
    seen = []

    def kill(n: int) -> None:
        seen.append(n)
        if sum(seen) >= 9:
            raise KeyboardInterrupt

    run.on_frames = kill
    with pytest.raises(KeyboardInterrupt):
        list(run.records())
    assert not (tmp_path / "cut.mp4").exists()
    again = next(iter(start(cut).records()))
    assert again.resumed == 8  # two finished segments of 4 frames (0.25 s at 16 fps)
    assert (tmp_path / "cut.mp4").read_bytes() == (tmp_path / "whole.mp4").read_bytes()
    assert next(iter(start(cut).records())).status == "skipped"


def test_a_gif_morph_keeps_its_timing(small_genre_generator, tmp_path):
    out = tmp_path / "m.gif"
    posterforge.morph(out, ["horror", "comedy"], model=str(small_genre_generator), seconds=1,
                      fps=12, device="cpu", precision="fp32", compile="off")  # fmt: skip
    with Image.open(out) as im:
        durations = [f.info["duration"] for f in ImageSequence.Iterator(im)]
    assert len(durations) == 12 and sum(durations) == 1000  # 1/100 s steps, no drift
    assert set(durations) == {80, 90}


class LinearW(torch.nn.Module):
    """A generator with a W latent: w = z A + c B, image = sigmoid(w C)."""

    latent_kind = "w"
    z_dim, image_size, label_names = 4, (6, 4), ["a", "b"]

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.A, self.B = torch.randn(4, 5, generator=g), torch.randn(2, 5, generator=g) * 3
        self.C = torch.randn(5, 3 * 4 * 6, generator=g)

    def conditions(self, spec: str) -> torch.Tensor:
        return torch.eye(2)[self.label_names.index(spec)] if spec in self.label_names else \
            (_ for _ in ()).throw(PosterforgeError(f"unknown genre {spec!r}"))  # fmt: skip

    def caption(self, spec: str) -> str:
        self.conditions(spec)
        return spec

    def to_latent(self, z, conditions):
        return z @ self.A + conditions @ self.B

    def latent_start(self, conditions):
        return conditions @ self.B

    def render(self, latent, conditions):
        return torch.sigmoid(latent @ self.C).reshape(-1, 3, 4, 6)

    def sample(self, z, conditions):
        return self.render(self.to_latent(z, conditions), conditions)


def test_a_latent_generator_is_morphed_in_w(tmp_path):
    from posterforge.engine import Engine

    gen = LoadedGenerator(Engine(LinearW(), torch.device("cpu"), compile="off"), "linear")
    job = MorphJob(tmp_path / "w.webp", ("a", "b"), seconds=0.3, fps=10, device="cpu")
    run = start(job, generator=gen)
    assert run.path.space == "w"
    list(run.records())
    frames, _ = webp_frames(tmp_path / "w.webp")
    m = gen.module
    z = run.path.latents  # the stops' w, from the seed's noise
    assert torch.allclose(z[0], m.to_latent(noise_at([(0, 0)], 4), torch.eye(2)[:1]))
    mid = m.render((z[0] + z[1]) / 2, None)  # w lerped halfway (frame 1 of 3: t = 0.5)
    expect = to_uint8(mid)[0].numpy()
    assert np.abs(frames[1].astype(int) - expect.astype(int)).max() <= 1
    zrun = start(MorphJob(tmp_path / "z.webp", ("a", "b"), seconds=0.3, fps=10, space="z"),
                 generator=gen)  # fmt: skip
    assert zrun.path.space == "z"


BAD = [
    (["--seconds", "0"], "--seconds 0.0: must be more than 0"),
    (["--fps", "0"], "--fps 0.0: must be more than 0"),
    (["--seconds", "1e6"], "--seconds 1000000.0: at most 3600"),
    (["--fps", "1000"], "--fps 1000.0: at most 240"),
    (["--seconds", "0.01"], "make 0 frame(s): a morph needs 2 to 100000"),
    (["-g", "horor"], "horor"),
    (["--space", "w"], "cannot morph in W: it has no W latent"),
    (["--seeds", "1,2,3"], "2 genres and 3 seeds"),
    (["--out", "{tmp}/m.avi.x"], "cannot write .x videos"),
    (["--out", "{tmp}/m.gif", "--crf", "20"], "an animated GIF has no --vcodec or --crf"),
    (["--vcodec", "nosuch"], "--vcodec nosuch: this FFmpeg build has no such encoder"),
]


@pytest.mark.parametrize(("extra", "line"), BAD)
def test_bad_input_is_one_line_before_any_work(small_genre_generator, tmp_path, inproc, extra,
                                               line):  # fmt: skip
    out = tmp_path / "out"
    base = {"--out": str(out / "m.mp4"), "-m": str(small_genre_generator), "--device": "cpu"}
    args = ["morph", "-g", "horror", "-g", "comedy"]
    extra = [a.replace("{tmp}", str(out)) for a in extra]
    for k, v in base.items():
        if k not in extra:
            args += [k, v]
    r = inproc(*args, *extra)
    assert r.code != 0
    assert line in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert not out.exists() or not any(out.iterdir())


def test_one_stop_is_nothing_to_morph_and_other_settings_are_refused(
    small_genre_generator, tmp_path, inproc
):
    base = ["morph", "-m", str(small_genre_generator), "--device", "cpu", "--fps", "4",
            "--seconds", "0.5", "--out", str(tmp_path / "m.mp4")]  # fmt: skip
    r = inproc(*base, "-g", "horror")
    assert r.code != 0 and "nothing to morph" in r.err
    assert inproc(*base, "-g", "horror", "-g", "war").code == 0
    r = inproc(*base, "-g", "horror", "-g", "drama")
    assert r.code != 0 and "m.mp4" in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert inproc(*base, "-g", "horror", "-g", "drama", "--overwrite").code == 0


@pytest.mark.slow
def test_kill_9_at_varied_points_resumes_to_the_same_bytes(small_genre_generator, tmp_path):
    """A morph killed -9 after 1, 3 and 4 finished segments (of 8), resumed each time, writes the
    bytes of an uninterrupted run, and leaves no work folder behind."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    from .conftest import ROOT

    env = {**os.environ, "POSTERFORGE_SEGMENT_SECONDS": "0.25"}

    def args(dest: Path) -> list[str]:
        return [sys.executable, "-m", "posterforge", "morph", "-m", str(small_genre_generator),
                "-g", "horror", "-g", "comedy", "--seeds", "1,2", "--seconds", "2", "--fps", "16",
                "-b", "3", "--device", "cpu", "--precision", "fp32", "-q",
                "--out", str(dest)]  # fmt: skip

    def finished(parts: Path) -> int:
        try:
            return len(json.loads((parts / "manifest.json").read_text())["segments"])
        except (OSError, ValueError, KeyError):
            return 0

    whole = tmp_path / "whole" / "m.mp4"
    subprocess.run(args(whole), env=env, cwd=ROOT, check=True, capture_output=True)
    dest = tmp_path / "killed" / "m.mp4"
    for after in (1, 3, 4):
        proc = subprocess.Popen(args(dest), env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 120
        while finished(dest.with_name(".m.mp4.parts")) < after:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not dest.exists()
    done = subprocess.run([*args(dest), "--json"], env=env, cwd=ROOT, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["resumed"] >= 16
    assert dest.read_bytes() == whole.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == [".posterforge-outputs.json", "m.mp4"]

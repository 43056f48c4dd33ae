"""``posterforge frames`` (issue 14): training frames cut from films that the tests make with PyAV.

The films are tiny (64x48, 10 fps, a few seconds) and built to know the answer: key frames every
10 frames, shots cut at known frames, black bars of known height, frozen stretches, irregular
time stamps, a file cut short.
"""

from __future__ import annotations

import doctest
import json
import subprocess
import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from posterforge.cli import main
from posterforge.video import picks
from posterforge.video.frames import MANIFEST, FrameOptions, Manifest, cut_frames, stamp

FPS = 10


def make_film(
    path: Path,
    frames: Sequence[np.ndarray],
    *,
    fps: int = FPS,
    gop: int = 10,
    times_ms: Sequence[int] | None = None,
    sar: Fraction | None = None,
    rotate: int | None = None,
) -> Path:
    """Encode RGB frames (H, W, 3) with libx264: a key frame every ``gop`` frames exactly, and
    optionally irregular time stamps (ms) or a sample aspect ratio."""
    h, w = frames[0].shape[:2]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream(
            "libx264",
            rate=fps,
            options={"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "crf": "12"},
        )
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        if times_ms is not None:
            s.codec_context.time_base = s.time_base = Fraction(1, 1000)
        if sar is not None:
            s.codec_context.sample_aspect_ratio = sar
        if rotate is not None:  # a phone clip: stored sideways, a display matrix to turn it
            s.set_display_rotation(rotate)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            if times_ms is not None:
                frame.pts, frame.time_base = times_ms[i], Fraction(1, 1000)
            for packet in s.encode(frame):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


def blobs(n: int, seed: int = 0, size: tuple[int, int] = (64, 48)) -> list[np.ndarray]:
    """``n`` different smooth images (compress well, hash far apart)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        small = rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)
        out.append(np.asarray(Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)))
    return out


def moving(n: int, w: int = 64, h: int = 48) -> list[np.ndarray]:
    """A gradient with a bright bar that moves: every frame differs a little."""
    out = []
    for i in range(n):
        a = np.zeros((h, w, 3), np.uint8)
        a[:, :, 0] = np.linspace(40, 200, w, dtype=np.uint8)[None, :]
        a[:, :, 2] = 90
        a[:, (2 * i) % w] = 255
        out.append(a)
    return out


def _cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """The real entry point in this process."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _pngs(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))


def _times(folder: Path, name: str) -> list[float]:
    """The times of the frames of the film's latest cut, from the manifest."""
    return sorted(r["time"] for r in Manifest(folder).state(name).frames.values())


def test_pick_rules_doctests():
    assert doctest.testmod(picks).failed == 0


def test_keyframes_are_the_films_key_frames(tmp_path, capsys):
    film = make_film(tmp_path / "gop.mp4", moving(45), gop=10)
    with av.open(str(film)) as c:
        keys = [round(float(f.time), 3) for f in c.decode(video=0) if f.key_frame]
    assert len(keys) == 5
    code, out, err = _cli(capsys, "frames", film, "--keyframes", "--out", tmp_path / "out")
    assert code == 0, err
    assert len(out.splitlines()) == len(keys)
    assert _times(tmp_path / "out", "gop") == keys


def test_every_follows_time_stamps_with_a_variable_frame_rate(tmp_path, capsys):
    times = [0, 100, 700, 800, 2500, 2600, 3100]
    film = make_film(tmp_path / "vfr.mkv", blobs(7), times_ms=times)
    code, out, _ = _cli(capsys, "frames", film, "--every", "1", "-o", tmp_path / "out")
    assert code == 0
    assert _times(tmp_path / "out", "vfr") == [0.0, 2.5, 3.1]
    assert out.splitlines()[1] == str(tmp_path / "out" / "vfr" / f"vfr_{stamp(2.5)}.png")
    # a regular film: 0.5 s spacing over 4 s
    film = make_film(tmp_path / "cfr.mkv", moving(40))
    code, out, _ = _cli(capsys, "frames", film, "--every", "0.5", "-o", tmp_path / "out")
    assert code == 0 and _times(tmp_path / "out", "cfr") == [i / 2 for i in range(8)]


def test_scenes_pick_one_frame_per_shot(tmp_path, capsys):
    h, w = 48, 64
    stripes_v = np.zeros((h, w, 3), np.uint8)
    stripes_v[:, ::8] = stripes_v[:, 1::8] = stripes_v[:, 2::8] = stripes_v[:, 3::8] = 230
    stripes_h = stripes_v.transpose(1, 0, 2)[:h, :w].copy()
    shots = [
        (12, lambda i: np.full((h, w, 3), 40, np.uint8)),
        (9, lambda i: np.full((h, w, 3), 200, np.uint8)),
        (15, lambda i: stripes_v),
        (10, lambda i: moving(i + 1)[-1]),  # motion inside a shot is no cut
        (3, lambda i: stripes_h),  # the last shot, shorter than 0.5 s: its middle frame
    ]
    frames, bounds = [], []
    for length, draw in shots:
        bounds.append((len(frames) / FPS, (len(frames) + length) / FPS))
        frames += [draw(i) for i in range(length)]
    film = make_film(tmp_path / "cuts.mkv", frames)
    code, _, err = _cli(capsys, "frames", film, "--scenes", "-o", tmp_path / "out")
    assert code == 0, err
    times = _times(tmp_path / "out", "cuts")
    assert len(times) == len(shots)
    for t, (start, end) in zip(times, bounds, strict=True):
        assert start <= t < end
    assert times[:4] == [round(s + picks.SETTLE_S, 3) for s, _ in bounds[:4]]
    assert times[4] == 4.7  # frames 46, 47, 48: the middle one


def test_crop_bars_of_a_letterboxed_film(tmp_path, capsys):
    frames = []
    for a in moving(30, w=80, h=40):
        boxed = np.zeros((60, 80, 3), np.uint8)
        boxed[10:50] = a
        frames.append(boxed)
    film = make_film(tmp_path / "scope.mkv", frames)
    code, out, err = _cli(
        capsys, "frames", film, "--crop-bars", "--every", "1", "-o", tmp_path / "out"
    )
    assert code == 0, err
    assert "80x60 -> 80x40" in err
    sizes = {Image.open(p).size for p in out.splitlines()}
    assert sizes == {(80, 40)}
    # then --size: cover 32x32 and centre-crop; N: the shorter side
    code, out, _ = _cli(
        capsys, "frames", film, "--crop-bars", "--size", "32x32", "-o", tmp_path / "s"
    )
    assert code == 0 and {Image.open(p).size for p in out.splitlines()} == {(32, 32)}
    code, out, _ = _cli(capsys, "frames", film, "--size", "30", "-o", tmp_path / "n")
    assert code == 0 and {Image.open(p).size for p in out.splitlines()} == {(40, 30)}


def test_anamorphic_film_is_cut_as_shown(tmp_path, capsys):
    film = make_film(tmp_path / "dvd.mkv", blobs(10, size=(32, 48)), sar=Fraction(2, 1))
    code, out, _ = _cli(capsys, "frames", film, "--max", "1", "-o", tmp_path / "out")
    assert code == 0 and Image.open(out.strip()).size == (64, 48)


def test_dedupe_drops_frozen_stretches(tmp_path, capsys):
    stills = blobs(5, seed=3)
    film = make_film(tmp_path / "frozen.mkv", [s for s in stills for _ in range(10)])
    code, out, _ = _cli(capsys, "frames", film, "--every", "0.2", "-o", tmp_path / "all")
    assert code == 0 and len(out.splitlines()) == 25
    code, out, err = _cli(
        capsys, "frames", film, "--every", "0.2", "--dedupe", "6", "-o", tmp_path / "one"
    )
    assert code == 0
    assert _times(tmp_path / "one", "frozen") == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert "20 near-repeats dropped" in err
    # and --max counts the frames kept
    args = ("--every", "0.2", "--dedupe", "6", "--max", "2")
    code, out, _ = _cli(capsys, "frames", film, *args, "-o", tmp_path / "m")
    assert code == 0 and _times(tmp_path / "m", "frozen") == [0.0, 1.0]


def test_rerun_skips_resumes_and_refuses_other_settings(tmp_path, capsys):
    film = make_film(tmp_path / "film.mkv", moving(40))
    out = tmp_path / "out"
    code, first, _ = _cli(capsys, "frames", film, "--every", "0.5", "-o", out)
    assert code == 0 and len(first.splitlines()) == 8
    # a finished film is not cut again; a frame deleted by hand stays deleted
    (out / "film" / f"film_{stamp(1.5)}.png").unlink()
    code, again, err = _cli(capsys, "frames", film, "--every", "0.5", "-o", out)
    assert (code, again) == (0, "") and "cut before" in err
    assert len(_pngs(out)) == 7
    # an interrupted run (manifest: the start and 3 frames) is resumed: only the rest is written
    lines = (out / MANIFEST).read_text().splitlines()
    (out / MANIFEST).write_text("\n".join(lines[:4]) + '\n{"frame": "film/fi')  # a torn line
    code, rest, _ = _cli(capsys, "frames", film, "--every", "0.5", "--json", "-o", out)
    assert code == 0
    recs = [json.loads(line) for line in rest.splitlines()]
    assert [r["status"] for r in recs] == ["skipped"] * 3 + ["ok"] * 5
    assert Manifest(out).state("film").done == 8
    assert len(_pngs(out)) == 8
    # other settings: one line naming --overwrite, nothing touched
    before = (out / MANIFEST).read_bytes()
    code, _, err = _cli(capsys, "frames", film, "--every", "1", "-o", out)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--overwrite" in err and "every 0.5, now 1.0" in err
    assert (out / MANIFEST).read_bytes() == before
    # --overwrite: the old cut's frames go, the new cut's come
    code, _, _ = _cli(capsys, "frames", film, "--every", "1", "--overwrite", "-o", out)
    assert code == 0
    assert _pngs(out) == [f"film/film_{stamp(t)}.png" for t in (0, 1, 2, 3)]
    assert _times(out, "film") == [0.0, 1.0, 2.0, 3.0]


def test_another_film_of_the_same_name_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    first = make_film(tmp_path / "one" / "film.mkv", moving(20))
    assert _cli(capsys, "frames", first, "-o", out)[0] == 0
    other = make_film(tmp_path / "two" / "film.mkv", blobs(30))
    code, _, err = _cli(capsys, "frames", other, "-o", out)
    assert code == 2 and "cut from another file of that name" in err and "--overwrite" in err
    moved = tmp_path / "elsewhere" / "film.mkv"
    moved.parent.mkdir()
    moved.write_bytes(first.read_bytes())  # the same film, moved: nothing to do
    code, out_lines, err = _cli(capsys, "frames", moved, "-o", out)
    assert (code, out_lines) == (0, "") and "cut before" in err


def test_a_film_another_run_holds_is_left_to_it(tmp_path, capsys):
    from posterforge.atomic import claim

    film = make_film(tmp_path / "film.mkv", moving(10))
    lock = claim(tmp_path / "out" / "film")  # as another live run holds it
    assert lock is not None
    try:
        code, out, err = _cli(capsys, "frames", film, "-o", tmp_path / "out")
    finally:
        lock.release()
    assert (code, out) == (0, "") and "another run is cutting it" in err
    assert _pngs(tmp_path / "out") == []


def test_cut_short_film_keeps_what_decodes(tmp_path, capsys):
    whole = make_film(tmp_path / "whole.mkv", moving(100)).read_bytes()
    film = tmp_path / "cut.mkv"
    film.write_bytes(whole[: len(whole) * 45 // 100])
    code, out, err = _cli(capsys, "frames", film, "-o", tmp_path / "out")
    assert code == 1
    assert "truncated" in err and "of its 0:00:10.000" in err and "posterforge: error:" in err
    assert 2 <= len(out.splitlines()) <= 5
    assert Manifest(tmp_path / "out").state("cut").done is None  # a re-run tries again
    code, again, _ = _cli(capsys, "frames", film, "-o", tmp_path / "out")
    assert (code, again) == (1, "")


def test_not_a_video_and_bad_options_are_one_line_errors(tmp_path, capsys):
    film = make_film(tmp_path / "ok.mkv", moving(10))
    text = tmp_path / "notes.mp4"
    text.write_text("not a film\n" * 100)
    Image.new("RGB", (8, 8)).save(tmp_path / "still.png")
    import wave

    with wave.open(str(tmp_path / "sound.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"\0\0" * 800)
    cases = {
        (text,): "not a video",
        (tmp_path / "still.png",): "an image, not a video",
        (tmp_path / "sound.wav",): "no video stream",
        (tmp_path / "missing.mkv",): "no such file",
        (film, "--every", "1", "--keyframes"): "choose one of",
        (film, "--scenes", "--keyframes"): "choose one of",
        (film, "--scene-threshold", "0.2"): "applies to --scenes",
        (film, "--every", "0"): "invalid --every",
        (film, "--dedupe", "65"): "invalid --dedupe",
        (film, "--size", "0x5"): "invalid --size",
        (film, "--format", "gif"): "invalid --format",
        (film, film): "given twice",
    }
    for args, message in cases.items():
        code, out, err = _cli(capsys, "frames", *args, "-o", tmp_path / "out")
        assert code == 2, (args, err)
        assert out == "" and len(err.strip().splitlines()) == 1, (args, err)
        assert err.startswith("posterforge: error: ") and message in err, (args, err)
    assert not (tmp_path / "out").exists()  # nothing written for a refused run


def test_frames_folder_is_a_training_domain(tmp_path, capsys):
    from posterforge.training.data import list_images
    from posterforge_cyclegan.training import UnpairedStream

    for name, seed in (("a", 1), ("b", 2)):
        film = make_film(tmp_path / f"{name}.mkv", blobs(20, seed=seed))
        code, _, _ = _cli(capsys, "frames", film, "--every", "0.5", "-o", tmp_path / name)
        assert code == 0
    assert [p.name for p in list_images(tmp_path / "a")] == [
        f"a_{stamp(t / 2)}.png" for t in range(4)
    ]
    stream = UnpairedStream(tmp_path / "a", tmp_path / "b", batch_size=2, load_size=32, workers=1)
    try:
        batch = next(stream)
    finally:
        stream.a.close(), stream.b.close()
    assert batch["A"].shape == batch["B"].shape == (2, 3, 32, 32)


def test_the_command_and_help_without_av(tmp_path, inproc):
    film = make_film(tmp_path / "clip.mp4", moving(30))
    out = tmp_path / "out"
    r = inproc("frames", str(film), "--keyframes", "-o", str(out))
    assert r.code == 0, r.err
    written = r.out.splitlines()
    assert len(written) == 3 and all(Path(p).is_file() for p in written)
    assert "clip.mp4: 3 frames (3 written" in r.err
    # --help must not import PyAV or torch: a fresh interpreter tells (this one has both)
    code = (
        "import sys\nfrom posterforge.cli import main\n"
        "for args in (['--help'], ['frames', '--help']):\n"
        "    try:\n        main(args)\n    except SystemExit as e:\n        assert e.code == 0\n"
        "print(*(m in sys.modules for m in ('av', 'torch', 'posterforge.video.frames')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "False False False"
    assert "--keyframes" in proc.stdout


def test_python_api(tmp_path):
    film = make_film(tmp_path / "api.mkv", moving(20))
    recs = list(cut_frames([film], tmp_path / "out", FrameOptions(every=1.0)))
    frames, report = recs[:-1], recs[-1]
    assert [f.time for f in frames] == [0.0, 1.0]  # type: ignore[union-attr]
    assert report.status == "done" and report.written == 2  # type: ignore[union-attr]


def test_the_python_api_cuts_frames(tmp_path):
    import posterforge
    from posterforge.video.frames import FilmReport, FrameRecord

    film = make_film(tmp_path / "film.mp4", blobs(24))
    got = posterforge.frames([film], tmp_path / "out", mode="every", every=0.5)
    picks = [r for r in got if isinstance(r, FrameRecord)]
    [report] = [r for r in got if isinstance(r, FilmReport)]
    assert report.status == "done" and report.written == len(picks) >= 2
    assert all(Path(r.output).is_file() and r.status == "ok" for r in picks)


@pytest.mark.parametrize(
    "options",
    [
        FrameOptions(every=0.1),
        FrameOptions(mode="scenes"),
        FrameOptions(mode="keyframes"),
        FrameOptions(every=0.1, dedupe=0),
        FrameOptions(every=0.1, size="24x40"),
    ],
    ids=["every", "scenes", "keyframes", "dedupe", "size"],
)
def test_frames_of_a_rotated_clip_are_upright(tmp_path, options):
    """Issue 23: a 90-degree display matrix gave sideways frames and the stored size; the frames
    are turned as translation turns them (one reading of the matrix: io.upright_turns)."""
    shots = [img for img in blobs(3, seed=5) for _ in range(10)]  # three shots of one second
    film = make_film(tmp_path / "phone.mp4", shots, rotate=90)
    with av.open(str(film)) as c:
        turns = round(next(c.decode(video=0)).rotation / 90) % 4
    assert turns == 1  # what the matrix asks for, as translation reads it
    recs = list(cut_frames([film], tmp_path / "out", options))
    frames, report = recs[:-1], recs[-1]
    assert frames and report.size == (48, 64)
    want = (24, 40) if options.size else (48, 64)
    for rec in frames:
        got = np.asarray(Image.open(rec.output).convert("RGB"))
        assert rec.size == want and got.shape[:2] == want[::-1], rec
        if options.size is None:
            upright = np.rot90(shots[min(round(rec.time * FPS), len(shots) - 1)], turns)
            assert np.abs(got.astype(int) - upright).mean() < 4, rec.time
    lines = [json.loads(x) for x in (tmp_path / "out" / MANIFEST).read_text().splitlines()]
    assert {tuple(x["size"]) for x in lines if "frame" in x} == {want}
